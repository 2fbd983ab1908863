"""Point reads for answering questions: entity rows and relations by key, as fast as each
database allows.

SQLite: a read-only ``sqlite3`` connection used on the calling thread. A primary-key
lookup takes tens of microseconds, far less than a hop to aiosqlite's worker thread
and back, so it is cheaper to run it inline than to hand it off. WAL lets it read
while a sync writes.

PostgreSQL: a small asyncpg pool of its own, opened on first use. A read is one network
round trip with a prepared statement; going through SQLAlchemy's pool and result layer
costs more than the query itself for these one-row lookups.

Other databases (an in-memory SQLite in tests): the SQLAlchemy engine.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncEngine

from . import repo
from .engine import CONNECT_TIMEOUT
from .repo import _ENTITY_COLUMNS

if TYPE_CHECKING:
    import asyncpg

__all__ = ["EntityWithRelations", "PointReader", "Triple"]

_COLUMNS = ", ".join(_ENTITY_COLUMNS)
_KEY = _ENTITY_COLUMNS.index("key")
_CHUNK = 500
#: PostgreSQL: seconds one point read may take, and closing the pool, before they are given up.
_READ_LIMIT_S = 2.0
_CLOSE_LIMIT_S = 5.0

#: (source, type, target)
Triple = tuple[str, str, str]


class EntityWithRelations(NamedTuple):
    """An entity row (column name -> value) with the relations it emitted and those other
    entities emitted towards it."""

    row: dict[str, Any]
    own: list[Triple]
    incoming: list[Triple]


_PG_ENTITIES = f"SELECT {_COLUMNS} FROM entities WHERE key = ANY($1::text[])"
_PG_ENTITIES_WITH_RELATIONS = (
    f"SELECT {', '.join('e.' + c for c in _ENTITY_COLUMNS)}, "
    "ARRAY(SELECT ARRAY[r.source, r.type, r.target] FROM relations r WHERE r.source = e.key) AS own, "
    "ARRAY(SELECT ARRAY[r.source, r.type, r.target] FROM relations r WHERE r.target = e.key) AS incoming "
    "FROM entities e WHERE e.key = ANY($1::text[])"
)
_PG_RELATIONS = (
    "SELECT source, type, target FROM relations WHERE source = ANY($1::text[]) "
    "UNION ALL SELECT source, type, target FROM relations WHERE target = ANY($1::text[])"
)


@functools.lru_cache(maxsize=_CHUNK)
def _sqlite_entities(n: int) -> str:
    """The SQLite read of ``n`` entity rows by key (made once per ``n``: a point read is asked
    for on every question)."""
    return f"SELECT {_COLUMNS} FROM entities WHERE key IN ({', '.join('?' * n)})"


def _read_only_connection_class() -> type:
    import asyncpg

    class ReadOnlyConnection(asyncpg.Connection):
        """Nothing here changes session state, so returning a connection to the pool
        needs no ``RESET ALL; UNLISTEN *; ...`` round trip."""

        def get_reset_query(self) -> str:
            return ""

    return ReadOnlyConnection


class PointReader:
    def __init__(self, engine: AsyncEngine, *, pool_size: int = 4) -> None:
        self._engine = engine
        self._sqlite: sqlite3.Connection | None = None
        self._pg_dsn: str | None = None
        self._pg_pool: asyncpg.Pool | None = None
        self._pg_lock = asyncio.Lock()
        self._pool_size = pool_size
        url = engine.url
        backend = url.get_backend_name()
        if backend == "sqlite" and url.database and url.database != ":memory:":
            path = Path(url.database).expanduser().resolve()
            self._sqlite = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            self._sqlite.execute("PRAGMA query_only = ON")
        elif backend == "postgresql" and url.get_driver_name() == "asyncpg":
            if "ssl" in url.query and "sslmode" not in url.query:
                # SQLAlchemy hands asyncpg ``ssl=`` as an argument; in a DSN asyncpg reads ``sslmode=`` and
                # would send ``ssl`` to the server as a setting (which refuses it: no point read would work)
                url = url.update_query_dict({"sslmode": url.query["ssl"]}).difference_update_query(["ssl"])
            self._pg_dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None
        if self._pg_pool is not None:
            pool, self._pg_pool = self._pg_pool, None
            try:  # a database that does not answer (or is gone) must not hold up shutting down
                await asyncio.wait_for(pool.close(), _CLOSE_LIMIT_S)
            except (TimeoutError, OSError):
                pool.terminate()

    async def _pool(self) -> asyncpg.Pool:
        if self._pg_pool is None:
            async with self._pg_lock:
                if self._pg_pool is None:
                    import asyncpg

                    self._pg_pool = await asyncpg.create_pool(
                        self._pg_dsn,
                        min_size=1,
                        max_size=self._pool_size,
                        connection_class=_read_only_connection_class(),
                        # point reads take milliseconds: a connection that does not answer is given up
                        timeout=CONNECT_TIMEOUT,
                        command_timeout=_READ_LIMIT_S,
                    )
        return self._pg_pool

    async def entities(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Entity rows (column name -> value) by key; keys not in the catalog are absent."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        if self._sqlite is not None:
            out: dict[str, dict[str, Any]] = {}
            for i in range(0, len(keys), _CHUNK):
                chunk = keys[i : i + _CHUNK]
                for row in self._sqlite.execute(_sqlite_entities(len(chunk)), chunk):
                    out[row[_KEY]] = dict(zip(_ENTITY_COLUMNS, row))
            return out
        if self._pg_dsn is not None:
            pool = await self._pool()
            records = await pool.fetch(_PG_ENTITIES, keys)
            return {r["key"]: dict(r) for r in records}
        async with self._engine.connect() as conn:
            return await repo.get_entities(conn, keys)

    async def entities_with_relations(
        self, keys: Sequence[str]
    ) -> dict[str, EntityWithRelations]:
        """Entity rows with the relations they emitted and received: one round trip on PostgreSQL."""
        if self._pg_dsn is None:
            rows = await self.entities(keys)
            found = await self.relations(list(rows))
            return {k: EntityWithRelations(row, *found[k]) for k, row in rows.items()}
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        pool = await self._pool()
        out: dict[str, EntityWithRelations] = {}
        for r in await pool.fetch(_PG_ENTITIES_WITH_RELATIONS, keys):
            row = dict(r)
            own: list[Triple] = [(s, t, g) for s, t, g in row.pop("own")]
            incoming: list[Triple] = [(s, t, g) for s, t, g in row.pop("incoming")]
            out[row["key"]] = EntityWithRelations(row, own, incoming)
        return out

    async def relations(self, keys: Sequence[str]) -> dict[str, tuple[list[Triple], list[Triple]]]:
        """For each key: (relations it emitted, relations others emitted towards it), in one read."""
        keys = list(dict.fromkeys(keys))
        rows: set[Triple] = set()
        if not keys:
            return {}
        if self._sqlite is not None:
            for i in range(0, len(keys), _CHUNK):
                chunk = keys[i : i + _CHUNK]
                marks = ", ".join("?" for _ in chunk)
                rows.update(
                    self._sqlite.execute(
                        f"SELECT source, type, target FROM relations WHERE source IN ({marks}) "
                        f"UNION ALL SELECT source, type, target FROM relations WHERE target IN ({marks})",
                        chunk + chunk,
                    )
                )
        elif self._pg_dsn is not None:
            pool = await self._pool()
            rows.update(tuple(r) for r in await pool.fetch(_PG_RELATIONS, keys))
        else:
            async with self._engine.connect() as conn:
                for key in keys:
                    rows.update(await repo.relations_of(conn, key))
                    rows.update(await repo.relations_to(conn, key))
        out: dict[str, tuple[list[Triple], list[Triple]]] = {k: ([], []) for k in keys}
        for row in rows:
            source, _, target = row
            if source in out:
                out[source][0].append(row)
            if target in out:
                out[target][1].append(row)
        return out
