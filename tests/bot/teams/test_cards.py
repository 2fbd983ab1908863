"""The Adaptive Card renderer: the whole Reply model and every form field, within Teams' limits,
valid against the Adaptive Card 1.5 schema, and never letting data become markup, a link or a mention."""

from __future__ import annotations

import copy
import json
import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from callboard.bot.app import Callboard
from callboard.bot.surface import View
from callboard.bot.teams.cards import (
    ACTIONS_PER_ROW,
    CARD_VERSION,
    CONTENT_TYPE,
    MAX_ACTIONS,
    MAX_CARD_BYTES,
    FormTooBig,
    attachment,
    card_bytes,
    choices_result,
    fallback_text,
    form_values,
    notice_card,
    render,
    render_form,
)
from callboard.bot.teams.protocol import (
    DATA_COMMAND,
    DATA_FORM,
    DATA_FORM_KEY,
    DATA_FORM_VALUES,
    DATA_PAGE,
    DATA_PAGE_KEY,
    DATA_PICK_COMMAND,
    DATASET_FORM,
    DATASET_PICK,
    PICK_INPUT,
    VERB_PAGE,
    VERB_PICK,
    VERB_RUN,
)
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
    Person,
    Reply,
    RunCommand,
    ShowPage,
    Status,
    Steps,
    Text,
)
from callboard.commands.forms import (
    FIELD_TYPES,
    Choice,
    Field,
    FieldError,
    FieldType,
    Form,
    FormPage,
    FormSubmission,
)
from callboard.commands.paging import paginate
from callboard.commands.template_forms import TemplateForms
from callboard.scaffolder.model import TemplateDef, template_from_document

from ...conftest import SHARED
from .rig import walk as _walk

SINK = Path(__file__).resolve().parents[2] / "scaffolder" / "kitchen_sink.yaml"
MENTION_TEXT = re.compile(r"• <at>(?:[^\W_]|[ .'-]){1,63}…?</at>")


# --- checking a card --------------------------------------------------------------------------


def _schema() -> dict[str, Any]:
    """The reference Adaptive Card 1.5 schema plus exactly the Teams host extensions Callboard uses,
    shaped as Microsoft documents them (the 1.5 schema predates them): ``msteams`` on the card
    (width, mention entities), ``choices.data`` (``Data.Query``, schema 1.6) on ``Input.ChoiceSet``,
    and its ``filtered`` style."""
    assert SHARED is not None
    schema: dict[str, Any] = json.loads((SHARED / "platforms" / "adaptive-card-1.5.schema.json").read_text())
    defs = schema["definitions"]
    defs["AdaptiveCard"]["properties"]["msteams"] = {
        "type": "object", "additionalProperties": False, "properties": {
            "width": {"enum": ["Full"]},
            "entities": {"type": "array", "items": {
                "type": "object", "additionalProperties": False, "required": ["type", "text", "mentioned"],
                "properties": {"type": {"enum": ["mention"]}, "text": {"type": "string"},
                               "mentioned": {"type": "object", "additionalProperties": False,
                                             "required": ["id", "name"],
                                             "properties": {"id": {"type": "string"}, "name": {"type": "string"}}}}}}}}
    defs["Input.ChoiceSet"]["properties"]["choices.data"] = {
        "type": "object", "additionalProperties": False, "required": ["type", "dataset"],
        "properties": {"type": {"enum": ["Data.Query"]}, "dataset": {"type": "string"},
                       "count": {"type": "number"}, "skip": {"type": "number"}}}
    defs["ChoiceInputStyle"] = {"enum": ["compact", "expanded", "filtered"]}
    return schema


_VALIDATOR: jsonschema.Draft6Validator | None = None


def _validator() -> jsonschema.Draft6Validator:
    global _VALIDATOR
    if _VALIDATOR is None:
        schema = _schema()
        jsonschema.Draft6Validator.check_schema(schema)
        _VALIDATOR = jsonschema.Draft6Validator(schema)
    return _VALIDATOR


def _unsafe_char(ch: str) -> bool:
    return ch not in "\n\t" and unicodedata.category(ch) in ("Cc", "Cf", "Cs")


