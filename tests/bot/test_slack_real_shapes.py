"""Slack as it really sends things, through Callboard's real server (aiohttp, slack-bolt, the
conversation policy) against the local fake of Slack's Web API (``tests/fakes/slack.py``).

Every request is built and signed the way Slack builds and signs it: slash commands and
interactions form-encoded, events as JSON, text with Slack's own escaping (``&amp;`` ``&lt;``
``&gt;``) and its ``<@U…>`` ``<#C…|name>`` ``<url|label>`` forms. Each test is one point of
issue 11's "Slack as it really behaves".
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import re
import time
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from callboard.bot.app import Callboard
from callboard.bot.config import Settings
from callboard.bot.server import STATE
from callboard.bot.slack.app import SlackSettings, SlackSurface
from callboard.bot.slack.render import render
from callboard.bot.surface import View
from callboard.commands.api import Actions, Notice, OpenForm, Reply, Status, Unanswered
from callboard.commands.dispatch import CommandRegistry
from callboard.commands.forms import Choice, Field, FieldError, FieldType, Form, FormPage, FormStep, FormSubmission

from ..serving import count_dispatches, served
from ..conftest import fresh_postgres
from ..fakes.slack import SlackFake

SECRET = "0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a"
BOT = "U0FAKEBOT"
ASKER = "U0ASKER01"
FORM = "application/x-www-form-urlencoded"


# --- a generated catalog: a team owning 40 components, one with built docs ------------------------


def _generated_catalog(root: Path, *, owned: int = 40) -> Path:
    """A catalog where ``big-team`` owns ``owned`` components (``comp-000``…), ``documented`` has
    TechDocs, ``undocumented`` has none, and ``linky`` has 60 links whose labels are full of ``<&>``."""
    root.mkdir(parents=True, exist_ok=True)
    docs = root / "documented"
    (docs / "docs").mkdir(parents=True, exist_ok=True)
    (docs / "mkdocs.yml").write_text("site_name: Documented\nnav:\n  - Overview: index.md\n")
    (docs / "docs" / "index.md").write_text("# Documented\n\n## Runbook: restart\n\n1. Restart it.\n")
    (docs / "catalog-info.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: documented\n"
        "  annotations:\n    backstage.io/techdocs-ref: dir:.\n"
        "spec:\n  type: service\n  lifecycle: production\n  owner: small-team\n")
    docs_of_group = root / "group-docs"  # a group whose folder has docs: still no Docs button on it
    docs_of_group.mkdir(exist_ok=True)
    entities = [
        {"kind": "Group", "metadata": {"name": "big-team"},
         "spec": {"type": "team", "children": [], "profile": {"email": "big-team@example.com"}}},
        {"kind": "Group", "metadata": {"name": "small-team"}, "spec": {"type": "team", "children": []}},
        {"kind": "Component", "metadata": {"name": "undocumented"},
         "spec": {"type": "service", "lifecycle": "production", "owner": "small-team"}},
        {"kind": "Component", "metadata": {"name": "linky", "links": [
            {"url": f"https://example.com/{i}?a=1&b=2", "title": f"<b>& link {i} " + "&<>" * 20}
            for i in range(60)]},
         "spec": {"type": "service", "lifecycle": "production", "owner": "small-team"}},
        *({"kind": "Component", "metadata": {"name": f"comp-{i:03d}"},
           "spec": {"type": "service", "lifecycle": "production", "owner": "big-team"}} for i in range(owned)),
    ]
    (root / "catalog-info.yaml").write_text("\n---\n".join(
        json.dumps({"apiVersion": "backstage.io/v1alpha1", **e}) for e in entities) + "\n")
    (root / "all.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: all\nspec:\n  targets:\n"
        "    - ./catalog-info.yaml\n    - ./documented/catalog-info.yaml\n")
    return root / "all.yaml"


# --- the rig -------------------------------------------------------------------------------------


def _sign(body: str, content_type: str, *, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


@dataclass
class Rig:
    fake: SlackFake
    server: TestServer
    http: aiohttp.ClientSession
    app: Callboard
    dispatched: list[str] = field(default_factory=list)  # every text the dispatcher was asked to run

    async def send(self, body: str, content_type: str, *, signed: bool = True) -> tuple[int, str]:
        headers = _sign(body, content_type) if signed else {"Content-Type": content_type}
        async with self.http.post(self.server.make_url("/slack/events"), data=body.encode(), headers=headers) as resp:
            return resp.status, await resp.text()

    async def slash(self, command: str, text: str, *, user: str = ASKER, channel: str = "C0GENERAL1",
                    name: str = "slash") -> dict[str, Any]:
        body = urllib.parse.urlencode({
            "token": "x", "team_id": "T0FAKE001", "channel_id": channel, "user_id": user, "command": command,
            "text": text, "response_url": self.fake.response_url(name), "trigger_id": "1.2.3"})
        status, answer = await self.send(body, FORM)
        assert status == 200, answer
        return json.loads(answer)

    async def event(self, event: dict[str, Any], *, event_id: str, retry: int | None = None) -> None:
        body = json.dumps({"token": "x", "team_id": "T0FAKE001", "api_app_id": "A0FAKEAPP1", "type": "event_callback",
                           "event_id": event_id, "event_time": int(time.time()), "event": event,
                           "authorizations": [{"team_id": "T0FAKE001", "user_id": BOT, "is_bot": True}]})
        headers = _sign(body, "application/json")
        if retry:
            headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        async with self.http.post(self.server.make_url("/slack/events"), data=body.encode(), headers=headers) as resp:
            assert resp.status == 200, await resp.text()

    async def interactive(self, payload: dict[str, Any]) -> tuple[int, str]:
        return await self.send(urllib.parse.urlencode({"payload": json.dumps(payload)}), FORM)

    async def click(self, value: str, *, action_id: str = "run:0", name: str = "click", ephemeral: bool | None = True,
                    message: bool = False, block_id: str = "nav") -> None:
        """A button click as Slack sends it; ``ephemeral`` None: a container without ``is_ephemeral``."""
        container: dict[str, Any] = {"type": "message", "message_ts": "1700000000.000100", "channel_id": "C0GENERAL1"}
        if ephemeral is not None:
            container["is_ephemeral"] = ephemeral
        payload: dict[str, Any] = {
            "type": "block_actions", "user": {"id": ASKER}, "team": {"id": "T0FAKE001"},
            "channel": {"id": "C0GENERAL1"}, "response_url": self.fake.response_url(name), "trigger_id": "1.2.3",
            "container": container,
            "actions": [{"action_id": action_id, "block_id": block_id, "type": "button", "value": value,
                         "action_ts": "1"}]}
        if message:  # a message posted in the channel (shared with everyone)
            payload["message"] = {"type": "message", "ts": "1700000000.000100", "text": "shared", "user": BOT}
        status, _ = await self.interactive(payload)
        assert status == 200

    async def settled(self) -> None:
        """Every piece of work the Slack surface handed to a tracked task has finished."""
        while work := [t for t in self.server.app[STATE].tasks
                       if "Conversation.track" in getattr(t.get_coro(), "__qualname__", "")]:
            await asyncio.gather(*work, return_exceptions=True)


@contextlib.asynccontextmanager
async def serving(fake: SlackFake, tmp_path: Path, *, database_url: str | None = None, catalog: Path | None = None,
                  docs: bool = False, app_token: str | None = None, forms: Any = None,
                  name: str = "a", **settings: Any) -> AsyncIterator[Rig]:
    """A real ``callboard serve`` application, ready: its catalog synced (with ``docs``, its TechDocs
    built). ``forms`` is installed into the Slack surface through ``create_server``'s surface factories;
    ``settings`` are more of the app's ``Settings`` (a GitHub API URL, say)."""
    app = await Callboard.open(
        Settings(database_url=database_url or f"sqlite:///{tmp_path / 'cb.db'}", data_dir=str(tmp_path / f"data-{name}"),
                 **settings),
        CommandRegistry.from_entry_points(), resident=True,
    )
    slack = SlackSettings(bot_token="xoxb-test", signing_secret=SECRET, app_token=app_token, api_url=fake.url)
    surfaces = [lambda opened, tasks: SlackSurface(slack, opened, tasks, forms=forms)]
    async with served(app, catalog=catalog, surfaces=surfaces, docs=docs) as (server, http):
        yield Rig(fake, server, http, app, count_dispatches(app))


