"""The sync engine: read every location, write the delta, report what happened.

Semantics (see README, "How sync works"):
- one transaction per location; only entities whose content hash changed are written;
- a location whose content (and the files its placeholders read) is unchanged is skipped
  without parsing;
- an entity that disappears from its location is removed; a location that fails to read
  keeps its previous entities and records the error; an entity that becomes invalid keeps
  its last good version;
- nothing is removed before the new catalog is written: entities a location no longer lists,
  child locations no Location lists any more and roots no longer synced are removed at the
  end of the sync, so a reader never sees fewer entities while they move, and a sync killed
  at any point leaves each entity where the previous catalog had it or where the new one has it;
- the same entity ref from two locations: the location that holds it keeps it and the other
  is reported, unless the holder no longer defines it (the entity moved): then the new
  location takes it over in place, whichever of the two is read first;
- the same file reached twice counts once; a Location cycle is reported and not followed.

What each batch of a location writes is decided by a pure planner (``catalog.plan``) from
what is stored and what was read; this module looks up its inputs and executes its plans.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from callboard.storage import repo

from .model import CatalogError, LocationTarget, ProcessedEntity, RefParseError, SyncSummary, UnchangedDocument
from .plan import (
    KEEP,
    TAKE,
    WAIT,
    BatchPlan,
    Claim,
    Holder,
    IndexEntry,
    RelationRow,
    Verdict,
    plan_batch,
    plan_removals,
)
from .process import location_targets

__all__ = [
    "IndexChange",
    "LocationReader",
    "LocationSpec",
    "ReadOutcome",
    "SyncEngine",
    "SyncProgress",
    "digest",
    "error_from_row",
    "fingerprint",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LocationSpec:
    """A place entities are read from: ``key`` is ``type:target``."""

    type: str
    target: str
    parent: str | None = None
    origin: str | None = None
    presence: str = "required"

    @property
    def key(self) -> str:
        return f"{self.type}:{self.target}"


@dataclass(slots=True)
class ReadOutcome:
    """What a reader found at a location: bytes and their fingerprint, or why not."""

    content: bytes | None = None
    fingerprint: str | None = None
    digest: str | None = None  # of ``content`` alone
    deps: tuple[str, ...] = ()
    error: CatalogError | None = None
    missing: bool = False


class LocationReader(Protocol):
    """Reads one location type (``file``, ``url``). Implemented in ``providers``."""

    async def read(self, spec: LocationSpec, deps: Sequence[str]) -> ReadOutcome: ...

    def process(
        self, spec: LocationSpec, content: bytes, known: Mapping[str, str]
    ) -> AsyncIterator[list[ProcessedEntity | CatalogError | UnchangedDocument]]:
        """Entities of a location's content; documents fingerprinted in ``known`` come back unparsed."""
        ...

    def deps_read(self, spec: LocationSpec) -> tuple[str, ...]: ...

    async def dep_contents(self, deps: Sequence[str]) -> list[bytes]:
        """The current bytes of placeholder files (for the fingerprint)."""
        ...

    def resolve(self, parent: LocationSpec, target: LocationTarget) -> LocationSpec | CatalogError: ...


@dataclass(frozen=True, slots=True)
class IndexChange:
    """The change feed: what the search index must add or drop after a commit."""

    upserted: tuple[IndexEntry, ...] = ()
    removed: tuple[str, ...] = ()
    #: for each upserted entity whose relations changed: the relations it now emits
    relations: tuple[tuple[str, tuple[RelationRow, ...]], ...] = ()


@dataclass(slots=True)
class SyncProgress:
    locations_done: int = 0
    locations_seen: int = 0
    entities: int = 0
    current: str = ""


@dataclass(slots=True)
class _Totals:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    locations: int = 0
    errors: list[CatalogError] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)


def digest(content: bytes) -> str:
    return hashlib.sha1(content).hexdigest()


def fingerprint(content_digest: str, dep_contents: Sequence[bytes] = ()) -> str:
    """A location's fingerprint: its bytes' digest plus the bytes of the files its placeholders read."""
    h = hashlib.sha1(content_digest.encode())
    for dep in dep_contents:
        h.update(b"\0")
        h.update(dep)
    return h.hexdigest()


