"""Callboard ingests Backstage's own example catalog as the real Backstage did.

Expected data: shared/reference/backstage/expected/ (Backstage catalog-backend 4.0.0).
Deliberate differences, each asserted here as such:
1. relative ``$text`` in a file is read relative to that file (Backstage 4.0.0 fails it);
2. an error stays with its own file: a Location with a missing target still ingests
   its other targets (Backstage fails the whole Location);
3. Backstage's own ``location:default/generated-…`` entity for the registered root is
   an artefact of its location registry; Callboard has no such entity.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from callboard.catalog.model import INVERSE
from callboard.catalog.service import Catalog

from ..conftest import REFERENCE

pytestmark = pytest.mark.reference

EXPECTED = REFERENCE / "expected"
EVERY_FILE_TARGETS = ["./acme-corp.yaml"] + [
    f"./{p.parent.name}/{p.name}"
    for folder in ("apis", "components", "domains", "resources", "systems")
    for p in sorted((REFERENCE / "examples" / folder).glob("*.yaml"))
    if not p.name.endswith(".oas.yaml")
]


def _write_root(examples: Path) -> Path:
    root = examples / "__root__.yaml"
    targets = "\n".join(f"    - {t}" for t in EVERY_FILE_TARGETS)
    root.write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: truth-root\n"
        f"spec:\n  targets:\n{targets}\n"
    )
    return root


async def _actual(catalog: Catalog, root_dir: Path) -> dict[str, dict]:
    out = {}
    for key in catalog.index.keys():
        entity = await catalog.get(key)
        assert entity is not None
        ann = entity.metadata.get("annotations", {})
        out[key] = {
            "kind": entity.kind,
            "relations": sorted([r.type, r.target] for r in entity.relations),
            "location": ann["backstage.io/managed-by-location"].replace(f"file:{root_dir}/", "file:./"),
            "origin": ann["backstage.io/managed-by-origin-location"].replace(f"file:{root_dir}/", "file:./"),
        }
    return out


def _expected(name: str) -> dict:
    return json.loads((EXPECTED / name).read_text())


@pytest.mark.parametrize("resident", [False, True], ids=["storage", "graph"])
async def test_every_file_matches_backstage(database_url: str, make_app, examples: Path, resident: bool) -> None:
    root = _write_root(examples)
    app = await make_app(database_url, resident=resident)
    try:
        summary = await app.sync((str(root),))
        actual = await _actual(app.catalog, examples)
    finally:
        await app.close()
    expected = _expected("examples-every-file.json")
    want = {e["ref"]: e for e in expected["entities"] if not e["ref"].startswith("location:default/generated-")}
    # Difference 1: petstore-webhook's relative $text is read, so it is ingested here.
    assert "api:default/petstore-webhook" in actual
    extra = set(actual) - set(want)
    assert extra == {"api:default/petstore-webhook"}, extra
    assert set(want) - set(actual) == set()
    for ref, exp in want.items():
        got = actual[ref]
        assert got["kind"] == exp["kind"], ref
        assert got["location"] == exp["annotations"]["backstage.io/managed-by-location"], ref
        assert got["origin"] == exp["annotations"]["backstage.io/managed-by-origin-location"], ref
        exp_rel = sorted(list(r) for r in exp["relations"])
        # Difference 1 again: petstore-webhook's own relations point back at its neighbours
        got_rel = [r for r in got["relations"] if r[1] != "api:default/petstore-webhook"]
        assert got_rel == exp_rel, ref
    webhook = actual["api:default/petstore-webhook"]["relations"]
    assert ["ownedBy", "group:default/team-c"] in webhook
    # the errors Backstage reported, entity by entity (minus the relative $text one)
    want_errors = {(e["entity"], e["name"]) for e in expected["errors"] if e["entity"] != "api:default/petstore-webhook"}
    got_errors = {(e.entity, e.name) for e in summary.errors}
    assert got_errors == want_errors
    by_entity = {e.entity: e for e in summary.errors}
    assert "must have required property 'definition'" in by_entity["api:default/backstage-mcp-server"].message
    assert '"metadata.name" is not valid' in by_entity["component:default/invalid component"].message
    assert by_entity["component:default/invalid component"].line == 1
    assert by_entity["component:default/invalid component"].file.endswith("components/invalid-component.yaml")


async def test_as_shipped_isolates_the_missing_target(database_url: str, make_app, examples: Path) -> None:
    app = await make_app(database_url)
    try:
        summary = await app.sync((str(examples / "all.yaml"), str(examples / "acme-corp.yaml")))
        actual = await _actual(app.catalog, examples)
    finally:
        await app.close()
    expected = _expected("examples-as-shipped.json")
    want = {e["ref"]: e for e in expected["entities"] if not e["ref"].startswith("location:default/generated-")}
    # Everything Backstage ingested is here, with the same relations ...
    for ref, exp in want.items():
        if ref.startswith("location:"):
            continue
        assert sorted(list(r) for r in exp["relations"]) == [
            r for r in actual[ref]["relations"] if not r[1].split(":")[0] in ("component", "api", "system", "domain", "resource")
        ], ref
    # ... Difference 2: the siblings of the missing target are ingested too ...
    assert "component:default/petstore" in actual
    assert "system:default/podcast" in actual
    assert ["ownerOf", "component:default/petstore"] in actual["group:default/team-c"]["relations"]
    # ... and each missing target is reported on its own Location file.
    missing = {Path(e.file).name for e in summary.errors if e.name == "NotFoundError"}
    assert missing == {"all-ai-resources.yaml", "hello-world-trpc-api.yaml", "swapi-graphql.yaml"}


def test_relation_pairs_are_inverse_both_ways() -> None:
    for a, b in INVERSE.items():
        assert INVERSE[b] == a
