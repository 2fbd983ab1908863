"""``callboard create``, run as a person runs it (the installed CLI in a subprocess): values from
--values/--value, secrets never shown, missing values asked at a terminal, the exit codes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from callboard.bot.create import CreateRequest, run_create
from tests.conftest import REFERENCE, SHARED


def _create(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBOARD_")}
    env.update({"CALLBOARD_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "100"})
    return subprocess.run([sys.executable, "-m", "callboard", "create", *args], capture_output=True, text=True,
                          env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, timeout=120)


def _template(tmp_path: Path, steps: list[dict[str, Any]], parameters: list[dict[str, Any]] | None = None,
              output: dict[str, Any] | None = None) -> Path:
    folder = tmp_path / "tpl"
    (folder / "skeleton").mkdir(parents=True, exist_ok=True)
    (folder / "skeleton" / "${{ values.name }}.txt").write_text("${{ values | dump }}\n")
    doc = {"apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template", "metadata": {"name": "t"},
           "spec": {"parameters": parameters or [{"required": ["name"], "properties": {
               "name": {"type": "string", "title": "Name"}, "flag": {"type": "boolean", "default": True},
               "tags": {"type": "array", "items": {"type": "string"}},
               "nested": {"type": "object", "properties": {"n": {"type": "integer"}}}}}],
                    "steps": steps, "output": output or {}}}
    (folder / "template.yaml").write_text(yaml.safe_dump(doc))
    return folder / "template.yaml"


FETCH = {"id": "fetch", "action": "fetch:template", "input": {"url": "./skeleton", "values": "${{ parameters }}"}}


def test_values_from_a_file_and_options_typed_by_the_schema(tmp_path: Path) -> None:
    template = _template(tmp_path, [FETCH])
    values = tmp_path / "values.yaml"
    values.write_text("name: from-file\nnested:\n  n: 1\n  keep: yes-kept\n")
    ws = tmp_path / "out"
    run = _create(tmp_path, str(template), "--values", str(values), "--value", "name=svc", "--value", "nested.n=7",
                  "--value", "tags=a,b", "--dry-run", "--workspace", str(ws), "--format", "json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["ok"] and result["files"] == ["svc.txt"] and result["workspace"] == str(ws)
    assert json.loads((ws / "svc.txt").read_text()) == {
        "name": "svc", "nested": {"n": 7, "keep": "yes-kept"}, "tags": ["a", "b"], "flag": True}


@pytest.mark.reference
def test_a_reference_dry_run_leaves_backstages_files_in_the_workspace(tmp_path: Path) -> None:
    case = json.loads((REFERENCE / "expected" / "scaffolder" / "create-react-app.default.json").read_text())
    assert SHARED is not None
    folder = SHARED / case["template_dir"].split("shared/reference/", 1)[1]
    ws = tmp_path / "ws"
    args = [a for k, v in case["request"]["values"].items() for a in ("--value", f"{k}={v}")]
    run = _create(tmp_path, str(folder / "template.yaml"), *args, "--dry-run", "--workspace", str(ws))
    assert run.returncode == 0, run.stderr
    for f in case["files"]:
        assert (ws / f["path"]).read_text(encoding="utf-8") == f["content"]
    assert "Repository: <example>" in run.stdout


def test_missing_required_values_are_an_error_without_a_terminal(tmp_path: Path) -> None:
    template = _template(tmp_path, [FETCH])
    run = _create(tmp_path, str(template), "--dry-run")
    assert run.returncode == 2
    assert "Invalid values for t (1):" in run.stderr and "name: Name is required" in run.stderr


async def test_missing_required_values_are_asked_at_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    template = _template(tmp_path, [FETCH])
    monkeypatch.setattr("sys.stdin", io.StringIO("asked\n"))
    code = await run_create(CreateRequest(template=str(template), dry_run=True, workspace=tmp_path / "ws"),
                            open_app=None, interactive=True)
    assert code == 0
    assert (tmp_path / "ws" / "asked.txt").is_file()
    assert "Name" in capsys.readouterr().err


async def test_the_validation_seam_reports_each_field_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template = _template(tmp_path, [FETCH])

    def validate(t: Any, values: Any) -> list[str]:
        return ["name: must match ^[a-z]+$", "tags: at least one"]

    code = await run_create(CreateRequest(template=str(template), value_pairs=("name=X1",), dry_run=True),
                            open_app=None, validate=validate, interactive=False)
    assert code == 2
    err = capsys.readouterr().err
    assert "name: must match ^[a-z]+$" in err and "tags: at least one" in err


def test_a_failed_task_exits_1_and_secrets_are_never_printed(tmp_path: Path) -> None:
    template = _template(tmp_path, [
        {"id": "say", "action": "debug:log", "input": {"message": "the token is ${{ secrets.TOKEN }}"}},
        {"id": "escape", "action": "fetch:template", "input": {"url": "./skeleton", "targetPath": "../../x",
                                                               "values": {"name": "${{ secrets.TOKEN }}"}}},
    ])
    run = _create(tmp_path, str(template), "--value", "name=svc", "--secret", "TOKEN=hunter2-secret",
                  "--dry-run", "--format", "json")
    assert run.returncode == 1
    result = json.loads(run.stdout)
    assert result["failed_step"] == "escape" and "outside the workspace" in result["error"]
    assert "info: the token is ***" in result["log"]
    assert "hunter2-secret" not in run.stdout + run.stderr
    text = _create(tmp_path, str(template), "--value", "name=svc", "--secret", "TOKEN=hunter2-secret", "--dry-run")
    assert text.returncode == 1 and "Failed at step escape" in text.stderr
    assert "hunter2-secret" not in text.stdout + text.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    template = _template(tmp_path, [FETCH])
    assert _create(tmp_path, str(template), "--value", "novalue").returncode == 2
    assert _create(tmp_path, str(template), "--value", "flag=maybe", "--value", "name=a").returncode == 2
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    run = _create(tmp_path, str(template), "--value", "name=a", "--dry-run", "--workspace", str(busy))
    assert run.returncode == 2 and "must be an empty folder" in run.stderr
    run = _create(tmp_path, "no-such-template", "--dry-run")
    assert run.returncode == 2 and "no template named 'no-such-template'" in run.stderr
    run = _create(tmp_path, str(template), "--value", "name=a", "--dry-run", "--as", "user:default/nobody")
    assert run.returncode == 2 and "no such user" in run.stderr


def test_a_builtin_by_name(tmp_path: Path) -> None:
    run = _create(tmp_path, "python-service", "--value", "name=orders", "--value", "owner=group:default/team",
                  "--value", "repoUrl=github.com?owner=acme&repo=orders", "--dry-run")
    assert run.returncode == 0, run.stderr
    assert "src/orders/app.py" in run.stdout and ".github/workflows/ci.yml" in run.stdout
