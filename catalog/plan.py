"""Planning a location's delta: what the sync writes, decided before anything is written.

A pure step between reading and writing. ``plan_batch`` takes what is stored (the state of
every entity the location holds, and who holds the entities it does not) and what was read
(a batch of processed entities, errors and unchanged documents) and returns a ``BatchPlan``:
the rows to insert and to update, the relations to write, what counts as added, updated and
unchanged, and what waits or conflicts. ``plan_removals`` decides, once a location's whole
content was read, which of its entities are gone. The sync engine (``catalog.sync``) only
looks the inputs up and executes the plans; nothing here does I/O.

The rules (see ``catalog.sync`` for the whole sync):

- an entity whose content hash, source text hash and line are what is stored is unchanged and
  not written; one whose content is the same but whose text, line or location changed is
  updated in place without touching its relations;
- the same ref twice in one location: the first definition is kept, the second reported;
- the same ref in another location (its *holder*): the holder keeps it (``keep``, reported as a
  conflict), unless it no longer defines it (``take``: the row moves here, in place, so the
  entity never disappears); a holder not read yet in this sync is asked again later (``wait``);
- a read that could not parse everything removes nothing; an entity that became invalid keeps
  its last good version.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from callboard.storage.repo import EntityRow, EntityState

from .model import CatalogError, ProcessedEntity, UnchangedDocument

__all__ = [
    "BatchPlan",
    "Claim",
    "Holder",
    "IndexEntry",
    "KEEP",
    "RelationRow",
    "TAKE",
    "Verdict",
    "WAIT",
    "conflict",
    "plan_batch",
    "plan_removals",
]

#: (source, type, target): a relation as an entity emits it and storage writes it
RelationRow = tuple[str, str, str]

#: (key, name, title): an entity as the search index takes it from the change feed. A plain
#: triple, unpacked by name where it is read (``SearchIndex.update``): the feed of a location
#: holds every entity it changed until its transaction commits, and the garbage collector
#: stops scanning plain tuples of strings, never named ones (100k of them cost a cold sync a
#: tenth of a second of collections).
IndexEntry = tuple[str, str, str | None]

#: A named row built from a tuple of its fields in field order: a cold sync builds one per
#: entity, and ``tuple.__new__`` costs a third of the named constructor.
_entity_row: Callable[[tuple[Any, ...]], EntityRow] = partial(tuple.__new__, EntityRow)

Verdict = Literal["take", "keep", "wait"]
TAKE: Verdict = "take"  # the holder no longer defines the entity: this location takes it over
KEEP: Verdict = "keep"  # the holder still defines it: it keeps it, this definition is reported
WAIT: Verdict = "wait"  # the holder is not read yet in this sync: decided at the end


@dataclass(frozen=True, slots=True)
class Holder:
    """Another location that holds an entity, and whether this one may take it over."""

    location: str
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class Claim:
    """An entity a location defines while a location not read yet in this sync holds it."""

    item: ProcessedEntity
    holder: str


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """What one batch of a location's entities writes; ``catalog.sync`` executes it."""

    #: rows of entities new to the catalog (inserted)
    added: tuple[EntityRow, ...] = ()
    #: rows updated in place: new content, or the same content with a new text, line or location
    changed: tuple[EntityRow, ...] = ()
    #: relations of the added entities
    added_relations: tuple[RelationRow, ...] = ()
    #: entities whose relations are replaced (their content changed), and their new relations
    replaced: tuple[str, ...] = ()
    changed_relations: tuple[RelationRow, ...] = ()
    #: (key, line) of unchanged documents that moved within the file
    line_moves: tuple[tuple[str, int], ...] = ()
    #: keys taken over from another location (the holder must no longer remove them)
    taken: tuple[str, ...] = ()
    #: the change feed: entities whose content changed, and (when asked) their relations
    index: tuple[IndexEntry, ...] = ()
    emitted: tuple[tuple[str, tuple[RelationRow, ...]], ...] = ()
    #: the entities this location did not hold before (added, or taken over)
    new_keys: tuple[str, ...] = ()
    #: the entities this location now defines (their Location targets are followed)
    defined: tuple[ProcessedEntity, ...] = ()
    #: entities held by a location not read yet: decided at the end of the sync
    waiting: tuple[Claim, ...] = ()
    #: problems: what the read reported, duplicates within the location, conflicts
    errors: tuple[CatalogError, ...] = ()
    #: keys this batch defines (a later batch defining one again is a duplicate)
    seen: frozenset[str] = frozenset()
    #: entities that became invalid: their last good version stays
    keep: frozenset[str] = frozenset()
    #: something could not be parsed at all: the location must not remove anything
    parse_failed: bool = False
    n_added: int = 0
    n_updated: int = 0
    n_unchanged: int = 0


def conflict(location: str, item: ProcessedEntity, holder: str) -> CatalogError:
    return CatalogError(
        file=item.file,
        line=item.line,
        entity=item.key,
        location=location,
        name="ConflictError",
        message=f"{item.ref} is already defined by {holder.split(':', 1)[-1]}; "
        "that definition is kept and this one ignored",
    )


