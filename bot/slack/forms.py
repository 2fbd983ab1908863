"""A ``Form`` page as a Slack modal, and a modal's submitted state back as values.

Each field is an ``input`` block whose ``block_id`` is the field's name, so Slack's
``response_action: errors`` puts a ``FieldError`` right under its field. The form's state
(which form, which page, the values so far) stays server-side; the modal carries only its key
in ``private_metadata``. Slack's limits (title 24, labels 2,000, options 100 of 75 characters)
are applied here, and the view is validated by ``slack_sdk``'s models before it is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slack_sdk.models.blocks import (
    CheckboxesElement,
    ContextBlock,
    ExternalDataSelectElement,
    ExternalDataMultiSelectElement,
    InputBlock,
    MarkdownTextObject,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticMultiSelectElement,
    StaticSelectElement,
)
from slack_sdk.models.blocks.block_elements import InputInteractiveElement
from slack_sdk.models.views import View as SlackView

from callboard.commands.forms import Field, FieldType, Form

from .render import Raw, md

__all__ = ["CALLBACK_ID", "MAX_BLOCKS", "FormTooBig", "form_errors", "form_values", "notice_view", "picker_action",
           "picker_kinds", "render_form"]

CALLBACK_ID = "callboard_form"
_TITLE = 24
_LABEL = 2000
_OPTIONS = 100
_OPTION_TEXT = 75
_ACTION = "value"
_TRUE = "true"
#: Slack shows at most 100 blocks in one view.
MAX_BLOCKS = 100
_SECTION_FIELDS = 10
_FIELD_TEXT = 2000


class FormTooBig(ValueError):
    """A page Slack cannot show in one view; the message says which and why, for the person."""


def _plain(text: str, limit: int) -> PlainTextObject:
    text = " ".join(text.split()) or "-"
    return PlainTextObject(text=text if len(text) <= limit else text[: limit - 1] + "…")


def _options(field: Field) -> list[Option]:
    return [Option(value=c.value[:150], text=_plain(c.label, _OPTION_TEXT)) for c in field.choices[:_OPTIONS]]


def _initial(field: Field, value: Any) -> Any:
    return value if value is not None else field.default


def _element(field: Field, value: Any) -> InputInteractiveElement:
    """The Block Kit input element for one field type."""
    current = _initial(field, value)
    placeholder = _plain(field.placeholder, 150) if field.placeholder else None
    kind = field.type
    if kind is FieldType.STRINGS and field.suggest:
        # suggested as the person types (the catalog's tags, and what was typed as a new one)
        picked = [Option(value=str(v)[:150], text=_plain(str(v), _OPTION_TEXT)) for v in current] \
            if isinstance(current, list) else []
        return ExternalDataMultiSelectElement(action_id=picker_action(("tag",)), min_query_length=0,
                                              initial_options=picked or None,
                                              placeholder=placeholder or _plain("Type a tag", 150),
                                              focus_on_load=field.autofocus)
    if kind in (FieldType.TEXT, FieldType.MULTILINE, FieldType.PASSWORD, FieldType.REPO_URL, FieldType.STRINGS):
        # Slack has no password input: the value is typed in the open and never shown back
        initial = None
        if kind is not FieldType.PASSWORD and current is not None:
            initial = ", ".join(str(v) for v in current) if isinstance(current, list) else str(current)
        return PlainTextInputElement(
            action_id=_ACTION, multiline=kind is FieldType.MULTILINE, initial_value=initial,
            placeholder=placeholder or (_plain("one or more, separated by commas", 150) if kind is FieldType.STRINGS
                                        else _plain("github.com?owner=…&repo=…", 150) if kind is FieldType.REPO_URL
                                        else None),
            min_length=field.min_length if kind is FieldType.TEXT else None,
            max_length=field.max_length if kind in (FieldType.TEXT, FieldType.MULTILINE) else None,
            focus_on_load=field.autofocus,
        )
    if kind in (FieldType.NUMBER, FieldType.INTEGER):
        return NumberInputElement(
            action_id=_ACTION, is_decimal_allowed=kind is FieldType.NUMBER,
            initial_value=str(current) if current is not None else None,
            min_value=str(field.minimum) if field.minimum is not None else None,
            max_value=str(field.maximum) if field.maximum is not None else None,
            placeholder=placeholder, focus_on_load=field.autofocus,
        )
    if kind is FieldType.BOOLEAN:
        option = Option(value=_TRUE, text=_plain(field.label, _OPTION_TEXT))
        return CheckboxesElement(action_id=_ACTION, options=[option], initial_options=[option] if current else None,
                                 focus_on_load=field.autofocus)
    if kind is FieldType.CHOICE:
        options = _options(field)
        chosen_option = next((o for o in options if o.value == str(current)), None)
        return StaticSelectElement(action_id=_ACTION, options=options, initial_option=chosen_option,
                                   placeholder=placeholder or _plain("Choose one", 150), focus_on_load=field.autofocus)
    if kind is FieldType.MULTI_CHOICE:
        options = _options(field)
        chosen = {str(v) for v in current} if isinstance(current, list) else set()
        return StaticMultiSelectElement(action_id=_ACTION, options=options,
                                        initial_options=[o for o in options if o.value in chosen] or None,
                                        placeholder=placeholder or _plain("Choose any", 150),
                                        focus_on_load=field.autofocus)
    if kind is FieldType.ENTITY:
        initial_option = Option(value=str(current)[:150], text=_plain(str(current), _OPTION_TEXT)) if current else None
        # the kinds ride in the action id: the options request names it, and nothing else of the form
        # nothing typed yet already offers something (the person's own teams)
        return ExternalDataSelectElement(action_id=picker_action(field.kinds), min_query_length=0,
                                         initial_option=initial_option,
                                         placeholder=placeholder or _plain("Search the catalog", 150),
                                         focus_on_load=field.autofocus)
    raise ValueError(f'Slack cannot show a field of type "{kind.value}" (field "{field.name}")')


def picker_action(kinds: tuple[str, ...]) -> str:
    """The action id of an entity picker offering ``kinds`` (``pick:`` alone: any kind)."""
    return ("pick:" + ",".join(k.lower() for k in kinds))[:255]


def picker_kinds(action_id: str) -> tuple[str, ...]:
    """The kinds a form's picker's action id names (see ``picker_action``); none for any other."""
    if not action_id.startswith("pick:"):
        return ()
    return tuple(k for k in action_id.removeprefix("pick:").split(",") if k)


def render_form(form: Form, key: str) -> dict[str, Any]:
    """The modal for the form's current page; submitting it comes back with ``key``."""
    page = form.current
    blocks: list[Any] = []
    if page.description:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=md(page.description), verbatim=True)))
    if len(form.pages) > 1:
        blocks.append(ContextBlock(elements=[PlainTextObject(text=f"Step {form.page + 1} of {len(form.pages)}: "
                                                                   f"{' '.join(page.title.split())[:100]}")]))
    if form.errors:  # shown in the view too: errors on another page's fields come with a page change
        labels = {f.name: f.label for p in form.pages for f in p.fields}
        lines = [f"{labels.get(e.field, e.field)}: {e.message}" if e.field else e.message for e in form.errors]
        blocks.append(SectionBlock(text=MarkdownTextObject(
            text=md(Raw(":warning: "), "\n".join(" ".join(line.split()) for line in lines), limit=2900), verbatim=True)))
    pairs = list(page.review)
    for i in range(0, len(pairs), _SECTION_FIELDS):  # a review: what will be submitted, label over value
        blocks.append(SectionBlock(fields=[
            MarkdownTextObject(text=md(Raw("*"), _one_line(label)[:200], Raw("*\n"), value or "-", limit=_FIELD_TEXT),
                               verbatim=True)
            for label, value in pairs[i:i + _SECTION_FIELDS]]))
    if len(blocks) + len(page.fields) > MAX_BLOCKS:
        raise FormTooBig(f"The page \"{' '.join(page.title.split())[:100]}\" of {' '.join(form.title.split())[:100]} "
                         f"has {len(page.fields)} fields, more than Slack shows in one dialog ({MAX_BLOCKS} blocks); "
                         "fill it in in the terminal with `callboard create`.")
    for field in page.fields:
        blocks.append(InputBlock(
            block_id=field.name[:255], label=_plain(field.label, _LABEL), element=_element(field, form.values.get(field.name)),
            hint=_plain(field.help, _LABEL) if field.help else None,
            optional=not field.required or field.type is FieldType.BOOLEAN,
        ))
    view = SlackView(
        type="modal", callback_id=CALLBACK_ID, private_metadata=key,
        title=_plain(form.title, _TITLE), submit=_plain("Create" if form.last_page else form.submit_label, _TITLE),
        close=_plain("Cancel", _TITLE), blocks=blocks,
    )
    view.validate_json()
    return view.to_dict()


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "-"


