"""Runs a template's steps as Backstage's scaffolder (``NunjucksWorkflowRunner``) does: each step's
``if:`` and ``each:``, its input rendered in the sandbox and checked against the action's schema,
its outputs as ``steps.<id>.output``, then ``spec.output`` rendered.

A dry-run runs the actions that support one and skips the others with their example outputs, and
logs each step's input with secrets as ``***``. Secret values are masked as ``***`` in every log
line and error, in a real run too. Failures end the run with a ``RunResult`` naming the step
(``ok=False``); nothing here raises for a template's fault.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from .actions.api import Action, ActionContext, ActionDeps, ActionError
from .expressions import UNDEFINED, ExpressionError, Templater, is_truthy, js_json, js_string, js_text, render_value
from .model import Runner, TemplateDef
from .registry import ActionRegistry, default_registry

log = logging.getLogger(__name__)

__all__ = ["execute", "StepEvent", "RunResult", "LogEntry", "Masker", "check_input", "normalized_steps",
           "DRY_RUN_TEMPLATE_REF"]

StepStatus = Literal["started", "done", "skipped", "failed"]

# The template ref Backstage's dry-run gives actions (catalog:write's source-template annotation).
DRY_RUN_TEMPLATE_REF = "template:default/dry-run"


@dataclass(frozen=True, slots=True)
class StepEvent:
    step_id: str
    name: str
    status: StepStatus
    log: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One line of the task log, as Backstage's task events carry it (``status`` on step boundaries:
    processing, completed, skipped, failed)."""

    message: str
    step_id: str | None = None
    status: str | None = None


@dataclass(frozen=True, slots=True)
class RunResult:
    ok: bool
    output: dict[str, Any]
    error: str | None
    failed_step: str | None
    log: tuple[str, ...]
    steps: tuple[StepEvent, ...]
    entries: tuple[LogEntry, ...] = ()


class Masker:
    """Replaces every secret value with ``***``."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        values = {str(v) for v in secrets.values() if v is not None and str(v) != ""}
        self._values = sorted(values, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, "***")
        return text


def normalized_steps(template: TemplateDef) -> list[dict[str, Any]]:
    """The steps with Backstage's defaults: ``id`` ``step-<n>``, ``name`` the action."""
    steps = []
    for i, step in enumerate(template.steps):
        s = dict(step)
        s["id"] = str(s.get("id") or f"step-{i + 1}")
        s["name"] = str(s.get("name") or s["action"])
        steps.append(s)
    return steps


_TYPES: Mapping[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool)
    or (isinstance(v, float) and math.isfinite(v) and v == int(v)),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, Mapping),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def check_input(schema: Mapping[str, Any], value: Any, path: str = "instance") -> list[str]:
    """The errors of ``value`` against the JSON Schema subset actions declare (type, required,
    properties, items, enum), worded as the ``jsonschema`` package Backstage uses words them."""
    errors: list[str] = []
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_TYPES.get(t, lambda v: True)(value) for t in names):
            return [f"{path} is not of a type(s) {','.join(names)}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path} is not one of enum values: {','.join(str(e) for e in schema['enum'])}")
    if isinstance(value, Mapping):
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f'{path} requires property "{name}"')
        for name, sub in (schema.get("properties") or {}).items():
            if name in value and isinstance(sub, Mapping):
                errors.extend(check_input(sub, value[name], f"{path}.{name}"))
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            errors.extend(check_input(schema["items"], item, f"{path}[{i}]"))
    return errors


def _each_text(each: Mapping[str, Any]) -> str:
    # JSON.stringify(iteration.each, (k, v) => k ? String(v) : v)
    return json.dumps({"key": str(each["key"]), "value": _js_string_value(each["value"])},
                      ensure_ascii=False, separators=(",", ":"))


def _js_string_value(value: Any) -> str:
    return js_string(value) if value is None or value is UNDEFINED else js_text(value)


