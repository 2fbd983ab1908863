"""Errors have one shape per layer: a function of catalog/, storage/ or providers/ never returns a
bare string (or a chat ``Reply``) beside its value to say what went wrong; expected failures are
``CatalogError`` (catalog) or ``DocsError`` (TechDocs) values, or the module's own exception
(``GitHubError`` of the GitHub client)."""

from __future__ import annotations

import ast
from pathlib import Path

from callboard.catalog.model import CatalogError
from callboard.catalog.validation import validate
from callboard.providers.techdocs.errors import DocsError
from callboard.providers.techdocs.service import TechDocsRef, parse_ref

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("catalog", "storage", "providers")
ERROR_TYPES = {"CatalogError", "DocsError"}


def _members(node: ast.expr) -> list[str]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _members(node.left) + _members(node.right)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a string annotation
        return _members(ast.parse(node.value, mode="eval").body)
    return [ast.unparse(node)]


def _mixed_returns(source: str) -> list[str]:
    """Functions returning a value or a string (the string being the error: no error type in
    the union), or a chat ``Reply``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            members = set(_members(node.returns))
            values = members - {"None", "str"}
            if "Reply" in members or ("str" in members and values and not values & ERROR_TYPES):
                found.append(f"{node.lineno} {node.name} -> {ast.unparse(node.returns)}")
    return found


def test_no_bare_strings_or_replies_beside_values() -> None:
    files = [p for layer in LAYERS for p in sorted((ROOT / layer).rglob("*.py"))]
    assert len(files) > 10
    scanned = {str(p.relative_to(ROOT)) for p in files}
    assert {"providers/github.py", "providers/techdocs/remote.py", "providers/http.py"} <= scanned
    found = [f"{p.relative_to(ROOT)}:{f}" for p in files for f in _mixed_returns(p.read_text(encoding="utf-8"))]
    assert found == []


def test_the_check_finds_mixed_returns() -> None:
    sample = (
        "def f(x: int) -> 'int | str': ...\n"
        "async def g() -> Path | None | str: ...\n"
        "def h() -> Reply | Entity: ...\n"
        "def ok1() -> str | CatalogError: ...\n"
        "def ok2() -> int | None: ...\n"
    )
    assert [f.split(" ", 2)[1] for f in _mixed_returns(sample)] == ["f", "g", "h"]


def test_a_bad_techdocs_reference_is_a_docs_error() -> None:
    assert parse_ref("dir:.") == TechDocsRef("dir", ".")
    err = parse_ref("github:org/repo")
    assert isinstance(err, DocsError) and "not github:" in str(err)
    assert isinstance(parse_ref("no-colon"), DocsError)


def test_a_docs_error_names_its_file_and_line() -> None:
    assert str(DocsError(message="hooks are not allowed", file="mkdocs.yml", line=4)) == (
        "mkdocs.yml, line 4: hooks are not allowed"
    )
    assert str(DocsError(message="no docs")) == "no docs"


def test_an_invalid_entity_is_a_catalog_error_with_its_place() -> None:
    doc = {"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "a b"}}
    err = validate(doc, file="/cat/x.yaml", line=3, location="file:/cat/x.yaml", entity="component:default/a b")
    assert isinstance(err, CatalogError)
    assert (err.file, err.line, err.location, err.entity) == ("/cat/x.yaml", 3, "file:/cat/x.yaml", "component:default/a b")
    assert '"metadata.name" is not valid' in err.message
    ok = {"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": "team"},
          "spec": {"type": "team", "children": []}}
    assert validate(ok, file="/cat/x.yaml") is None