def notice_view(title: str, text: str) -> dict[str, Any]:
    """A modal that only says something (a form that cannot go on), with a Close button."""
    view = SlackView(type="modal", title=_plain(title, _TITLE), close=_plain("Close", _TITLE),
                     blocks=[SectionBlock(text=MarkdownTextObject(text=md(text, limit=2900), verbatim=True))])
    view.validate_json()
    return view.to_dict()


def form_values(view: Mapping[str, Any]) -> dict[str, Any]:
    """The values of a submitted modal, by field name: strings, numbers as strings, booleans,
    lists of strings (the form's owner converts and validates them)."""
    values: dict[str, Any] = {}
    state = ((view.get("state") or {}).get("values") or {})
    if not isinstance(state, dict):
        return values
    for name, actions in state.items():
        # one input per block: its action id is "value", or "pick:<kinds>" for an entity picker
        element = next(iter(actions.values()), None) if isinstance(actions, dict) and len(actions) == 1 else None
        if not isinstance(element, dict):
            continue
        kind = element.get("type")
        if kind in ("plain_text_input", "number_input"):
            values[name] = element.get("value")
        elif kind == "checkboxes":
            values[name] = any(o.get("value") == _TRUE for o in element.get("selected_options") or ())
        elif kind in ("static_select", "external_select"):
            option = element.get("selected_option")
            values[name] = option.get("value") if isinstance(option, dict) else None
        elif kind in ("multi_static_select", "multi_external_select"):
            values[name] = [o.get("value") for o in element.get("selected_options") or () if isinstance(o, dict)]
    return values


def form_errors(form: Form) -> dict[str, str]:
    """Slack's ``errors`` response: each message under its field's block (a page-wide error under
    the first field)."""
    names = [f.name for f in form.current.fields]
    out: dict[str, str] = {}
    for error in form.errors:
        block = error.field if error.field in names else (names[0] if names else "")
        if block:
            out[block] = (out[block] + "; " if block in out else "") + error.message
    return out
