"""The engine and the built-in actions on small templates written here: steps, if/each, outputs,
secrets, and every way a template's paths or expressions could leave their sandbox."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from callboard.scaffolder.actions.api import Action, ActionContext, ActionDeps
from callboard.scaffolder.actions.catalog_write import yaml_stringify
from callboard.scaffolder.engine import RunResult, StepEvent, check_input, execute
from callboard.scaffolder.model import Runner, template_from_document
from callboard.scaffolder.registry import ActionLoadError, ActionRegistry, default_registry


def _template(tmp_path: Path, steps: list[dict[str, Any]], *, output: Mapping[str, Any] | None = None,
              skeleton: Mapping[str, str] | None = None) -> Any:
    folder = tmp_path / "template"
    for rel, text in (skeleton or {}).items():
        path = folder / "skeleton" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    folder.mkdir(exist_ok=True)
    doc = {"apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template", "metadata": {"name": "t"},
           "spec": {"steps": steps, "output": output or {}}}
    return template_from_document(doc, base_dir=folder)


async def _run(template: Any, tmp_path: Path, values: Mapping[str, Any] | None = None, *, dry_run: bool = False,
               secrets: Mapping[str, str] | None = None, registry: ActionRegistry | None = None,
               events: list[StepEvent] | None = None) -> RunResult:
    async def on_step(ev: StepEvent) -> None:
        if events is not None:
            events.append(ev)

    return await execute(template, values or {}, secrets=secrets or {}, user=Runner(ref="user:default/ana"),
                         workspace=tmp_path / "ws", deps=ActionDeps(), dry_run=dry_run,
                         registry=registry, on_step=on_step)


def _recording_registry(seen: list[Mapping[str, Any]]) -> ActionRegistry:
    """The installed actions plus a test action that records its input and outputs it back."""

    async def run(ctx: ActionContext) -> None:
        seen.append(dict(ctx.input))
        ctx.output("echo", ctx.input.get("value"))

    registry = ActionRegistry(list(default_registry()))
    registry.register(Action(id="test:echo", run=run, supports_dry_run=True))
    return registry


async def test_steps_outputs_if_and_each_as_backstage(tmp_path: Path) -> None:
    seen: list[Mapping[str, Any]] = []
    template = _template(tmp_path, [
        {"id": "one", "action": "test:echo", "input": {"value": "${{ parameters.name | upper }}"}},
        {"id": "two", "action": "test:echo", "each": "${{ parameters.items }}",
         "if": "${{ each.value !== 'skip' }}", "input": {"value": "${{ each.key }}=${{ each.value }}"}},
        {"id": "never", "action": "test:echo", "if": "${{ parameters.missing }}", "input": {"value": 1}},
        {"action": "test:echo", "input": {"value": "${{ steps.one.output.echo }}-${{ user.ref }}"}},
    ], output={"text": [{"title": "t", "content": "${{ steps.two.output.echo | join(';') }}"}],
               "links": [{"title": "none", "url": "${{ steps.never.output.echo }}"}]})
    events: list[StepEvent] = []
    result = await _run(template, tmp_path, {"name": "ab", "items": ["x", "skip", "y"]},
                        registry=_recording_registry(seen), events=events)
    assert result.ok, result.error
    assert [s["value"] for s in seen] == ["AB", "0=x", "2=y", "AB-user:default/ana"]
    assert result.output == {"text": [{"title": "t", "content": "0=x;2=y"}], "links": [{"title": "none"}]}
    assert "info: Skipping step each: {\"key\":\"1\",\"value\":\"skip\"}" in result.log
    assert "Skipping step never because its if condition was false" in result.log
    assert [(e.step_id, e.status) for e in events if e.status != "started"] == [
        ("one", "done"), ("two", "done"), ("never", "skipped"), ("step-4", "done")]


async def test_an_unknown_action_is_refused_before_any_step_runs(tmp_path: Path) -> None:
    template = _template(tmp_path, [
        {"id": "write", "action": "catalog:write", "input": {"entity": {"kind": "Component"}}},
        {"id": "oops", "action": "deploy:everything"},
    ])
    result = await _run(template, tmp_path)
    assert not result.ok and result.failed_step == "oops"
    assert "unknown action 'deploy:everything'" in (result.error or "") and "spec.steps[1]" in (result.error or "")
    assert not (tmp_path / "ws" / "catalog-info.yaml").exists()


async def test_a_backstage_only_action_is_skipped_in_a_dry_run_and_refused_in_a_real_run(tmp_path: Path) -> None:
    template = _template(tmp_path, [{"id": "notify", "action": "notification:send", "input": {}}])
    assert (await _run(template, tmp_path, dry_run=True)).ok
    result = await _run(template, tmp_path)
    assert not result.ok and "notification:send is a Backstage action Callboard does not provide" in (result.error or "")


async def test_input_is_checked_against_the_actions_schema(tmp_path: Path) -> None:
    template = _template(tmp_path, [{"id": "f", "action": "fetch:template",
                                     "input": {"url": "./skeleton", "token": "${{ secrets.T or false }}"}}],
                         skeleton={"a.txt": "a"})
    result = await _run(template, tmp_path)
    assert result.error == "Invalid input passed to action fetch:template, instance.token is not of a type(s) string"
    assert check_input({"type": "object", "required": ["url"]}, {}) == ['instance requires property "url"']


async def test_secrets_are_masked_in_every_log_line_and_error(tmp_path: Path) -> None:
    template = _template(tmp_path, [
        {"id": "log", "action": "debug:log", "input": {"message": "token is ${{ secrets.TOKEN }}"}},
        {"id": "bad", "action": "fetch:template", "input": {"url": "./skel-${{ secrets.TOKEN }}"}},
    ])
    result = await _run(template, tmp_path, secrets={"TOKEN": "s3cr3t-value"})
    assert not result.ok
    everything = "\n".join(result.log) + (result.error or "")
    assert "s3cr3t-value" not in everything
    assert "info: token is ***" in result.log and "skel-***" in (result.error or "")
    dry = await _run(template, tmp_path, secrets={"TOKEN": "s3cr3t-value"}, dry_run=True)
    assert any('"message": "token is ***"' in line for line in dry.log)
    assert "s3cr3t-value" not in "\n".join(dry.log)


async def test_skeleton_contents_and_names_are_rendered(tmp_path: Path) -> None:
    template = _template(tmp_path, [{"id": "f", "action": "fetch:template", "input": {
        "url": "./skeleton", "values": {"name": "svc", "docs": False}, "targetPath": "out",
        "copyWithoutTemplating": ["raw/*"]}}], skeleton={
        "${{ values.name }}/README.md": "# ${{ values.name }}\n",
        "{% if values.docs %}docs{% endif %}/index.md": "skipped",
        "raw/${{ values.name }}.txt": "${{ kept }}",
    })
    result = await _run(template, tmp_path)
    assert result.ok, result.error
    out = tmp_path / "ws" / "out"
    assert (out / "svc" / "README.md").read_text() == "# svc\n"
    assert (out / "raw" / "svc.txt").read_text() == "${{ kept }}"
    assert not (out / "index.md").exists() and sorted(os.listdir(out)) == ["raw", "svc"]


@pytest.mark.parametrize(("step", "message"), [
    ({"action": "fetch:template", "input": {"url": "./skeleton", "targetPath": "../out"}}, "outside the workspace"),
    ({"action": "fetch:template", "input": {"url": "./skeleton", "targetPath": "/tmp/out"}}, "absolute path"),
    ({"action": "fetch:template", "input": {"url": "../../"}}, "outside the template's folder"),
    ({"action": "fetch:template", "input": {"url": "/etc"}}, "absolute path"),
    ({"action": "fetch:plain", "input": {"url": "https://example.com/x"}}, "remote location"),
    ({"action": "fetch:plain:file", "input": {"url": "./skeleton/a.txt", "targetPath": "../../a.txt"}},
     "outside the workspace"),
    ({"action": "fetch:template", "input": {"url": "./skeleton", "values": {"name": "../../escaped"}}},
     "outside the workspace"),
    ({"action": "catalog:write", "input": {"filePath": "../catalog-info.yaml", "entity": {}}},
     "outside the workspace"),
    ({"action": "fs:delete", "input": {"files": ["../template"]}}, "outside the workspace"),
    ({"action": "fs:rename", "input": {"files": [{"from": "a", "to": "/tmp/a"}]}}, "absolute path"),
])
async def test_paths_that_leave_their_root_are_refused(tmp_path: Path, step: dict[str, Any], message: str) -> None:
    template = _template(tmp_path, [{"id": "s", **step}], skeleton={"a.txt": "a", "${{ values.name }}.txt": "x"})
    result = await _run(template, tmp_path)
    assert not result.ok and result.failed_step == "s"
    assert message in (result.error or "")
    assert not (tmp_path / "escaped.txt").exists() and (tmp_path / "template" / "skeleton" / "a.txt").exists()


async def test_a_skeleton_symlink_leading_out_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    template = _template(tmp_path, [{"id": "f", "action": "fetch:template", "input": {"url": "./skeleton"}}],
                         skeleton={"a.txt": "a"})
    (tmp_path / "template" / "skeleton" / "leak.txt").symlink_to(secret)
    result = await _run(template, tmp_path)
    assert not result.ok and "symbolic link leading outside the template's folder" in (result.error or "")
    assert not (tmp_path / "ws" / "leak.txt").exists()
    (tmp_path / "template" / "skeleton" / "leak.txt").unlink()
    (tmp_path / "template" / "skeleton" / "dir").symlink_to(tmp_path, target_is_directory=True)
    result = await _run(template, tmp_path)
    assert not result.ok and "'dir' is a symbolic link leading outside" in (result.error or "")
    assert not (tmp_path / "ws" / "dir").exists()


async def test_a_workspace_symlink_cannot_carry_writes_out(tmp_path: Path) -> None:
    template = _template(tmp_path, [{"id": "w", "action": "catalog:write",
                                     "input": {"filePath": "link/catalog-info.yaml", "entity": {}}}])
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "link").symlink_to(tmp_path, target_is_directory=True)
    result = await _run(template, tmp_path)
    assert not result.ok and "a symbolic link leads out" in (result.error or "")
    assert not (tmp_path / "catalog-info.yaml").exists()


@pytest.mark.parametrize(("content", "error"), [
    ("${{ values.__class__.__mro__ }}", "'__class__' is not allowed"),
    ("${{ values.constructor }}", "'constructor' is not allowed"),
    ("{% include '/etc/passwd' %}", "include is not allowed"),
    ("${{ values | unknownfilter }}", "unknown filter 'unknownfilter'"),
    ("{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}", "too much work"),
])
async def test_a_skeleton_file_that_escapes_the_sandbox_fails_the_task(tmp_path: Path, content: str, error: str) -> None:
    template = _template(tmp_path, [{"id": "f", "action": "fetch:template",
                                     "input": {"url": "./skeleton", "values": {"a": 1}}}],
                         skeleton={"evil.txt": content})
    result = await _run(template, tmp_path)
    assert not result.ok and result.failed_step == "f" and error in (result.error or "")


async def test_a_refused_expression_in_a_step_input_fails_the_task(tmp_path: Path) -> None:
    template = _template(tmp_path, [{"id": "l", "action": "debug:log",
                                     "input": {"message": "${{ parameters.__class__ }}"}}])
    result = await _run(template, tmp_path)
    assert not result.ok and result.error == "input.message: access to '__class__' is not allowed in a template (sandbox)"


async def test_fs_actions(tmp_path: Path) -> None:
    template = _template(tmp_path, [
        {"id": "f", "action": "fetch:plain", "input": {"url": "./skeleton"}},
        {"id": "d", "action": "fs:delete", "input": {"files": ["**/*.tmp"]}},
        {"id": "r", "action": "fs:rename", "input": {"files": [{"from": "a.txt", "to": "sub/b.txt"}]}},
        {"id": "l", "action": "debug:log", "input": {"listWorkspace": True}},
    ], skeleton={"a.txt": "a", "x.tmp": "", "deep/y.tmp": "", "deep/keep.md": "k"})
    result = await _run(template, tmp_path)
    assert result.ok, result.error
    assert "info: Workspace:\n  - deep/keep.md\n  - sub/b.txt" in result.log
    rename_again = _template(tmp_path, [{"id": "r", "action": "fs:rename",
                                          "input": {"files": [{"from": "deep/keep.md", "to": "sub/b.txt"}]}}])
    again = await execute(rename_again, {}, secrets={}, user=Runner(), workspace=tmp_path / "ws", deps=ActionDeps())
    assert not again.ok and "already exists" in (again.error or "")


def test_catalog_write_yaml_is_the_yaml_packages_style() -> None:
    assert yaml_stringify({"a": {"b": ["x", {"c": 1, "d": True}], "e": None, "f": "yes: no", "g": "123"},
                           "h": [], "i": "line1\nline2\n"}) == (
        'a:\n  b:\n    - x\n    - c: 1\n      d: true\n  e: null\n  f: "yes: no"\n  g: "123"\nh: []\n'
        "i: |\n  line1\n  line2\n")
    long = "word " * 30
    folded = yaml_stringify({"description": long.strip()})
    assert all(len(line) <= 80 for line in folded.splitlines()) and folded.count("\n") > 1


def test_the_registry_refuses_duplicates_and_bad_plugins() -> None:
    registry = ActionRegistry(list(default_registry()))
    with pytest.raises(ActionLoadError, match="duplicate action id 'debug:log'"):
        registry.register(Action(id="debug:log", run=default_registry().get("debug:log").run))  # type: ignore[union-attr]
    # a plugin may provide what is only a Backstage placeholder here
    assert not registry.provided("notification:send")
    registry.register(Action(id="notification:send", run=default_registry().get("debug:log").run))  # type: ignore[union-attr]
    assert registry.provided("notification:send")
    with pytest.raises(ActionLoadError, match="is not an Action"):
        registry.register("nope")  # type: ignore[arg-type]
    assert {"fetch:template", "fetch:plain", "fetch:plain:file", "fs:delete", "fs:rename", "debug:log",
            "catalog:write", "publish:file", "publish:github", "catalog:register"} <= set(default_registry().ids())