def check(card: dict[str, Any], *, message: bool = True) -> dict[str, Any]:
    """``card`` is valid, within the size budget, and safe: the only TextBlocks are Callboard's own
    mentions (each named in ``msteams.entities``), no text holds a control or format character, and
    every link is an http(s) ``Action.OpenUrl``."""
    errors = sorted(_validator().iter_errors(card), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors[:5])
    assert card["type"] == "AdaptiveCard" and card["version"] == CARD_VERSION
    assert card_bytes(card) <= MAX_CARD_BYTES and len(json.dumps(card, ensure_ascii=False).encode()) <= MAX_CARD_BYTES
    entities = card.get("msteams", {}).get("entities", [])
    mention_texts = [node["text"] for node in _walk(card) if node.get("type") == "TextBlock"]
    for text in mention_texts:
        assert MENTION_TEXT.fullmatch(text), text
        assert text.removeprefix("• ") in {e["text"] for e in entities}, text
    for entity in entities:
        assert re.fullmatch(r"(29|8):[A-Za-z0-9_:.-]{1,200}", entity["mentioned"]["id"])
        assert entity["text"] == f"<at>{entity['mentioned']['name']}</at>"
        assert f"• {entity['text']}" in mention_texts  # no entity for a mention the card does not show
    for node in _walk(card):
        for key in ("text", "title", "label", "placeholder", "value"):
            if isinstance(node.get(key), str):
                assert not any(_unsafe_char(c) for c in node[key]), (key, node[key])
        if node.get("type") == "Action.OpenUrl":
            assert re.match(r"https?://[^/?#@\s]+", node["url"]) and not any(c.isspace() for c in node["url"])
        if "selectAction" in node:
            assert node["selectAction"]["type"] == "Action.OpenUrl"
    if message:
        assert card["msteams"]["width"] == "Full"
    return card


def _texts(card: Mapping[str, Any]) -> str:
    """Everything the card shows as text, joined."""
    return "\n".join(n["text"] for n in _walk(card) if n.get("type") in ("TextRun", "TextBlock"))


def _runs(card: Mapping[str, Any], **style: Any) -> list[dict[str, Any]]:
    return [n for n in _walk(card) if n.get("type") == "TextRun" and all(n.get(k) == v for k, v in style.items())]


def _actions(card: Mapping[str, Any]) -> list[dict[str, Any]]:
    sets = [n for n in card["body"] if n.get("type") == "ActionSet"]
    return [a for s in sets for a in s["actions"]]


