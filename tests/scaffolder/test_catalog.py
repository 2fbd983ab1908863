"""Where templates come from (the catalog, the built-ins, a path), and the built-ins themselves:
each renders into a project whose catalog-info.yaml the catalog accepts, and the Python service's
own tests pass."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from callboard.bot.app import Callboard
from callboard.bot.config import Settings
from callboard.catalog.model import CatalogError
from callboard.catalog.process import process_text
from callboard.commands.dispatch import CommandRegistry
from callboard.scaffolder.actions.api import ActionDeps
from callboard.scaffolder.catalog import builtin_templates, find_template, list_templates, load_template_file
from callboard.scaffolder.engine import execute
from callboard.scaffolder.model import Runner, TemplateError

VALUES = {"name": "orders-api", "description": "Takes orders", "owner": "group:default/payments",
          "repoUrl": "github.com?owner=acme&repo=orders-api", "pythonVersion": "3.12",
          "sections": ["getting-started", "faq"]}


def test_the_builtins_load() -> None:
    listing = builtin_templates()
    assert listing.errors == ()
    assert {t.name for t in listing.templates} >= {"python-service", "docs-site"}
    for template in listing.templates:
        assert template.base_dir is not None and (template.base_dir / "skeleton").is_dir()
        assert template.description and template.tags and template.owner


@pytest.mark.parametrize("name", ["python-service", "docs-site"])
async def test_a_builtin_renders_a_project_the_catalog_accepts(name: str, tmp_path: Path) -> None:
    template = await find_template(name)
    result = await execute(template, VALUES, secrets={}, user=Runner(), workspace=tmp_path / "ws",
                           deps=ActionDeps(), dry_run=True)
    assert result.ok, result.error
    info = tmp_path / "ws" / "catalog-info.yaml"
    processed = process_text(info.read_text(), file=str(info), location=f"file:{info}")
    assert [p for p in processed if isinstance(p, CatalogError)] == []
    entity = yaml.safe_load(info.read_text())
    assert entity["metadata"]["name"] == "orders-api" and entity["spec"]["owner"] == "group:default/payments"
    assert entity["metadata"]["annotations"]["backstage.io/techdocs-ref"] == "dir:."
    mkdocs = yaml.safe_load((tmp_path / "ws" / "mkdocs.yml").read_text())
    assert mkdocs["plugins"] == ["techdocs-core"]
    for page in mkdocs["nav"]:
        assert (tmp_path / "ws" / "docs" / next(iter(page.values()))).is_file()
    assert not list((tmp_path / "ws").rglob("*.njk")) and not list((tmp_path / "ws").rglob("*{*"))


async def test_the_python_service_skeleton_passes_its_own_tests(tmp_path: Path) -> None:
    template = await find_template("template:default/python-service")
    result = await execute(template, VALUES, secrets={}, user=Runner(), workspace=tmp_path / "ws",
                           deps=ActionDeps(), dry_run=True)
    assert result.ok, result.error
    ws = tmp_path / "ws"
    assert {p.relative_to(ws).as_posix() for p in ws.rglob("*") if p.is_file()} >= {
        ".github/workflows/ci.yml", "Dockerfile", "pyproject.toml", "src/orders_api/app.py", "tests/test_app.py",
        "catalog-info.yaml", "mkdocs.yml", "docs/index.md", ".gitignore"}
    assert "${{ github.sha }}" in (ws / ".github/workflows/ci.yml").read_text()  # GitHub's own expressions kept
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=ws,
                         env={"PYTHONPATH": str(ws / "src"), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


async def test_find_template_by_path_name_and_ref(tmp_path: Path) -> None:
    builtin = (await find_template("docs-site")).base_dir
    assert builtin is not None
    copy = tmp_path / "mine"
    shutil.copytree(builtin, copy)
    assert (await find_template(str(copy))).name == "docs-site"
    assert (await find_template(str(copy / "template.yaml"))).base_dir == copy.resolve()
    with pytest.raises(TemplateError, match="no template named 'nope'.*docs-site"):
        await find_template("nope")
    with pytest.raises(TemplateError, match="no such template file"):
        await find_template(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Template\napiVersion: scaffolder.backstage.io/v1beta3\nmetadata: {name: x}\nspec: [\n")
    with pytest.raises(TemplateError, match="bad.yaml: not valid YAML"):
        load_template_file(bad)
    bad.write_text("kind: Component\n")
    with pytest.raises(TemplateError, match="no Template document"):
        load_template_file(bad)


async def test_catalog_templates_are_listed_and_override_builtins(tmp_path: Path) -> None:
    builtin = (await find_template("docs-site")).base_dir
    assert builtin is not None
    catalog_dir = tmp_path / "catalog"
    shutil.copytree(builtin, catalog_dir / "docs-site")
    doc = yaml.safe_load((catalog_dir / "docs-site" / "template.yaml").read_text())
    doc["metadata"]["title"] = "Our docs site"
    (catalog_dir / "docs-site" / "template.yaml").write_text(yaml.safe_dump(doc))
    (catalog_dir / "catalog-info.yaml").write_text(yaml.safe_dump({
        "apiVersion": "backstage.io/v1alpha1", "kind": "Location", "metadata": {"name": "templates"},
        "spec": {"targets": ["./docs-site/template.yaml"]}}))
    app = await Callboard.open(Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
                                        data_dir=str(tmp_path / "data")), CommandRegistry.from_entry_points())
    try:
        await app.sync((str(catalog_dir),))
        await app.catalog.load_index()
        listing = await list_templates(app.catalog)
        by_name = {t.name: t for t in listing.templates}
        assert by_name["docs-site"].title == "Our docs site"  # the catalog's, not the built-in
        assert by_name["docs-site"].base_dir == (catalog_dir / "docs-site").resolve()
        assert "python-service" in by_name
        assert listing.errors == ()
        template = await find_template("docs-site", app.catalog)
        result = await execute(template, VALUES, secrets={}, user=Runner(), workspace=tmp_path / "ws",
                               deps=ActionDeps(), dry_run=True)
        assert result.ok, result.error
    finally:
        await app.close()
