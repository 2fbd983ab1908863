"""A database remembers what the syncs that filled it were given (never a credential), on SQLite
and PostgreSQL, and a run naming only that database works with it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from callboard.bot.app import Callboard, demo_catalog_path, plan_for
from callboard.bot.config import Settings
from callboard.commands.dispatch import CommandRegistry
from callboard.storage.engine import open_database
from callboard.storage.schema import sync_settings
from callboard.storage.sync_settings import ever_synced, load_sync_settings, save_sync_settings

_COMPONENT = ("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: widget\n"
              "spec:\n  type: service\n  lifecycle: production\n  owner: widget-team\n")


async def test_the_record_is_replaced_whole_and_read_back(database_url: str) -> None:
    engine = await open_database(database_url)
    try:
        async with engine.connect() as conn:
            assert await load_sync_settings(conn) == {} and not await ever_synced(conn)
        async with engine.begin() as conn:
            await save_sync_settings(conn, {"oncall": {"oncall_timeout": 3.0}, "catalog": {"given": ["/x"]}})
        async with engine.begin() as conn:
            await save_sync_settings(conn, {"oncall": {}})
        async with engine.connect() as conn:
            assert await load_sync_settings(conn) == {"oncall": {}}
            assert await ever_synced(conn)
    finally:
        await engine.dispose()


async def _open(url: str | None, tmp_path: Path, **settings: object) -> Callboard:
    return await Callboard.open(Settings(database_url=url, data_dir=str(tmp_path / "data"), **settings),  # type: ignore[arg-type]
                                CommandRegistry.from_entry_points())


async def test_a_run_naming_only_the_database_gets_the_syncs_oncall_settings(database_url: str, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "catalog-info.yaml").write_text(_COMPONENT)
    schedule = tmp_path / "rota.yaml"
    app = await _open(database_url, tmp_path, catalog=(str(catalog),), catalog_from_option=True,
                      oncall_schedule_file=str(schedule), pagerduty_api_url="https://api.eu.pagerduty.com",
                      pagerduty_token="pd-secret-token", oncall_timeout=3.0,
                      explicit=frozenset({"oncall_schedule_file", "pagerduty_api_url", "oncall_timeout"}))
    try:
        assert not app.synced_before
        assert not (await app.sync((str(catalog),))).errors
        async with app.engine.connect() as conn:
            stored = [row.value for row in await conn.execute(select(sync_settings.c.value))]
    finally:
        await app.close()
    assert stored and not any("pd-secret-token" in value for value in stored)

    alone = await _open(database_url, tmp_path)
    try:
        assert alone.synced_before
        s = alone.settings
        assert (s.oncall_schedule_file, s.pagerduty_api_url, s.oncall_timeout) == (
            str(schedule), "https://api.eu.pagerduty.com", 3.0)
        assert s.pagerduty_token is None  # credentials only ever from the environment
        assert await alone._database_roots() == [str(catalog.resolve())]
        # nothing named: the database's own catalog, not the demo
        assert (await alone.settle(plan_for(alone.settings, command="ask"))).catalog is None
    finally:
        await alone.close()

    # set explicitly, a setting wins over the record
    mine = await _open(database_url, tmp_path, oncall_timeout=9.0, explicit=frozenset({"oncall_timeout"}))
    try:
        assert mine.settings.oncall_timeout == 9.0 and mine.settings.oncall_schedule_file == str(schedule)
    finally:
        await mine.close()
    # a run naming another catalog works with its own settings only
    other = await _open(database_url, tmp_path, catalog=(str(tmp_path),), catalog_from_option=True)
    try:
        assert other.settings.oncall_schedule_file is None
        assert other.settings.pagerduty_api_url == "https://api.pagerduty.com"
    finally:
        await other.close()


async def test_the_demo_goes_only_into_a_database_never_synced(tmp_path: Path) -> None:
    app = await _open(None, tmp_path)  # the default database: nothing named
    try:
        plan = await app.settle(plan_for(app.settings, command="sync"))
        assert plan.first and plan.demo and plan.catalog == (str(demo_catalog_path()),)
        await app.sync(plan.catalog)
    finally:
        await app.close()
    again = await _open(None, tmp_path)
    try:
        plan = await again.settle(plan_for(again.settings, command="ask"))
        # the database holds the demo: it is refreshed, quietly
        assert plan.demo and not plan.first and plan.catalog == (str(demo_catalog_path()),)
    finally:
        await again.close()
