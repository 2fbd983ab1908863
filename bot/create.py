"""``callboard create``: run a Software Template from the terminal (template authors and CI).

The values come from ``--values FILE`` (YAML or JSON, nested allowed) and ``--value KEY=VALUE``
(``a.b=c`` for a nested key; each value read as its parameter's JSON-Schema type says). What the
web form does first is done here too, by the same code as the Slack modal
(``scaffolder.forms``): the parameters' defaults are applied as Backstage's form applies them,
and the values are validated (JSON Schema plus the pickers' rules) before anything runs. At a
terminal, what is missing or invalid is asked for as prompts (``bot/shell/forms.py``: the same
validation, completion for pickers); elsewhere each field error is listed and nothing runs.

A real run is a task (``scaffolder.tasks``): stored in the database, run by this process only
(an unshared runner: it never takes a server's task), each step printed as it ends, then the
output's links and text. ``--dry-run`` runs the engine directly and stores nothing.

Who may run a template (``scaffolder.permissions``) is checked before any value is asked for, and
again when the task is submitted. A refusal is not a value error: it exits 1, with the reason.

Exit codes: 0 done; 1 the task failed (a render error, a refused expression or path, an action
error) or the person may not run the template; 2 invalid values (each field error listed) or usage.
"""

from __future__ import annotations

import copy

import asyncio
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

from callboard.commands.forms import FieldError, FieldType
from callboard.scaffolder import forms
from callboard.scaffolder.actions.api import ActionDeps
from callboard.scaffolder.catalog import find_template
from callboard.scaffolder.engine import StepEvent, execute
from callboard.scaffolder.model import Runner, TemplateDef, TemplateError
from callboard.scaffolder.paths import walk_workspace
from callboard.scaffolder.pickers import CatalogPickers
from callboard.storage.tasks import FINISHED
from callboard.scaffolder.tasks import NotAllowed, StepFinished, TaskFinished, TaskNote, Who

from .shell.forms import Complete, FormAborted, Question, ask_values, catalog_complete, terminal_prompt
from .shell.render import clean

__all__ = ["CreateRequest", "UsageProblem", "parse_assignments", "read_values_file", "run_create"]

#: How often a real run's task is read back while waiting (a missed notice never hangs the CLI).
POLL_S = 1.0


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




def _echo(text: str, *, err: bool = False) -> None:
    click.echo(clean(text), err=err)  # template-controlled text: no escape sequences reach the terminal


def _with_secrets(template: TemplateDef, values: Mapping[str, Any], secrets: Mapping[str, str]) -> tuple[
        dict[str, Any], dict[str, Any]]:
    """(values to validate, values to run with): a Secret field given by ``--secret NAME=…`` holds
    the secret in the first (its rules apply to the real value) and its mask in the second, as
    Backstage's SecretInput submits it."""
    real, masked = forms.copy_values(values), forms.copy_values(values)
    for page in template.parameters:
        for spec in forms.field_specs(page, real):
            name = spec.path[-1]
            if spec.secret and name in secrets:
                forms.set_path(real, spec.path, secrets[name])
                forms.set_path(masked, spec.path, forms.mask_secret(secrets[name]))
    return real, masked


def _list_errors(template: TemplateDef, errors: Sequence[FieldError]) -> int:
    _echo(f"Invalid values for {template.name} ({len(errors)}):", err=True)
    for e in errors:
        _echo(f"  {e.field}: {e.message}" if e.field else f"  {e.message}", err=True)
    return 2


def _refusal(template: TemplateDef, user: Runner) -> str:
    who = user.ref if user.ref else "someone the catalog does not know (run as your catalog user: --as USER_REF)"
    return (f"Refused: {who} may not run the template {template.title} ({template.ref}); it is kept for some "
            "teams (scaffolder.permissions).")