def _duplicate(location: str, item: ProcessedEntity) -> CatalogError:
    return CatalogError(
        file=item.file,
        line=item.line,
        entity=item.key,
        location=location,
        name="ConflictError",
        message=f"{item.ref} is defined twice in this file; the first definition is kept",
    )


def plan_batch(
    location: str,
    items: Iterable[ProcessedEntity | CatalogError | UnchangedDocument],
    stored: Mapping[str, EntityState],
    *,
    seen: Container[str] = frozenset(),
    holders: Mapping[str, Holder] | None = None,
    moving: Mapping[str, EntityState] | None = None,
    feed_relations: bool = False,
) -> BatchPlan:
    """Plan the writes of one batch read from ``location``.

    ``stored``: the state of the entities ``location`` holds (including those earlier batches
    of this read added); ``seen``: the keys earlier batches defined; ``holders``: for keys
    ``location`` does not hold, the other location holding each and the verdict on it;
    ``moving``: the stored state of the entities with a ``take`` verdict.
    """
    holders = holders or {}
    moving = moving or {}
    errors: list[CatalogError] = []
    batch_seen: set[str] = set()
    keep: set[str] = set()
    parse_failed = False
    unchanged = 0
    line_moves: list[tuple[str, int]] = []
    candidates: list[ProcessedEntity] = []
    for item in items:
        if isinstance(item, UnchangedDocument):
            if item.key in batch_seen or item.key in seen:
                continue
            batch_seen.add(item.key)
            unchanged += 1
            state = stored.get(item.key)
            if state is not None and state.line != item.line:
                line_moves.append((item.key, item.line))
            continue
        if isinstance(item, CatalogError):
            errors.append(item)
            if item.entity:
                keep.add(item.entity)
            else:
                parse_failed = True
            continue
        if item.key in batch_seen or item.key in seen:
            errors.append(_duplicate(location, item))
            continue
        batch_seen.add(item.key)
        candidates.append(item)

    added: list[EntityRow] = []
    changed: list[EntityRow] = []
    added_relations: list[RelationRow] = []
    changed_relations: list[RelationRow] = []
    replaced: list[str] = []
    taken: list[str] = []
    index: list[IndexEntry] = []
    emitted: list[tuple[str, tuple[RelationRow, ...]]] = []
    new_keys: list[str] = []
    defined: list[ProcessedEntity] = []
    waiting: list[Claim] = []
    n_added = n_updated = 0
    for item in candidates:
        key = item.key
        old = stored.get(key)
        moved = False
        if old is None and key in holders:
            holder = holders[key]
            if holder.verdict == KEEP:
                batch_seen.discard(key)
                errors.append(conflict(location, item, holder.location))
                continue
            if holder.verdict == WAIT:
                waiting.append(Claim(item=item, holder=holder.location))
                continue
            old = moving.get(key)
            moved = old is not None
        defined.append(item)
        same = old is not None and old.hash == item.hash
        if same and not moved and old is not None and old.source_hash == item.source_hash and old.line == item.line:
            unchanged += 1
            continue
        ref = item.ref
        row = _entity_row((
            key, ref.kind, ref.namespace, ref.name, item.title, location, item.file, item.line,
            item.hash, item.source_hash, item.data_json, item.raw_json,
        ))
        if moved or old is None:
            new_keys.append(key)
        if moved:
            taken.append(key)
        if same:
            # the same entity with a new fingerprint, line or location (a comment changed, it moved)
            changed.append(row)
            unchanged += 1
            continue
        rels = sorted(set(item.relations))
        if feed_relations:
            emitted.append((key, tuple(rels)))
        index.append((key, ref.name, item.title))
        if old is None:
            added.append(row)
            added_relations.extend(rels)
            n_added += 1
        else:
            changed.append(row)
            changed_relations.extend(rels)
            replaced.append(key)
            n_updated += 1
    return BatchPlan(
        added=tuple(added),
        changed=tuple(changed),
        added_relations=tuple(added_relations),
        replaced=tuple(replaced),
        changed_relations=tuple(changed_relations),
        line_moves=tuple(line_moves),
        taken=tuple(taken),
        index=tuple(index),
        emitted=tuple(emitted),
        new_keys=tuple(new_keys),
        defined=tuple(defined),
        waiting=tuple(waiting),
        errors=tuple(errors),
        seen=frozenset(batch_seen),
        keep=frozenset(keep),
        parse_failed=parse_failed,
        n_added=n_added,
        n_updated=n_updated,
        n_unchanged=unchanged,
    )


def plan_removals(
    stored: Iterable[str], seen: Container[str], keep: Container[str], *, parse_failed: bool
) -> frozenset[str]:
    """The entities a location no longer defines, once its whole content was read: held
    (``stored``) but neither read again (``seen``) nor kept in their last good version
    (``keep``). A read that could not parse everything removes nothing."""
    if parse_failed:
        return frozenset()
    return frozenset(k for k in stored if k not in seen and k not in keep)