@pytest.fixture
async def fake() -> AsyncIterator[SlackFake]:
    fake = SlackFake()
    await fake.start()
    fake.add_user("U0PRIYA01", "priya.raman@acme.example.com", "priya.raman")
    fake.add_user(ASKER, "asker@example.com", "asker")
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def rig(fake: SlackFake, tmp_path: Path) -> AsyncIterator[Rig]:
    async with serving(fake, tmp_path) as r:
        yield r


@pytest.fixture
async def big(fake: SlackFake, tmp_path: Path) -> AsyncIterator[Rig]:
    """The generated catalog, its docs built."""
    async with serving(fake, tmp_path, catalog=_generated_catalog(tmp_path / "catalog"), docs=True) as r:
        yield r


def _blob(message: Mapping[str, Any]) -> str:
    return json.dumps(message.get("blocks") or [])


def _buttons(blocks: list[dict[str, Any]]) -> dict[str, str]:
    return {e["action_id"]: e.get("value", "") for b in blocks if b["type"] == "actions" for e in b["elements"]}


def _mrkdwn(message: Mapping[str, Any]) -> list[str]:
    """Every string Slack reads as mrkdwn: the fallback text and every mrkdwn object in the blocks."""
    out = [str(message.get("text") or "")]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                out.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message.get("blocks") or [])
    return out


