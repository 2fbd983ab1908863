"""EntityTagsPicker suggests the tags the catalog already uses, most used first (counted in the
database, SQLite and PostgreSQL), of the entities of ``ui:options.kinds``, holding what was typed;
``showCounts`` puts the count in the label. Also through the template forms' ``options``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from callboard.scaffolder.forms import FieldSpec, field_specs
from callboard.scaffolder.pickers import CatalogPickers

ENTITIES = [
    # python: 3 (two components, one API); web: 2; go: 1 (a System); "ops": 1 (a resource)
    {"kind": "Component", "metadata": {"name": "a", "tags": ["python", "web"]},
     "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}},
    {"kind": "Component", "metadata": {"name": "b", "tags": ["python", "web"]},
     "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}},
    {"kind": "API", "metadata": {"name": "c", "tags": ["python", "rest-api"]},
     "spec": {"type": "openapi", "lifecycle": "production", "owner": "team-a", "definition": "x"}},
    {"kind": "System", "metadata": {"name": "d", "tags": ["go"]}, "spec": {"owner": "team-a"}},
    {"kind": "Resource", "metadata": {"name": "e", "tags": ["ops"]}, "spec": {"type": "db", "owner": "team-a"}},
    {"kind": "Component", "metadata": {"name": "untagged"},
     "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}},
    {"kind": "Group", "metadata": {"name": "team-a"}, "spec": {"type": "team", "children": []}},
]


def _spec(options: dict[str, Any] | None = None) -> FieldSpec:
    page = {"properties": {"tags": {"title": "Tags", "type": "array", "items": {"type": "string"},
                                    "ui:field": "EntityTagsPicker", **({"ui:options": options} if options else {})}}}
    (spec,) = field_specs(page, {})
    assert spec.picker == "EntityTagsPicker"
    return spec


@pytest.fixture
async def pickers(tmp_path: Path, make_app: Any, database_url: str) -> Any:
    (tmp_path / "catalog-info.yaml").write_text("\n---\n".join(
        json.dumps({"apiVersion": "backstage.io/v1alpha1", **e}) for e in ENTITIES) + "\n")
    app = await make_app(database_url, resident=True)
    summary = await app.sync((str(tmp_path / "catalog-info.yaml"),))
    assert not summary.errors, summary.errors
    try:
        yield CatalogPickers(app.catalog)
    finally:
        await app.close()


async def test_tags_most_used_first(pickers: CatalogPickers) -> None:
    got = await pickers.options(_spec(), "", "user:default/nobody")
    assert [c.value for c in got] == ["python", "web", "go", "ops", "rest-api"]  # ties by name
    assert [c.label for c in got] == [c.value for c in got]


async def test_what_was_typed_kinds_counts_and_limit(pickers: CatalogPickers) -> None:
    # what was typed, when it is a tag nobody uses yet, comes last as a new one
    typed = await pickers.options(_spec(), "P", None)
    assert [c.value for c in typed] == ["python", "ops", "rest-api", "p"] and typed[-1].label == "p (new)"
    shown = await pickers.options(_spec({"kinds": ["component"], "showCounts": True}), "", None)
    assert [c.label for c in shown] == ["python (2)", "web (2)"] and [c.value for c in shown] == ["python", "web"]
    assert [c.value for c in await pickers.options(_spec({"kinds": ["API", "System"]}), "", None)] == [
        "go", "python", "rest-api"]
    assert [c.value for c in await pickers.options(_spec(), "", None, limit=2)] == ["python", "web"]
    assert [(c.value, c.label) for c in await pickers.options(_spec(), "nothing-like-it", None)] == [
        ("nothing-like-it", "nothing-like-it (new)")]
    assert await pickers.options(_spec(), "'; DROP TABLE entities; --", None) == []  # a value, never SQL
    assert [c.value for c in await pickers.options(_spec(), "", None, limit=1)] == ["python"]
