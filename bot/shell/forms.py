"""A template's form as terminal prompts, for ``callboard create``: the pages of the Slack modal,
asked one field at a time with the same validation (``scaffolder.forms``) and, for pickers,
completion from the catalog (the person's teams first).

``ask_values`` asks what is missing page by page: required fields without a value (every field
with ``ask_optional``), then again each field the page's rules reject, with the reason. Fields a
previous answer turns on are asked as they appear. The prompt is injected (prompt_toolkit's
``prompt`` at a terminal, a scripted function in tests), so nothing here needs a TTY.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from callboard.catalog.service import Catalog
from callboard.commands.forms import Choice, Field, FieldError, FieldType
from callboard.scaffolder import forms as f
from callboard.scaffolder.model import TemplateDef
from callboard.scaffolder.pickers import rank

from .render import clean

__all__ = ["Answers", "FormAborted", "PickerCompleter", "Question", "ask_values", "catalog_complete",
           "terminal_prompt"]

#: How often one field is asked before giving up (a script answering the same wrong thing forever).
MAX_TRIES = 5


@dataclass(frozen=True, slots=True)
class Question:
    """One prompt: what to show, whether to hide what is typed, what Enter alone keeps."""

    message: str
    field: Field
    password: bool = False
    default: str = ""  # what Enter alone answers (shown in the message)
    completer: Completer | None = None


@dataclass(frozen=True, slots=True)
class Answers:
    values: dict[str, Any]  # the template's values (a secret's holds its mask, as in Backstage)
    secrets: dict[str, str]  # Secret fields' values, by field name


class FormAborted(ValueError):
    """The form could not be completed (a field answered wrongly too often, a page-wide error);
    ``errors`` names each field and what is wrong."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" if e.field else e.message for e in errors))
        self.errors = tuple(errors)


#: A picker's suggestions for what was typed so far: (field, text) -> choices.
Complete = Callable[[Field, str], Sequence[Choice]]


class PickerCompleter(Completer):
    """prompt_toolkit completion for a field: its choices, or a picker's suggestions."""

    def __init__(self, field: Field, complete: Complete | None) -> None:
        self.field = field
        self.complete = complete

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        text = document.text_before_cursor
        if self.field.type is FieldType.ENTITY and self.complete is not None:
            choices: Sequence[Choice] = self.complete(self.field, text)
        else:
            word = text.split(",")[-1].strip().lower() if self.field.type is FieldType.MULTI_CHOICE else text.lower()
            choices = [c for c in self.field.choices if c.value.lower().startswith(word) or word in c.label.lower()]
            text = text.split(",")[-1].lstrip() if self.field.type is FieldType.MULTI_CHOICE else text
        for choice in choices:
            yield Completion(choice.value, start_position=-len(text), display=clean(choice.label))


def catalog_complete(catalog: Catalog, teams: Sequence[tuple[str, str | None]] = (), *, limit: int = 20) -> Complete:
    """Suggestions for entity pickers from the catalog's fuzzy index, the person's ``teams`` (ref,
    title) first (what ``CatalogPickers.teams`` returns, read once before asking)."""

    def complete(field: Field, text: str) -> Sequence[Choice]:
        found = catalog.search(text, kinds=[k.lower() for k in field.kinds] or None, limit=limit) if text.strip() else None
        return rank(teams, [(c.key, c.title) for c in found.candidates] if found else [], query=text,
                    kinds=field.kinds, limit=limit)

    return complete


def terminal_prompt(question: Question) -> str:
    """Ask at a terminal with prompt_toolkit (blocking: call it off the event loop)."""
    from prompt_toolkit import prompt

    return prompt(question.message, is_password=question.password, completer=question.completer,
                  complete_while_typing=question.completer is not None)


def _message(field: Field, shown: Any, error: str | None) -> str:
    parts = [clean(field.label)]
    if field.help:
        parts.append(f"({clean(field.help)})")
    if field.type is FieldType.CHOICE:
        parts.append("[" + " / ".join(clean(c.label) for c in field.choices) + "]")
    elif field.type is FieldType.MULTI_CHOICE:
        parts.append("[any of: " + ", ".join(clean(c.label) for c in field.choices) + "; comma-separated]")
    elif field.type is FieldType.STRINGS:
        parts.append("[comma-separated]")
    elif field.type is FieldType.BOOLEAN:
        parts.append("[Y/n]" if shown is True else "[y/N]")
    elif field.type is FieldType.REPO_URL:
        parts.append(f"[owner/repo or {field.hosts[0] if field.hosts else 'host'}?owner=…&repo=…]")
    elif field.type is FieldType.ENTITY:
        parts.append("[Tab: suggestions]")
    if not field.required:
        parts.append("(optional)")
    default = _shown(field, shown)
    if default and field.type is not FieldType.BOOLEAN:
        parts.append(f"[Enter: {clean(default)}]")
    head = f"[x] {clean(error)}\n" if error else ""
    return head + " ".join(parts) + ": "


