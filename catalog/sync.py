"""The sync engine: read every location, write the delta, report what happened.

Semantics (see README, "How sync works"):
- one transaction per location; only entities whose content hash changed are written;
- a location whose content (and the files its placeholders read) is unchanged is skipped
  without parsing;
- an entity that disappears from its location is removed; a location that fails to read
  keeps its previous entities and records the error; an entity that becomes invalid keeps
  its last good version;
- the same entity ref from two locations: the first keeps it, the conflict is reported;
- the same file reached twice counts once; a Location cycle is reported and not followed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from callboard.storage import repo

from .model import CatalogError, LocationTarget, ProcessedEntity, RefParseError, SyncSummary, UnchangedDocument
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

    upserted: tuple[tuple[str, str, str | None], ...] = ()
    removed: tuple[str, ...] = ()
    #: for each upserted entity whose relations changed: the relations it now emits
    relations: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = ()


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


def digest(content: bytes) -> str:
    return hashlib.sha1(content).hexdigest()


def fingerprint(content_digest: str, dep_contents: Sequence[bytes] = ()) -> str:
    """A location's fingerprint: its bytes' digest plus the bytes of the files its placeholders read."""
    h = hashlib.sha1(content_digest.encode())
    for dep in dep_contents:
        h.update(b"\0")
        h.update(dep)
    return h.hexdigest()


class SyncEngine:
    """Syncs a set of root locations into the database."""

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

    async def sync(
        self, roots: Sequence[LocationSpec] | None = None, *, keep_under: Sequence[str] = ()
    ) -> SyncSummary:
        """Sync ``roots`` (and what they lead to). ``None`` re-syncs the registered roots.

        Registered roots that are not in ``roots`` are forgotten with their entities, except
        those under a path in ``keep_under`` (a catalog path that could not be read this time:
        a failed source never empties the catalog).
        """
        totals = _Totals()
        self._holders = None
        self._children = None
        async with self._engine.connect() as conn:
            states = await repo.location_states(conn)
        if roots is None:
            roots = [
                LocationSpec(type=s["type"], target=s["target"])
                for s in sorted(states.values(), key=lambda s: s["key"])
                if s["is_root"]
            ]
        else:
            wanted = {r.key for r in roots}
            stale = [
                k
                for k, s in states.items()
                if s["is_root"] and k not in wanted and not any(_under(s["target"], p) for p in keep_under)
            ]
            for key in stale:
                async with self._write_txn() as conn:
                    removed = await repo.delete_location_tree(conn, key)
                totals.removed += len(removed)
                self._emit(IndexChange(removed=tuple(removed)))
            if stale:
                async with self._engine.connect() as conn:
                    states = await repo.location_states(conn)
        # Loading into an empty catalog: build the secondary indexes once at the end.
        async with self._engine.begin() as conn:
            bulk = await repo.is_empty(conn)
            if bulk:
                await repo.drop_bulk_indexes(conn)
            else:  # a load that was killed half-way left them out: put them back (no-op normally)
                await repo.create_bulk_indexes(conn)
        try:
            return await self._traverse(roots, states, totals)
        finally:
            if bulk:
                async with self._engine.begin() as conn:
                    await repo.create_bulk_indexes(conn)

    async def _traverse(
        self, roots: Sequence[LocationSpec], states: dict[str, dict[str, Any]], totals: _Totals
    ) -> SyncSummary:
        progress = SyncProgress(locations_seen=len(roots))
        queue: list[tuple[LocationSpec, tuple[str, ...], bool]] = [(r, (), True) for r in roots]
        visited: set[str] = set()
        while queue:
            spec, chain, is_root = queue.pop(0)
            if spec.key in visited:
                continue
            visited.add(spec.key)
            progress.current = spec.target
            children = await self._sync_location(spec, is_root, states.get(spec.key), totals, chain)
            progress.locations_done += 1
            progress.entities = totals.added + totals.updated + totals.unchanged
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
                if child.key not in visited:
                    progress.locations_seen += 1
                    queue.append((child, (*chain, spec.key), False))
            if self._on_progress:
                self._on_progress(progress)
        totals.locations = len(visited)
        return SyncSummary(
            added=totals.added,
            updated=totals.updated,
            removed=totals.removed,
            unchanged=totals.unchanged,
            locations=totals.locations,
            errors=tuple(totals.errors),
        )

    async def _other_parent(self, conn: Any, child_key: str, parent_key: str) -> str | None:
        """A location other than ``parent_key`` whose Location entities still list ``child_key``."""
        for location_key, data in await repo.location_entities(conn, except_location=parent_key):
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
            await self._record_failure(spec, is_root, state, err)
            return []
        prev_deps: list[str] = json.loads(state["deps"]) if state and state.get("deps") else []
        outcome = await reader.read(spec, prev_deps)
        if outcome.error is not None:
            if outcome.missing and spec.presence == "optional":
                # an optional target that is absent: nothing from it, but it stays registered
                # so that it is read again when it appears
                async with self._write_txn() as conn:
                    removed = list(await repo.entity_hashes(conn, spec.key))
                    await repo.delete_entities(conn, removed)
                    await repo.replace_errors(conn, spec.key, [])
                    await repo.save_location(conn, {
                        "key": spec.key, "type": spec.type, "target": spec.target, "parent_key": spec.parent,
                        "origin_key": spec.origin, "status": "missing", "content_hash": None, "entity_count": 0,
                        "last_error": None,
                    })
                self._forget(removed)
                totals.removed += len(removed)
                self._emit(IndexChange(removed=tuple(removed)))
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
            await self._record_failure(spec, is_root, state, outcome.error)
            return await self._known_children(spec)
        if state and state["status"] == "ok" and state["content_hash"] == outcome.fingerprint:
            totals.unchanged += state["entity_count"]  # "ok": no errors recorded for it
            return await self._known_children(spec)
        assert outcome.content is not None
        return await self._write_location(spec, is_root, reader, outcome, totals)

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
                    "last_error": err.message,
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
    ) -> list[tuple[LocationSpec, int | None]]:
        assert outcome.content is not None
        errors: list[CatalogError] = []
        content: bytes | None
        children: list[tuple[LocationSpec, int | None]] = []
        upserted: list[tuple[str, str, str | None]] = []
        emitted: list[tuple[str, tuple[tuple[str, str, str], ...]]] = []
        seen: set[str] = set()
        keep: set[str] = set()
        parse_failed = False
        unresolved = False
        added = updated = unchanged = 0
        origin = spec.origin or spec.key
        async with self._write_txn() as conn:
            existing = await repo.entity_states(conn, spec.key)
            # documents whose text is unchanged are not parsed again (Locations always are:
            # their targets must be followed; placeholder readers too: their files may change)
            known = {
                state[1]: key
                for key, state in existing.items()
                if state[1] and not state[3] and not key.startswith("location:")
            }
            line_moves: list[tuple[str, int]] = []
            content, outcome.content = outcome.content, None
            stream = reader.process(spec, content, known)
            del content  # the reader frees the bytes as soon as it has decoded them
            async for batch in stream:
                new_rows: list[repo.EntityRow] = []
                changed_rows: list[repo.EntityRow] = []
                new_rels: list[tuple[str, str, str]] = []
                changed_rels: list[tuple[str, str, str]] = []
                changed_keys: list[str] = []
                candidates: list[ProcessedEntity] = []
                for item in batch:
                    if isinstance(item, UnchangedDocument):
                        if item.key in seen:
                            continue
                        seen.add(item.key)
                        unchanged += 1
                        if existing[item.key][2] != item.line:
                            line_moves.append((item.key, item.line))
                        continue
                    if isinstance(item, CatalogError):
                        errors.append(item)
                        if item.entity:
                            keep.add(item.entity)
                        else:
                            parse_failed = True
                        continue
                    if item.key in seen:
                        errors.append(
                            CatalogError(
                                file=item.file,
                                line=item.line,
                                entity=item.key,
                                location=spec.key,
                                name="ConflictError",
                                message=f"{item.ref} is defined twice in this file; the first definition is kept",
                            )
                        )
                        continue
                    seen.add(item.key)
                    candidates.append(item)
                foreign = [c.key for c in candidates if c.key not in existing]
                if foreign and self._holders is None:
                    self._holders = await repo.key_locations(conn)
                holders = self._holders or {}
                owners = {k: holders[k] for k in foreign if k in holders and holders[k] != spec.key}
                for item in candidates:
                    key = item.key
                    old = existing.get(key)
                    old_hash = old[0] if old else None
                    if old_hash is None and key in owners:
                        seen.discard(key)
                        errors.append(
                            CatalogError(
                                file=item.file,
                                line=item.line,
                                entity=key,
                                location=spec.key,
                                name="ConflictError",
                                message=f"{item.ref} is already defined by {owners[key].split(':', 1)[-1]}; "
                                "that definition is kept and this one ignored",
                            )
                        )
                        continue
                    for t in item.targets:
                        child = reader.resolve(spec, t)
                        if isinstance(child, CatalogError):
                            unresolved = True  # then no child is dropped: it may be this one
                            errors.append(
                                CatalogError(
                                    file=item.file,
                                    line=item.line,
                                    entity=key,
                                    location=spec.key,
                                    name=child.name,
                                    message=child.message,
                                )
                            )
                        else:
                            children.append((_with_origin(child, spec.key, origin), item.line))
                    same = old_hash == item.hash
                    if same and old is not None and old[1] == item.source_hash and old[2] == item.line:
                        unchanged += 1
                        continue
                    row = (
                        key,
                        item.ref.kind,
                        item.ref.namespace,
                        item.ref.name,
                        item.title,
                        spec.key,
                        item.file,
                        item.line,
                        item.hash,
                        item.source_hash,
                        item.data_json,
                        item.raw_json,
                    )
                    rels = sorted(set(item.relations))
                    if same:
                        # same entity, new fingerprint or line (a comment or whitespace changed)
                        changed_rows.append(row)
                        unchanged += 1
                        continue
                    if self._feed_relations:
                        emitted.append((key, tuple(rels)))
                    if old_hash is None:
                        new_rows.append(row)
                        new_rels.extend(rels)
                        added += 1
                    else:
                        changed_rows.append(row)
                        changed_rels.extend(rels)
                        changed_keys.append(key)
                        updated += 1
                    upserted.append((key, item.ref.name, item.title))
                await repo.upsert_entities(conn, new_rows, new=True)
                await repo.replace_relations(conn, [], new_rels, fresh=True)
                await repo.upsert_entities(conn, changed_rows, new=False)
                await repo.replace_relations(conn, changed_keys, changed_rels)
                existing.update({r[0]: (r[8], r[9], r[7], r[11] is not None) for r in new_rows})
                if self._holders is not None:
                    self._holders.update((r[0], spec.key) for r in new_rows)
            await repo.update_lines(conn, line_moves)
            # a read that could not parse everything never removes anything
            gone = [] if parse_failed else [k for k in existing if k not in seen and k not in keep]
            await repo.delete_entities(conn, gone)
            if self._holders is not None:
                for key in gone:
                    self._holders.pop(key, None)
            # children this location no longer lists are forgotten with their entities
            wanted_children = {c.key for c, _ in children}
            removed_children: list[str] = []
            if not parse_failed and not unresolved:
                for old in await repo.child_locations(conn, spec.key):
                    if old["key"] not in wanted_children and not old["is_root"]:
                        # the same file may be listed by another Location: then it moves there
                        other = await self._other_parent(conn, old["key"], spec.key)
                        if other is not None:
                            await repo.reparent_location(conn, old["key"], other)
                            continue
                        removed_children.extend(await repo.delete_location_tree(conn, old["key"]))
                self._forget(removed_children)
            for child, _line in children:
                # an existing child keeps its own sync state (and a root stays a root)
                await repo.save_location(
                    conn,
                    {
                        "key": child.key,
                        "type": child.type,
                        "target": child.target,
                        "parent_key": spec.key,
                        "origin_key": child.origin,
                    },
                    child=True,
                )
            deps = reader.deps_read(spec)
            fp = outcome.fingerprint if not deps else await _refingerprint(reader, spec, outcome, deps)
            count = len(existing) - len(gone)
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
                    "content_hash": fp,
                    "deps": json.dumps(list(deps)) if deps else None,
                    "entity_count": count,
                    "last_error": errors[0].message if errors else None,
                },
            )
            await repo.replace_errors(conn, spec.key, [_error_row(e) for e in errors])
        totals.added += added
        totals.updated += updated
        totals.unchanged += unchanged
        totals.removed += len(gone) + len(removed_children)
        totals.errors.extend(errors)
        self._emit(
            IndexChange(
                upserted=tuple(upserted),
                removed=tuple(gone) + tuple(removed_children),
                relations=tuple(emitted),
            )
        )
        return children


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


def _error_row(err: CatalogError) -> dict[str, Any]:
    return {
        "file": err.file,
        "line": err.line,
        "entity": err.entity,
        "name": err.name,
        "message": err.message,
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