def _print_outcome(*, ok: bool, dry_run: bool, output: Mapping[str, Any] | None, error: str | None,
                   failed_step: str | None, task_id: str | None = None) -> None:
    if ok:
        _echo("Dry-run done." if dry_run else f"Done (task {task_id}).")
    else:
        where = f" at step {failed_step}" if failed_step else ""
        task = f" (task {task_id})" if task_id else ""
        _echo(f"Failed{where}{task}: {error}", err=True)
    output = output or {}
    links = output.get("links")
    for link in links if isinstance(links, list) else []:
        if isinstance(link, Mapping):
            target = str(link.get("url") or link.get("entityRef") or "")
            title = str(link.get("title") or "")
            _echo(f"  {title or target}" + (f": {target}" if target and title else ""))
    texts = output.get("text")
    for text in texts if isinstance(texts, list) else []:
        if isinstance(text, Mapping):
            _echo(f"  {text.get('title') or ''}\n    " + str(text.get("content") or "").replace("\n", "\n    ").rstrip())


async def _ask(template: TemplateDef, values: Mapping[str, Any], secrets: Mapping[str, str], *,
               prompt: Callable[[Question], str], complete: Complete | None,
               known: Callable[[str], bool] | None) -> tuple[dict[str, Any], dict[str, str]]:
    """The form's fields asked at the terminal (off the event loop: reading stdin blocks)."""
    answers = await asyncio.to_thread(ask_values, template, values, prompt=prompt, complete=complete,
                                      secrets=secrets, known=known)
    return answers.values, {**secrets, **answers.secrets}


def _entity_names_resolved(template: TemplateDef, values: dict[str, Any], catalog: Any) -> dict[str, Any]:
    """``--value owner=payments-team`` as the form's picker would take it: an entity field given a
    bare name the catalog resolves to one entity of the field's kinds gets that entity's ref
    (anything else is left as typed, for the validation to name)."""
    out = copy.deepcopy(values)
    for page in template.parameters:
        for spec in forms.field_specs(page, out):
            holder: Any = out
            for part in spec.path[:-1]:
                holder = holder.get(part) if isinstance(holder, dict) else None
            value = holder.get(spec.path[-1]) if isinstance(holder, dict) else None
            if spec.field.type is not FieldType.ENTITY or not isinstance(value, str) or not value.strip() \
                    or ":" in value:
                continue
            match = catalog.search(value.strip(), kinds=[k.lower() for k in spec.field.kinds] or None).match
            if match is not None:
                holder[spec.path[-1]] = match.key
    return out


async def run_create(request: CreateRequest, *, open_app: Callable[[], Awaitable[Any]] | None,
                     interactive: bool | None = None, prompt: Callable[[Question], str] | None = None) -> int:
    """Run ``request``; prints the result; returns the exit code. ``open_app`` opens the Callboard
    app (needed for catalog templates, ``--as`` and real runs); ``prompt`` asks one field at a
    terminal (prompt_toolkit's, unless a test scripts it)."""
    interactive = sys.stdin.isatty() if interactive is None else interactive
    app = None
    is_path = Path(request.template).expanduser().exists() or request.template.endswith((".yaml", ".yml"))
    try:
        if not request.dry_run and request.workspace is not None:
            raise UsageProblem("--workspace is for --dry-run (a real run's files go where its publish step puts them)")
        if open_app is not None and (not is_path or request.user_ref or not request.dry_run):
            app = await open_app()
        if app is None and not request.dry_run:
            raise UsageProblem("a real run needs the database (tasks are stored there); try --dry-run")
        try:
            template = await find_template(request.template, app.catalog if app is not None else None)
        except TemplateError as exc:
            raise UsageProblem(str(exc)) from None
        user = await _runner(app, request.user_ref)
        if app is not None and not await app.permissions.may_run(user.ref, template):
            _echo(_refusal(template, user), err=True)
            return 1
        unshowable = forms.unsupported(template)
        if unshowable:
            return _list_errors(template, [FieldError(field="", message=f"This template cannot be run: {p}")
                                           for p in unshowable])
        given = _merge(request.values, parse_assignments(request.value_pairs, template))
        values = forms.apply_defaults(template, given)
        if app is not None:
            values = _entity_names_resolved(template, values, app.catalog)
        secrets = dict(request.secrets)
        pickers = CatalogPickers(app.catalog) if app is not None else None
        known = pickers.known if pickers is not None else None
        real, values = _with_secrets(template, values, secrets)
        errors = forms.validate(template, real, known=known)
        if errors and interactive:
            complete = catalog_complete(app.catalog, await pickers.teams(user.ref)) \
                if app is not None and pickers is not None else None
            try:
                values, secrets = await _ask(template, values, secrets, prompt=prompt or terminal_prompt,
                                             complete=complete, known=known)
            except FormAborted as exc:
                return _list_errors(template, exc.errors)
            real, values = _with_secrets(template, values, secrets)
            errors = forms.validate(template, real, known=known)
        if errors:
            return _list_errors(template, errors)
        if request.dry_run:
            return await _dry_run(request, template, values, secrets, user, app)
        return await _real_run(request, template, values, secrets, user, app)
    except UsageProblem as exc:
        _echo(f"Error: {exc}", err=True)
        return 2
    finally:
        if app is not None:
            await app.close()


