"""``callboard create``, run as a person runs it (the installed CLI in a subprocess): values from
--values/--value, secrets never shown, missing values asked at a terminal, the exit codes, and
the golden path without GitHub: a built-in template published as a local git repository,
registered, and answered by ``ask`` at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from callboard.bot.create import CreateRequest, run_create
from callboard.bot.shell.forms import Question
from tests.conftest import REFERENCE, SHARED


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBOARD_")}
    env.update({"CALLBOARD_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "100"})
    return subprocess.run([sys.executable, "-m", "callboard.bot.cli", *args], capture_output=True, text=True,
                          env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, timeout=120)


def _create(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _cli(tmp_path, "create", *args)


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
    assert "Invalid values for t (1):" in run.stderr and "name: Required" in run.stderr


async def test_missing_and_invalid_values_are_asked_at_a_terminal(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The terminal form asks the required field left out and, with the reason, the one that fails
    its rules; the run then goes on with the answers."""
    template = _template(tmp_path, [FETCH], parameters=[{"required": ["name", "size"], "properties": {
        "name": {"type": "string", "title": "Name", "pattern": "^[a-z]+$"},
        "size": {"type": "integer", "title": "Size", "maximum": 10}}}])
    asked: list[str] = []
    answers = {"Name": iter(["Bad1", "good"]), "Size": iter(["3"])}

    def prompt(question: Question) -> str:
        asked.append(question.message)
        return next(answers[question.field.label])

    code = await run_create(CreateRequest(template=str(template), value_pairs=("size=99",), dry_run=True,
                                          workspace=tmp_path / "ws"), open_app=None, interactive=True, prompt=prompt)
    assert code == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "ws" / "good.txt").read_text()) == {"name": "good", "size": 3}
    assert asked[0].startswith("Name") and "Must match the pattern ^[a-z]+$" in asked[1]
    assert "Must be 10 or less" in asked[2]


def test_each_invalid_value_is_listed_and_nothing_runs(tmp_path: Path) -> None:
    """The built-in's own rules (a name's pattern, the picker's hosts, a required owner), each
    named with its field, exit 2, and no repository made."""
    run = _create(tmp_path, "python-service", "--value", "name=Bad_Name",
                  "--value", "repoUrl=gitlab.com?owner=a&repo=b", "--database-url", f"sqlite:///{tmp_path / 'cb.db'}")
    assert run.returncode == 2, run.stderr
    assert run.stderr.splitlines() == [
        "Invalid values for python-service (3):",
        "  name: Must match the pattern ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        "  owner: Required",
        "  repoUrl: Host gitlab.com is not allowed here (allowed: github.com, local)",
    ]
    assert not (tmp_path / "data" / "repos").exists()


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


async def test_the_golden_path_without_github(tmp_path: Path, database_url: str) -> None:
    """A built-in template run for real: a task that publishes a local git repository with the
    skeleton's files and registers it, after which ``ask`` answers who owns the new service."""
    name = "orders-api"
    run = _create(tmp_path, "python-service", "--value", f"name={name}", "--value", "owner=group:default/payments",
                  "--value", "description=Takes orders", "--value", f"repoUrl=local?owner=acme&repo={name}",
                  "--database-url", database_url)
    assert run.returncode == 0, run.stderr
    repo = tmp_path / "data" / "repos" / "acme" / name
    lines = run.stderr.splitlines()
    assert lines[0].startswith("Task ") and "running Python service (template:default/python-service)" in lines[0]
    assert lines[1:] == ["  done    Render the skeleton", "  skipped Publish to GitHub",
                         "  done    Publish as a local git repository", "  done    Register in the catalog"]
    assert run.stdout.splitlines()[:3] == [f"Done (task {lines[0].split()[1].rstrip(':')}).",
                                           f"  Repository: {repo.as_uri()}",
                                           f"  Open in catalog: component:default/{name}"]
    log = subprocess.run(["git", "-C", str(repo), "log", "--format=%s"], capture_output=True, text=True, check=True)
    assert log.stdout == f"Initial commit from the {name} template\n"
    tracked = subprocess.run(["git", "-C", str(repo), "ls-files"], capture_output=True, text=True, check=True)
    assert set(tracked.stdout.split()) >= {".github/workflows/ci.yml", "Dockerfile", "catalog-info.yaml",
                                           "src/orders_api/app.py", "tests/test_app.py", "mkdocs.yml", "docs/index.md"}
    info = yaml.safe_load((repo / "catalog-info.yaml").read_text())
    assert "github.com/project-slug" not in info["metadata"]["annotations"]  # not a GitHub repository
    ask = _cli(tmp_path, "ask", "--database-url", database_url, f"who owns {name}?")
    assert ask.returncode == 0, ask.stderr
    assert ask.stdout.splitlines()[0] == f"Component {name} is owned by payments"
    # the same name again: the repository exists, the task fails and says so (exit 1)
    again = _create(tmp_path, "python-service", "--value", f"name={name}", "--value", "owner=group:default/payments",
                    "--value", f"repoUrl=local?owner=acme&repo={name}", "--database-url", database_url)
    assert again.returncode == 1
    assert "Failed at step publish-local" in again.stderr and "already exists" in again.stderr


