"""Database URLs in SQLAlchemy's plain form; migrations at start; WAL for SQLite."""

from __future__ import annotations

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
