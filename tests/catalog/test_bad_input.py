"""Every kind of bad input gets a clear error naming file and line, and loses nothing else."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from callboard.catalog.model import CatalogError
from callboard.catalog.process import process_text

GOOD = """apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: {name}
spec:
  type: service
  lifecycle: production
  owner: team-a
"""
TEAM = """apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-a
spec:
  type: team
  children: []
"""


def _errors(text: str) -> list[CatalogError]:
    return [x for x in process_text(text, file="f.yaml", location="file:f.yaml") if isinstance(x, CatalogError)]


async def _sync(make_app, url: str, *paths: Path):
    app = await make_app(url)
    try:
        summary = await app.sync(tuple(str(p) for p in paths))
        keys = set(app.catalog.index.keys())
    finally:
        await app.close()
    return summary, keys


async def test_malformed_yaml_names_file_and_line_and_spares_siblings(tmp_path, make_app, sqlite_url) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "catalog-info.yaml").write_text(GOOD.format(name="good") + "---\n" + TEAM)
    (tmp_path / "b" / "catalog-info.yaml").write_text("apiVersion: v1\nkind: Component\nmetadata:\n  name: [broken\n")
    summary, keys = await _sync(make_app, sqlite_url, tmp_path)
    assert {"component:default/good", "group:default/team-a"} <= keys
    (err,) = summary.errors
    assert err.file.endswith("b/catalog-info.yaml")
    assert err.line == 5
    assert "Invalid YAML" in err.message


def test_non_mapping_document() -> None:
    (err,) = _errors("- just\n- a list\n")
    assert "Expected a mapping" in err.message and "array" in err.message
    assert err.line == 1


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ("apiVersion: backstage.io/v1alpha1\nmetadata:\n  name: x\n", 'missing "kind"'),
        ("apiVersion: backstage.io/v1alpha1\nkind: Widget\nmetadata:\n  name: x\nspec: {}\n", "No processor recognized"),
        ("apiVersion: backstage.io/v1alpha1\nkind: component\nmetadata:\n  name: x\nspec: {}\n", 'did you mean "Component"'),
        ("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: bad name!\n", '"metadata.name" is not valid'),
        ("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: " + "a" * 64 + "\n", '"metadata.name" is not valid'),
        ("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: x\n  namespace: Bad_NS\n", '"metadata.namespace" is not valid'),
        ("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: x\n  tags: [Go]\n", '"metadata.tags.0" is not valid'),
        ("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: x\nspec: {}\nextra: 1\n", 'Unknown field extra'),
        ("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: x\nspec:\n  type: service\n", "must have required property 'lifecycle'"),
        ("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: x\nspec:\n  type: s\n  lifecycle: l\n  owner: o\n  dependsOn: [thing]\n", "missing or empty kind"),
    ],
)
def test_invalid_entities_are_refused_with_a_reason(doc: str, fragment: str) -> None:
    (err,) = _errors("# leading comment\n" + doc)
    assert fragment in err.message
    assert err.line == 2


async def test_dangling_owner_is_kept_and_shown(tmp_path, make_app, sqlite_url) -> None:
    (tmp_path / "catalog-info.yaml").write_text(GOOD.format(name="orphan").replace("team-a", "ghost-team"))
    app = await make_app(sqlite_url)
    try:
        await app.sync((str(tmp_path),))
        entity = await app.catalog.get("component:default/orphan")
        reply = await app.ask("owner orphan")
    finally:
        await app.close()
    assert entity is not None and entity.related("ownedBy") == ["group:default/ghost-team"]
    assert "group:default/ghost-team is not in the catalog" in reply.blocks[1].text


def _location(name: str, *targets: str) -> str:
    lines = "\n".join(f"    - {t}" for t in targets)
    return f"apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: {name}\nspec:\n  targets:\n{lines}\n"


async def test_location_cycle_is_reported_and_not_followed(tmp_path, make_app, sqlite_url) -> None:
    (tmp_path / "a.yaml").write_text(_location("a", "./b.yaml"))
    (tmp_path / "b.yaml").write_text(_location("b", "./a.yaml") + "---\n" + GOOD.format(name="in-b"))
    summary, keys = await _sync(make_app, sqlite_url, tmp_path / "a.yaml")
    assert "component:default/in-b" in keys
    (err,) = summary.errors
    assert "Location cycle" in err.message and "a.yaml" in err.message
    assert err.file.endswith("b.yaml")


async def test_missing_target_is_an_error_on_its_location_only(tmp_path, make_app, sqlite_url) -> None:
    (tmp_path / "root.yaml").write_text(_location("root", "./there.yaml", "./nowhere.yaml"))
    (tmp_path / "there.yaml").write_text(GOOD.format(name="there"))
    summary, keys = await _sync(make_app, sqlite_url, tmp_path / "root.yaml")
    assert "component:default/there" in keys
    (err,) = summary.errors
    assert err.name == "NotFoundError" and "nowhere.yaml" in err.message


async def test_placeholder_outside_the_catalog_root_is_refused(tmp_path, make_app, sqlite_url) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    root = tmp_path / "catalog"
    root.mkdir()
    (root / "catalog-info.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: leaky\nspec:\n  type: openapi\n"
        "  lifecycle: production\n  owner: team-a\n  definition:\n    $text: ../secret.txt\n---\n" + TEAM
    )
    summary, keys = await _sync(make_app, sqlite_url, root)
    assert "api:default/leaky" not in keys and "group:default/team-a" in keys
    (err,) = summary.errors
    assert "outside the catalog root" in err.message and err.entity == "api:default/leaky"


async def test_relative_text_placeholder_is_read_relative_to_its_file(tmp_path, make_app, sqlite_url) -> None:
    (tmp_path / "apis").mkdir()
    (tmp_path / "apis" / "spec.yaml").write_text("openapi: 3.0.0\n")
    (tmp_path / "apis" / "catalog-info.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: pets\nspec:\n  type: openapi\n"
        "  lifecycle: production\n  owner: team-a\n  definition:\n    $text: ./spec.yaml\n"
    )
    app = await make_app(sqlite_url)
    try:
        summary = await app.sync((str(tmp_path),))
        entity = await app.catalog.get("api:default/pets")
        assert entity is not None and entity.spec["definition"] == "openapi: 3.0.0\n"
        (tmp_path / "apis" / "spec.yaml").write_text("openapi: 3.1.0\n")
        again = await app.sync((str(tmp_path),))
        entity = await app.catalog.get("api:default/pets")
    finally:
        await app.close()
    assert not summary.errors
    assert again.updated == 1 and entity is not None and entity.spec["definition"] == "openapi: 3.1.0\n"


async def test_non_utf8_bytes_name_the_line(tmp_path, make_app, sqlite_url) -> None:
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "catalog-info.yaml").write_text(TEAM)
    (tmp_path / "catalog-info.yaml").write_bytes(b"apiVersion: backstage.io/v1alpha1\nkind: Group\n# caf\xe9\n")
    summary, keys = await _sync(make_app, sqlite_url, tmp_path)
    assert "group:default/team-a" in keys
    (err,) = summary.errors
    assert "not valid UTF-8" in err.message and err.line == 3


async def test_huge_file_is_refused_by_the_size_limit(tmp_path, make_app, sqlite_url) -> None:
    big = tmp_path / "catalog-info.yaml"
    with big.open("wb") as fh:
        fh.truncate(100 * 1024 * 1024)  # a sparse 100 MB file: no disk cost
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "catalog-info.yaml").write_text(TEAM)
    started = time.perf_counter()
    summary, keys = await _sync(make_app, sqlite_url, tmp_path)
    assert time.perf_counter() - started < 5
    assert "group:default/team-a" in keys
    (err,) = summary.errors
    assert "over the 67 MB limit" in err.message and "max_file_bytes" in err.message


def test_alias_bomb_is_refused_quickly() -> None:
    bomb = ['apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: lol\n  labels:\n    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for name in "bcdefghi":
        bomb.append(f"    {name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
        prev = name
    started = time.perf_counter()
    (err,) = _errors("\n".join(bomb) + "\n")
    assert time.perf_counter() - started < 0.5
    assert "alias" in err.message and "refused" in err.message


def test_recursive_alias_is_refused() -> None:
    (err,) = _errors("a: &a [*a]\n")
    assert "refers to itself" in err.message


def test_yaml_merge_keys_still_work() -> None:
    text = "x: &base {type: service, lifecycle: production, owner: team-a}\n"
    doc = ("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: merged\n"
           "spec:\n  <<: {type: service, lifecycle: production}\n  owner: team-a\n")
    (entity,) = process_text(doc, file="f.yaml", location="file:f.yaml")
    assert not isinstance(entity, CatalogError), entity
    assert '"lifecycle":"production"' in entity.data_json
    assert text  # anchors elsewhere are fine


def test_many_small_alias_bombs_in_one_file_are_capped_together() -> None:
    doc = ('apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: c{i}\n  labels:\n'
           '    a: &a ["x","x","x","x","x","x","x","x","x","x"]\n'
           '    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
           '    c: [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n')  # ~1,100 nodes each, well under the per-document cap
    text = "---\n".join(doc.format(i=i) for i in range(200))
    items = process_text(text, file="f.yaml", location="file:f.yaml")
    refused = [x for x in items if isinstance(x, CatalogError) and "alias" in x.message]
    assert refused  # the file as a whole may not expand without bound


def test_an_entity_too_large_once_expanded_is_refused() -> None:
    from callboard.catalog import process as process_module

    big = "x" * (process_module.MAX_ENTITY_BYTES + 10)
    doc = f"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: big\n  description: {big}\nspec:\n  type: s\n  lifecycle: l\n  owner: o\n"
    (err,) = _errors(doc)
    assert "MB an entity may be" in err.message and err.entity == "component:default/big"
