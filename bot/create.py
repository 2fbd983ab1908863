"""``callboard create``: run a Software Template from the terminal (template authors and CI).

The values come from ``--values FILE`` (YAML or JSON, nested allowed) and ``--value KEY=VALUE``
(``a.b=c`` for a nested key; each value read as its parameter's JSON-Schema type says). What the
web form would do first is done here too: parameter defaults are applied, missing required values
are asked for at a terminal (an error elsewhere), and the values are validated through the
``validate`` seam before anything runs. Exit codes: 0 done, 1 the task failed, 2 invalid values
or usage.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import yaml

from callboard.scaffolder.actions.api import ActionDeps
from callboard.scaffolder.catalog import find_template
from callboard.scaffolder.engine import RunResult, StepEvent, execute
from callboard.scaffolder.model import Runner, TemplateDef, TemplateError
from callboard.scaffolder.paths import walk_workspace

from .shell.render import clean

__all__ = ["CreateRequest", "Validator", "required_values", "parse_assignments", "apply_defaults", "run_create",
           "UsageProblem"]

#: Checks submitted values against a template's parameters; one message per field error, naming the
#: field. The default checks ``required`` only; the forms module's full validation plugs in here.
Validator = Callable[[TemplateDef, Mapping[str, Any]], Sequence[str]]


class UsageProblem(Exception):
    """Bad command-line input (exit 2); the message says what."""


@dataclass(frozen=True, slots=True)
class CreateRequest:
    template: str
    values: Mapping[str, Any] = field(default_factory=dict)  # from --values FILE
    value_pairs: tuple[str, ...] = ()  # --value KEY=VALUE, typed once the template is known
    secrets: Mapping[str, str] = field(default_factory=dict)
    user_ref: str | None = None
    dry_run: bool = False
    workspace: Path | None = None
    fmt: str = "text"


def _properties(template: TemplateDef) -> dict[str, Mapping[str, Any]]:
    props: dict[str, Mapping[str, Any]] = {}
    for page in template.parameters:
        for name, schema in (page.get("properties") or {}).items():
            if isinstance(schema, Mapping):
                props.setdefault(str(name), schema)
    return props


def _required(template: TemplateDef) -> list[tuple[str, Mapping[str, Any]]]:
    props = _properties(template)
    out = []
    for page in template.parameters:
        for name in page.get("required") or []:
            out.append((str(name), props.get(str(name), {})))
    return out


def required_values(template: TemplateDef, values: Mapping[str, Any]) -> list[str]:
    """The default ``Validator``: every required parameter has a value."""
    return [f"{name}: {schema.get('title') or name} is required" for name, schema in _required(template)
            if values.get(name) in (None, "", [])]


def _typed(raw: str, schema: Mapping[str, Any], key: str) -> Any:
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "boolean" in kinds:
        low = raw.strip().lower()
        if low in ("true", "yes", "y", "1", "on"):
            return True
        if low in ("false", "no", "n", "0", "off"):
            return False
        raise UsageProblem(f"--value {key}={raw}: {key} is a boolean (true or false)")
    if "integer" in kinds or "number" in kinds:
        try:
            number = float(raw)
        except ValueError:
            raise UsageProblem(f"--value {key}={raw}: {key} is a number") from None
        return int(number) if number.is_integer() else number
    if "array" in kinds or "object" in kinds:
        try:
            parsed = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise UsageProblem(f"--value {key}: not YAML/JSON: {exc}") from None
        if "array" in kinds and isinstance(parsed, str):
            return [p.strip() for p in parsed.split(",") if p.strip()]
        return parsed
    return raw


def parse_assignments(pairs: Sequence[str], template: TemplateDef | None, *, what: str = "--value") -> dict[str, Any]:
    """``KEY=VALUE`` pairs into a mapping; ``a.b=c`` sets a nested key; values typed by the schema."""
    props = _properties(template) if template is not None else {}
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UsageProblem(f"{what} {pair!r}: expected KEY=VALUE")
        parts = key.split(".")
        schema: Mapping[str, Any] = props.get(parts[0], {})
        for part in parts[1:]:
            sub = (schema.get("properties") or {}).get(part) if isinstance(schema, Mapping) else None
            schema = sub if isinstance(sub, Mapping) else {}
        value: Any = _typed(raw, schema, key) if template is not None else raw
        target = out
        for part in parts[:-1]:
            nxt = target.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise UsageProblem(f"{what} {key}: {part} is already a value, not a mapping")
            target = nxt
        target[parts[-1]] = value
    return out


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def read_values_file(path: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageProblem(f"--values {path}: {exc.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UsageProblem(f"--values {path}: not YAML or JSON: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageProblem(f"--values {path}: must hold a mapping of parameter names to values")
    return data


def apply_defaults(template: TemplateDef, values: Mapping[str, Any]) -> dict[str, Any]:
    """What Backstage's web form submits for parameters left empty: their JSON-Schema ``default``."""
    out = dict(values)
    for name, schema in _properties(template).items():
        if name not in out and "default" in schema:
            out[name] = schema["default"]
    return out


