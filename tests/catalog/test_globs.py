"""Location targets that are glob patterns, expanded as Backstage's FileReaderProcessor expands
them (backstage/backstage ``plugins/catalog-backend/src/modules/core/FileReaderProcessor.ts``:
``glob(location.target)``, each match parsed as its own ``file`` location; nothing matched is
``notFoundError("file <target> does not exist")`` unless the target is optional), and never
outside the catalog root."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from callboard.catalog.globs import expand_braces, has_magic, parse_pattern, segment_matches
from callboard.catalog.model import CatalogError, LocationTarget
from callboard.catalog.sync import LocationSpec
from callboard.providers.files import FileSource, discover, expand_glob
from callboard.providers.http import Fetcher
from callboard.providers.url import UrlSource

from ..conftest import REFERENCE
from .test_bad_input import GOOD, TEAM

ANN = "backstage.io/managed-by-location"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _location(name: str, *targets: str, presence: str | None = None) -> str:
    lines = "\n".join(f"    - '{t}'" for t in targets)
    extra = f"  presence: {presence}\n" if presence else ""
    return f"apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: {name}\nspec:\n{extra}  targets:\n{lines}\n"


# --- the pattern language (node-glob / minimatch defaults) -------------------------------------


@pytest.mark.parametrize(
    ("pattern", "magic"),
    [("./services/*/catalog-info.yaml", True), ("./**/x.yaml", True), ("a?.yaml", True), ("[ab].yaml", True),
     ("{a,b}.yaml", True), ("{1..3}.yaml", True), ("./plain/catalog-info.yaml", False), ("{a}.yaml", False),
     ("a[.yaml", False), ("a\\*.yaml", False)],
)
def test_has_magic(pattern: str, magic: bool) -> None:
    assert has_magic(pattern) is magic


def test_braces_expand_first() -> None:
    assert expand_braces("a/{b,c}/catalog-info.{yaml,yml}") == [
        "a/b/catalog-info.yaml", "a/c/catalog-info.yaml", "a/b/catalog-info.yml", "a/c/catalog-info.yml"]
    assert expand_braces("x{1..3}") == ["x1", "x2", "x3"]
    assert expand_braces("{a,{b,c}}") == ["a", "b", "c"]
    assert expand_braces("{a}") == ["{a}"]
    with pytest.raises(ValueError, match="more than"):
        expand_braces("{1..100000}")


def test_segments_match_as_minimatch() -> None:
    assert segment_matches("*", "svc") and not segment_matches("*", ".hidden")
    assert segment_matches(".*", ".hidden") and not segment_matches("*", "..")
    assert segment_matches("catalog-info.y?ml", "catalog-info.yaml")
    assert segment_matches("[!a]*", "b1") and not segment_matches("[!a]*", "a1")
    assert segment_matches("[^a]*", "b1") and segment_matches("[a-c]x", "bx")
    assert not segment_matches("*.yaml", "x.yml")
    assert parse_pattern("./services/*/catalog-info.yaml").prefix == "services"
    assert parse_pattern("/abs/**/x").segments == ("**", "x")


# --- expansion on disk --------------------------------------------------------------------------


def test_expansion_is_sorted_skips_dot_folders_and_keeps_to_files(tmp_path: Path) -> None:
    root = tmp_path / "cat"
    for name in ("b", "a", "c"):
        _write(root / "services" / name / "catalog-info.yaml", "x")
    _write(root / "services" / ".hidden" / "catalog-info.yaml", "x")
    (root / "services" / "d" / "catalog-info.yaml").mkdir(parents=True)  # a folder of that name: not a file
    _write(root / "libs" / "one" / "deep" / "catalog-info.yaml", "x")
    _write(root / "libs" / "catalog-info.yaml", "x")
    found = expand_glob(root, "./services/*/catalog-info.yaml", [root])
    assert found.files == tuple(str(root / "services" / n / "catalog-info.yaml") for n in ("a", "b", "c"))
    deep = expand_glob(root, "libs/**/catalog-info.yaml", [root])  # ** matches zero folders too
    assert deep.files == (str(root / "libs" / "catalog-info.yaml"), str(root / "libs" / "one" / "deep" / "catalog-info.yaml"))
    braces = expand_glob(root, "./services/{a,c}/catalog-info.{yaml,yml}", [root])
    assert braces.files == (str(root / "services/a/catalog-info.yaml"), str(root / "services/c/catalog-info.yaml"))
    assert expand_glob(root, "./nothing/*/x.yaml", [root]).files == ()


def test_patterns_never_leave_the_catalog_root(tmp_path: Path) -> None:
    root = tmp_path / "cat"
    _write(root / "a" / "catalog-info.yaml", "x")
    secret = _write(tmp_path / "outside" / "secret" / "catalog-info.yaml", "x")
    for pattern in ("../*/secret/catalog-info.yaml", str(tmp_path / "outside" / "*" / "catalog-info.yaml"),
                    "./*/../../outside/secret/catalog-info.yaml", "./.git/*"):
        found = expand_glob(root, pattern, [root])
        assert found.files == () and found.error is not None, pattern
        assert "refused" in found.error or "outside the catalog root" in found.error
    # a symlinked folder leading out of the root is not searched (and said so); ** never follows links
    os.symlink(tmp_path / "outside" / "secret", root / "linked")
    assert expand_glob(root, "./**/catalog-info.yaml", [root]).files == (str(root / "a" / "catalog-info.yaml"),)
    star = expand_glob(root, "./*/catalog-info.yaml", [root])
    assert star.files == (str(root / "a" / "catalog-info.yaml"),)
    assert any("outside the catalog root; not searched" in r for r in star.refused)
    assert str(secret) not in star.files


# --- through the sync ---------------------------------------------------------------------------


async def test_a_glob_location_reads_every_match_as_its_own_file(tmp_path: Path, make_app, database_url: str) -> None:
    root = tmp_path / "cat"
    _write(root / "all.yaml", _location("all", "./services/*/catalog-info.yaml", "./org.yaml"))
    _write(root / "org.yaml", TEAM)
    for name in ("payments", "checkout"):
        _write(root / "services" / name / "catalog-info.yaml", GOOD.format(name=name))
    app = await make_app(database_url)
    try:
        first = await app.sync((str(root / "all.yaml"),))
        assert first.errors == () and first.added == 4  # the Location, the team, two components
        payments = await app.catalog.get("component:default/payments")
        assert payments is not None
        # each entity is managed by its own file, as in Backstage (not by the pattern)
        assert payments.metadata["annotations"][ANN] == f"file:{root / 'services/payments/catalog-info.yaml'}"
        # a new match is seen although the Location file did not change
        _write(root / "services" / "ledger" / "catalog-info.yaml", GOOD.format(name="ledger"))
        grown = await app.sync((str(root / "all.yaml"),))
        assert grown.errors == () and grown.added == 1 and "component:default/ledger" in app.catalog.index
        # a match that goes away takes its entities with it
        (root / "services" / "checkout" / "catalog-info.yaml").unlink()
        shrunk = await app.sync((str(root / "all.yaml"),))
        assert shrunk.errors == () and shrunk.removed == 1 and "component:default/checkout" not in app.catalog.index
        quiet = await app.sync((str(root / "all.yaml"),))
        assert (quiet.added, quiet.updated, quiet.removed, quiet.errors) == (0, 0, 0, ())
    finally:
        await app.close()


async def test_a_location_in_a_match_reads_its_targets_from_its_own_folder(tmp_path: Path, make_app, sqlite_url: str) -> None:
    root = tmp_path / "cat"
    _write(root / "all.yaml", _location("all", "./teams/*/catalog-info.yaml"))
    _write(root / "teams" / "a" / "catalog-info.yaml", _location("team-a-files", "./svc.yaml", "./more/*.yaml"))
    _write(root / "teams" / "a" / "svc.yaml", GOOD.format(name="svc"))
    _write(root / "teams" / "a" / "more" / "x.yaml", GOOD.format(name="x"))
    app = await make_app(sqlite_url)
    try:
        summary = await app.sync((str(root / "all.yaml"),))
        assert summary.errors == ()
        assert {"component:default/svc", "component:default/x"} <= set(app.catalog.index.keys())
    finally:
        await app.close()


async def test_a_pattern_matching_nothing_is_reported_as_backstage_reports_it(tmp_path: Path, make_app, sqlite_url: str) -> None:
    root = tmp_path / "cat"
    _write(root / "all.yaml", _location("all", "./services/*/catalog-info.yaml") + "---\n" + GOOD.format(name="kept"))
    app = await make_app(sqlite_url)
    try:
        summary = await app.sync((str(root / "all.yaml"),))
        (err,) = summary.errors
        # Backstage: notFoundError for a required target that matched nothing
        assert err.name == "NotFoundError" and err.entity == "location:default/all" and err.line == 1
        assert "No file matches the Location target pattern ./services/*/catalog-info.yaml" in err.message
        assert "does not exist" not in err.message
        assert "component:default/kept" in app.catalog.index  # the rest of the file is read
    finally:
        await app.close()
    # optional: nothing matched is nothing to say (Backstage emits nothing for it)
    _write(root / "all.yaml", _location("all", "./services/*/catalog-info.yaml", presence="optional"))
    app = await make_app(sqlite_url)
    try:
        assert (await app.sync((str(root / "all.yaml"),))).errors == ()
    finally:
        await app.close()


async def test_refused_patterns_name_the_entity_and_read_nothing(tmp_path: Path, make_app, sqlite_url: str) -> None:
    root = tmp_path / "cat"
    _write(tmp_path / "outside" / "x" / "catalog-info.yaml", GOOD.format(name="stolen"))
    _write(root / "all.yaml", _location("all", "../*/x/catalog-info.yaml", "/etc/*", "./*/../../outside/x/*.yaml"))
    app = await make_app(sqlite_url)
    try:
        summary = await app.sync((str(root / "all.yaml"),))
        assert "component:default/stolen" not in app.catalog.index
        assert len(summary.errors) == 3
        for err in summary.errors:
            assert err.entity == "location:default/all"
            assert "outside the catalog root" in err.message or "climbs out" in err.message
    finally:
        await app.close()


def test_url_patterns_are_refused_with_what_to_do(tmp_path: Path) -> None:
    """Backstage's UrlReaderProcessor hands a URL whose path holds ``*`` to its integration's
    search (GitHub's tree API); a plain http(s) URL cannot be listed, so it is refused, not
    fetched as a literal name."""
    source = FileSource([tmp_path])
    parent = LocationSpec(type="file", target=str(tmp_path / "all.yaml"))
    got = source.resolve(parent, LocationTarget(type="url", target="https://github.com/o/r/blob/main/*/catalog-info.yaml"))
    assert isinstance(got, CatalogError) and "is a glob pattern" in got.message
    url_source = UrlSource(Fetcher(), max_bytes=1000, timeout=1.0)  # resolving fetches nothing
    child = url_source.resolve(LocationSpec(type="url", target="https://user:pw@example.com/c/all.yaml"),
                               LocationTarget(type="url", target="./svc/*/catalog-info.yaml"))
    assert isinstance(child, CatalogError) and "is a glob pattern" in child.message and "pw" not in child.message
    plain = url_source.resolve(LocationSpec(type="url", target="https://example.com/c/all.yaml"),
                               LocationTarget(type="url", target="./svc/catalog-info.yaml?x=*"))
    assert isinstance(plain, LocationSpec)  # a * in the query is not a pattern


# --- a folder scan leaves Software Template skeletons out ------------------------------------------

def _reference_templates(tmp_path: Path) -> Path:
    source = REFERENCE / "templates"
    root = tmp_path / "repo"
    shutil.copytree(source, root / "templates")
    return root


@pytest.mark.reference
def test_a_folder_scan_skips_template_skeletons(tmp_path: Path) -> None:
    """backstage/software-templates and create-app's example template: each template.yaml's
    ``fetch:template``/``fetch:cookiecutter`` step copies a skeleton folder whose catalog-info.yaml
    is a Nunjucks (or cookiecutter) template. None of them is a catalog file; the repository's own
    catalog-info.yaml is."""
    root = _reference_templates(tmp_path)
    own = _write(root / "catalog-info.yaml", GOOD.format(name="templates-repo"))
    # a skeleton whose catalog-info.yaml has no placeholder at all: left out for being a skeleton
    _write(root / "mine" / "template.yaml", """apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: mine
spec:
  owner: team-a
  type: service
  steps:
    - id: fetch
      action: fetch:plain
      input:
        url: ./files
""")
    _write(root / "mine" / "files" / "catalog-info.yaml", GOOD.format(name="not-yet"))
    # a placeholder in a name field, with no template in sight: left out too
    _write(root / "loose" / "catalog-info.yaml", GOOD.format(name="${{ values.name }}"))
    # a placeholder elsewhere (a description) is only text: kept
    kept = _write(root / "svc" / "catalog-info.yaml",
                  GOOD.format(name="svc").replace("metadata:\n", "metadata:\n  description: uses ${{ not a name }}\n"))
    found = discover(root)
    assert not isinstance(found, CatalogError)
    assert sorted(spec.target for spec in found) == sorted([str(own), str(kept)])


@pytest.mark.reference
def test_a_folder_of_skeletons_only_says_why_it_found_nothing(tmp_path: Path) -> None:
    root = _reference_templates(tmp_path)
    err = discover(root)
    assert isinstance(err, CatalogError) and err.name == "NotFoundError"
    assert "Software Template skeletons" in err.message


@pytest.mark.reference
async def test_syncing_a_template_repository_reports_no_placeholder_names(tmp_path: Path, make_app, sqlite_url: str) -> None:
    root = _reference_templates(tmp_path)
    _write(root / "catalog-info.yaml", GOOD.format(name="templates-repo"))
    app = await make_app(sqlite_url)
    try:
        summary = await app.sync((str(root),))
        assert summary.errors == (), [str(e) for e in summary.errors]
        assert set(app.catalog.index.keys()) == {"component:default/templates-repo"}
    finally:
        await app.close()
