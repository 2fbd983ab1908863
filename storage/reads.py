"""Point reads for answering questions: entity rows by key, as fast as each database allows.

SQLite: a read-only ``sqlite3`` connection used on the calling thread. A primary-key
lookup takes tens of microseconds, far less than a hop to aiosqlite's worker thread
and back, so it is cheaper to run it inline than to hand it off. WAL lets it read
while a sync writes. PostgreSQL: the async engine (asyncpg is natively async).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from . import repo
from .repo import _ENTITY_COLUMNS

__all__ = ["PointReader"]

_COLUMNS = ", ".join(_ENTITY_COLUMNS)


class PointReader:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sqlite: sqlite3.Connection | None = None
        url = engine.url
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            path = Path(url.database).expanduser().resolve()
            self._sqlite = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            self._sqlite.execute("PRAGMA query_only = ON")

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None

    async def entities(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        if self._sqlite is None:
            async with self._engine.connect() as conn:
                if conn.dialect.name == "postgresql":
                    raw = await conn.get_raw_connection()
                    driver = raw.driver_connection
                    assert driver is not None
                    records = await driver.fetch(f"SELECT {_COLUMNS} FROM entities WHERE key = ANY($1::text[])", keys)
                    return {r["key"]: dict(r) for r in records}
                return await repo.get_entities(conn, keys)
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ", ".join("?" for _ in chunk)
            cursor = self._sqlite.execute(f"SELECT {_COLUMNS} FROM entities WHERE key IN ({marks})", chunk)
            for row in cursor:
                out[row[0]] = dict(zip(_ENTITY_COLUMNS, row))
        return out

    async def relations(self, key: str) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
        """(relations ``key`` emitted, relations others emitted towards it), each (source, type, target)."""
        out_sql = "SELECT source, type, target FROM relations WHERE source = {p}"
        in_sql = "SELECT source, type, target FROM relations WHERE target = {p}"
        if self._sqlite is not None:
            own = self._sqlite.execute(out_sql.format(p="?"), (key,)).fetchall()
            incoming = self._sqlite.execute(in_sql.format(p="?"), (key,)).fetchall()
            return own, incoming
        async with self._engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                raw = await conn.get_raw_connection()
                driver = raw.driver_connection
                assert driver is not None
                own_rows = await driver.fetch(out_sql.format(p="$1"), key)
                in_rows = await driver.fetch(in_sql.format(p="$1"), key)
                return [tuple(r) for r in own_rows], [tuple(r) for r in in_rows]  # type: ignore[misc]
            return await repo.relations_of(conn, key), await repo.relations_to(conn, key)