def _ask_missing(template: TemplateDef, values: dict[str, Any], interactive: bool) -> None:
    missing = [(n, s) for n, s in _required(template) if values.get(n) in (None, "", [])]
    if not missing or not interactive:
        return
    for name, schema in missing:
        label = str(schema.get("title") or name)
        hint = f" ({schema['description']})" if schema.get("description") else ""
        choices = schema.get("enum")
        raw = click.prompt(clean(f"{label}{hint}"), type=click.Choice([str(c) for c in choices]) if choices else str,
                           hide_input=schema.get("ui:field") == "Secret" or schema.get("ui:widget") == "password",
                           err=True)
        values[name] = _typed(raw, schema, name)


async def _runner(app: Any, ref: str | None) -> Runner:
    if ref is None:
        return Runner()
    key = ref if ":" in ref else f"user:default/{ref}"
    key = key if "/" in key else key.replace(":", ":default/", 1)
    key = key.lower()
    entity = await app.catalog.get(key) if app is not None else None
    if entity is None:
        raise UsageProblem(f"--as {ref}: no such user in the catalog")
    return Runner(ref=key, entity=entity.data, groups=tuple(entity.related("memberOf")))


def _print_text(result: RunResult, request: CreateRequest, files: list[str], workspace: Path | None) -> None:
    echo = lambda s: click.echo(clean(s))  # noqa: E731 (template-controlled text: no escape sequences)
    if result.ok:
        echo("Dry-run done." if request.dry_run else "Done.")
    else:
        where = f" at step {result.failed_step}" if result.failed_step else ""
        click.echo(clean(f"Failed{where}: {result.error}"), err=True)
    for link in result.output.get("links") or []:
        if isinstance(link, Mapping):
            target = link.get("url") or link.get("entityRef") or ""
            echo(f"  {link.get('title') or target}" + (f": {target}" if target and link.get("title") else ""))
    for text in result.output.get("text") or []:
        if isinstance(text, Mapping):
            echo(f"  {text.get('title') or ''}\n    " + str(text.get("content") or "").replace("\n", "\n    ").rstrip())
    if request.dry_run and result.ok:
        shown = f" (in {workspace})" if workspace is not None else ""
        echo(f"Files{shown}:")
        for f in files:
            echo(f"  {f}")


async def run_create(request: CreateRequest, *, open_app: Callable[[], Awaitable[Any]] | None,
                     validate: Validator = required_values, interactive: bool | None = None,
                     deps_config: Mapping[str, Any] | None = None) -> int:
    """Run ``request``; prints the result; returns the exit code. ``open_app`` opens the Callboard
    app (needed for catalog templates, ``--as`` and real runs); the caller closes nothing."""
    interactive = sys.stdin.isatty() if interactive is None else interactive
    app = None
    is_path = Path(request.template).expanduser().exists() or request.template.endswith((".yaml", ".yml"))
    try:
        if open_app is not None and (not is_path or request.user_ref or not request.dry_run):
            app = await open_app()
        try:
            template = await find_template(request.template, app.catalog if app is not None else None)
        except TemplateError as exc:
            raise UsageProblem(str(exc)) from None
        values = apply_defaults(template, _merge(request.values, parse_assignments(request.value_pairs, template)))
        _ask_missing(template, values, interactive)
        problems = list(validate(template, values))
        if problems:
            click.echo(f"Invalid values for {template.name} ({len(problems)}):", err=True)
            for p in problems:
                click.echo(clean(f"  {p}"), err=True)
            return 2
        user = await _runner(app, request.user_ref)
        if request.workspace is not None:
            workspace = request.workspace
            if workspace.exists() and (not workspace.is_dir() or any(workspace.iterdir())):
                raise UsageProblem(f"--workspace {workspace}: must be an empty folder (or not exist yet)")
            temp = None
        else:
            temp = Path(tempfile.mkdtemp(prefix="callboard-create-"))
            workspace = temp / "workspace"

        async def progress(event: StepEvent) -> None:
            if request.fmt == "text" and event.status != "started":
                click.echo(clean(f"  {event.status:<7} {event.name}"), err=True)

        try:
            result = await execute(template, values, secrets=request.secrets, user=user, workspace=workspace,
                                   deps=ActionDeps(app=app, config=deps_config or {}), dry_run=request.dry_run,
                                   on_step=progress)
            files = list(walk_workspace(workspace)) if workspace.is_dir() else []
        finally:
            if temp is not None:
                shutil.rmtree(temp, ignore_errors=True)
        if request.fmt == "json":
            click.echo(json.dumps({
                "ok": result.ok, "template": template.ref, "dry_run": request.dry_run, "output": result.output,
                "error": result.error, "failed_step": result.failed_step,
                "steps": [{"id": e.step_id, "name": e.name, "status": e.status} for e in result.steps
                          if e.status != "started"],
                "log": list(result.log), "files": files,
                "workspace": str(request.workspace) if request.workspace is not None else None,
            }, indent=2, ensure_ascii=False))
        else:
            _print_text(result, request, files, request.workspace)
        return 0 if result.ok else 1
    except UsageProblem as exc:
        click.echo(clean(f"Error: {exc}"), err=True)
        return 2
    finally:
        if app is not None:
            await app.close()
