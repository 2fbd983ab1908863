"""``TechDocs.has_site``: the one-stat check behind every answer's Docs and Runbook buttons."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import create_async_engine

from callboard.providers.techdocs.service import TechDocs


async def test_has_site_is_true_only_for_a_built_site_of_that_entity(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    try:
        docs = TechDocs(engine, tmp_path / "store")
        built = tmp_path / "store" / "sites" / "default" / "component" / "svc" / "search"
        built.mkdir(parents=True)
        (built / "search_index.json").write_text("{}")
        (tmp_path / "store" / "sites" / "default" / "component" / "half").mkdir()  # a site without its index
        assert docs.has_site("component:default/svc")
        assert docs.has_site("Component:Default/SVC")  # refs are case-insensitive
        assert docs.site_dir("component:default/svc") / "search" / "search_index.json" == built / "search_index.json"
        for key in ("component:default/half", "component:default/other", "group:default/svc", "component:svc",
                    "component:default/../svc", "component:default/svc/search", ":default/svc", ""):
            assert not docs.has_site(key), key
    finally:
        await engine.dispose()
