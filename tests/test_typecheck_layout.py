"""``.ci/typecheck`` lays out what mypy checks from pyproject's package-dir: nothing may slip past it."""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import sys
import tomllib
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def _script() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("ci_typecheck", str(ROOT / ".ci" / "typecheck"))
    spec = importlib.util.spec_from_loader("ci_typecheck", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    loader.exec_module(module)
    return module


def _project(tmp_path: Path, files: list[str]) -> Path:
    for rel in files:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    return tmp_path


SETUP = {"packages": ["pkg", "pkg.core"], "package-dir": {"pkg": "pkg", "pkg.core": "core"}}


def test_every_module_of_the_checkout_is_linked_into_the_tree() -> None:
    script = _script()
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = script.plan(ROOT, setuptools)
    assert found.problems == []
    linked = {p.resolve() for p in found.links.values()}
    for folder in {ROOT / d for d in setuptools["package-dir"].values()} | {ROOT / "tests"}:
        for module in folder.rglob("*.py"):
            assert module.resolve() in linked, module


def test_a_package_folder_maps_as_setuptools_does() -> None:
    script = _script()
    dirs = {"callboard": "callboard", "callboard.providers": "providers"}
    assert script.package_folder("callboard.providers.oncall", dirs) == "providers/oncall"
    assert script.package_folder("callboard", dirs) == "callboard"
    assert script.package_folder("other.x", {}) == "other/x"


def test_a_module_in_an_unlisted_subpackage_is_an_error_naming_it(tmp_path: Path) -> None:
    root = _project(tmp_path, ["pkg/__init__.py", "core/__init__.py", "core/a.py",
                               "core/extra/__init__.py", "core/extra/b.py", "tests/__init__.py"])
    found = _script().plan(root, SETUP)
    assert [p.split(":")[0] for p in found.problems] == ["core/extra/__init__.py", "core/extra/b.py"]
    assert "neither installed nor type-checked" in found.problems[0]
    assert set(found.links) == {"pkg/__init__.py", "pkg/core/__init__.py", "pkg/core/a.py", "tests/__init__.py"}


def test_a_test_folder_without_init_and_a_bad_package_dir_are_errors(tmp_path: Path) -> None:
    root = _project(tmp_path, ["pkg/__init__.py", "core/__init__.py", "tests/__init__.py", "tests/sub/test_x.py"])
    setup = {"packages": ["pkg", "pkg.core"], "package-dir": {"pkg": "pkg", "pkg.core": "core", "pkg.gone": "gone"}}
    problems = _script().plan(root, setup).problems
    assert any("'pkg.gone' is not in `packages`" in p for p in problems), problems
    assert any(p.startswith("tests/sub/test_x.py: its folder has no __init__.py") for p in problems), problems
