"""The catalog as commands see it: entities with all their relations, and search.

Reads go to storage (one indexed query per lookup); the fuzzy index lives in
memory and follows the sync's change feed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from callboard.storage import repo
from callboard.storage.reads import PointReader, Triple
from callboard.storage.repo import IndexRow

from .model import CatalogError, Entity, EntityRef, Relation
from .graph import RelationGraph
from .search import SearchIndex, SearchResult
from .sync import IndexChange, error_from_row

__all__ = ["Catalog"]


def _ordered(relations: Iterable[Relation]) -> tuple[Relation, ...]:
    """Relations as ``Entity.relations`` holds them: each once, by (type, target)
    (what ``RelationGraph.stitched`` hands out already made)."""
    return tuple(sorted(set(relations), key=lambda r: (r.type, r.target)))


def _entity(row: dict[str, Any], relations: tuple[Relation, ...]) -> Entity:
    """``relations`` as ``_ordered`` makes them."""
    return Entity(
        ref=EntityRef(row["kind"], row["namespace"], row["name"]),
        data=json.loads(row["data"]),
        relations=relations,
        location=row["location_key"],
        file=row["file"],
        line=row["line"],
    )


def _stitched(own: Sequence[Triple], incoming: Sequence[Triple]) -> tuple[Relation, ...]:
    """An entity's relations: those it emitted plus the inverse of those emitted towards it."""
    return _ordered([Relation(*r) for r in own] + [Relation(*r).inverse() for r in incoming])


def _build(
    rows: Sequence[IndexRow], relation_rows: Sequence[Triple] | None
) -> tuple[SearchIndex, RelationGraph | None]:
    index = SearchIndex()
    if relation_rows is None:
        # a one-shot command: pickers are a server's, so the word-prefix index's one sort (~0.25 s at
        # 100k) waits for the first completion asked for, if one ever is
        for key, name, title in rows:
            index.add(key, name, title)
        return index, None
    index.update(rows, ())  # a server's: the word-prefix index sorted once, here in the thread
    graph = RelationGraph()
    graph.load(relation_rows)
    return index, graph


class Catalog:
    """Read access to the synced catalog plus the in-memory search index."""

    def __init__(self, engine: AsyncEngine, index: SearchIndex | None = None) -> None:
        self.engine = engine
        self.index = index or SearchIndex()
        self.graph: RelationGraph | None = None
        self.following = True  # False in sync-only processes: no index to keep current
        self._reader = PointReader(engine)

    async def load_index(self, *, graph: bool = False) -> int:
        """Build the search index (and, for long-running processes, the relation graph) from storage."""
        async with self.engine.connect() as conn:
            rows = await repo.index_rows(conn)
            relation_rows = await repo.all_relations(conn) if graph else None
        # hundreds of milliseconds at 100k entities: built in a thread, so a server that reloads
        # its index keeps answering meanwhile
        index, relation_graph = await asyncio.to_thread(_build, rows, relation_rows)
        self.index = index
        if relation_graph is not None:
            self.graph = relation_graph
        return len(index)

    async def close(self) -> None:
        await self._reader.close()

    def apply(self, change: IndexChange) -> None:
        """Change-feed hook for the sync engine."""
        if not self.following:
            return
        self.index.update(change.upserted, change.removed)
        if self.graph is not None:
            for key in change.removed:
                self.graph.drop(key)
            for key, rels in change.relations:
                self.graph.replace(key, rels)

    def search(self, query: str, *, kinds: Iterable[str] | None = None, limit: int = 8) -> SearchResult:
        return self.index.search(query, kinds=kinds, limit=limit)

    def complete(self, query: str, *, kinds: Iterable[str] | None = None, limit: int = 20) -> SearchResult:
        """A picker's options while ``query`` is typed (``SearchIndex.complete``)."""
        return self.index.complete(query, kinds=kinds, limit=limit)

    async def get(self, key: str) -> Entity | None:
        """One entity with its stitched relations (its own plus the inverse of others')."""
        if self.graph is not None:
            row = (await self._reader.entities([key])).get(key)
            return None if row is None else _entity(row, self.graph.stitched(key))
        found = (await self._reader.entities_with_relations([key])).get(key)
        return None if found is None else _entity(found.row, _stitched(found.own, found.incoming))

    async def get_with(self, key: str, rel_type: str) -> tuple[Entity | None, dict[str, Entity]]:
        """An entity and the targets of its ``rel_type`` relations, each with its relations.

        With the resident graph the targets are known before any I/O, so it is one read.
        """
        if self.graph is None:
            entity = await self.get(key)
            if entity is None:
                return None, {}
            return entity, await self.get_many(entity.related(rel_type), relations=True)
        related = self.graph.related(key, rel_type)
        rows = await self._reader.entities([key, *related])
        row = rows.pop(key, None)
        if row is None:
            return None, {}
        stitched = self.graph.stitched
        return _entity(row, stitched(key)), {k: _entity(r, stitched(k)) for k, r in rows.items()}

    async def get_many(self, keys: Iterable[str], *, relations: bool = False) -> dict[str, Entity]:
        """Entities by key in one read; with ``relations``, each with its relations too
        (free with the resident graph, one more read for all of them without it)."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        if relations and self.graph is None:
            found = await self._reader.entities_with_relations(keys)
            return {k: _entity(row, _stitched(own, incoming)) for k, (row, own, incoming) in found.items()}
        rows = await self._reader.entities(keys)
        if not relations:
            return {k: _entity(r, ()) for k, r in rows.items()}
        assert self.graph is not None
        stitched = self.graph.stitched
        return {k: _entity(r, stitched(k)) for k, r in rows.items()}

    async def errors(self, entity: str | None = None) -> list[CatalogError]:
        async with self.engine.connect() as conn:
            rows = await repo.all_errors(conn, entity)
        return [error_from_row(r) for r in rows]

    async def user_by_email(self, email: str) -> str | None:
        """The key of the catalog User with this profile email, if any."""
        async with self.engine.connect() as conn:
            return await repo.user_key_by_email(conn, email)

    async def tags(self, *, kinds: Sequence[str] = (), contains: str = "", limit: int = 50) -> list[tuple[str, int]]:
        """The tags in use as (tag, entities carrying it), most used first (``storage.repo.tag_counts``)."""
        async with self.engine.connect() as conn:
            return await repo.tag_counts(conn, kinds=kinds, contains=contains, limit=limit)

    async def counts(self) -> dict[str, int]:
        async with self.engine.connect() as conn:
            return await repo.counts(conn)