#: What Callboard may write between ``<`` and ``>``: a checked link, its own mention of a user.
_ANGLED = re.compile(r"<(?:https?://[^\s<>|]+\|[^<>]*|@[UW][A-Z0-9]+|#[CGD][A-Z0-9]+)>")
_ENTITY = re.compile(r"&(?:amp|lt|gt);")


def _assert_inert(text: str) -> None:
    """No ``<`` or ``>`` outside Callboard's own links and mentions, no ``&`` outside an entity, no
    ``&amp;amp;``, and nothing cut inside an entity or a link."""
    rest = _ANGLED.sub("", text)
    assert "<" not in rest and ">" not in rest, text[-300:]
    assert "&" not in _ENTITY.sub("", rest), text[-300:]
    assert "&amp;amp;" not in text and "&amp;lt;" not in text


# --- escaping and mentions on input ---------------------------------------------------------------


async def test_slash_text_is_decoded_and_answers_never_double_escape(rig: Rig) -> None:
    body = await rig.slash("/find", "a &amp; b &lt;c&gt;")
    assert rig.dispatched == ["find a & b <c>"]
    for text in _mrkdwn(body):
        _assert_inert(text)
    assert "a &amp; b &lt;c&gt;" in body["text"]  # escaped once, for Slack to show as typed


async def test_event_text_is_decoded_and_answers_never_double_escape(rig: Rig) -> None:
    event = {"type": "message", "channel_type": "im", "user": ASKER, "text": "find a &amp; b &lt;c&gt;",
             "ts": "1700000010.000100", "channel": "D0ASKER001", "event_ts": "1700000010.000100"}
    await rig.event(event, event_id="Ev0ESC1")
    (call,) = await rig.fake.wait_for("chat.postMessage")
    assert rig.dispatched == ["find a & b <c>"]
    for text in _mrkdwn(call.params):
        _assert_inert(text)


@pytest.mark.parametrize(("kind", "text"), [
    ("im", f"<@{BOT}> who owns payment-service?"),
    ("app_mention", f"who owns <@{BOT}> payment-service?"),
    ("app_mention", f"hey <@{BOT}> who owns payment-service"),
    ("app_mention", f"<@{BOT}>   who owns   payment-service?"),
])
async def test_the_bots_mention_is_removed_wherever_it_is(rig: Rig, kind: str, text: str) -> None:
    event = {"type": kind, "user": ASKER, "text": text, "ts": "1700000011.000100", "channel": "C0GENERAL1",
             "event_ts": "1700000011.000100"}
    if kind == "im":
        event |= {"type": "message", "channel_type": "im", "channel": "D0ASKER001"}
    await rig.event(event, event_id="Ev0MENTION")
    (call,) = await rig.fake.wait_for("chat.postMessage")
    assert len(rig.dispatched) == 1 and f"<@{BOT}>" not in rig.dispatched[0], rig.dispatched
    assert "payments-team" in call.params["text"], call.params["text"]
    assert "don't know the command" not in call.params["text"] + _blob(call.params)


async def test_links_and_channels_arrive_as_their_labels(rig: Rig) -> None:
    body = await rig.slash("/owner", "<https://example.com/catalog/payment-service|payment-service>")
    assert rig.dispatched == ["owner payment-service"]
    assert "payments-team" in body["text"]
    await rig.slash("/find", "<#C0123ABC|general> outage")
    assert rig.dispatched[-1] == "find #general outage"


