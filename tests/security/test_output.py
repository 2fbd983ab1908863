"""Catalog text reaches people inert: no live Slack mention or link it did not ask for, no terminal
control sequence, no rich markup.

The Slack half runs a hostile catalog through the real server over HTTP (slash commands, a mention,
buttons) against the fake Slack Web API and reads every string Callboard sent: each mrkdwn string
may hold ``<…>`` only for Callboard's own mentions (catalog users it resolved to Slack ids) and for
links to checked URLs; ``&``, ``<`` and ``>`` of the data arrive as ``&amp;``, ``&lt;``, ``&gt;``.
The terminal half asks the same catalog through ``callboard ask`` (a real process), the shell and
the rich renderer, and looks for control characters.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import unicodedata
from collections.abc import AsyncIterator, Iterator, Set
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from callboard.bot.shell import Shell
from callboard.bot.shell.render import render_json, render_rich, render_text
from callboard.bot.slack.render import escape, render
from callboard.bot.surface import View
from callboard.commands.api import (
    Actions,
    Code,
    Fields,
    Header,
    Hit,
    Hits,
    Item,
    ItemList,
    Links,
    Notice,
    Person,
    Reply,
    RunCommand,
    Status,
    Steps,
    Text,
)

from ..fakes.slack import SlackFake
from .test_slack_requests import Rig, serving

# --- the hostile catalog -------------------------------------------------------------------------

BREAKOUT = "https://ok/> <!channel> <https://evil"
TITLE = "<!channel> Hostile & <b>Service</b>"
DESCRIPTION = ("@channel <!here> ping <@U123> and <!subteam^S1> in <#C1> & <b>bold</b> "
               "<https://evil.example|click me> <!everyone> @here")
SAFE_URL = "https://ok.example.com/dash?a=1&b=2"
LINKS = [
    {"url": BREAKOUT, "title": "Runbook <!here> | pipe > gt", "type": "runbook"},
    {"url": SAFE_URL, "title": "Dash <@U123> | x"},
    {"url": "javascript:alert(1)//<!channel>", "title": "JS"},
    {"url": "https://ok.example.com/has space", "title": "Space"},
    {"url": "https://ok.example.com/a|<!here>", "title": "Pipe"},
]
#: Terminal payloads: OSC 52 (write the clipboard), clear screen, an OSC 8 hyperlink, CR, backspace,
#: 8-bit CSI, a right-to-left override, DCS, rich markup and an emoji code.
TERMINAL = ("before \x1b]52;c;ZXZpbA==\x07 osc52 \x1b[2J clear \x1b]8;;https://evil\x1b\\hyper\x1b]8;;\x1b\\ "
            "\rCR \x08BS \x9b31m c1 \u202eRLO\u202c \x1bPdcs\x1b\\ [red]x[/red] [link=https://evil]click[/link] "
            ":smile: end\ttab\nline2 \x7fdel \u2066iso\u2069")
TERMINAL_TITLE = "Term [bold]title[/bold] \x1b[31mred"
PUBLIC_URL = "http://callboard.test"
MALLORY = "U0MALLORY1"  # the Slack user the fake knows for mallory@acme.example.com


def _docs(path: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)


def hostile_catalog(root: Path) -> Path:
    cat = root / "cat"
    (cat / "hostile").mkdir(parents=True)
    org = [
        {"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
         "metadata": {"name": "evil-team", "title": "<!here> Evil", "description": "<!channel> team",
                      "annotations": {"callboard.io/slack-channel": "<#C1|general> <!channel>"}},
         "spec": {"type": "team", "profile": {"displayName": "<!subteam^S1> Evil & team",
                                              "email": "evil-team@acme.example.com"},
                  "children": [], "members": ["mallory"]}},
        {"apiVersion": "backstage.io/v1alpha1", "kind": "User",
         "metadata": {"name": "mallory", "description": "<!channel> me"},
         "spec": {"profile": {"displayName": "<@U999> Mallory", "email": "mallory@acme.example.com"},
                  "memberOf": ["evil-team"]}},
        {"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
         "metadata": {"name": "terminal-service", "title": TERMINAL_TITLE, "description": TERMINAL,
                      "links": [{"url": "https://ok.example.com/\x1b]52;c;eA==\x07", "title": "[red]L[/red] \x1b[5m"},
                                {"url": "https://docs.example.com/t", "title": "Docs \u202eevil"}]},
         "spec": {"type": "service", "lifecycle": "production", "owner": "evil-team"}},
    ]
    (cat / "catalog-info.yaml").write_text(yaml.safe_dump_all(org, allow_unicode=False))
    hostile = {"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
               "metadata": {"name": "hostile-service", "title": TITLE, "description": DESCRIPTION,
                            "annotations": {"backstage.io/techdocs-ref": "dir:."}, "links": LINKS},
               "spec": {"type": "service", "lifecycle": "production", "owner": "evil-team"}}
    (cat / "hostile" / "catalog-info.yaml").write_text(yaml.safe_dump(hostile))
    _docs(cat / "hostile", {
        "mkdocs.yml": "site_name: Hostile\nnav:\n  - Overview: index.md\n  - Runbook: runbook.md\n"
                      "plugins:\n  - techdocs-core\n",
        "docs/index.md": "# Hostile `<!channel>` overview\n\nRestart with `<!here>` & `<@U123>` when the queue grows.\n\n"
                         "## Restart `<!everyone>` queue\n\nRestart the queue: `<#C1>` & <https://evil.example> "
                         "and `<https://evil|x>` and `a > b`.\n",
        "docs/runbook.md": "# Runbook\n\n## Queue stuck `<!channel>`\n\n"
                           "1. Drain the queue `<!here>`:\n   ```bash\n   echo '<!channel> <@U123>' && "
                           "curl 'https://x/?a=1&b=2'\n   ```\n2. Tell `<#C1>` & `<!subteam^S1>`.\n\n"
                           "```\n<!everyone> & <https://evil|x>\n```\n",
    })
    (cat / "oncall.yaml").write_text(
        "rotations:\n  - name: evil-primary\n    group: evil-team\n    time_zone: UTC\n"
        "    start: 2026-01-05T09:00\n    shift: 1w\n    members: [mallory]\n")
    return cat


# --- reading what reached Slack -------------------------------------------------------------------

_TOKEN = re.compile(r"<([^<>]*)>")
_ENTITY = re.compile(r"&(?!(?:amp|lt|gt);)")
_LIVE = ("<!", "<@", "<#")


def text_objects(node: Any, *, top: bool = True) -> Iterator[tuple[str, str]]:
    """Every (type, text) a message shows: ``mrkdwn`` for its top-level ``text`` and mrkdwn objects,
    ``plain_text`` for plain text objects (which Slack never parses)."""
    if isinstance(node, dict):
        if top and isinstance(node.get("text"), str):
            yield "mrkdwn", node["text"]
        if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
            yield node["type"], node["text"]
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                continue
            yield from text_objects(value, top=False)
    elif isinstance(node, list):
        for value in node:
            yield from text_objects(value, top=False)


def unintended(mrkdwn: str, *, mentions: Set[str], links: tuple[str, ...]) -> list[str]:
    """What in one mrkdwn string Slack would make live that Callboard did not mean to: mentions other
    than its own, links to other URLs, a ``<`` or ``>`` outside a token, an ``&`` that starts no entity."""
    wrong: list[str] = []
    for token in _TOKEN.findall(mrkdwn):
        if token.startswith("@") and token[1:] in mentions:
            continue
        url, bar, label = token.partition("|")
        if bar and url.startswith(links) and "<" not in label:
            continue
        wrong.append(f"<{token}>")
    rest = _TOKEN.sub("", mrkdwn)
    wrong += [f"stray {c!r}" for c in "<>" if c in rest]
    wrong += [f"bare & at {m.start()}" for m in _ENTITY.finditer(mrkdwn)]
    return wrong


def assert_inert(message: Any, *, where: str, links: tuple[str, ...] = (), mentions: Set[str] = frozenset()) -> None:
    for kind, text in text_objects(message):
        if kind == "plain_text":
            assert "&amp;" not in text and "&lt;" not in text, f"{where}: double-escaped plain_text {text!r}"
            continue
        assert not unintended(text, mentions=set(mentions), links=links), (where, text, unintended(
            text, mentions=set(mentions), links=links))
    for obj in _mrkdwn_objects(message):
        # Slack's automatic parsing (plain "@channel", channel names, bare URLs) is off for data
        assert obj.get("verbatim") is True, f"{where}: mrkdwn without verbatim {obj}"


def _mrkdwn_objects(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn":
            yield node
        for value in node.values():
            yield from _mrkdwn_objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _mrkdwn_objects(value)


# --- Slack, through the real server ----------------------------------------------------------------

@pytest.fixture
async def hostile(tmp_path: Path) -> AsyncIterator[Rig]:
    fake = SlackFake()
    await fake.start()
    fake.add_user(MALLORY, "mallory@acme.example.com", "mallory")
    try:
        async with serving(fake, tmp_path, hostile_catalog(tmp_path), docs=True, public_url=PUBLIC_URL) as rig:
            assert rig.app.last_docs is not None and rig.app.last_docs.failed == 0, rig.app.last_docs
            yield rig
    finally:
        await fake.stop()


OUR_LINKS = (f"{PUBLIC_URL}/docs/", escape(SAFE_URL))


async def test_catalog_text_reaches_slack_inert(hostile: Rig) -> None:
    asked = {
        "/callboard": ["info hostile-service", "owner hostile-service", "owner evil-team", "find hostile",
                       "info evil-team", "info mallory", "docs restart queue", "owner <!channel> <@U123>"],
        "/docs": ["hostile-service", "hostile-service restart queue"],
        "/runbook": ["hostile-service", "hostile-service queue stuck"],
        "/oncall": ["hostile-service"],
    }
    answers: dict[str, dict[str, Any]] = {}
    for command, texts in asked.items():
        for text in texts:
            answers[f"{command} {text}"] = body = await hostile.slash(command, text)
            assert_inert(body, where=f"{command} {text}", links=OUR_LINKS, mentions={MALLORY})
    info = json.dumps(answers["/callboard info hostile-service"])
    # the data is there, shown as text
    assert escape("<!here> ping <@U123>") in info and "&lt;b&gt;bold&lt;/b&gt;" in info
    assert escape(BREAKOUT) in info  # a URL that cannot be a link is shown as text
    assert f"<{escape(SAFE_URL)}|Dash &lt;@U123&gt; | x>" in info  # a good one is a link, its label escaped
    assert "<javascript:" not in info and "(javascript:alert(1)//&lt;!channel&gt;)" in info
    header = answers["/callboard info hostile-service"]["blocks"][0]
    assert header["type"] == "header" and header["text"]["text"] == TITLE  # plain_text: as it is
    runbook = json.dumps(answers["/runbook hostile-service"])
    assert "echo '&lt;!channel&gt; &lt;@U123&gt;' &amp;&amp; curl" in runbook
    assert escape(BREAKOUT) in runbook
    docs = json.dumps(answers["/docs hostile-service restart queue"])
    assert "&lt;!everyone&gt;" in docs and f"<{PUBLIC_URL}/docs/default/component/hostile-service/" in docs
    oncall = json.dumps(answers["/oncall hostile-service"])
    assert f"<@{MALLORY}>" in oncall  # Callboard's own mention of the person on call stays live
    assert "U999" not in oncall.replace("&lt;@U999&gt;", "")


async def test_posted_and_updated_messages_are_inert(hostile: Rig) -> None:
    """chat.postMessage (a mention), response_url (a button; a slow answer), and their fallback text."""
    event = {"type": "app_mention", "user": "U0ASKER01", "text": "<@U0FAKEBOT> info hostile-service",
             "ts": "1700000001.000100", "channel": "C0GENERAL1", "event_ts": "1700000001.000100"}
    await hostile.event(event, event_id="Ev0HOSTILE1")
    payload = {"type": "block_actions", "user": {"id": "U0ASKER01"}, "team": {"id": "T0FAKE001"},
               "channel": {"id": "C0GENERAL1"}, "response_url": hostile.fake.response_url("card"),
               "trigger_id": "1.2", "container": {"type": "message"},
               "actions": [{"action_id": "run:0", "block_id": "nav", "type": "button",
                            "value": "runbook hostile-service", "action_ts": "1"}]}
    status, _ = await hostile.interactive(payload)
    assert status == 200
    share = {**payload, "response_url": hostile.fake.response_url("share"),
             "actions": [{"action_id": "share", "block_id": "nav", "type": "button",
                          "value": "info <!channel> hostile-service", "action_ts": "2"}]}
    status, _ = await hostile.interactive(share)
    assert status == 200
    await hostile.settled()
    (posted,) = hostile.fake.calls_to("chat.postMessage")
    assert escape("<!here> ping") in posted.params["text"]  # the fallback: escaped, not dropped
    sent = [posted, *hostile.fake.calls_to("response_url:card"), *hostile.fake.calls_to("response_url:share")]
    assert len(sent) == 3
    for call in sent:
        assert_inert(call.params, where=call.method, links=OUR_LINKS, mentions={MALLORY})


async def test_working_on_echoes_the_question_escaped(hostile: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    from callboard.bot import conversation

    monkeypatch.setattr(conversation, "ACK_BUDGET_S", 0.0)
    body = await hostile.slash("/callboard", "info <!channel> <https://evil|x> hostile-service", name="slow")
    assert "Working on" in body["text"]
    assert_inert(body, where="ack")
    await hostile.settled()
    (later,) = hostile.fake.calls_to("response_url:slow")
    assert_inert(later.params, where="later", links=OUR_LINKS, mentions={MALLORY})


# --- the Block Kit renderer, case by case -----------------------------------------------------------

def _mrkdwn(reply: Reply, **kw: Any) -> list[str]:
    msg = render(reply, **kw)
    return [t for kind, t in text_objects({"text": msg.text, "blocks": msg.blocks}) if kind == "mrkdwn"]


@pytest.mark.parametrize("url", [BREAKOUT, "javascript:alert(1)", "https://ok.example.com/a|b", "https://a b",
                                 "https://ok.example.com/\x00x", "ftp://files.example.com/x", "//ok.example.com/x",
                                 "https://ok.example.com/\u202ex", "https:///no-host", "mailto:a@b.example"])
def test_a_url_that_cannot_be_a_safe_link_is_text(url: str) -> None:
    for block in (Links(links=(("label", url),)),
                  Hits(title="h", hits=(Hit(title="label", where="w", runs=(("s", False),), url=url),))):
        texts = _mrkdwn(Reply(status=Status.OK, blocks=(block,), summary="s"))
        for text in texts:
            assert _TOKEN.findall(text) == [], text
            assert not unintended(text, mentions=set(), links=())
        assert any(escape(url) in t for t in texts), texts


def test_a_link_label_cannot_end_the_link() -> None:
    label = "a > b | c <!channel> & d\nnext"
    (text,) = [t for t in _mrkdwn(Reply(status=Status.OK, blocks=(Links(links=((label, SAFE_URL),)),), summary="s"))
               if "ok.example.com" in t]
    (token,) = _TOKEN.findall(text)
    url, _, shown = token.partition("|")
    assert url == escape(SAFE_URL)
    assert shown == "a &gt; b | c &lt;!channel&gt; &amp; d next"


def test_every_block_escapes_catalog_text_and_the_fallback() -> None:
    evil = "<!channel> & <@U1> <#C1> <!subteam^S1> <https://evil|x>"
    reply = Reply(
        status=Status.OK,
        blocks=(Header(text=evil, subtitle=evil), Text(text=evil), Text(text=evil, strong=True),
                Steps(items=(evil, f"{evil}\n```\n{evil}\n```")), Code(text=evil),
                Hits(title=evil, hits=(Hit(title=evil, where=evil, runs=((evil, True), (evil, False)), url=SAFE_URL),)),
                Notice(level="warning", text=evil), Fields(pairs=((evil, evil),)),
                ItemList(title=evil, items=(Item(label=evil, detail=evil), Item(label=evil, ref="user:default/x")),
                         empty=evil),
                Links(links=((evil, SAFE_URL), (evil, evil)))),
        summary=evil,
    )
    msg = render(reply, View(asked=f"info {evil}"), shareable=True)
    assert_inert({"text": msg.text, "blocks": msg.blocks}, where="render", links=(escape(SAFE_URL),))
    assert msg.text == escape(evil)
    assert msg.blocks[0]["type"] == "header" and msg.blocks[0]["text"]["text"] == evil  # plain_text: as it is
    empty = render(Reply(status=Status.OK, blocks=(ItemList(title=evil, items=(), empty=evil),), summary=evil))
    assert_inert({"text": empty.text, "blocks": empty.blocks}, where="empty list")


def test_only_callboard_mentions_are_live() -> None:
    items = tuple(Item(label=label, ref=ref, person=Person(ref=ref, name=label))
                  for label, ref in (("<!channel>", "user:default/alice"), ("bob", "user:default/bob"),
                                     ("carol", "user:default/carol")))
    msg = render(Reply(status=Status.OK, blocks=(ItemList(title="On call", items=items),), summary="s"),
                 View(asked="", mentions={"user:default/alice": "U0ALICE01", "user:default/bob": "U0BOB> <!channel",
                                          "user:default/carol": "<!here>"}))
    blob = json.dumps(msg.blocks)
    assert "<@U0ALICE01>" in blob
    assert_inert({"blocks": msg.blocks}, where="mentions", mentions={"U0ALICE01"})


@pytest.mark.parametrize("limit_text", ["<" * 4000, "&" * 4000, "x<" * 2000, "é&>" * 1500])
def test_a_cut_never_lands_inside_an_entity_or_a_link(limit_text: str) -> None:
    links = tuple((f"{limit_text[:400]}{i}", f"https://ok.example.com/{i}") for i in range(40))
    reply = Reply(status=Status.OK,
                  blocks=(Text(text=limit_text), Fields(pairs=(("k", limit_text),)), Code(text=limit_text),
                          Notice(level="info", text=limit_text), Steps(items=(limit_text,)),
                          ItemList(title="t", items=tuple(Item(label=limit_text[:300]) for _ in range(15))),
                          Links(links=links)),
                  summary=limit_text)
    msg = render(reply)
    assert len(msg.text) <= 3000
    for kind, text in text_objects({"text": msg.text, "blocks": msg.blocks}):
        if kind == "mrkdwn":
            assert not unintended(text, mentions=set(), links=("https://ok.example.com/",)), text[-40:]
            assert len(text) <= 3000


def test_plain_text_is_never_escaped() -> None:
    """Header and button labels are plain_text: Slack shows them as they are (no mentions), so
    escaping them would show ``&amp;`` to people."""

    reply = Reply(status=Status.OK, blocks=(Header(text="R&D <team>"), Actions(actions=(RunCommand(label="A&B <x>", command="x"),))),
                  summary="s")
    msg = render(reply)
    labels = [t for kind, t in text_objects({"blocks": msg.blocks}) if kind == "plain_text"]
    assert "R&D <team>" in labels and "A&B <x>" in labels


# --- the terminal ----------------------------------------------------------------------------------

_BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def controls(text: str, *, keep: str = "\n\t") -> list[str]:
    """Characters a terminal acts on: C0 (but newline and tab), DEL, C1, bidi controls."""
    return [repr(c) for c in text if (unicodedata.category(c) == "Cc" and c not in keep) or c in _BIDI]


@pytest.fixture
async def term_app(tmp_path: Path, make_app: Any) -> Any:
    app = await make_app(f"sqlite:///{tmp_path / 'cb.db'}")
    summary = await app.sync((str(hostile_catalog(tmp_path)),))
    assert not summary.errors, summary.errors
    yield app
    await app.close()


async def test_terminal_text_holds_no_control_sequence(term_app: Any) -> None:
    text = await Shell(term_app).exec("info terminal-service")
    assert not controls(text), controls(text)
    assert "osc52" in text and "clear" in text and "hyper" in text and "52;c;" not in text and "[2J" not in text
    assert "[red]x[/red]" in text and "[link=https://evil]click[/link]" in text  # shown, not interpreted
    assert "end\ttab" in text and "\n" in text and any(line.lstrip().startswith("line2") for line in text.splitlines())
    assert "Term [bold]title[/bold]" in text


async def test_rich_output_holds_no_control_sequence_and_no_markup(term_app: Any) -> None:
    reply = await term_app.ask("info terminal-service")
    plain = Console(file=io.StringIO(), width=400, color_system=None, force_terminal=False, emoji=True)
    plain.print(render_rich(reply))
    out = plain.file.getvalue()  # type: ignore[attr-defined]
    assert not controls(out), controls(out)
    assert "[red]x[/red]" in out and "[link=https://evil]click[/link]" in out and ":smile:" in out
    assert "[bold]title[/bold]" in out and "[red]L[/red]" in out
    # on a real terminal rich adds its own styles and hyperlinks; nothing else may get through
    tty = Console(file=io.StringIO(), width=400, color_system="truecolor", force_terminal=True, emoji=True)
    tty.print(render_rich(reply))
    raw = tty.file.getvalue()  # type: ignore[attr-defined]
    hyperlinks = re.findall(r"\x1b\]8;[^;\x07\x1b]*;([^\x07\x1b]*)\x1b\\", raw)
    assert set(hyperlinks) <= {"", "https://docs.example.com/t"}, hyperlinks
    stripped = re.sub(r"\x1b\[[0-9;]*m", "", re.sub(r"\x1b\]8;[^;\x07\x1b]*;[^\x07\x1b]*\x1b\\", "", raw))
    assert not controls(stripped), controls(stripped)


def test_every_block_is_clean_in_every_terminal_renderer() -> None:

    t = TERMINAL
    url = "https://ok.example.com/\x1b]8;;https://evil\x1b\\"
    reply = Reply(
        status=Status.OK,
        blocks=(Header(text=t, subtitle=t), Text(text=t), Text(text=t, strong=True), Steps(items=(t, f"{t}\n```\n{t}\n```")),
                Code(text=t, language=t), Hits(title=t, hits=(Hit(title=t, where=t, runs=((t, True), (t, False)), url=url),)),
                Notice(level="error", text=t), Fields(pairs=((t, t),)),
                ItemList(title=t, items=(Item(label=t, detail=t),)), ItemList(title=t, items=(), empty=t),
                Links(links=((t, url), (t, "https://docs.example.com/t"))), Actions(actions=(RunCommand(label=t, command=t),))),
        summary=t,
    )
    text = render_text(reply)
    assert not controls(text) and "[red]x[/red]" in text
    tty = Console(file=io.StringIO(), width=300, color_system="truecolor", force_terminal=True)
    tty.print(render_rich(reply))
    raw = tty.file.getvalue()  # type: ignore[attr-defined]
    assert set(re.findall(r"\x1b\]8;[^;\x07\x1b]*;([^\x07\x1b]*)\x1b\\", raw)) <= {"", "https://docs.example.com/t"}
    stripped = re.sub(r"\x1b\[[0-9;]*m", "", re.sub(r"\x1b\]8;[^;\x07\x1b]*;[^\x07\x1b]*\x1b\\", "", raw))
    assert not controls(stripped) and "[red]x[/red]" in stripped and ":smile:" in stripped
    out = render_json(reply)
    assert json.loads(out)["summary"] == t and not controls(out, keep="\n")


async def test_json_output_is_valid_and_holds_no_raw_control(term_app: Any) -> None:
    reply = await term_app.ask("info terminal-service")
    out = render_json(reply)
    payload = json.loads(out)
    assert not controls(out, keep="\n")  # json escapes C0; C1, DEL and bidi are escaped too
    assert payload["document"]["metadata"]["description"] == TERMINAL  # the data itself is kept, escaped
    assert not controls(payload["text"])


def _cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CALLBOARD_")}
    environ.update({"CALLBOARD_DATA_DIR": str(tmp_path / "data")})
    return subprocess.run([sys.executable, "-m", "callboard.bot.cli", *args], capture_output=True, text=True,
                          env=environ, cwd=tmp_path, timeout=120)


def test_callboard_ask_and_sync_print_no_control_sequence(tmp_path: Path) -> None:
    cat = hostile_catalog(tmp_path)
    (cat / "broken").mkdir()
    (cat / "broken" / "catalog-info.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
         "metadata": {"name": "bad\x1b]52;c;ZXZpbA==\x07name\x1b[2J"},
         "spec": {"type": "service", "lifecycle": "production", "owner": "evil-team"}}))
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    synced = _cli(["sync", "--catalog", str(cat), "--database-url", db], tmp_path)
    assert "1 error" in synced.stdout, synced.stdout + synced.stderr
    assert "metadata.name" in synced.stdout
    for stream in (synced.stdout, synced.stderr):
        assert not controls(stream), controls(stream)
    for fmt in ("text", "json"):
        asked = _cli(["ask", "--database-url", db, "--format", fmt, "info terminal-service"], tmp_path)
        assert asked.returncode == 0, asked.stderr
        assert not controls(asked.stdout), controls(asked.stdout)
        assert "[red]x[/red]" in asked.stdout