_RETIRED = "retired"  # a root no longer synced, forgotten once the sync that dropped it is done


@dataclass(slots=True)
class _Unfinished:
    """A location written in this sync whose removals wait for the end of the sync (the new
    catalog first, then the old entities go). Until then its fingerprint is not stored, so a
    sync killed in between reads it again and finds the same removals."""

    spec: LocationSpec
    fingerprint: str | None
    errors: list[CatalogError]
    gone: set[str] = field(default_factory=set)  # entities it no longer lists
    dropped: list[str] = field(default_factory=list)  # child locations it no longer lists
    status: str | None = None  # "missing" (an absent optional target); else from the errors
    errors_changed: bool = False


@dataclass(frozen=True, slots=True)
class _Claim:
    """An entity a location defines while another location, not read yet in this sync, holds it."""

    spec: LocationSpec
    claim: Claim
    chain: tuple[str, ...]


@dataclass(slots=True)
class _Run:
    """What one sync has learned so far; empty between syncs."""

    states: dict[str, dict[str, Any]] = field(default_factory=dict)  # the locations at the start
    stale: list[str] = field(default_factory=list)  # roots no longer synced
    visited: set[str] = field(default_factory=set)
    leaving: set[str] = field(default_factory=set)  # locations to be forgotten at the end
    kids: dict[str, list[str]] | None = None  # parent -> registered children, from ``states``
    unfinished: dict[str, _Unfinished] = field(default_factory=dict)
    claims: list[_Claim] = field(default_factory=list)


async def _apply(conn: Any, plan: BatchPlan) -> None:
    """Execute a batch plan: insert the new rows, update the changed ones in place (so an
    entity that moves never disappears), and write their relations."""
    await repo.upsert_entities(conn, plan.added, new=True)
    await repo.replace_relations(conn, [], plan.added_relations, fresh=True)
    await repo.upsert_entities(conn, plan.changed, new=False)
    await repo.replace_relations(conn, plan.replaced, plan.changed_relations)
    await repo.update_lines(conn, plan.line_moves)


def _retired_error(state: dict[str, Any]) -> CatalogError:
    return CatalogError(
        file=state["target"],
        location=state["key"],
        name="InterruptedSyncError",
        message=f"{state['target']} was being replaced by other catalog roots when a sync stopped before its "
        "end; what it still holds is kept and not synced. Run `callboard sync --catalog PATH` with the "
        "catalog you want to finish the change.",
    )