async def test_a_special_mention_typed_by_a_user_never_comes_back_live(rig: Rig) -> None:
    for typed in ("<!here> payments", "&lt;!here&gt; payments", "&lt;!channel|@channel&gt; and <!everyone>"):
        body = await rig.slash("/find", typed)
        for text in _mrkdwn(body):
            _assert_inert(text)
            assert "<!" not in text
    # an answer that quotes the question: the fallback text is escaped as well as the blocks
    body = await rig.slash("/owner", "&lt;!here&gt;")
    assert "&lt;!here&gt;" in body["text"] and "<!here>" not in json.dumps(body)


# --- buttons on shared and private messages, Share only on answers ---------------------------------


@pytest.mark.parametrize("shape", ["container without is_ephemeral", "is_ephemeral false", "an in_channel message"])
async def test_a_click_on_a_shared_message_answers_the_clicker_privately(rig: Rig, shape: str) -> None:
    ephemeral = None if shape == "container without is_ephemeral" else False
    await rig.click("deps component:default/payment-service", ephemeral=ephemeral,
                    message=shape == "an in_channel message", name="shared")
    (call,) = await rig.fake.wait_for("response_url:shared")
    assert call.params["response_type"] == "ephemeral"
    assert call.params["replace_original"] is False
    assert "fraud-detector" in _blob(call.params)
    await rig.settled()
    assert not rig.fake.calls_to("chat.update") and not rig.fake.calls_to("chat.postMessage")


async def test_a_click_on_the_askers_own_private_message_replaces_it(rig: Rig) -> None:
    await rig.click("deps component:default/payment-service", ephemeral=True, name="own")
    (call,) = await rig.fake.wait_for("response_url:own")
    assert call.params["replace_original"] is True
    assert "fraud-detector" in _blob(call.params)


async def test_share_only_on_answers(rig: Rig) -> None:
    answer = await rig.slash("/owner", "payment-service")
    assert _buttons(answer["blocks"]).get("share") == "owner payment-service"
    for text in ("no-such-entity-anywhere", ""):  # not found; usage
        body = await rig.slash("/owner", text)
        assert "share" not in _buttons(body["blocks"]), body
    body = await rig.slash("/callboard", "frobnicate the widgets")  # unknown command
    assert "share" not in _buttons(body["blocks"])


async def test_sharing_posts_in_channel_without_replacing(rig: Rig) -> None:
    await rig.click("owner payment-service", action_id="share", name="share")
    (call,) = await rig.fake.wait_for("response_url:share")
    assert call.params["response_type"] == "in_channel" and call.params["replace_original"] is False
    assert "share" not in _buttons(call.params["blocks"])  # a shared answer is not shared again


# --- a channel the bot is not in -------------------------------------------------------------------


@pytest.mark.parametrize("error", ["not_in_channel", "channel_not_found"])
async def test_a_reply_that_cannot_be_posted_is_explained_in_a_dm(rig: Rig, error: str) -> None:
    rig.fake.fail_next("chat.postMessage", error=error)
    event = {"type": "app_mention", "user": ASKER, "text": f"<@{BOT}> owner payment-service",
             "ts": "1700000012.000100", "channel": "C0SECRET01", "event_ts": "1700000012.000100"}
    await rig.event(event, event_id=f"Ev0{error}")
    first, dm = await rig.fake.wait_for("chat.postMessage", count=2)
    assert first.params["channel"] == "C0SECRET01" and first.response == {"ok": False, "error": error}
    assert dm.params["channel"] == ASKER
    assert "/invite" in dm.params["text"] and "<#C0SECRET01>" in dm.params["text"]
    assert dm.response is not None and dm.response["ok"] is True


# --- text cut before escaping, links never cut ------------------------------------------------------


async def test_long_text_full_of_specials_is_cut_outside_entities(rig: Rig) -> None:
    typed = "&lt;&amp;&gt;" * 1500  # decodes to 4,500 characters of <&>
    body = await rig.slash("/find", typed)
    assert len(body["text"]) <= 3000
    for text in _mrkdwn(body):
        _assert_inert(text)
        assert len(text) <= 3000


async def test_a_long_list_of_links_is_cut_between_links(big: Rig) -> None:
    body = await big.slash("/callboard", "info linky")
    assert body["blocks"], body
    texts = _mrkdwn(body)
    assert sum(t.count("<https://example.com/") for t in texts) >= 50  # Slack has room for most of them
    for text in texts:
        _assert_inert(text)
        assert len(text) <= 3000


