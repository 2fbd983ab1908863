"""Every surface renders every kind of block, action and form field.

One sample of each kind, each carrying a marker of its own, is rendered by each surface's
renderers (Slack: ``render`` and ``render_form``; the terminal: ``render_text``, ``render_rich``
and ``render_form_text``), and the marker must show up in what the person sees — not merely
"no exception". A kind added to ``BLOCK_TYPES``, ``ACTION_TYPES`` or ``FIELD_TYPES`` without a
sample here fails the first test, so it cannot go unrendered by a surface.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import pytest
from rich.console import Console

from callboard.bot.shell import ShellSurface, render_form_text, render_rich, render_text
from callboard.bot.slack.forms import form_errors, render_form
from callboard.bot.slack.render import render
from callboard.bot.surface import View
from callboard.commands.api import (
    ACTION_TYPES,
    BLOCK_TYPES,
    Action,
    Actions,
    Block,
    Code,
    Fields,
    Header,
    Hit,
    Hits,
    Item,
    ItemList,
    Links,
    Notice,
    OpenForm,
    OpenUrl,
    Reply,
    RunCommand,
    ShowPage,
    Status,
    Steps,
    Text,
)
from callboard.commands.forms import FIELD_TYPES, Choice, Field, FieldError, FieldType, Form, FormPage
from callboard.commands.paging import paginate

#: One block of each kind and the marker it must show.
BLOCKS: dict[type, tuple[Block, str]] = {
    Header: (Header(text="mkHeader", subtitle="mkSubtitle"), "mkHeader"),
    Text: (Text(text="mkText"), "mkText"),
    Steps: (Steps(items=("mkStep one", "two")), "mkStep"),
    Code: (Code(text="echo mkCode", language="sh"), "mkCode"),
    Hits: (Hits(title="Results", hits=(Hit(title="mkHitTitle", where="docs", runs=(("mkSnippet", True),),
                                           url="https://example.com/hit"),)), "mkSnippet"),
    Fields: (Fields(pairs=(("mkKey", "mkValue"),)), "mkValue"),
    ItemList: (ItemList(title="Owns", items=(Item(label="mkItem", detail="mkDetail"),)), "mkItem"),
    Links: (Links(links=(("mkLinkTitle", "https://example.com/mkLinkTarget"),)), "mkLinkTitle"),
    Notice: (Notice(level="warning", text="mkNotice"), "mkNotice"),
    Actions: (Actions(actions=(RunCommand(label="mkAction", command="owner mkActionCommand"),)), "mkAction"),
}

#: One action of each kind, what Slack must show of it, and what the terminal must show of it.
ACTIONS: dict[type, tuple[Action, str, str]] = {
    RunCommand: (RunCommand(label="mkRunLabel", command="owner mkRunCommand"), "mkRunLabel", "mkRunCommand"),
    OpenUrl: (OpenUrl(label="mkUrlLabel", url="https://example.com/mkUrlTarget"), "mkUrlTarget", "mkUrlTarget"),
    OpenForm: (OpenForm(label="mkFormLabel", form="template:default/mkFormRef"), "mkFormRef", "mkFormRef"),
    ShowPage: (ShowPage(label="Next", page=7), "mkPageKey:7", ""),
}

#: The Block Kit input each field type is shown as.
SLACK_INPUTS: dict[FieldType, str] = {
    FieldType.TEXT: "plain_text_input",
    FieldType.MULTILINE: "plain_text_input",
    FieldType.PASSWORD: "plain_text_input",
    FieldType.NUMBER: "number_input",
    FieldType.INTEGER: "number_input",
    FieldType.BOOLEAN: "checkboxes",
    FieldType.CHOICE: "static_select",
    FieldType.MULTI_CHOICE: "multi_static_select",
    FieldType.STRINGS: "plain_text_input",
    FieldType.ENTITY: "external_select",
    FieldType.REPO_URL: "plain_text_input",
}


def _rich_text(reply: Reply) -> str:
    console = Console(file=io.StringIO(), width=200, record=True, color_system=None)
    console.print(render_rich(reply))
    return console.export_text()


def _slack_text(reply: Reply) -> str:
    msg = render(reply, View(asked="q", page_key="mkPageKey"))
    return msg.text + json.dumps(msg.blocks)


#: Each surface's reply renderers, as the text a person (or Slack) gets.
REPLY_RENDERERS: dict[str, Callable[[Reply], str]] = {
    "slack render": _slack_text,
    "shell render_text": render_text,
    "shell render_rich": _rich_text,
}


def test_every_kind_has_a_sample() -> None:
    assert set(BLOCKS) == set(BLOCK_TYPES), "a block kind without a sample here is not checked on any surface"
    assert set(ACTIONS) == set(ACTION_TYPES), "an action kind without a sample here is not checked on any surface"
    assert set(SLACK_INPUTS) == set(FIELD_TYPES), "a field type without its Slack input here is not checked"


@pytest.mark.parametrize("renderer", REPLY_RENDERERS)
@pytest.mark.parametrize("kind", BLOCK_TYPES, ids=lambda t: t.__name__)
def test_every_block_kind_is_shown_by_every_surface(renderer: str, kind: type) -> None:
    block, marker = BLOCKS[kind]
    shown = REPLY_RENDERERS[renderer](Reply(status=Status.OK, blocks=(block,), summary="s"))
    assert marker in shown, f"{renderer} does not show a {kind.__name__} block"


@pytest.mark.parametrize("renderer", REPLY_RENDERERS)
@pytest.mark.parametrize("kind", ACTION_TYPES, ids=lambda t: t.__name__)
def test_every_action_kind_is_shown_by_every_surface(renderer: str, kind: type) -> None:
    action, on_slack, on_shell = ACTIONS[kind]
    reply = Reply(status=Status.OK, blocks=(Text(text="x"), Actions(actions=(action,))), summary="s")
    if renderer.startswith("shell") and kind is ShowPage:
        # the terminal shows whole lists: the conversation never pages for it, so no ShowPage reaches it
        assert ShellSurface.page_size is None
        long = Reply(status=Status.OK, summary="s",
                     blocks=(ItemList(title="t", items=tuple(Item(label=str(i)) for i in range(100))),))
        assert not any(isinstance(b, Actions) for b in paginate(long, 1, ShellSurface.page_size).reply.blocks)
        return
    shown = REPLY_RENDERERS[renderer](reply)
    assert (on_slack if renderer.startswith("slack") else on_shell) in shown, \
        f"{renderer} does not show a {kind.__name__} action"


def _form() -> Form:
    fields = tuple(
        Field(name=f"f_{t.value}", label=f"mk_{t.value}_label", type=t, required=t is FieldType.TEXT,
              choices=(Choice(value="mkChoiceA", label="A"), Choice(value="mkChoiceB", label="B"))
              if t in (FieldType.CHOICE, FieldType.MULTI_CHOICE) else (),
              help=f"mk_{t.value}_help")
        for t in FIELD_TYPES)
    return Form(id="template:default/x", title="mkFormTitle", pages=(FormPage(title="mkPage", fields=fields),),
                errors=(FieldError(field="f_text", message="mkFieldError"),))


@pytest.mark.parametrize("kind", FIELD_TYPES, ids=lambda t: t.value)
def test_every_field_type_is_shown_by_slack(kind: FieldType) -> None:
    view = render_form(_form(), "key")
    (block,) = [b for b in view["blocks"] if b.get("block_id") == f"f_{kind.value}"]
    assert block["type"] == "input" and block["label"]["text"] == f"mk_{kind.value}_label"
    assert block["element"]["type"] == SLACK_INPUTS[kind]
    assert block["hint"]["text"] == f"mk_{kind.value}_help"
    if kind in (FieldType.CHOICE, FieldType.MULTI_CHOICE):
        assert [o["value"] for o in block["element"]["options"]] == ["mkChoiceA", "mkChoiceB"]
    assert form_errors(_form()) == {"f_text": "mkFieldError"}


def test_every_field_type_is_shown_by_the_terminal_each_its_own_way() -> None:
    text = render_form_text(_form())
    assert "mkFormTitle" in text and "mkFieldError" in text
    lines = {}
    for kind in FIELD_TYPES:
        (line,) = [ln for ln in text.splitlines() if f"mk_{kind.value}_label" in ln]
        lines[kind] = line.replace(f"mk_{kind.value}_label", "")
        assert f"mk_{kind.value}_help" in text
    assert len(set(lines.values())) == len(FIELD_TYPES), lines  # what to type differs with the type
    assert "mkChoiceA" in text and "mkChoiceB" in text
