"""Shared fixtures: databases (SQLite always, PostgreSQL when CALLBOARD_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from callboard.bot.app import Callboard, demo_catalog_path
from callboard.bot.config import Settings
from callboard.commands.dispatch import CommandRegistry
from callboard.storage.engine import async_url

def _shared_reference() -> Path | None:
    """Backstage's reference data and the vendors' API descriptions: not in this repository (their
    licences differ); CI has them beside the checkout, ``CALLBOARD_REFERENCE_DIR`` points elsewhere."""
    configured = os.environ.get("CALLBOARD_REFERENCE_DIR")
    here = Path(__file__).resolve()
    candidates = [Path(configured)] if configured else [p / "shared" / "reference" for p in here.parents[1:3]]
    return next((c for c in candidates if (c / "backstage").is_dir()), None)


SHARED = _shared_reference()
REFERENCE = (SHARED or Path("shared/reference")) / "backstage"
NO_REFERENCE = ("needs Backstage's reference data: shared/reference beside the checkout (CI has it), "
                "or CALLBOARD_REFERENCE_DIR")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SHARED is None:
        for item in items:
            if item.get_closest_marker("reference"):
                item.add_marker(pytest.mark.skip(reason=NO_REFERENCE))

def _worker_database(url: str | None) -> str | None:
    """Under pytest-xdist each worker empties and fills a PostgreSQL database of its own:
    ``<database>_<worker>`` on the same server, made when missing."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    import asyncpg

    base = make_url(url)
    name = f"{base.database}_{worker}"

    async def create() -> None:
        conn = await asyncpg.connect(host=base.host, port=base.port, user=base.username, password=base.password,
                                     database=base.database)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return base.set(database=name).render_as_string(hide_password=False)


PG_URL = _worker_database(os.environ.get("CALLBOARD_TEST_DATABASE_URL"))


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"PostgreSQL tests: {'on (' + PG_URL + ')' if PG_URL else 'skipped: CALLBOARD_TEST_DATABASE_URL is not set'}",
        f"Reference data: {SHARED if SHARED else 'skipped: ' + NO_REFERENCE}",
    ]


async def reset_postgres(url: str) -> None:
    engine = create_async_engine(async_url(url))
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


def postgres_or_skip() -> str:
    """The PostgreSQL test database's URL; the test is skipped, saying why, when there is none."""
    if not PG_URL:
        pytest.skip("PostgreSQL test: set CALLBOARD_TEST_DATABASE_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    return PG_URL


async def fresh_postgres() -> str:
    """The PostgreSQL test database, emptied (skipped, saying why, when there is none)."""
    url = postgres_or_skip()
    await reset_postgres(url)
    return url


@pytest.fixture
async def postgres_url() -> str:
    return await fresh_postgres()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'callboard.db'}"
    return await fresh_postgres()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'callboard.db'}"


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., object]]:
    opened: list[Callboard] = []

    async def factory(url: str, *, resident: bool = False, **settings: object) -> Callboard:
        app = await Callboard.open(
            Settings(database_url=url, data_dir=str(tmp_path / "data"), **settings),  # type: ignore[arg-type]
            CommandRegistry.from_entry_points(),
            resident=resident,
        )
        opened.append(app)
        return app

    yield factory
    # apps are closed by the tests' own event loop (see app fixture); nothing left here


@pytest.fixture
async def demo_app(tmp_path: Path) -> AsyncIterator[Callboard]:
    app = await Callboard.open(
        Settings(database_url=f"sqlite:///{tmp_path / 'demo.db'}", data_dir=str(tmp_path / "data")),
        CommandRegistry.from_entry_points(),
        resident=True,
    )
    summary = await app.sync((str(demo_catalog_path()),))
    assert not summary.errors, summary.errors
    yield app
    await app.close()


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    """A writable copy of Backstage's example catalog."""
    dest = tmp_path / "examples"
    shutil.copytree(REFERENCE / "examples", dest)
    return dest