# --- users.info failing ------------------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["error answer", "HTTP 500 HTML", "not JSON"])
async def test_mine_says_it_cannot_tell_who_you_are_when_users_info_fails(rig: Rig, failure: str) -> None:
    _fail_users_info(rig.fake, failure)
    body = await rig.slash("/callboard", "mine", user="U0PRIYA01")
    assert "can't tell who you are right now" in body["text"], body["text"]
    assert "no catalog User has your email" not in json.dumps(body)


@pytest.mark.parametrize("failure", ["error answer", "HTTP 500 HTML", "not JSON"])
async def test_other_answers_arrive_in_full_when_users_info_fails(rig: Rig, failure: str) -> None:
    _fail_users_info(rig.fake, failure)
    body = await rig.slash("/owner", "payment-service", user="U0PRIYA01")
    assert "payments-team" in body["text"]
    assert "payments-team@acme.example.com" in _blob(body) and "share" in _buttons(body["blocks"])
    # an event too: its answer is posted
    event = {"type": "message", "channel_type": "im", "user": "U0PRIYA01", "text": "owner payment-service",
             "ts": "1700000013.000100", "channel": "D0PRIYA001", "event_ts": "1700000013.000100"}
    _fail_users_info(rig.fake, failure)
    await rig.event(event, event_id="Ev0USERSINFO")
    (call,) = await rig.fake.wait_for("chat.postMessage")
    assert "payments-team" in call.params["text"]


def _fail_users_info(fake: SlackFake, failure: str) -> None:
    if failure == "error answer":
        fake.fail_next("users.info", error="fatal_error")
    elif failure == "HTTP 500 HTML":  # the client retries 5xx twice: all three fail
        fake.fail_next("users.info", status=500, body="<html><body>Internal Server Error</body></html>", times=3)
    else:
        fake.fail_next("users.info", status=200, body="<html><body>Service Unavailable</body></html>")


# --- bodies: signature first, then parsing; Socket Mode has no HTTP endpoint ------------------------


_MALFORMED = [
    ("application/json", "{not json"),
    ("application/json", "[1, 2, 3]"),
    (FORM, "payload=%7Bnot+json"),
    (FORM, "payload=%5B1%5D"),
    (FORM, "a=1&&=%zz&b"),
]


@pytest.mark.parametrize(("content_type", "body"), _MALFORMED)
async def test_a_malformed_unsigned_body_is_401_without_a_traceback(
        rig: Rig, caplog: pytest.LogCaptureFixture, content_type: str, body: str) -> None:
    caplog.set_level(logging.DEBUG)
    status, _ = await rig.send(body, content_type, signed=False)
    assert status == 401
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert rig.dispatched == []


@pytest.mark.parametrize(("content_type", "body"), _MALFORMED)
async def test_a_malformed_signed_body_is_400(rig: Rig, caplog: pytest.LogCaptureFixture, content_type: str,
                                             body: str) -> None:
    caplog.set_level(logging.DEBUG)
    status, _ = await rig.send(body, content_type)
    assert status == 400
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert rig.dispatched == []