async def execute(template: TemplateDef, values: Mapping[str, Any], *, secrets: Mapping[str, str], user: Runner,
                  workspace: Path, deps: ActionDeps, dry_run: bool = False, registry: ActionRegistry | None = None,
                  on_step: Callable[[StepEvent], Awaitable[None]] | None = None,
                  templater: Templater | None = None, task_id: str | None = None) -> RunResult:
    """Run ``template``'s steps in ``workspace`` with the submitted ``values``."""
    registry = registry or default_registry()
    integrations = deps.config.get("integrations") if isinstance(deps.config, Mapping) else None
    templater = templater or Templater.shared(integrations=integrations if isinstance(integrations, Mapping) else None)
    mask = Masker(secrets)
    entries: list[LogEntry] = []
    events: list[StepEvent] = []
    step_lines: list[str] = []

    def emit(message: str, step_id: str | None = None, status: str | None = None) -> None:
        entry = LogEntry(mask(message), step_id, status)
        entries.append(entry)
        if step_id is not None:
            step_lines.append(entry.message)

    async def event(step_id: str, name: str, status: StepStatus) -> None:
        ev = StepEvent(step_id, name, status, tuple(step_lines))
        events.append(ev)
        if on_step is not None:
            await on_step(ev)

    def result(ok: bool, output: dict[str, Any] | None = None, error: str | None = None,
               failed_step: str | None = None) -> RunResult:
        return RunResult(ok=ok, output=output or {}, error=mask(error) if error else None, failed_step=failed_step,
                         log=tuple(e.message for e in entries), steps=tuple(events), entries=tuple(entries))

    steps = normalized_steps(template)
    for i, step in enumerate(steps):
        if step["action"] not in registry:
            known = ", ".join(registry.ids())
            return result(False, error=f"step {step['id']!r} (spec.steps[{i}]) uses the unknown action "
                                       f"{step['action']!r}; actions: {known}", failed_step=step["id"])

    workspace.mkdir(parents=True, exist_ok=True)
    user_value: dict[str, Any] = {}
    if user.ref:
        user_value = {"ref": user.ref}
        if user.entity is not None:
            user_value["entity"] = dict(user.entity)
    context: dict[str, Any] = {
        "parameters": dict(values),
        "steps": {},
        "user": user_value,
        "context": {"task": {"id": task_id or str(uuid.uuid4())}},
    }
    redacted = {k: "***" for k in secrets}
    # Backstage's dry-run adds one step of its own (it collects the workspace's files), and counts it.
    emit(f"Starting up task with {len(steps) + (1 if dry_run else 0)} steps")
    template_for_actions = replace(template, ref=DRY_RUN_TEMPLATE_REF) if dry_run else template

    done: list[tuple[Action, ActionContext]] = []  # steps that may take back what they did

    async def rollback() -> None:
        """A step failed: the steps before it that can take back their work do, newest first (a
        catalog:register's entity goes; a published repository stays, as in Backstage)."""
        for did, ctx_done in reversed(done):
            assert did.undo is not None
            try:
                await did.undo(ctx_done)
                emit(f"info: Took back step {ctx_done.step_id} ({did.id}) after the failure", ctx_done.step_id)
            except Exception as exc:  # noqa: BLE001 - the others still run; the failure is reported
                log.warning("undo of step %s (%s) failed: %s", ctx_done.step_id, did.id, type(exc).__name__)
                emit(f"warning: Could not take back step {ctx_done.step_id} ({did.id}): {exc}", ctx_done.step_id)

    for step in steps:
        step_id, name, action_id = step["id"], step["name"], step["action"]
        step_lines.clear()
        emit(f"Beginning step {name}", step_id, "processing")
        await event(step_id, name, "started")
        try:
            condition = step.get("if")
            if condition is False or (isinstance(condition, str) and step.get("each") is None
                                      and not is_truthy(render_value(condition, context, templater, where="if"))):
                emit(f"Skipping step {step_id} because its if condition was false", step_id, "skipped")
                await event(step_id, name, "skipped")
                continue
            action = registry.get(action_id)
            assert action is not None  # checked above
            if dry_run:
                debug = render_value(step.get("input") or {}, {**context, "secrets": redacted}, templater,
                                     where="input")
                emit(f"info: Running {action_id} in dry-run mode with inputs (secrets redacted): "
                     f"{js_json(debug, 2)}", step_id)
                if not action.supports_dry_run:
                    emit(f"Skipping because {action_id} does not support dry-run", step_id, "skipped")
                    context["steps"][step_id] = {"output": json.loads(js_json(action.example_outputs) or "{}")}
                    await event(step_id, name, "skipped")
                    continue
            full = {**context, "secrets": dict(secrets)}
            iterations: list[dict[str, Any]]
            if step.get("each") is not None:
                resolved = render_value(step["each"], full, templater, where="each")
                if not resolved or resolved is UNDEFINED:
                    raise ActionError(f'Invalid value on action {action_id}.each parameter, "{step["each"]}" '
                                      "cannot be resolved to a value")
                pairs = (list(resolved.items()) if isinstance(resolved, Mapping)
                         else [(str(k), v) for k, v in enumerate(resolved)] if isinstance(resolved, list)
                         else [(str(k), v) for k, v in enumerate(str(resolved))])
                iterations = [{"each": {"key": k, "value": v}} for k, v in pairs]
            else:
                iterations = [{}]
            runs = []
            for it in iterations:
                ctx_i = {**full, **it}
                should_run = "each" not in it or not condition or is_truthy(
                    render_value(condition, ctx_i, templater, where="if"))
                rendered = render_value(step.get("input") or {}, ctx_i, templater, where="input")
                if rendered is UNDEFINED or not isinstance(rendered, Mapping):
                    rendered = {}
                runs.append((it, should_run, rendered))
            for it, should_run, rendered in runs:
                if not should_run:
                    continue
                label = f"{action_id}[{it['each']['key']}]" if "each" in it else action_id
                if action.input_schema is not None:
                    problems = check_input(action.input_schema, rendered)
                    if problems:
                        raise ActionError(f"Invalid input passed to action {label}, {', '.join(problems)}")
            step_output: dict[str, Any] = {}
            for it, should_run, rendered in runs:
                if "each" in it:
                    verb = "Running" if should_run else "Skipping"
                    emit(f"info: {verb} step each: {_each_text(it['each'])}", step_id)
                    if not should_run:
                        continue
                def step_log(line: str, sid: str = step_id) -> None:
                    emit(f"info: {line}", sid)

                ctx = ActionContext(step_id=step_id, workspace=workspace, input=rendered, secrets=dict(secrets),
                                    user=user, template=template_for_actions, dry_run=dry_run, deps=deps,
                                    log=step_log)
                await action.run(ctx)
                if action.undo is not None and not dry_run:
                    done.append((action, ctx))
                for key, value in ctx.outputs.items():
                    if "each" in it:
                        step_output.setdefault(key, []).append(value)
                    else:
                        step_output[key] = value
            context["steps"][step_id] = {"output": step_output}
            emit(f"Finished step {name}", step_id, "completed")
            await event(step_id, name, "done")
        except (ActionError, ExpressionError) as exc:
            message = str(exc)
            emit(message, step_id, "failed")
            await rollback()
            await event(step_id, name, "failed")
            return result(False, error=message, failed_step=step_id)
        except OSError as exc:
            message = f"step {step_id!r} ({action_id}): {exc.strerror or exc}"
            emit(message, step_id, "failed")
            await rollback()
            await event(step_id, name, "failed")
            return result(False, error=message, failed_step=step_id)
        except BaseException:
            await rollback()  # a bug or a cancel: still no half-registered entity
            raise

    try:
        output = render_value(dict(template.output), context, templater, where="spec.output")
    except ExpressionError as exc:
        emit(f"spec.output: {exc}")
        return result(False, error=f"{exc}", failed_step=None)
    return result(True, output=output if isinstance(output, dict) else {})
