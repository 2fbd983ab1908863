"""An entity whose docs annotation points at a folder with nothing to build has no docs: not a
failure per entity, no row per entity, one count in the summary; its old site and state go."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from callboard.commands.api import Status
from callboard.storage.schema import docs_sites

from .test_techdocs import TEAM, component, open_app, write


async def test_nothing_to_build_is_no_docs_not_a_failure(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    write(root / "team.yaml", TEAM)
    for i in range(30):  # thirty components beside no docs at all
        component(root, f"bare-{i:02d}")
    documented = component(root, "documented", mkdocs="site_name: documented\nplugins:\n  - techdocs-core\n",
                           pages={"docs/index.md": "# Documented\n\nhello\n"})
    app = await open_app(tmp_path)
    try:
        await app.sync((str(root),))
        first = await app.sync_docs()
        assert (first.built, first.failed, first.nothing) == (1, 0, 30)
        assert first.errors == []
        async with app.engine.connect() as conn:
            assert (await conn.execute(select(func.count()).select_from(docs_sites))).scalar() == 1
        again = await app.sync_docs()  # a no-op: nothing written, nothing reported as failed
        assert (again.built, again.unchanged, again.failed, again.nothing) == (0, 1, 0, 30)
        reply = await app.ask("docs bare-07")
        assert reply.status is Status.NOT_FOUND and "nothing to build" in reply.summary

        # the documented one loses its docs: its site and state go, and it is "no docs" too
        for name in ("mkdocs.yml", "docs/index.md"):
            (documented / name).unlink()
        (documented / "docs").rmdir()
        gone = await app.sync_docs()
        assert (gone.built, gone.failed, gone.nothing) == (0, 0, 31)
        assert not app.docs.has_site("component:default/documented")
        async with app.engine.connect() as conn:
            assert (await conn.execute(select(func.count()).select_from(docs_sites))).scalar() == 0
    finally:
        await app.close()