async def test_socket_mode_does_not_serve_http_events(fake: SlackFake, tmp_path: Path) -> None:
    hello = asyncio.Event()

    async def link(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0FAKEAPP1"}})
        hello.set()
        async for _ in ws:
            pass
        return ws

    socket_app = web.Application()
    socket_app.router.add_get("/link", link)
    socket_server = TestServer(socket_app, host="127.0.0.1")
    await socket_server.start_server()
    fake.tokens.add("xapp-test")
    fake.set_handler("apps.connections.open",
                     lambda call: {"url": str(socket_server.make_url("/link")).replace("http", "ws", 1)})
    try:
        async with serving(fake, tmp_path, app_token="xapp-test") as rig:
            await asyncio.wait_for(hello.wait(), 10)
            for body, content_type, signed in ((urllib.parse.urlencode({"command": "/owner", "text": "x"}), FORM, True),
                                               ("{}", "application/json", False)):
                status, _ = await rig.send(body, content_type, signed=signed)
                assert status == 404
            assert rig.dispatched == []
    finally:
        await socket_server.close()


# --- Docs and Runbook only where docs are built -------------------------------------------------------


async def test_docs_and_runbook_buttons_only_on_entities_with_built_docs(big: Rig) -> None:
    assert big.app.last_docs is not None and big.app.last_docs.failed == 0, big.app.last_docs
    documented = _buttons((await big.slash("/owner", "documented"))["blocks"])
    assert "docs component:default/documented" in documented.values()
    assert "runbook component:default/documented" in documented.values()
    for question in ("owner undocumented", "info undocumented", "info big-team", "owner small-team"):
        values = _buttons((await big.slash("/callboard", question))["blocks"]).values()
        assert not [v for v in values if v.startswith(("docs ", "runbook "))], (question, values)
        assert [v for v in values if v.split(" ")[0] in ("owner", "deps", "info", "oncall")], (question, values)


# --- paging --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_paging_keeps_the_question_server_side(fake: SlackFake, tmp_path: Path, dialect: str) -> None:
    url = await fresh_postgres() if dialect == "postgres" else None
    async with serving(fake, tmp_path, database_url=url, catalog=_generated_catalog(tmp_path / "catalog")) as rig:
        # 3,000 characters as Slack sends them: a link whose label is the team, and the question
        question = f"owner <https://example.com/{'x' * 2990}|big-team>"
        assert len(question) > 3000
        first = await rig.slash("/callboard", question)
        blob = _blob(first)
        assert "comp-000" in blob and "comp-014" in blob and "comp-015" not in blob
        value = _buttons(first["blocks"])["page:next"]
        key, page = value.rsplit(":", 1)
        assert page == "2" and len(value) <= 100 and re.fullmatch(r"[A-Za-z0-9_-]+", key)
        # each question gets its own key, as short
        again = _buttons((await rig.slash("/callboard", "owner big-team"))["blocks"])["page:next"]
        assert len(again) <= 100 and again != value

        await rig.click(value, action_id="page:next", name="page2")
        (call,) = await rig.fake.wait_for("response_url:page2")
        blob = _blob(call.params)
        assert "comp-015" in blob and "comp-029" in blob and "comp-014" not in blob and "comp-030" not in blob
        assert "page 2 of 3" in blob
        nav = _buttons(call.params["blocks"])
        assert nav["page:prev"] == f"{key}:1" and nav["page:next"] == f"{key}:3"

        await rig.click("nosuchkey123:2", action_id="page:next", name="expired")
        (call,) = await rig.fake.wait_for("response_url:expired")
        assert "expired" in call.params["text"]
        assert call.params["response_type"] == "ephemeral" and call.params["replace_original"] is False


# --- the did-you-mean picker ---------------------------------------------------------------------------


async def test_the_picker_after_an_ambiguous_question_runs_the_command_that_was_asked(rig: Rig) -> None:
    body = await rig.slash("/callboard", "who owns pay?")
    pickers = [b for b in body["blocks"] if b.get("block_id", "").startswith("pick:")]
    assert [p["block_id"] for p in pickers] == ["pick:owner"]
    payload = {"type": "block_actions", "user": {"id": ASKER}, "team": {"id": "T0FAKE001"},
               "channel": {"id": "C0GENERAL1"}, "response_url": rig.fake.response_url("pick"), "trigger_id": "1.2",
               "container": {"type": "message", "is_ephemeral": True},
               "actions": [{"action_id": "entity_pick", "block_id": "pick:owner", "type": "external_select",
                            "selected_option": {"value": "component:default/payment-service",
                                                "text": {"type": "plain_text", "text": "payment-service"}},
                            "action_ts": "1"}]}
    assert (await rig.interactive(payload))[0] == 200
    (call,) = await rig.fake.wait_for("response_url:pick")
    assert rig.dispatched[-1] == "owner component:default/payment-service"
    assert "payments-team" in call.params["text"]


# --- retries answered once, by the database -------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_retry_reaching_another_replica_is_answered_once(fake: SlackFake, tmp_path: Path, dialect: str) -> None:
    """Two servers, one database: each keeps its own memory, so only the database can tell."""
    url = await fresh_postgres() if dialect == "postgres" else f"sqlite:///{tmp_path / 'shared.db'}"
    catalog = _generated_catalog(tmp_path / "catalog", owned=3)
    event = {"type": "message", "channel_type": "im", "user": ASKER, "text": "owner comp-001",
             "ts": "1700000014.000100", "channel": "D0ASKER001", "event_ts": "1700000014.000100"}
    async with serving(fake, tmp_path, database_url=url, catalog=catalog, name="a") as first, \
            serving(fake, tmp_path, database_url=url, catalog=catalog, name="b") as second:
        await first.event(event, event_id="Ev0RETRY1")
        await second.event(event, event_id="Ev0RETRY1", retry=1)
        await first.event(event, event_id="Ev0RETRY1", retry=2)
        await first.settled()
        await second.settled()
        assert len(fake.calls_to("chat.postMessage")) == 1
        assert len(first.dispatched) + len(second.dispatched) == 1
        await second.event({**event, "ts": "1700000015.000100"}, event_id="Ev0RETRY2")
        await second.settled()
        assert len(fake.calls_to("chat.postMessage")) == 2


# --- a form round trip ------------------------------------------------------------------------------------


class _TwoPages:
    """A tiny form owner: page 1 asks a required name (and a few fields), page 2 the rest."""

    def __init__(self) -> None:
        self.submissions: list[FormSubmission] = []

    async def open(self, form: str, values: Mapping[str, Any], user_ref: str | None) -> Form:
        if form != "template:default/tiny":
            raise Unanswered(Reply.notice(Status.NOT_FOUND, f"No form {form}."))
        choices = (Choice(value="go", label="Go"), Choice(value="py", label="Python"))
        return Form(id=form, title="Tiny template", values=dict(values), pages=(
            FormPage(title="Basics", fields=(
                Field(name="name", label="Name", required=True, help="lower-case letters"),
                Field(name="description", label="Description", type=FieldType.MULTILINE),
                Field(name="token", label="Token", type=FieldType.PASSWORD),
                Field(name="replicas", label="Replicas", type=FieldType.INTEGER, minimum=1, maximum=9),
                Field(name="ratio", label="Ratio", type=FieldType.NUMBER),
                Field(name="public", label="Public", type=FieldType.BOOLEAN),
            )),
            FormPage(title="Details", fields=(
                Field(name="language", label="Language", type=FieldType.CHOICE, choices=choices, required=True),
                Field(name="extras", label="Extras", type=FieldType.MULTI_CHOICE, choices=choices),
                Field(name="tags", label="Tags", type=FieldType.STRINGS),
                Field(name="owner", label="Owner", type=FieldType.ENTITY, kinds=("Group",)),
                Field(name="repo", label="Repository", type=FieldType.REPO_URL, hosts=("github.com",)),
            )),
        ))

    async def submit(self, form: Form, submission: FormSubmission) -> FormStep:
        self.submissions.append(submission)
        missing = tuple(FieldError(field=f.name, message=f"{f.label} is required")
                        for f in form.current.fields if f.required and not submission.values.get(f.name))
        values = {**form.values, **submission.values}
        if missing:
            return Form(id=form.id, title=form.title, pages=form.pages, page=form.page, values=values, errors=missing)
        if not form.last_page:
            return Form(id=form.id, title=form.title, pages=form.pages, page=form.page + 1, values=values)
        return Reply.notice(Status.OK, f"Created {values['name']} in {values['language']}.")


def _submission(view: Mapping[str, Any], values: Mapping[str, dict[str, Any]], key: str) -> dict[str, Any]:
    """A view_submission as Slack sends it: the modal as opened, with its blocks' state."""
    return {"type": "view_submission", "team": {"id": "T0FAKE001"}, "user": {"id": ASKER}, "trigger_id": "1.2.4",
            "view": {**view, "private_metadata": key, "state": {"values": {
                name: {"value": state} for name, state in values.items()}}}}


async def test_a_form_round_trip(fake: SlackFake, tmp_path: Path) -> None:
    handler = _TwoPages()
    async with serving(fake, tmp_path, forms=handler) as rig:
        reply = Reply(status=Status.OK, summary="s", blocks=(
            Notice(level="info", text="x"), Actions(actions=(OpenForm(label="Create", form="template:default/tiny"),))))
        button = next(e for b in render(reply, View(asked="x")).blocks if b["type"] == "actions" for e in b["elements"])
        await rig.click(button["value"], action_id=button["action_id"], name="form")
        (opened,) = await fake.wait_for("views.open")
        assert opened.response is not None and opened.response["ok"] is True, opened.response
        modal = opened.params["view"]
        assert opened.params["trigger_id"] == "1.2.3" and modal["callback_id"] == "callboard_form"
        assert [b["block_id"] for b in modal["blocks"] if b["type"] == "input"] == [
            "name", "description", "token", "replicas", "ratio", "public"]
        key = modal["private_metadata"]
        assert 0 < len(key) <= 64

        # page 1 without its required name: errors under the name's block
        status, text = await rig.interactive(_submission(modal, {
            "name": {"type": "plain_text_input", "value": None},
            "replicas": {"type": "number_input", "value": "3"},
            "public": {"type": "checkboxes", "selected_options": [{"value": "true"}]}}, key))
        assert status == 200
        answer = json.loads(text)
        assert answer["response_action"] == "errors" and set(answer["errors"]) == {"name"}
        assert "Name is required" in answer["errors"]["name"]

        # page 1 valid: the modal becomes page 2
        status, text = await rig.interactive(_submission(modal, {
            "name": {"type": "plain_text_input", "value": "tiny-svc"},
            "replicas": {"type": "number_input", "value": "3"},
            "public": {"type": "checkboxes", "selected_options": [{"value": "true"}]}}, key))
        answer = json.loads(text)
        assert answer["response_action"] == "update", answer
        page2 = answer["view"]
        assert [b["block_id"] for b in page2["blocks"] if b["type"] == "input"] == [
            "language", "extras", "tags", "owner", "repo"]
        assert handler.submissions[-1].values == {"name": "tiny-svc", "replicas": "3", "public": True}
        key2 = page2["private_metadata"]

        # the owner picker's options come from the catalog, of the field's kinds only
        (owner,) = [b["element"] for b in page2["blocks"] if b.get("block_id") == "owner"]
        status, text = await rig.interactive({
            "type": "block_suggestion", "user": {"id": ASKER}, "team": {"id": "T0FAKE001"},
            "action_id": owner["action_id"], "block_id": "owner", "value": "payments",
            "view": {**page2, "private_metadata": key2}})
        assert status == 200
        offered = [o["value"] for o in json.loads(text)["options"]]
        assert "group:default/payments-team" in offered and all(v.startswith("group:") for v in offered), offered

        # the last page: the modal closes and the answer is posted to the person
        status, text = await rig.interactive(_submission(page2, {
            "language": {"type": "static_select", "selected_option": {"value": "py"}},
            "extras": {"type": "multi_static_select", "selected_options": [{"value": "go"}]},
            "tags": {"type": "plain_text_input", "value": "a, b"},
            "owner": {"type": "external_select", "selected_option": {"value": "group:default/big-team"}},
            "repo": {"type": "plain_text_input", "value": "github.com?owner=acme&repo=tiny"}}, key2))
        assert json.loads(text) == {"response_action": "clear"}
        (posted,) = await fake.wait_for("chat.postMessage")
        assert posted.params["channel"] == ASKER and "Created tiny-svc in py." in posted.params["text"]
        assert handler.submissions[-1].values["extras"] == ["go"]


async def test_a_form_that_cannot_be_opened_answers_the_clicker_why(fake: SlackFake, tmp_path: Path) -> None:
    async with serving(fake, tmp_path, forms=_TwoPages()) as rig:
        reply = Reply(status=Status.OK, summary="s", blocks=(
            Actions(actions=(OpenForm(label="Create", form="template:default/gone"),)),))
        button = next(e for b in render(reply, View(asked="x")).blocks if b["type"] == "actions" for e in b["elements"])
        await rig.click(button["value"], action_id=button["action_id"], name="gone")
        (answer,) = await fake.wait_for("response_url:gone")
        assert "No form template:default/gone" in answer.params["text"]
        assert answer.params.get("response_type") == "ephemeral" or answer.params.get("replace_original") is True
        assert not fake.calls_to("views.open")


async def test_a_form_key_sent_by_someone_else_finds_nothing(fake: SlackFake, tmp_path: Path) -> None:
    """A form's values so far (a secret among them, perhaps) belong to whoever opened it: another
    person submitting its key gets "expired", and the form's owner never sees the submission."""
    handler = _TwoPages()
    async with serving(fake, tmp_path, forms=handler) as rig:
        reply = Reply(status=Status.OK, summary="s", blocks=(
            Actions(actions=(OpenForm(label="Create", form="template:default/tiny"),)),))
        button = next(e for b in render(reply, View(asked="x")).blocks if b["type"] == "actions" for e in b["elements"])
        await rig.click(button["value"], action_id=button["action_id"], name="form")
        (opened,) = await fake.wait_for("views.open")
        modal = opened.params["view"]
        stolen = {**_submission(modal, {"name": {"type": "plain_text_input", "value": "x"}}, modal["private_metadata"]),
                  "user": {"id": "U0MALLORY1"}}
        status, text = await rig.interactive(stolen)
        assert status == 200 and json.loads(text) == {"response_action": "clear"}
        (told,) = await fake.wait_for("chat.postMessage")
        assert told.params["channel"] == "U0MALLORY1" and "expired" in told.params["text"]
        assert handler.submissions == []