def _shown(field: Field, value: Any) -> str:
    if value is None or field.type is FieldType.PASSWORD:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def ask_values(template: TemplateDef, values: Mapping[str, Any], *, prompt: Callable[[Question], str],
               complete: Complete | None = None, secrets: Mapping[str, str] | None = None,
               ask_optional: bool = False, hosts: Sequence[str] = ("github.com",),
               known: Callable[[str], bool] | None = None) -> Answers:
    """Ask what ``values`` lack, page by page; the values and secrets to run ``template`` with.
    ``FormAborted`` when a field is answered wrongly ``MAX_TRIES`` times or a page cannot be fixed
    by asking (its error names no field)."""
    current = f.apply_defaults(template, values)
    held: dict[str, str] = {}
    for page in template.parameters:
        for spec in f.field_specs(page, current, hosts=hosts):  # secrets given on the command line
            if spec.secret and secrets and spec.path[-1] in secrets:
                held[spec.path[-1]] = secrets[spec.path[-1]]
                f.set_path(current, spec.path, f.mask_secret(secrets[spec.path[-1]]))
    for page in template.parameters:
        _ask_page(page, current, held, prompt=prompt, complete=complete, ask_optional=ask_optional, hosts=hosts,
                  known=known, template=template)
    return Answers(values=current, secrets=held)


def _ask_page(page: Mapping[str, Any], current: dict[str, Any], held: dict[str, str], *,
              prompt: Callable[[Question], str], complete: Complete | None, ask_optional: bool,
              hosts: Sequence[str], known: Callable[[str], bool] | None, template: TemplateDef) -> None:
    asked: set[str] = set()
    again: dict[str, str] = {}  # field -> why it is asked again
    tries: dict[str, int] = {}
    while True:
        specs = [s for s in f.field_specs(page, current, hosts=hosts) if not s.hidden]
        todo = next((s for s in specs if s.name in again or (
            s.name not in asked and not (s.secret and s.path[-1] in held)
            and (ask_optional or (s.field.required and f.get_path(current, s.path) is None)))), None)
        if todo is not None:
            _ask_field(page, todo, current, held, again.pop(todo.name, None), tries, prompt=prompt, complete=complete,
                       hosts=hosts, known=known)
            asked.add(todo.name)
            current.update(f.apply_defaults(template, current))  # a branch just turned on brings its defaults
            continue
        errors = [e for e in f.validate_page(page, current, hosts=hosts, known=known)
                  if not _masked_secret(e, specs, current)]
        if not errors:
            return
        names = {s.name for s in specs}
        if any(e.field not in names for e in errors):
            raise FormAborted(errors)
        for error in errors:
            again.setdefault(error.field, error.message)


def _masked_secret(error: FieldError, specs: Sequence[f.FieldSpec], values: Mapping[str, Any]) -> bool:
    spec = next((s for s in specs if s.name == error.field), None)
    return spec is not None and spec.secret and f.is_secret_mask(f.get_path(values, spec.path))


def _ask_field(page: Mapping[str, Any], spec: f.FieldSpec, current: dict[str, Any], held: dict[str, str],
               error: str | None, tries: dict[str, int], *, prompt: Callable[[Question], str],
               complete: Complete | None, hosts: Sequence[str], known: Callable[[str], bool] | None) -> None:
    """Ask one field until its answer meets the field's own rules (the page's are checked after)."""
    field = spec.field
    while True:
        tries[field.name] = tries.get(field.name, 0) + 1
        if tries[field.name] > MAX_TRIES:
            raise FormAborted([FieldError(field=field.name, message=error or "No valid answer")])
        value_now = f.get_path(current, spec.path)
        shown = _shown(field, value_now)
        completer = PickerCompleter(field, complete) if field.choices or field.type is FieldType.ENTITY else None
        answer = prompt(Question(message=_message(field, value_now, error), field=field,
                                 password=field.type is FieldType.PASSWORD, default=shown, completer=completer))
        if answer == "" and spec.secret and spec.path[-1] in held and f.is_secret_mask(value_now):
            return  # Enter alone keeps a secret given before
        raw: Any = answer if answer != "" else (shown if shown else None)
        if field.type is FieldType.BOOLEAN and raw is None:
            raw = False
        value, problem = f.coerce(spec, raw, hosts=hosts)
        if problem is None and value is None and field.required:
            problem = "Required"
        if problem is None:
            trial = f.copy_values(current)
            f.set_path(trial, spec.path, value)
            # the field's own rules (a secret's on its real value: its mask keeps only the length)
            mine = [e for e in f.validate_page(page, trial, hosts=hosts, known=known) if e.field == field.name]
            problem = mine[0].message if mine else None
        if problem is None:
            if spec.secret and isinstance(value, str):
                held[spec.path[-1]] = value
                value = f.mask_secret(value)
            f.set_path(current, spec.path, value)
            return
        error = problem