def _of(card: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    return [n for n in _walk(card) if n.get("type") == kind]


# --- every kind -------------------------------------------------------------------------------

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

#: One action of each kind and the card action it must become.
ACTIONS: dict[type, tuple[Action, dict[str, Any]]] = {
    RunCommand: (RunCommand(label="mkRun", command="owner mkRunCommand", primary=True),
                 {"type": "Action.Execute", "title": "mkRun", "verb": VERB_RUN, "style": "positive",
                  "data": {DATA_COMMAND: "owner mkRunCommand"}}),
    OpenUrl: (OpenUrl(label="mkUrl", url="https://example.com/mkUrlTarget"),
              {"type": "Action.OpenUrl", "title": "mkUrl", "url": "https://example.com/mkUrlTarget"}),
    OpenForm: (OpenForm(label="mkForm", form="template:default/mkFormRef", values=(("name", "svc"),)),
               {"type": "Action.Submit", "title": "mkForm", "style": "positive",
                "data": {"msteams": {"type": "task/fetch"}, DATA_FORM: "template:default/mkFormRef",
                         DATA_FORM_VALUES: {"name": "svc"}}}),
    ShowPage: (ShowPage(label="Next", page=7),
               {"type": "Action.Execute", "title": "Next", "verb": VERB_PAGE,
                "data": {DATA_PAGE_KEY: "mkPageKey", DATA_PAGE: 7}}),
}


def test_every_kind_has_a_sample() -> None:
    assert set(BLOCKS) == set(BLOCK_TYPES), "a block kind without a sample here is not checked on Teams"
    assert set(ACTIONS) == set(ACTION_TYPES), "an action kind without a sample here is not checked on Teams"


@pytest.mark.reference
@pytest.mark.parametrize("kind", BLOCK_TYPES, ids=lambda t: t.__name__)
def test_every_block_kind_is_shown(kind: type) -> None:
    block, marker = BLOCKS[kind]
    card = check(render(Reply(status=Status.OK, blocks=(block,), summary="s"), View(asked="q")))
    shown = _texts(card) + json.dumps([a.get("title") for a in _of(card, "Action.Execute")])
    assert marker in shown, f"Teams does not show a {kind.__name__} block"


@pytest.mark.reference
@pytest.mark.parametrize("kind", ACTION_TYPES, ids=lambda t: t.__name__)
def test_every_action_kind_is_a_card_action(kind: type) -> None:
    action, expected = ACTIONS[kind]
    reply = Reply(status=Status.OK, blocks=(Text(text="x"), Actions(actions=(action,))), summary="s")
    card = check(render(reply, View(asked="q", page_key="mkPageKey")))
    assert _actions(card) == [expected]
    assert card["body"][-1]["type"] == "ActionSet"  # actions at the end


def test_actions_teams_cannot_carry_are_left_out() -> None:
    reply = Reply(status=Status.OK, summary="s", blocks=(Actions(actions=(
        ShowPage(label="Next", page=2), OpenUrl(label="js", url="javascript:alert(1)"),
        OpenUrl(label="user", url="https://evil.example@good.example/"), OpenUrl(label="sp", url="https://a.example/ b"),
        RunCommand(label="long", command="owner " + "x" * 3000), RunCommand(label="ok", command="owner x"))),))
    card = render(reply, View(asked="q"))  # no page key: no page buttons
    assert [a["title"] for a in _actions(card)] == ["ok"]


def test_unknown_kinds_raise_type_error() -> None:
    class Odd:
        pass

    with pytest.raises(TypeError, match="no Teams rendering for block Odd"):
        render(Reply(status=Status.OK, blocks=(Odd(),), summary="s"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="no Teams rendering for action Odd"):
        render(Reply(status=Status.OK, blocks=(Actions(actions=(Odd(),)),), summary="s"))  # type: ignore[arg-type]


@pytest.mark.reference
def test_actions_gather_at_the_end_six_a_row() -> None:
    first = Actions(actions=tuple(RunCommand(label=f"a{i}", command=f"owner a{i}") for i in range(5)))
    second = Actions(actions=tuple(RunCommand(label=f"b{i}", command=f"owner b{i}") for i in range(40)))
    card = check(render(Reply(status=Status.OK, blocks=(first, Text(text="between"), second), summary="s")))
    sets = [i for i, n in enumerate(card["body"]) if n["type"] == "ActionSet"]
    assert sets == list(range(len(card["body"]) - len(sets), len(card["body"])))  # all at the end
    assert [len(card["body"][i]["actions"]) for i in sets] == [ACTIONS_PER_ROW] * (MAX_ACTIONS // ACTIONS_PER_ROW)
    titles = [a["title"] for a in _actions(card)]
    assert titles[:6] == ["a0", "a1", "a2", "a3", "a4", "b0"] and len(titles) == MAX_ACTIONS


# --- real replies -----------------------------------------------------------------------------


@pytest.mark.reference
async def test_real_replies_from_the_demo_catalog(demo_app: Callboard) -> None:
    assert (await demo_app.sync_docs()).failed == 0

    owner = await demo_app.ask("owner payment-service")
    card = check(render(owner, View(asked="owner payment-service")))
    assert "Component payment-service is owned by Payments Team" in [r["text"] for r in _runs(card, size="large")]
    assert not _of(card, "FactSet") and not _of(card, "TextBlock")
    pairs = [[_texts(col) for col in cs["columns"]] for cs in _of(card, "ColumnSet")]
    assert ["Email", "payments-team@acme.example.com"] in pairs and ["Channel", "#team-payments"] in pairs
    assert {"type": "Action.Execute", "title": "On-call", "verb": VERB_RUN,
            "data": {DATA_COMMAND: "oncall payment-service"}} in _actions(card)

    info = await demo_app.ask("info payments-api")
    card = check(render(info, View(asked="info payments-api")))
    shown = _texts(card)
    assert "Provided by" in shown and "payment-service" in shown and "Consumed by" in shown and "refund-worker" in shown
    spec = "https://github.com/acme/payment-service/blob/main/api/openapi.yaml"
    assert [r["selectAction"]["url"] for r in _runs(card) if "selectAction" in r] == [spec]
    assert spec in [r["text"].strip(" ()") for r in _runs(card, isSubtle=True)]  # readable as text too
    assert not card["msteams"].get("entities")  # no ids known: people are names, not mentions

    runbook = await demo_app.ask("runbook payment-service")
    card = check(render(runbook, View(asked="runbook payment-service")))
    code = [r["text"] for r in _runs(card, fontType="monospace")]
    assert "kubectl config use-context prod-eu-1" in code
    # the local docs page (file://) is shown, never linked
    assert all(a["url"].startswith("https://") for a in _of(card, "Action.OpenUrl"))
    assert any("file://" in t for t in (r["text"] for r in _runs(card)))

    docs = await demo_app.ask("docs refund")
    card = check(render(docs, View(asked="docs refund")))
    highlighted = [r["text"] for r in _runs(card, highlight=True)]
    assert highlighted and all("refund" in t.lower() for t in highlighted)
    assert "Double refund" in [r["text"] for r in _runs(card, weight="bolder")]

    notfound = await demo_app.ask("owner nosuchthing")
    card = check(render(notfound, View(asked="owner nosuchthing")))
    (warning,) = [r for r in _runs(card) if r.get("color") == "warning" and "No entity matches" in r["text"]]
    assert "find <part of a name>" in [r["text"] for r in _runs(card, fontType="monospace")]
    assert fallback_text(notfound).startswith("No entity matches")


@pytest.mark.reference
async def test_ambiguous_names_get_a_picker_and_did_you_mean_buttons(demo_app: Callboard) -> None:
    reply = await demo_app.ask("owner pay")
    assert reply.status is Status.AMBIGUOUS and reply.command == "owner"
    card = check(render(reply, View(asked="owner pay")))
    (picker,) = _of(card, "Input.ChoiceSet")
    assert picker["id"] == PICK_INPUT and picker["style"] == "filtered"
    assert picker["choices.data"] == {"type": "Data.Query", "dataset": DATASET_PICK + "owner"}
    assert "system:default/payments" in [c["value"] for c in picker["choices"]]  # the candidates, before typing
    (pick,) = [a for a in _of(card, "Action.Execute") if a["verb"] == VERB_PICK]
    assert pick["data"] == {DATA_PICK_COMMAND: "owner"}
    runs = [a["data"][DATA_COMMAND] for a in _of(card, "Action.Execute") if a["verb"] == VERB_RUN]
    assert "owner system:payments" in runs and "owner payments-team" in runs
    # not ambiguous, or no command: no picker
    assert not _of(render(Reply.notice(Status.AMBIGUOUS, "which?")), "Input.ChoiceSet")


@pytest.mark.reference
async def test_oncall_mentions_and_find_paging(demo_app: Callboard) -> None:
    reply = await demo_app.ask("oncall payment-service")
    people = reply.people()
    assert len(people) >= 2  # on call now, and next
    ids = {p.ref: f"29:1AbC-{p.ref.split('/')[-1]}_x" for p in people}
    card = check(render(reply, View(asked="oncall payment-service", mentions=ids)))
    assert card["msteams"]["entities"] == [
        {"type": "mention", "text": f"<at>{p.name}</at>", "mentioned": {"id": ids[p.ref], "name": p.name}}
        for p in people]
    assert [t["text"] for t in _of(card, "TextBlock")] == [f"• <at>{p.name}</at>" for p in people]
    # an id that is not a Teams id is never mentioned
    for bad in ("U0ALICE01", "29:abc</at><at>x", "29:", "8:" + "a" * 300):
        card = check(render(reply, View(asked="q", mentions={p.ref: bad for p in people})))
        assert not _of(card, "TextBlock") and all(p.name in _texts(card) for p in people)

    found = await demo_app.ask("find service")
    total = found.data.get("total") or next(b.total or len(b.items) for b in found.blocks if isinstance(b, ItemList))
    assert total > 3
    view = View(asked="find service", page_key="k3y")
    first = check(render(paginate(found, 1, 3).reply, view))
    shown = _texts(first)
    assert f"({total})" in shown and f"page 1 of {-(-total // 3)}" in shown and f"… and {total - 3} more" in shown
    assert [a["data"] for a in _actions(first) if a.get("verb") == VERB_PAGE] == [{DATA_PAGE_KEY: "k3y", DATA_PAGE: 2}]
    last = check(render(paginate(found, 99, 3).reply, view))
    assert "more" not in _texts(last).split("page")[-1]
    assert [a["title"] for a in _actions(last) if a.get("verb") == VERB_PAGE] == ["Previous"]


# --- untrusted text ---------------------------------------------------------------------------

EVIL = "[click](http://evil.example) **bold** <at>Everyone</at> \x1b[31mred\x1b[0m \u202egnp.exe\x00 # head"


@pytest.mark.reference
def test_hostile_text_never_becomes_markup_links_or_mentions() -> None:
    person = Person(ref="user:default/x", name=EVIL)
    reply = Reply(status=Status.AMBIGUOUS, command="owner", summary=EVIL, blocks=(
        Header(text=EVIL, subtitle=EVIL), Text(text=EVIL), Text(text=EVIL, strong=True),
        Steps(items=(EVIL, f"{EVIL}\n```sh\n{EVIL}\n```\nafter")), Code(text=EVIL),
        Hits(title=EVIL, hits=(Hit(title=EVIL, where=EVIL, runs=((EVIL, False), (EVIL, True)), url="http://evil.example\x1b"),)),
        Fields(pairs=((EVIL, EVIL), ("Site", "javascript:alert(1)"))),
        ItemList(title=EVIL, empty=EVIL, items=(Item(label=EVIL, detail=EVIL, person=person),
                                                 Item(label="b", detail=EVIL,
                                                      person=Person(ref="user:default/y", name="<at>x</at>")))),
        ItemList(title=EVIL, empty=EVIL, items=()),
        Links(links=((EVIL, "http://evil.example/\u202e"), (EVIL, "data:text/html,x"), (EVIL, "https://ok.example/p"))),
        Notice(level="error", text=EVIL),
        Actions(actions=(RunCommand(label=EVIL, command="owner x"), OpenUrl(label=EVIL, url="vbscript:x")))))
    card = check(render(reply, View(asked=EVIL, mentions={"user:default/x": "29:evil", "user:default/y": "29:why"})))
    shown = _texts(card)
    assert "[click](http://evil.example)" in shown and "**bold**" in shown  # shown as the text it is
    assert "\x1b" not in json.dumps(card) and "\\u202e" not in json.dumps(card) and "\\u0000" not in json.dumps(card)
    # the only links: the one plain https URL; the mention names are stripped of all markup
    urls = sorted({n["url"] for n in _of(card, "Action.OpenUrl")})
    assert urls == ["https://ok.example/p"]
    names = [e["mentioned"]["name"] for e in card["msteams"]["entities"]]
    assert names == ["click http evil.example bold at Everyone at 31mred 0m gnp.exe h…", "at x at"]
    for node in _walk(card):
        if node.get("type") in ("TextBlock", "FactSet", "Fact"):
            assert node.get("type") == "TextBlock" and MENTION_TEXT.fullmatch(node["text"])
    text = fallback_text(reply)
    assert "\x1b" not in text and "\u202e" not in text and "<at>" not in text and "](" not in text.replace("\\]", "")
    assert "\\[click\\](http://evil.example) \\*\\*bold\\*\\* &lt;at&gt;Everyone&lt;/at&gt;" in text


@pytest.mark.reference
def test_code_keeps_its_text_exactly() -> None:
    code = "  x = '*a*'  [l](http://e)\t<at>b</at>\n\n    # not a heading\n```not a fence end"
    card = check(render(Reply(status=Status.OK, summary="s", blocks=(Code(text=code + "\x1b"),))))
    assert [r["text"] for r in _runs(card, fontType="monospace")] == [code]

    step = "Restart it, then check `svc status --all`:\n```bash\nkubectl rollout restart deploy/x  # *now*\n  echo '[ok]'\n```\nThen wait."
    card = check(render(Reply(status=Status.OK, summary="s", blocks=(Steps(items=(step,)),))))
    assert [r["text"] for r in _runs(card, fontType="monospace")] == [
        "svc status --all", "kubectl rollout restart deploy/x  # *now*\n  echo '[ok]'"]
    assert "".join(r["text"] for r in _runs(card)) == (
        "1. Restart it, then check svc status --all:\nkubectl rollout restart deploy/x  # *now*\n  echo '[ok]'\nThen wait.")

    hit = Hit(title="t", where="w", runs=(("…\n```bash\nline1 = 1\nline2 = 2\n```\nAfter the ", False), ("restart", True),
                                          (", done.", False)))
    card = check(render(Reply(status=Status.OK, summary="s", blocks=(Hits(title="h", hits=(hit,)),))))
    assert [r["text"] for r in _runs(card, fontType="monospace")] == ["line1 = 1\nline2 = 2"]
    assert [r["text"] for r in _runs(card, highlight=True)] == ["restart"]


# --- size ---------------------------------------------------------------------------------------


@pytest.mark.reference
def test_huge_replies_are_cut_to_fit_keeping_their_actions() -> None:
    nav = Actions(actions=(RunCommand(label="Owner", command="owner x"), ShowPage(label="Next", page=2)))
    people = tuple(Item(label=f"person {i}", detail="Primary · " + "d" * 40,
                        person=Person(ref=f"user:default/p{i}", name=f"Person {i}")) for i in range(5000))
    mentions = {f"user:default/p{i}": f"29:id-{i}" for i in range(5000)}
    huge_list = Reply(status=Status.OK, summary="s", blocks=(Header(text="Many"), ItemList(title="People", items=people),
                                                             Notice(level="info", text="after the list"), nav))
    card = check(render(huge_list, View(asked="q", page_key="k", mentions=mentions)))
    shown = _texts(card)
    kept = len(_of(card, "TextBlock"))
    assert 20 < kept < 5000 and f"… and {5000 - kept} more (cut to fit Teams)" in shown
    assert len(card["msteams"]["entities"]) == kept  # only the mentions shown
    assert "and 1 more part; ask in the terminal" in shown and "callboard ask" in shown
    assert [a["title"] for a in _actions(card)] == ["Owner", "Next"]

    big_code = "\n".join(f"line {i:06d} " + "x" * 40 for i in range(4000))  # ~200 KB
    card = check(render(Reply(status=Status.OK, summary="s", blocks=(Code(text=big_code), nav)), View(asked="q")))
    (shown_code,) = [r["text"] for r in _runs(card, fontType="monospace")]
    assert big_code.startswith(shown_code + "\n") and "more line(s)" in _texts(card)

    many = Reply(status=Status.OK, summary="s", blocks=(
        *(Fields(pairs=tuple((f"k{i}", "v" * 3000) for i in range(20))),),
        *(Text(text=f"paragraph {i} " + "y" * 900) for i in range(100)), nav))
    card = check(render(many, View(asked="q")))
    assert "more parts; ask in the terminal" in _texts(card) and len(_actions(card)) == 1

    one = Reply(status=Status.OK, summary="s", blocks=(Text(text="z" * 100_000),))
    card = check(render(one))
    assert len(_texts(card)) < 5000


# --- forms --------------------------------------------------------------------------------------

#: The input each field type is shown as.
TEAMS_INPUTS: dict[FieldType, tuple[str, dict[str, Any]]] = {
    FieldType.TEXT: ("Input.Text", {"maxLength": 30, "value": "mk", "isRequired": True}),
    FieldType.MULTILINE: ("Input.Text", {"isMultiline": True}),
    FieldType.PASSWORD: ("Input.Text", {"style": "password"}),
    FieldType.NUMBER: ("Input.Number", {"min": 1, "max": 9.5}),
    FieldType.INTEGER: ("Input.Number", {"value": 3}),
    FieldType.BOOLEAN: ("Input.Toggle", {"valueOn": "true", "valueOff": "false", "value": "true"}),
    FieldType.CHOICE: ("Input.ChoiceSet", {"style": "compact", "value": "mkChoiceB"}),
    FieldType.MULTI_CHOICE: ("Input.ChoiceSet", {"isMultiSelect": True, "value": "mkChoiceA,mkChoiceB"}),
    FieldType.STRINGS: ("Input.Text", {"value": "a, b", "placeholder": "one or more, separated by commas"}),
    FieldType.ENTITY: ("Input.ChoiceSet", {"style": "filtered", "value": "group:default/web",
                                           "choices.data": {"type": "Data.Query", "dataset": DATASET_FORM + "K1:f_entity"}}),
    FieldType.REPO_URL: ("Input.Text", {"placeholder": "github.com?owner=…&repo=…"}),
}
VALUES: dict[str, Any] = {
    "f_text": "m\x1bk\u202e", "f_password": "hunter2-secret", "f_integer": "3", "f_boolean": True, "f_choice": "mkChoiceB",
    "f_multi_choice": ["mkChoiceA", "mkChoiceB", "gone"], "f_strings": ["a", "b"], "f_entity": "group:default/web"}


def _form(last: bool = False) -> Form:
    fields = tuple(
        Field(name=f"f_{t.value}", label=f"mk_{t.value}_label", type=t, required=t is FieldType.TEXT,
              choices=(Choice(value="mkChoiceA", label="A"), Choice(value="mkChoiceB", label="B"))
              if t in (FieldType.CHOICE, FieldType.MULTI_CHOICE) else (),
              max_length=30 if t is FieldType.TEXT else None, pattern="^[a-z]+$" if t is FieldType.TEXT else None,
              minimum=1 if t is FieldType.NUMBER else None, maximum=9.5 if t is FieldType.NUMBER else None,
              help=f"mk_{t.value}_help")
        for t in FIELD_TYPES)
    pages = (FormPage(title="mkPage", fields=fields, description="mkDescription `code`"), FormPage(title="Two", fields=()))
    return Form(id="template:default/x", title="mkFormTitle", pages=pages, page=1 if last else 0, values=VALUES,
                errors=(FieldError(field="f_text", message="mkFieldError"), FieldError(field="", message="mkPageError"),
                        FieldError(field="f_entity", message="mkEntityError")), submit_label="Next")


def _inputs(card: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["id"]: n for n in card["body"] if n["type"].startswith("Input.")}


def test_every_field_type_has_its_input() -> None:
    assert set(TEAMS_INPUTS) == set(FIELD_TYPES), "a field type without its Teams input here is not checked"


@pytest.mark.reference
@pytest.mark.parametrize("kind", FIELD_TYPES, ids=lambda t: t.value)
def test_every_field_type_is_an_input(kind: FieldType) -> None:
    card = check(render_form(_form(), "K1"), message=False)
    element = _inputs(card)[f"f_{kind.value}"]
    expected_type, props = TEAMS_INPUTS[kind]
    assert element["type"] == expected_type and element["label"] == f"mk_{kind.value}_label"
    assert {k: element.get(k) for k in props} == props
    assert "regex" not in element  # validation is the form owner's
    if kind is FieldType.PASSWORD:
        assert "value" not in element and "hunter2" not in json.dumps(card)
    body = card["body"]
    at = body.index(element)
    after = [_texts(n) for n in body[at + 1: at + 3]]
    assert f"mk_{kind.value}_help" in after
    if kind in (FieldType.CHOICE, FieldType.MULTI_CHOICE):
        assert [c["value"] for c in element["choices"]] == ["mkChoiceA", "mkChoiceB"]


@pytest.mark.reference
def test_form_errors_on_top_and_under_their_inputs_and_the_submit_button() -> None:
    card = check(render_form(_form(), "K1"), message=False)
    body = card["body"]
    assert _texts(body[0]) == "mkFormTitle" and _texts(body[1]) == "Step 1 of 2: mkPage"
    (top,) = [n for n in body if n.get("style") == "attention"]
    assert _texts(top) == "mk_text_label: mkFieldError\nmkPageError\nmk_entity_label: mkEntityError"
    for name, message in (("f_text", "mkFieldError"), ("f_entity", "mkEntityError")):
        under = body[body.index(_inputs(card)[name]) + 1]
        assert _runs(under) == [{"type": "TextRun", "text": message, "color": "attention"}]
    assert card["actions"] == [{"type": "Action.Submit", "title": "Next", "style": "positive",
                                "data": {DATA_FORM_KEY: "K1"}}]
    last = check(render_form(_form(last=True), "K2"), message=False)
    assert last["actions"][0]["title"] == "Create" and last["actions"][0]["data"] == {DATA_FORM_KEY: "K2"}


@pytest.mark.reference
def test_review_pages_and_hostile_form_text_are_safe_text() -> None:
    review = FormPage(title="Review", fields=(), review=(("Name", EVIL), ("Repository", "https://github.com/acme/x"),
                                                         ("Token", "******")))
    form = Form(id="t", title=EVIL, pages=(FormPage(title="p", fields=(
        Field(name="f", label=EVIL, help=EVIL, placeholder=EVIL, type=FieldType.CHOICE,
              choices=(Choice(value="v", label=EVIL),)),)), review), page=1,
                errors=(FieldError(field="f", message=EVIL),))
    card = check(render_form(form, "K"), message=False)
    assert "**bold**" in _texts(card) and "******" in _texts(card) and not _of(card, "TextBlock")
    assert [a["url"] for a in _of(card, "Action.OpenUrl")] == ["https://github.com/acme/x"]
    card = check(render_form(Form(id="t", title="t", pages=form.pages, page=0), "K"), message=False)
    (choice,) = _inputs(card)["f"]["choices"]
    assert "\x1b" not in choice["title"] and "\n" not in choice["title"]


def test_fields_teams_cannot_show_and_pages_too_big_are_errors() -> None:
    odd = Field(name="weird", label="Weird", type="colour")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='Teams cannot show a field of type "colour" \\(field "weird"\\)'):
        render_form(Form(id="t", title="t", pages=(FormPage(title="p", fields=(odd,)),)), "K")
    many = tuple(Field(name=f"f{i}", label="l" * 150, help="h" * 300) for i in range(200))
    with pytest.raises(FormTooBig, match="more than Teams shows in one dialog; fill it in in the terminal"):
        render_form(Form(id="t", title="Big", pages=(FormPage(title="p", fields=many),)), "K")


def _load(path: Path) -> TemplateDef:
    return template_from_document(yaml.safe_load(path.read_text()), base_dir=path.parent)


async def _start(*_: Any) -> Reply:
    return Reply.notice(Status.OK, "started")


@pytest.mark.reference
async def test_template_forms_page_by_page_through_cards(demo_app: Callboard) -> None:
    # the built-in template, as the app finds it
    builtin = TemplateForms(templates=demo_app.template, start=_start)
    form = await builtin.open("template:default/python-service", {}, None)
    card = check(render_form(form, "S1"), message=False)
    assert "name" in _inputs(card) and card["actions"][0]["data"] == {DATA_FORM_KEY: "S1"}

    # every field type there is, submitted as Teams sends a dialog's data
    sink = _load(SINK)

    async def find(ref: str) -> TemplateDef | None:
        return sink if ref == sink.ref else None

    handler = TemplateForms(templates=find, start=_start)
    form = await handler.open(sink.ref, {}, None)
    card = check(render_form(form, "S2"), message=False)
    inputs = _inputs(card)
    assert {k: (v["type"], v.get("style")) for k, v in inputs.items()} == {
        "name": ("Input.Text", None), "slug": ("Input.Text", None), "description": ("Input.Text", None),
        "owner": ("Input.ChoiceSet", "filtered"), "system": ("Input.ChoiceSet", "filtered"),
        "token": ("Input.Text", "password"), "password": ("Input.Text", "password")}
    assert inputs["owner"]["choices.data"]["dataset"] == "form:S2:owner" and inputs["slug"]["maxLength"] == 20

    data = {"msteams": {"type": "task/submit"}, DATA_FORM_KEY: "S2", "name": "svc", "slug": "Bad Slug",
            "token": "short", "owner": "user:default/asker", "description": ""}
    step = await handler.submit(form, FormSubmission(form=form.id, page=form.page, values=form_values(data), user="u"))
    assert isinstance(step, Form) and step.page == 0
    card = check(render_form(step, "S2"), message=False)
    body = card["body"]
    for name in ("slug", "token"):
        under = body[body.index(_inputs(card)[name]) + 1]
        assert [r.get("color") for r in _runs(under)] == ["attention"], name
    assert _inputs(card)["slug"]["value"] == "Bad Slug" and "value" not in _inputs(card)["token"]

    data.update(slug="svc", token="deploy-token-1", owner="group:default/web-team")
    step = await handler.submit(step, FormSubmission(form=form.id, page=0, values=form_values(data), user="u"))
    assert isinstance(step, Form) and step.page == 1, step
    card = check(render_form(step, "S2"), message=False)
    inputs = _inputs(card)
    assert inputs["replicas"]["type"] == "Input.Number" and inputs["public"]["type"] == "Input.Toggle"
    assert inputs["tags"]["type"] == "Input.Text" and "deploy-token-1" not in json.dumps(card)


# --- values and search results --------------------------------------------------------------------


def test_form_values_keep_what_inputs_send() -> None:
    data = {"msteams": {"type": "task/submit"}, DATA_FORM_KEY: "K", "name": "svc", "topics": "a,b", "public": "true",
            "replicas": 3, "ratio": 0.5, "flag": False, "tags": ["x", "y"], "nested": {"a": 1}, "none": None,
            "mixed": ["x", 1]}
    assert form_values(data) == {"name": "svc", "topics": "a,b", "public": "true", "replicas": 3, "ratio": 0.5,
                                 "flag": False, "tags": ["x", "y"]}
    assert form_values({}) == {}


def test_choices_result_fits_teams_limits() -> None:
    choices = [(f"component:default/c{i}", f"C {i}\nsecond line \x1b[1m" + "l" * 200) for i in range(80)]
    out = choices_result([("x" * 1001, "too long a value"), ("", "no value"), *choices])
    assert len(out) == 50 and out[0]["value"] == "component:default/c0"
    assert all(len(r["title"]) <= 120 and "\n" not in r["title"] and "\x1b" not in r["title"] for r in out)
    assert out[0]["title"].startswith("C 0 second line [1m") and out[0]["title"].endswith("…")
    assert choices_result([("v", "")]) == [{"title": "v", "value": "v"}]


@pytest.mark.reference
def test_attachment_notice_and_fallback() -> None:
    card = check(notice_card("Cannot go on", "The form `x` is gone.\x1b"), message=False)
    assert [(r["text"], r.get("fontType")) for r in _runs(card)] == [
        ("Cannot go on", None), ("The form ", None), ("x", "monospace"), (" is gone.", None)]
    assert attachment(card) == {"contentType": CONTENT_TYPE, "content": card}
    assert CONTENT_TYPE == "application/vnd.microsoft.card.adaptive"
    empty = check(render(Reply(status=Status.OK, blocks=(), summary="only a summary")))
    assert _texts(empty) == "only a summary"
    assert fallback_text(Reply(status=Status.OK, blocks=(), summary="")) == "Callboard"
    assert fallback_text(Reply(status=Status.OK, blocks=(), summary="- one\n\ntwo " + "w" * 2000)).startswith("\\- one two")
    assert len(fallback_text(Reply(status=Status.OK, blocks=(), summary="w" * 5000))) <= 1000


@pytest.mark.reference
def test_the_schema_check_is_not_vacuous() -> None:
    card = render(Reply(status=Status.AMBIGUOUS, command="owner", summary="s", blocks=(Text(text="x"),)))
    check(card)
    for break_it in (lambda c: c["body"][0]["inlines"][0].update(bold=True),
                     lambda c: c["body"][-2]["choices.data"].update(type="Data.Other"),
                     lambda c: c["body"][-2].update(style="bogus"),
                     lambda c: c["msteams"].update(other=1),
                     lambda c: c.update(version=1.5)):
        broken = copy.deepcopy(card)
        break_it(broken)
        with pytest.raises(AssertionError):
            check(broken)
