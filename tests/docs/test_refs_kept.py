"""The TechDocs pass keeps the list of entities with docs while the catalog is unchanged: a sync
where nothing changed does not read every entity's JSON again, and still sees every change (of
the catalog, and of the docs folders on disk)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from callboard.storage import repo

from .test_techdocs import TEAM, component, open_app, write

SHARED = """apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: {name}
  annotations:
    backstage.io/techdocs-ref: dir:.
spec:
  type: service
  lifecycle: production
  owner: team-a
"""


def _shared_file(folder: Path, names: list[str]) -> None:
    """One catalog file listing many components with ``dir:.`` (and no docs beside it)."""
    write(folder / "catalog-info.yaml", "---\n".join(SHARED.format(name=n) for n in names))


class _Counting:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self._real = repo.entities_with_docs
        monkeypatch.setattr(repo, "entities_with_docs", self)

    async def __call__(self, conn: Any) -> list[repo.DocsRefRow]:
        self.calls += 1
        return await self._real(conn)


async def test_an_unchanged_catalog_is_not_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "catalog"
    write(root / "team.yaml", TEAM)
    _shared_file(root / "many", [f"many-{i:02d}" for i in range(40)])
    lone = component(root, "lone")  # beside no docs, for now
    app = await open_app(tmp_path)
    counting = _Counting(monkeypatch)
    kept = Path(app.settings.effective_docs_store) / "refs.json"
    try:
        await app.sync((str(root),))
        first = await app.sync_docs()
        assert (first.built, first.failed, first.nothing, counting.calls) == (0, 0, 41, 1)
        assert kept.is_file()

        again = await app.sync_docs()  # the catalog is unchanged: the kept list is read
        assert (again.built, again.failed, again.nothing, counting.calls) == (0, 0, 41, 1)

        # docs appear beside a component while its catalog file stays as it was: found and built
        write(lone / "mkdocs.yml", "site_name: lone\nplugins:\n  - techdocs-core\n")
        write(lone / "docs" / "index.md", "# Lone\n\nThe lone service restarts itself at noon.\n")
        built = await app.sync_docs()
        assert (built.built, built.nothing, counting.calls) == (1, 40, 1)
        assert app.docs.has_site("component:default/lone")

        # the catalog changes (one more component, one reference changed): read again, once
        _shared_file(root / "many", [f"many-{i:02d}" for i in range(41)])
        component(root, "lone", ref="dir:./nowhere")
        await app.sync((str(root),))
        changed = await app.sync_docs()
        assert (changed.built, changed.nothing, changed.failed, counting.calls) == (0, 41, 1, 2)
        assert "component:default/lone" in dict(changed.errors)
        steady = await app.sync_docs()
        assert (steady.nothing, steady.failed, counting.calls) == (41, 1, 2)
    finally:
        await app.close()


@pytest.mark.parametrize("content", [b"", b"{not json", b'{"format": 1, "catalog": 7, "groups": 3}', b"[]"])
async def test_a_damaged_kept_list_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 content: bytes) -> None:
    root = tmp_path / "catalog"
    write(root / "team.yaml", TEAM)
    _shared_file(root / "many", ["alpha", "beta", "gamma"])
    app = await open_app(tmp_path)
    counting = _Counting(monkeypatch)
    kept = Path(app.settings.effective_docs_store) / "refs.json"
    try:
        await app.sync((str(root),))
        assert (await app.sync_docs()).nothing == 3
        kept.write_bytes(content)
        assert (await app.sync_docs()).nothing == 3  # read from the catalog again, and kept again
        assert counting.calls == 2
        assert (await app.sync_docs()).nothing == 3
        assert counting.calls == 2
    finally:
        await app.close()