def _org(tmp_path: Path) -> tuple[Path, Path]:
    catalog = tmp_path / "org.yaml"
    catalog.write_text(yaml.safe_dump_all([
        {"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": "platform-team"},
         "spec": {"type": "team", "children": []}},
        {"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": "payments"},
         "spec": {"type": "team", "children": []}},
        {"apiVersion": "backstage.io/v1alpha1", "kind": "User", "metadata": {"name": "ana"},
         "spec": {"memberOf": ["platform-team"]}},
        {"apiVersion": "backstage.io/v1alpha1", "kind": "User", "metadata": {"name": "bob"},
         "spec": {"memberOf": ["payments"]}},
    ]))
    config = tmp_path / "callboard.yaml"
    config.write_text(yaml.safe_dump({"scaffolder": {"permissions": [
        {"templates": ["python-service"], "groups": ["platform-team"]}]}}))
    return catalog, config


def test_a_template_the_person_may_not_run_is_refused(tmp_path: Path) -> None:
    """Refused before any value is asked or checked, exit 1 (not a value error), nothing made; the
    person the rule allows runs the same template."""
    catalog, config = _org(tmp_path)
    db = f"sqlite:///{tmp_path / 'cb.db'}"
    args = ("python-service", "--value", "name=svc", "--value", "owner=group:default/payments",
            "--value", "repoUrl=local?owner=acme&repo=svc", "--database-url", db, "--config", str(config),
            "--catalog", str(catalog))
    for who in ("user:default/bob", None):
        run = _create(tmp_path, *args, *(("--as", who) if who else ()))
        assert run.returncode == 1, run.stderr
        assert run.stderr.startswith(f"Refused: {who or 'someone the catalog does not know'}")
        assert "may not run the template Python service (template:default/python-service)" in run.stderr
        assert "scaffolder.permissions" in run.stderr and "Invalid values" not in run.stderr
    assert not (tmp_path / "data" / "repos").exists()
    run = _create(tmp_path, *args, "--as", "ana")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "data" / "repos" / "acme" / "svc" / ".git").is_dir()


def test_an_entity_named_as_people_name_it_is_resolved_as_the_picker_would(tmp_path: Path) -> None:
    """``--value owner=payments``: a bare name the catalog resolves to one Group is taken as its
    ref, as the form's owner picker would; one it cannot resolve is left as typed and refused."""
    catalog, _ = _org(tmp_path)
    db = f"sqlite:///{tmp_path / 'cb.db'}"
    workspace = tmp_path / "ws"
    run = _create(tmp_path, "python-service", "--value", "name=ledger", "--value", "owner=payments",
                  "--value", "repoUrl=local?owner=acme&repo=ledger", "--dry-run", "--workspace", str(workspace),
                  "--database-url", db, "--catalog", str(catalog))
    assert run.returncode == 0, run.stderr
    info = yaml.safe_load((workspace / "catalog-info.yaml").read_text())
    assert info["spec"]["owner"] == "group:default/payments"
    vague = _create(tmp_path, "python-service", "--value", "name=ledger", "--value", "owner=nobody-like-this",
                    "--value", "repoUrl=local?owner=acme&repo=ledger", "--dry-run", "--database-url", db,
                    "--catalog", str(catalog))
    assert vague.returncode == 2 and "owner: Must be an entity reference" in vague.stderr + vague.stdout
