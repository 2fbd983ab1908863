"""Imports only point down DESIGN.md's table; the pure core knows no chat platform or HTTP server."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# package -> callboard packages it may import
ALLOWED = {
    "storage": set(),
    "catalog": {"storage"},
    "providers": {"catalog", "storage"},
    "scaffolder": {"catalog", "providers", "storage", "commands"},
    "commands": {"catalog", "providers", "scaffolder"},
    "bot": {"catalog", "providers", "storage", "commands", "scaffolder", "bot"},
}
#: what ``scaffolder`` may use of ``commands``: the neutral form model only (parameters become
#: ``Form`` pages there, as DESIGN.md says); the chat side of templates lives in ``commands/``
SCAFFOLDER_FROM_COMMANDS = {"callboard.commands.forms"}
FORBIDDEN_THIRD_PARTY = {
    "catalog": {"aiohttp", "slack_bolt", "slack_sdk", "botbuilder"},
    "commands": {"aiohttp", "slack_bolt", "slack_sdk", "botbuilder", "sqlalchemy"},
    "scaffolder": {"slack_bolt", "slack_sdk", "botbuilder"},
    "storage": {"aiohttp", "slack_bolt", "botbuilder"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_imports_point_down() -> None:
    problems = []
    for package, allowed in ALLOWED.items():
        for path in (ROOT / package).rglob("*.py"):
            for name in _imports(path):
                parts = name.split(".")
                if parts[0] == "callboard" and len(parts) > 1 and parts[1] != package:
                    if parts[1] not in allowed and parts[1] != "__init__":
                        problems.append(f"{path.relative_to(ROOT)} imports {name}")
                    elif package == "scaffolder" and parts[1] == "commands" and name not in SCAFFOLDER_FROM_COMMANDS:
                        problems.append(f"{path.relative_to(ROOT)} imports {name} (only the form model)")
                if parts[0] in FORBIDDEN_THIRD_PARTY.get(package, set()):
                    problems.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not problems, problems


def test_every_python_folder_is_packaged() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packaged = {Path(d) for d in config["package-dir"].values()}
    for top in ("catalog", "providers", "storage", "commands", "bot", "scaffolder", "templates", "examples"):
        for path in (ROOT / top).rglob("*.py"):
            folder = path.parent.relative_to(ROOT)
            if "demo-catalog" in folder.parts:
                continue
            assert folder in packaged, f"{folder} has Python modules but is not in pyproject's package-dir"
            assert (ROOT / folder / "__init__.py").exists(), f"{folder} needs an __init__.py"


def test_platform_sdks_stay_in_their_surface() -> None:
    """Every botbuilder/botframework import is inside bot/teams/ (a move to the Microsoft 365 Agents
    SDK touches only that folder), every Slack SDK import inside bot/slack/; the rest of bot/ reaches
    a surface only through bot/surface.py's seam."""
    homes = {"botbuilder": "bot/teams", "botframework": "bot/teams", "slack_bolt": "bot/slack", "slack_sdk": "bot/slack"}
    problems = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(("tests/", "bench/", ".venv/", "build/")) or "/site-packages/" in rel:
            continue
        for name in _imports(path):
            home = homes.get(name.split(".")[0])
            if home is not None and not rel.startswith(home + "/"):
                problems.append(f"{rel} imports {name} (it belongs in {home}/)")
    assert not problems, problems