class SyncEngine:
    """Syncs a set of root locations into the database.

    A sync writes before it removes: every location's new and changed entities are written
    (one transaction per location) while the previous catalog is still there; what the new
    catalog no longer has (entities, child locations, roots) is deleted at the end. An entity
    that moves from one location to another is taken over in place (its row changes location),
    so it exists at every instant, and a sync killed at any point leaves each entity where the
    previous catalog had it or where the new one has it.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        readers: Mapping[str, LocationReader],
        *,
        on_change: Callable[[IndexChange], None] | None = None,
        on_progress: Callable[[SyncProgress], None] | None = None,
        feed_relations: bool = False,
    ) -> None:
        self._engine = engine
        self._readers = readers
        self._on_change = on_change
        self._on_progress = on_progress
        self._holders: dict[str, str] | None = None  # key -> location, loaded when first needed
        self._children: dict[str, list[dict[str, Any]]] | None = None  # parent key -> location rows
        self._feed_relations = feed_relations  # a resident relation graph follows the feed
        self._run = _Run()

    async def sync(
        self, roots: Sequence[LocationSpec] | None = None, *, keep_under: Sequence[str] = (),
        add: bool = False,
    ) -> SyncSummary:
        """Sync ``roots`` (and what they lead to). ``None`` re-syncs the registered roots.

        ``add``: ``roots`` join the registered roots (a location registered at run time, such
        as a scaffolded repository's ``catalog-info.yaml``); no other root is read or forgotten.

        Registered roots that are not in ``roots`` are forgotten with their entities, except
        those under a path in ``keep_under`` (a catalog path that could not be read this time:
        a failed source never empties the catalog). They are forgotten last, once the new
        roots are written; until then they are marked retired. A re-sync of the registered roots
        after a sync that stopped before its end neither reads nor forgets a retired root (the
        roots that replace it may not all be registered yet): it keeps what it still holds, and
        the summary says so, until a sync names the catalog again.
        """
        totals = _Totals()
        self._holders = None
        self._children = None
        async with self._engine.connect() as conn:
            states = await repo.location_states(conn)
        stale: list[str] = []  # registered roots no longer synced
        if roots is None:
            roots = [
                LocationSpec(type=s["type"], target=s["target"])
                for s in sorted(states.values(), key=lambda s: s["key"])
                if s["is_root"] and s["status"] != _RETIRED
            ]
            totals.errors.extend(
                _retired_error(s) for s in sorted(states.values(), key=lambda s: s["key"])
                if s["is_root"] and s["status"] == _RETIRED
            )
        elif not add:
            wanted = {r.key for r in roots}
            stale = sorted(
                k
                for k, s in states.items()
                if s["is_root"] and k not in wanted and not any(_under(s["target"], p) for p in keep_under)
            )
        self._run = _Run(states=states, stale=stale)
        for key in stale:
            self._leave(key)
        if stale:
            async with self._write_txn() as conn:
                await repo.retire_locations(conn, [k for k in stale if states[k]["status"] != _RETIRED])
        # Loading into an empty catalog: build the secondary indexes once at the end.
        async with self._engine.begin() as conn:
            bulk = await repo.is_empty(conn)
            if bulk:
                await repo.drop_bulk_indexes(conn)
            else:  # a load that was killed half-way left them out: put them back (no-op normally)
                await repo.create_bulk_indexes(conn)
        try:
            return await self._traverse(roots, totals)
        finally:
            self._run = _Run()
            if bulk:
                async with self._engine.begin() as conn:
                    await repo.create_bulk_indexes(conn)

    async def _traverse(self, roots: Sequence[LocationSpec], totals: _Totals) -> SyncSummary:
        run = self._run
        progress = SyncProgress(locations_seen=len(roots))
        queue: deque[tuple[LocationSpec, tuple[str, ...], bool]] = deque((r, (), True) for r in roots)
        visited = run.visited
        while queue:
            while queue:
                spec, chain, is_root = queue.popleft()
                if spec.key in visited:
                    continue
                visited.add(spec.key)
                progress.current = spec.target
                children = await self._sync_location(spec, is_root, run.states.get(spec.key), totals, chain)
                progress.locations_done += 1
                progress.entities = totals.added + totals.updated + totals.unchanged
                self._follow(spec, chain, children, queue, progress, totals)
                if self._on_progress:
                    self._on_progress(progress)
            # entities a location defines while another one, read later, held them: now it is
            # known whether that one still defines them
            for spec, chain, children in await self._resolve_claims(totals):
                self._follow(spec, chain, children, queue, progress, totals)
        await self._finish(totals)
        totals.locations = len(visited)
        return SyncSummary(
            added=totals.added,
            updated=totals.updated,
            removed=totals.removed,
            unchanged=totals.unchanged,
            locations=totals.locations,
            errors=tuple(totals.errors),
            unread=tuple(totals.unread),
        )

    def _follow(
        self,
        spec: LocationSpec,
        chain: tuple[str, ...],
        children: Sequence[tuple[LocationSpec, int | None]],
        queue: deque[tuple[LocationSpec, tuple[str, ...], bool]],
        progress: SyncProgress,
        totals: _Totals,
    ) -> None:
        """Queue the child locations ``spec`` lists; a cycle is reported instead of followed."""
        for child, line in children:
            if child.key in chain or child.key == spec.key:
                cycle = " -> ".join([*(c.split(":", 1)[1] for c in chain), spec.target, child.target])
                totals.errors.append(
                    CatalogError(
                        file=spec.target,
                        line=line,
                        message=f"Location cycle: {cycle}; the target is not followed again",
                        name="InputError",
                        location=spec.key,
                    )
                )
                continue
            if child.key not in self._run.visited:
                progress.locations_seen += 1
                queue.append((child, (*chain, spec.key), False))

    def _leave(self, key: str) -> None:
        """``key`` and the locations it registered will be forgotten at the end of this sync
        (unless read again through another parent): their entities may be taken over now."""
        run = self._run
        if run.kids is None:
            kids: dict[str, list[str]] = {}
            for row in run.states.values():
                if row.get("parent_key") and not row["is_root"]:
                    kids.setdefault(row["parent_key"], []).append(row["key"])
            run.kids = kids
        todo = [key]
        while todo:
            current = todo.pop()
            if current in run.leaving or current in run.visited:
                continue
            run.leaving.add(current)
            todo.extend(run.kids.get(current, ()))

    def _verdict(self, key: str, holder: str) -> Verdict:
        """Whether a location may take ``key`` over from ``holder``, which defines it today.

        Only when the holder no longer defines it: it was read in this sync without it, or it is
        being forgotten. A holder not read yet is asked again at the end (``WAIT``).
        """
        run = self._run
        if holder in run.visited:
            done = run.unfinished.get(holder)
            return TAKE if done is not None and key in done.gone else KEEP
        if holder in run.leaving or holder not in run.states:
            return TAKE
        return WAIT

    async def _other_parent(self, conn: Any, child_key: str, parent_key: str) -> str | None:
        """A location other than ``parent_key`` whose Location entities still list ``child_key``
        (those being forgotten, or dropped by their location in this sync, do not count)."""
        run = self._run
        for location_key, entity_key, data in await repo.location_entities(conn, except_location=parent_key):
            if location_key in run.leaving and location_key not in run.visited:
                continue
            done = run.unfinished.get(location_key)
            if done is not None and entity_key in done.gone:
                continue
            loc_type, _, target = location_key.partition(":")
            reader = self._readers.get(loc_type)
            if reader is None:
                continue
            try:
                spec_data = json.loads(data).get("spec") or {}
                targets = location_targets(spec_data)
            except (ValueError, RefParseError):
                continue
            here = LocationSpec(type=loc_type, target=target)
            for t in targets:
                resolved = reader.resolve(here, t)
                if isinstance(resolved, LocationSpec) and resolved.key == child_key:
                    return location_key
        return None

    def _forget(self, keys: Sequence[str]) -> None:
        if self._holders is not None:
            for key in keys:
                self._holders.pop(key, None)

    def _took(self, location: str, keys: Sequence[str], holders: Mapping[str, str]) -> None:
        """``location`` now holds ``keys``: their previous holders no longer remove them."""
        for key in keys:
            done = self._run.unfinished.get(holders[key])
            if done is not None:
                done.gone.discard(key)
            if self._holders is not None:
                self._holders[key] = location

    async def _robbed(self, conn: Any, keys: Sequence[str], holders: Mapping[str, str]) -> None:
        """Holders not read in this sync that lost entities to a takeover must be read again if
        they are read at all (then they are reported defining them twice), not skipped as unchanged."""
        run = self._run
        for holder in sorted({holders[k] for k in keys} - run.visited):
            state = run.states.get(holder)
            if state is not None and state["content_hash"] is not None:
                state["content_hash"] = None
                await repo.update_location_state(conn, holder, content_hash=None)

    def _emit(self, change: IndexChange) -> None:
        if self._on_change and (change.upserted or change.removed):
            self._on_change(change)

    async def _sync_location(
        self,
        spec: LocationSpec,
        is_root: bool,
        state: dict[str, Any] | None,
        totals: _Totals,
        chain: tuple[str, ...],
    ) -> list[tuple[LocationSpec, int | None]]:
        """Sync one location in one transaction; return the child locations to follow."""
        reader = self._readers.get(spec.type)
        if reader is None:
            err = CatalogError(
                file=spec.target,
                message=f'Unknown location type "{spec.type}"; Callboard reads: {", ".join(sorted(self._readers))}',
                location=spec.key,
            )
            totals.errors.append(err)
            totals.unread.append(err.file)
            await self._record_failure(spec, is_root, state, err)
            return []
        prev_deps: list[str] = json.loads(state["deps"]) if state and state.get("deps") else []
        outcome = await reader.read(spec, prev_deps)
        if outcome.error is not None:
            if outcome.missing and spec.presence == "optional":
                # an optional target that is absent: nothing from it (removed at the end, after
                # the new catalog is written), but it stays registered so that it is read again
                # when it appears
                async with self._write_txn() as conn:
                    held = list(await repo.entity_hashes(conn, spec.key))
                    await repo.replace_errors(conn, spec.key, [])
                    await repo.save_location(conn, {
                        "key": spec.key, "type": spec.type, "target": spec.target, "parent_key": spec.parent,
                        "origin_key": spec.origin, "status": "missing", "content_hash": None,
                        "entity_count": len(held), "last_error": None,
                    })
                if held:
                    self._run.unfinished[spec.key] = _Unfinished(
                        spec=spec, fingerprint=None, errors=[], gone=set(held), status="missing"
                    )
                return []
            if spec.parent:
                parent = spec.parent.split(":", 1)[-1]
                outcome.error = CatalogError(
                    file=outcome.error.file,
                    line=outcome.error.line,
                    entity=outcome.error.entity,
                    name=outcome.error.name,
                    location=outcome.error.location,
                    message=f"{outcome.error.message} (a target of the Location in {parent})",
                )
            totals.errors.append(outcome.error)
            totals.unread.append(outcome.error.file)
            await self._record_failure(spec, is_root, state, outcome.error)
            return await self._known_children(spec)
        if state and state["status"] == "ok" and state["content_hash"] == outcome.fingerprint:
            totals.unchanged += state["entity_count"]  # "ok": no errors recorded for it
            return await self._known_children(spec)
        assert outcome.content is not None
        return await self._write_location(spec, is_root, reader, outcome, totals, chain)

    @contextlib.asynccontextmanager
    async def _write_txn(self) -> AsyncIterator[Any]:
        """A write transaction; what it changes may move locations, so the snapshot of who is
        whose child is read again when next needed."""
        self._children = None
        async with self._engine.begin() as conn:
            yield conn

    async def _known_children(self, spec: LocationSpec) -> list[tuple[LocationSpec, int | None]]:
        """The registered children of an unchanged location. From one snapshot of the locations
        table (one query for a whole no-op sync instead of one per location)."""
        if self._children is None:
            async with self._engine.connect() as conn:
                states = await repo.location_states(conn)
            children: dict[str, list[dict[str, Any]]] = {}
            for row in states.values():
                if row.get("parent_key"):
                    children.setdefault(row["parent_key"], []).append(row)
            self._children = children
        rows = self._children.get(spec.key, [])
        return [
            (
                LocationSpec(type=r["type"], target=r["target"], parent=spec.key, origin=r["origin_key"]),
                None,
            )
            for r in rows
        ]

    async def _record_failure(
        self, spec: LocationSpec, is_root: bool, state: dict[str, Any] | None, err: CatalogError
    ) -> None:
        async with self._write_txn() as conn:
            await repo.save_location(
                conn,
                {
                    "key": spec.key,
                    "type": spec.type,
                    "target": spec.target,
                    "parent_key": spec.parent,
                    "origin_key": spec.origin,
                    "is_root": 1 if is_root else 0,
                    "status": "error",
                    "content_hash": None,
                    "deps": state.get("deps") if state else None,
                    "entity_count": state["entity_count"] if state else 0,
                    "last_error": _storable(err.message),
                },
            )
            await repo.replace_errors(conn, spec.key, [_error_row(err)])

    async def _write_location(
        self,
        spec: LocationSpec,
        is_root: bool,
        reader: LocationReader,
        outcome: ReadOutcome,
        totals: _Totals,
        chain: tuple[str, ...],
    ) -> list[tuple[LocationSpec, int | None]]:
        assert outcome.content is not None
        errors: list[CatalogError] = []
        content: bytes | None
        children: list[tuple[LocationSpec, int | None]] = []
        upserted: list[IndexEntry] = []
        emitted: list[tuple[str, tuple[RelationRow, ...]]] = []
        seen: set[str] = set()
        keep: set[str] = set()
        waiting: list[_Claim] = []
        waiting_children: set[str] = set()  # listed by an entity that waits: not dropped yet
        parse_failed = False
        unresolved = False
        added = updated = unchanged = 0
        origin = spec.origin or spec.key
        async with self._write_txn() as conn:
            existing = await repo.entity_states(conn, spec.key)
            held = set(existing)  # and the entities this read adds or takes over
            # documents whose text is unchanged are not parsed again (Locations always are:
            # their targets must be followed; placeholder readers too: their files may change)
            known = {
                state.source_hash: key
                for key, state in existing.items()
                if state.source_hash and not state.has_raw and not key.startswith("location:")
            }
            content, outcome.content = outcome.content, None
            stream = reader.process(spec, content, known)
            del content  # the reader frees the bytes as soon as it has decoded them
            async for batch in stream:
                # look up who holds the entities this location does not, then plan, then write
                foreign = [i.key for i in batch if isinstance(i, ProcessedEntity) and i.key not in held]
                if foreign and self._holders is None:
                    self._holders = await repo.key_locations(conn)
                known_holders = self._holders or {}
                holders = {
                    k: Holder(location=h, verdict=self._verdict(k, h))
                    for k in foreign
                    if (h := known_holders.get(k)) is not None and h != spec.key
                }
                taking = [k for k, h in holders.items() if h.verdict == TAKE]
                moving = await repo.entity_states_of(conn, taking) if taking else {}
                plan = plan_batch(
                    spec.key, batch, existing, seen=seen, holders=holders, moving=moving,
                    feed_relations=self._feed_relations,
                )
                del batch
                errors.extend(plan.errors)
                seen.update(plan.seen)
                keep.update(plan.keep)
                parse_failed = parse_failed or plan.parse_failed
                for item in plan.defined:
                    found, failed = self._targets(spec, origin, reader, item, errors)
                    children.extend(found)
                    unresolved = unresolved or failed  # then no child is dropped: it may be this one
                for claim in plan.waiting:
                    waiting.append(_Claim(spec=spec, claim=claim, chain=chain))
                    for t in claim.item.targets:
                        child = reader.resolve(spec, t)
                        if isinstance(child, LocationSpec):
                            waiting_children.add(child.key)
                added += plan.n_added
                updated += plan.n_updated
                unchanged += plan.n_unchanged
                await _apply(conn, plan)
                owners = {k: h.location for k, h in holders.items()}
                await self._robbed(conn, plan.taken, owners)
                upserted.extend(plan.index)
                emitted.extend(plan.emitted)
                held.update(plan.new_keys)
                if self._holders is not None:
                    self._holders.update((row.key, spec.key) for row in plan.added)
                self._took(spec.key, plan.taken, owners)
            # a read that could not parse everything never removes anything; what it no longer
            # lists is removed at the end of the sync, after the new catalog is written
            gone = set(plan_removals(held, seen, keep, parse_failed=parse_failed))
            # children this location no longer lists are forgotten with their entities (at the end)
            wanted_children = {c.key for c, _ in children} | waiting_children
            dropped: list[str] = []
            if not parse_failed and not unresolved:
                for old_child in await repo.child_locations(conn, spec.key):
                    if old_child["key"] not in wanted_children and not old_child["is_root"]:
                        # the same file may be listed by another Location: then it moves there
                        other = await self._other_parent(conn, old_child["key"], spec.key)
                        if other is not None:
                            await repo.reparent_location(conn, old_child["key"], other)
                            continue
                        dropped.append(old_child["key"])
                        self._leave(old_child["key"])
            # an existing child keeps its own sync state (and a root stays a root)
            await _save_children(conn, spec, children)
            deps = reader.deps_read(spec)
            fp = outcome.fingerprint if not deps else await _refingerprint(reader, spec, outcome, deps)
            later = bool(gone or dropped or waiting)
            if later:
                self._run.unfinished[spec.key] = _Unfinished(
                    spec=spec, fingerprint=fp, errors=errors, gone=gone, dropped=dropped
                )
                self._run.claims.extend(waiting)
            await repo.save_location(
                conn,
                {
                    "key": spec.key,
                    "type": spec.type,
                    "target": spec.target,
                    "parent_key": spec.parent,
                    "origin_key": spec.origin,
                    "is_root": 1 if is_root else 0,
                    "status": "ok" if not errors else "partial",
                    # stored when the removals are done: a sync killed before reads it again
                    "content_hash": None if later else fp,
                    "deps": json.dumps(list(deps)) if deps else None,
                    "entity_count": len(held),
                    "last_error": _storable(errors[0].message) if errors else None,
                },
            )
            await repo.replace_errors(conn, spec.key, [_error_row(e) for e in errors])
        totals.added += added
        totals.updated += updated
        totals.unchanged += unchanged
        totals.errors.extend(errors)
        if parse_failed and not seen and not keep:  # not one document of it could be parsed
            totals.unread.append(errors[0].file if errors else spec.target)
        self._emit(IndexChange(upserted=tuple(upserted), relations=tuple(emitted)))
        return children

    def _targets(
        self,
        spec: LocationSpec,
        origin: str,
        reader: LocationReader,
        item: ProcessedEntity,
        errors: list[CatalogError],
    ) -> tuple[list[tuple[LocationSpec, int | None]], bool]:
        """The child locations a Location entity lists, and whether a target could not be
        resolved (an error appended to ``errors``, naming the entity)."""
        out: list[tuple[LocationSpec, int | None]] = []
        failed = False
        for t in item.targets:
            child = reader.resolve(spec, t)
            if not isinstance(child, CatalogError) and not child.target.isprintable():
                child = CatalogError(file=item.file, location=spec.key, message=_unprintable_target(child.target))
            if isinstance(child, CatalogError):
                failed = True
                errors.append(
                    CatalogError(
                        file=item.file,
                        line=item.line,
                        entity=item.key,
                        location=spec.key,
                        name=child.name,
                        message=child.message,
                    )
                )
            else:
                out.append((_with_origin(child, spec.key, origin), item.line))
        return out, failed

    async def _resolve_claims(
        self, totals: _Totals
    ) -> list[tuple[LocationSpec, tuple[str, ...], list[tuple[LocationSpec, int | None]]]]:
        """Entities a location defined while a location read after it held them: taken over
        where that one no longer defines them (one transaction per location), reported as
        conflicts where it still does. Returns the child locations the taken entities list."""
        run = self._run
        claims, run.claims = run.claims, []
        by_location: dict[str, list[_Claim]] = {}
        for claim in claims:
            by_location.setdefault(claim.spec.key, []).append(claim)
        follow: list[tuple[LocationSpec, tuple[str, ...], list[tuple[LocationSpec, int | None]]]] = []
        for location, group in by_location.items():
            spec, chain = group[0].spec, group[0].chain
            done = run.unfinished[location]
            reader = self._readers[spec.type]
            origin = spec.origin or spec.key
            # read after this one and still defining it, or not read at all: the holder keeps it
            holders = {
                c.claim.item.key: Holder(
                    location=c.claim.holder,
                    verdict=TAKE if self._verdict(c.claim.item.key, c.claim.holder) == TAKE else KEEP,
                )
                for c in group
            }
            items = [c.claim.item for c in group]
            taking = [k for k, h in holders.items() if h.verdict == TAKE]
            if not taking:
                self._claim_errors(plan_batch(location, items, {}, holders=holders).errors, done, totals)
                continue
            children: list[tuple[LocationSpec, int | None]] = []
            async with self._write_txn() as conn:
                moving = await repo.entity_states_of(conn, taking)
                plan = plan_batch(
                    location, items, {}, holders=holders, moving=moving, feed_relations=self._feed_relations
                )
                self._claim_errors(plan.errors, done, totals)
                for item in plan.defined:
                    target_errors: list[CatalogError] = []
                    children.extend(self._targets(spec, origin, reader, item, target_errors)[0])
                    self._claim_errors(target_errors, done, totals)
                totals.added += plan.n_added
                totals.updated += plan.n_updated
                totals.unchanged += plan.n_unchanged
                await _apply(conn, plan)
                owners = {k: h.location for k, h in holders.items()}
                await self._robbed(conn, plan.taken, owners)
                await _save_children(conn, spec, children)
            if self._holders is not None:
                self._holders.update((row.key, location) for row in plan.added)
            self._took(location, plan.taken, owners)
            self._emit(IndexChange(upserted=plan.index, relations=plan.emitted))
            follow.append((spec, chain, children))
        return follow

    @staticmethod
    def _claim_errors(errors: Sequence[CatalogError], done: _Unfinished, totals: _Totals) -> None:
        """Record problems found while resolving the claims of the location ``done``."""
        if errors:
            done.errors.extend(errors)
            totals.errors.extend(errors)
            done.errors_changed = True

    async def _finish(self, totals: _Totals) -> None:
        """The removals, once the new catalog is written: what each location no longer lists
        (unless another location took it over), the child locations no Location lists any more,
        and the roots no longer synced. One transaction per location."""
        run = self._run
        for key, done in run.unfinished.items():
            removed: list[str] = []
            async with self._write_txn() as conn:
                removed.extend(await repo.delete_entities_of(conn, key, sorted(done.gone)))
                for child in done.dropped:
                    removed.extend(await repo.delete_location_tree(conn, child, keep=run.visited))
                status = done.status or ("ok" if not done.errors else "partial")
                await repo.update_location_state(
                    conn,
                    key,
                    status=status,
                    content_hash=done.fingerprint,
                    entity_count=await repo.entity_count(conn, key),
                    last_error=_storable(done.errors[0].message) if done.errors else None,
                )
                if done.errors_changed:
                    await repo.replace_errors(conn, key, [_error_row(e) for e in done.errors])
            self._removed(removed, totals)
        for key in run.stale:
            async with self._write_txn() as conn:
                removed = await repo.delete_location_tree(conn, key, keep=run.visited)
            self._removed(removed, totals)

    async def forget(self, keys: Sequence[str]) -> int:
        """Forget registered root locations, the locations they registered and their entities
        (the undo of ``sync(roots, add=True)``); returns how many entities went."""
        totals = _Totals()
        async with self._engine.connect() as conn:
            states = await repo.location_states(conn)
        self._run = _Run(states=states)
        try:
            for key in keys:
                if key not in states or not states[key]["is_root"]:
                    continue
                async with self._write_txn() as conn:
                    removed = await repo.delete_location_tree(conn, key)
                self._removed(removed, totals)
        finally:
            self._run = _Run()
        return totals.removed

    def _removed(self, keys: list[str], totals: _Totals) -> None:
        self._forget(keys)
        totals.removed += len(keys)
        self._emit(IndexChange(removed=tuple(keys)))


async def _save_children(conn: Any, parent: LocationSpec, children: Sequence[tuple[LocationSpec, Any]]) -> None:
    """Record ``parent``'s child locations (a child already known keeps its own sync state)."""
    for child, _line in children:
        await repo.save_location(
            conn,
            {"key": child.key, "type": child.type, "target": child.target, "parent_key": parent.key,
             "origin_key": child.origin},
            child=True,
        )


def _under(target: str, path: str) -> bool:
    return target == path or target.startswith(path.rstrip("/") + "/")


def _with_origin(child: LocationSpec, parent_key: str, origin: str) -> LocationSpec:
    return LocationSpec(
        type=child.type, target=child.target, parent=parent_key, origin=origin, presence=child.presence
    )


async def _refingerprint(
    reader: LocationReader, spec: LocationSpec, outcome: ReadOutcome, deps: Sequence[str]
) -> str | None:
    """The fingerprint of the bytes that were parsed (never re-read: the file may have changed
    since) and of the placeholder files they read."""
    if outcome.digest is None:
        return None
    return fingerprint(outcome.digest, await reader.dep_contents(deps))


def _unprintable_target(target: str) -> str:
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in target)
    return (f"Location target {shown} holds a control character (a NUL, a newline, an escape); refused. "
            "Write the target as a plain path or URL")


def _storable(text: str) -> str:
    """Text as the database can store it: PostgreSQL refuses a NUL in text, and catalog data can
    put one into a message (a target or placeholder it quotes); it is written as ``\\0``."""
    return text.replace("\0", "\\0")


def _error_row(err: CatalogError) -> dict[str, Any]:
    return {
        "file": _storable(err.file),
        "line": err.line,
        "entity": err.entity,
        "name": err.name,
        "message": _storable(err.message),
    }


def error_from_row(row: dict[str, Any]) -> CatalogError:
    return CatalogError(
        file=row["file"],
        line=row["line"],
        entity=row["entity"],
        name=row["name"],
        message=row["message"],
        location=row["location_key"],
    )