async def _dry_run(request: CreateRequest, template: TemplateDef, values: Mapping[str, Any],
                   secrets: Mapping[str, str], user: Runner, app: Any) -> int:
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
            _echo(f"  {event.status:<7} {event.name}", err=True)

    try:
        result = await execute(template, values, secrets=secrets, user=user, workspace=workspace,
                               deps=app.tasks.deps if app is not None else ActionDeps(), dry_run=True, on_step=progress)
        files = list(walk_workspace(workspace)) if workspace.is_dir() else []
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    if request.fmt == "json":
        click.echo(json.dumps({
            "ok": result.ok, "template": template.ref, "dry_run": True, "output": result.output,
            "error": result.error, "failed_step": result.failed_step,
            "steps": [{"id": e.step_id, "name": e.name, "status": e.status} for e in result.steps
                      if e.status != "started"],
            "log": list(result.log), "files": files,
            "workspace": str(request.workspace) if request.workspace is not None else None,
        }, indent=2, ensure_ascii=False))
    else:
        _print_outcome(ok=result.ok, dry_run=True, output=result.output, error=result.error,
                       failed_step=result.failed_step)
        if result.ok:
            _echo(f"Files{f' (in {request.workspace})' if request.workspace is not None else ''}:")
            for f in files:
                _echo(f"  {f}")
    return 0 if result.ok else 1


async def _real_run(request: CreateRequest, template: TemplateDef, values: Mapping[str, Any],
                    secrets: Mapping[str, str], user: Runner, app: Any) -> int:
    """The run as a task of this process; each step printed as it ends; the outcome read back from
    the database (what it stored: secrets masked)."""
    ended = asyncio.Event()

    async def notify(note: TaskNote) -> None:
        if isinstance(note, StepFinished):
            if request.fmt == "text":
                _echo(f"  {note.step.status:<7} {note.step.name}", err=True)
        elif isinstance(note, TaskFinished):
            ended.set()

    app.tasks.shared = False  # this process runs its own task and nobody else's
    try:
        task_id = await app.tasks.start(template, values, secrets, user, notify,
                                        who=Who(platform="cli", user=user.ref))
    except NotAllowed as exc:
        _echo(f"Refused: {exc}", err=True)
        return 1
    if request.fmt == "text":
        _echo(f"Task {task_id}: running {template.title} ({template.ref})", err=True)
    while True:
        try:
            await asyncio.wait_for(ended.wait(), POLL_S)
        except asyncio.TimeoutError:
            pass
        task = await app.tasks.get(task_id)
        if task is not None and task.status in FINISHED:
            break
    ok = task.status == "completed"
    if request.fmt == "json":
        click.echo(json.dumps({
            "ok": ok, "task": task.id, "template": template.ref, "dry_run": False, "status": task.status,
            "output": task.output or {}, "error": task.error, "failed_step": task.failed_step,
            "steps": [{"id": s.get("id"), "name": s.get("name"), "status": s.get("status"), "log": s.get("log")}
                      for s in task.steps],
        }, indent=2, ensure_ascii=False))
    else:
        _print_outcome(ok=ok, dry_run=False, output=task.output, error=task.error or task.status,
                       failed_step=task.failed_step, task_id=task.id)
    return 0 if ok else 1
