"""Database engines: SQLite (WAL) by default, PostgreSQL by URL; migrations at start.

Users write plain SQLAlchemy URLs (``sqlite:///path/cb.db``,
``postgresql://user@host/db``); Callboard picks the async driver itself.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

__all__ = ["SCHEMA_HEAD", "DatabaseURLError", "async_url", "create_engine", "migrate", "open_database"]

log = logging.getLogger(__name__)

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


class DatabaseURLError(ValueError):
    """A database URL Callboard cannot use (message says what to write instead)."""


def async_url(url: str) -> URL:
    """The async-driver form of a plain SQLAlchemy URL."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseURLError(
            f"Could not read the database URL {url!r}: write it like sqlite:///path/to/callboard.db "
            "or postgresql://user@host:5432/dbname"
        ) from exc
    backend, _, driver = parsed.drivername.partition("+")
    if backend not in _ASYNC_DRIVERS:
        raise DatabaseURLError(
            f"Unsupported database {backend!r} in {parsed.render_as_string(hide_password=True)}: "
            "Callboard supports sqlite:/// and postgresql:// URLs"
        )
    if driver in ("aiosqlite", "asyncpg"):
        return parsed
    return parsed.set(drivername=_ASYNC_DRIVERS[backend])


def create_engine(url: str) -> AsyncEngine:
    """An async engine for ``url``; SQLite files get WAL and their folder created."""
    target = async_url(url)
    if target.get_backend_name() == "sqlite":
        database = target.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(target, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA cache_size=-32768")  # 32 MiB: keeps a 100k load under the memory budget
            cur.close()

        return engine
    # No pre-ping (it costs a round trip per checkout, doubling point-read latency);
    # connections are recycled instead, and a failed query surfaces as an error reply.
    return create_async_engine(target, pool_recycle=300, pool_size=5, max_overflow=5)


def _alembic_config():  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    location = resources.files("callboard.storage.migrations")
    cfg.set_main_option("script_location", str(location))
    return cfg


#: The newest migration (``storage/migrations/versions``); a test keeps it in step.
SCHEMA_HEAD = "0003"


async def _current_revision(engine: AsyncEngine) -> str | None:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    try:
        async with engine.connect() as conn:
            return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    except DBAPIError:
        return None


async def migrate(engine: AsyncEngine) -> None:
    """Apply every pending Alembic migration (idempotent; serialised on PostgreSQL).

    A database already at the newest revision costs one query: Alembic is not even imported.
    """
    if await _current_revision(engine) == SCHEMA_HEAD:
        return
    from alembic import command

    cfg = _alembic_config()

    def upgrade(sync_conn) -> None:  # type: ignore[no-untyped-def]
        if sync_conn.dialect.name == "postgresql":
            sync_conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7419238)")
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, "head")

    async with engine.begin() as conn:
        await conn.run_sync(upgrade)


async def open_database(url: str) -> AsyncEngine:
    """Create the engine and bring the schema up to date."""
    engine = create_engine(url)
    try:
        await migrate(engine)
    except Exception:
        await engine.dispose()
        raise
    return engine
