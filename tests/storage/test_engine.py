"""Database URLs in SQLAlchemy's plain form; migrations at start; WAL for SQLite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from callboard.storage.engine import SCHEMA_HEAD, DatabaseURLError, async_url, open_database


def test_plain_urls_get_async_drivers() -> None:
    assert async_url("sqlite:///cb.db").drivername == "sqlite+aiosqlite"
    assert async_url("postgresql://u@h/db").drivername == "postgresql+asyncpg"
    assert async_url("postgres://u@h/db").drivername == "postgresql+asyncpg"
    assert async_url("postgresql+asyncpg://u@h/db").drivername == "postgresql+asyncpg"
    with pytest.raises(DatabaseURLError, match="Unsupported database"):
        async_url("mysql://u@h/db")
    with pytest.raises(DatabaseURLError, match="Could not read"):
        async_url("not a url")


async def test_migrations_are_idempotent(database_url: str) -> None:
    for _ in range(2):
        engine = await open_database(database_url)
        async with engine.connect() as conn:
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
            if engine.dialect.name == "sqlite":
                assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        await engine.dispose()
        assert version == SCHEMA_HEAD


async def test_chat_events_are_claimed_once(database_url: str) -> None:
    from callboard.storage import repo

    engine = await open_database(database_url)
    try:
        async with engine.begin() as conn:
            assert await repo.claim_event(conn, "Ev1") is True
        async with engine.begin() as conn:
            assert await repo.claim_event(conn, "Ev1") is False
            assert await repo.claim_event(conn, "Ev2") is True
    finally:
        await engine.dispose()


def test_schema_head_constant_matches_the_migrations() -> None:
    from alembic.script import ScriptDirectory

    from callboard.storage.engine import SCHEMA_HEAD, _alembic_config

    assert ScriptDirectory.from_config(_alembic_config()).get_current_head() == SCHEMA_HEAD


_OPEN_AND_SAY = """
import asyncio, sys
from callboard.storage.engine import open_database

async def main(url):
    engine = await open_database(url)
    await engine.dispose()

asyncio.run(main(sys.argv[1]))
print("opened")
"""


def test_processes_opening_one_new_sqlite_file_at_once_take_turns_migrating(tmp_path: Path) -> None:
    """``serve --workers`` (or replicas on one host) open a new database file together: each
    waits for the lock file instead of creating the same tables beside the other."""
    url = f"sqlite:///{tmp_path / 'new.db'}"
    procs = [subprocess.Popen([sys.executable, "-c", _OPEN_AND_SAY, url], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err for _, err in results]
    assert all(out.strip() == "opened" for out, _ in results)
    assert (tmp_path / "new.db.migrate-lock").exists()
