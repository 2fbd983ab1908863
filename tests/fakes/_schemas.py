"""Checking a fake's answers against the vendor's own API description (``shared/reference/apis``).

Both Swagger 2 (Opsgenie) and OpenAPI 3.0 (PagerDuty) descriptions use ``nullable: true``, which
JSON Schema does not know: it becomes a type union (``null`` added to enums) before validation.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4

__all__ = ["api_description", "schema_errors_at"]

def api_description(vendor: str) -> Path:
    """``shared/reference/apis/<vendor>/rest-api.json`` (see ``tests/conftest.py`` for where that is)."""
    from tests.conftest import REFERENCE

    return REFERENCE.parent / "apis" / vendor / "rest-api.json"


def _to_jsonschema(node: Any) -> Any:
    if isinstance(node, list):
        return [_to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _to_jsonschema(value) for key, value in node.items()}
    if out.get("nullable") is True or out.get("x-nullable") is True:  # a bool: never a property named so
        out.pop("nullable", None)
        out.pop("x-nullable", None)
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        if "type" not in out:
            out = {"anyOf": [{"type": "null"}, out]}
    return out


@cache
def _registry(description: Path) -> Registry:
    document = _to_jsonschema(json.loads(description.read_text()))
    return Registry().with_resource(description.as_uri(), DRAFT4.create_resource(document))


def schema_errors_at(description: Path, body: Any, pointer: str, *, formats: bool = True) -> list[str]:
    """Where ``body`` breaks the schema at ``pointer`` in ``description`` (``[]`` when valid)."""
    if not description.exists():
        from tests.conftest import NO_REFERENCE

        pytest.skip(NO_REFERENCE)
    validator = Draft4Validator(
        {"$ref": f"{description.as_uri()}#{pointer}"},
        registry=_registry(description),
        format_checker=Draft4Validator.FORMAT_CHECKER if formats else None,
    )
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body))
