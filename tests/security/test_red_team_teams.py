"""Red-team cases against the Microsoft Teams surface: hostile activities, card actions, dialogs,
typeahead and link unfurls sent over HTTP to the real server (``tests/bot/teams/rig.py``: the real
``callboard serve`` application, botbuilder's CloudAdapter inside, the Bot Connector fake behind it),
hostile catalog text through the real card renderer, the app password against every log line and
the app package, and a Bot Connector that fails in every way it can.

The rule under test (``docs/security.md``): every chat message, click and catalog string may be
hostile; nothing from them may run, reach an address off this machine in development mode, or
reach a person as a live mention, link or escape sequence; secrets never reach logs or chat.
Holes that belong to ``bot/teams/app.py`` are ``xfail(strict=True)`` tests naming the fix.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import socket
import time
import unicodedata
import zipfile
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from callboard.bot.config import Settings
from callboard.bot.surface import View
from callboard.bot.teams import cards
from callboard.bot.teams.app import TeamsSurface, teams_text
from callboard.bot.teams.package import build_package
from callboard.bot.teams.protocol import (DATA_COMMAND, DATA_FORM, DATA_FORM_KEY, DATA_PAGE, DATA_PAGE_KEY,
                                          DATA_PICK_COMMAND, DATASET_FORM, PICK_INPUT, VERB_PAGE, VERB_PICK,
                                          VERB_RUN)
from callboard.bot.teams.settings import TeamsSettings
from callboard.commands.api import (Actions, Code, Fields, Header, Hit, Hits, Item, ItemList, Links, Notice,
                                    OpenUrl, Person, Reply, RunCommand, Status, Steps, Text)
from callboard.commands.dispatch import CommandRegistry
from callboard.commands.forms import Choice, Field, FieldError, FieldType, Form, FormPage

from ..bot.teams.rig import BOT, PRIYA, STRANGER, Rig, serving
from ..bot.test_golden_path import _catalog as template_catalog
from ..fakes.botconnector import BotConnectorFake
from ..fakes.botframework_auth import BotFrameworkIdentityFake

APP_ID = "11111111-2222-3333-4444-555555555555"
PASSWORD = "Zq9~teams-app-s3cret.value_7"  # noqa: S105 - the secret the tests look for
PUBLIC_URL = "https://callboard.acme.example.com"
CHANNEL = "19:general@thread.tacv2"


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with serving(tmp_path, public_url=PUBLIC_URL) as r:
        yield r


# --- reading what reached Teams -------------------------------------------------------------------

def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _unsafe(text: str) -> list[str]:
    return [f"U+{ord(c):04X}" for c in text if c not in "\n\t" and unicodedata.category(c) in ("Cc", "Cf", "Cs")]


_MENTION_BLOCK = re.compile(r"• <at>(?:[^\W_]|[ .'-]){1,64}</at>")
_GOOD_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::\d+)?(?:[/?#][^\s<>\"`\\]*)?")


def assert_inert(card: Mapping[str, Any], *, where: str = "") -> None:
    """Nothing in ``card`` reads as markup, mentions someone Callboard did not resolve, links
    anywhere but a plain http(s) URL, loads a picture, or holds a control or format character."""
    entities = (card.get("msteams") or {}).get("entities") or []
    for entity in entities:
        assert entity["type"] == "mention" and re.fullmatch(r"(29|8):[A-Za-z0-9_:.-]{1,200}",
                                                             entity["mentioned"]["id"]), (where, entity)
        assert entity["text"] == f"<at>{entity['mentioned']['name']}</at>", (where, entity)
    for node in _walk(card):
        kind = node.get("type")
        assert kind not in ("Image", "ImageSet", "Media"), (where, node)  # a picture is a request to its host
        assert "backgroundImage" not in node and "iconUrl" not in node, (where, node)
        if kind == "TextBlock":  # the only markdown Callboard writes: its own mentions
            assert _MENTION_BLOCK.fullmatch(node["text"]), (where, node)
            assert node["text"].removeprefix("• ") in {e["text"] for e in entities}, (where, node)
        for key in ("text", "title", "label", "placeholder", "value", "errorMessage", "fallbackText"):
            if isinstance(node.get(key), str):
                assert not _unsafe(node[key]), (where, key, node[key][:200], _unsafe(node[key]))
        if kind == "Action.OpenUrl":
            url = node["url"]
            assert _GOOD_URL.fullmatch(url), (where, url)
        if "selectAction" in node:
            assert node["selectAction"]["type"] == "Action.OpenUrl", (where, node)
        if kind == "Input.ChoiceSet":
            for choice in node.get("choices") or []:
                assert not _unsafe(choice["title"]), (where, choice)


def _cards(rig: Rig, conversation: str = "a:1personal-chat") -> list[dict[str, Any]]:
    return rig.cards(conversation)


async def _posted(rig: Rig, conversation: str = "a:1personal-chat", count: int = 1) -> list[dict[str, Any]]:
    await rig.settled()
    for _ in range(100):
        found = rig.connector.posted(conversation)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing posted to {conversation}: {[(c.operation, c.status) for c in rig.connector.calls]}")


async def _raw(rig: Rig, body: bytes, content_type: str = "application/json") -> tuple[int, bytes]:
    async with rig.http.post(rig.server.make_url("/api/messages"), data=io.BytesIO(body),
                             headers={"Content-Type": content_type}) as resp:
        return resp.status, await resp.read()


async def _still_answers(rig: Rig, conversation: str = "a:1still-here") -> None:
    """The bot is alive and answering other people after whatever the case did."""
    before = len(rig.connector.posted(conversation))
    await rig.message("owner payment-service", conversation=conversation)
    posted = await _posted(rig, conversation, before + 1)
    assert "payments-team" in json.dumps(posted[-1]), posted[-1]


def _no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Hostile input is refused or answered; it is not an unhandled error with a traceback."""
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not bad, [f"{r.name}: {r.getMessage()[:300]}" for r in bad]


# --- A. requests that are not what Teams sends ------------------------------------------------------


async def test_a_body_over_the_limit_is_413_and_nothing_runs(rig: Rig) -> None:
    activity = rig.activity("message", text="owner payment-service " + "x" * (2 * 1024 * 1024))
    status, _ = await _raw(rig, json.dumps(activity).encode())
    assert status == 413
    await rig.settled()
    assert not rig.dispatched and not rig.connector.calls


@pytest.mark.parametrize("body", [
    b"[" * 1_000_000 + b"]" * 1_000_000,  # a whole body nested a million deep
    b'{"type": "message", "serviceUrl": "http://127.0.0.1/", "value": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
], ids=["deep-body", "deep-value"])
@pytest.mark.xfail(strict=True, reason="bot/teams/app.py TeamsSurface.handle catches ValueError and "
                   "UnicodeDecodeError from request.json() but not RecursionError: deep JSON is a 500 with a "
                   "logged traceback instead of a 400")
async def test_deeply_nested_json_is_a_400_not_a_server_error(rig: Rig, body: bytes,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    status, _ = await _raw(rig, body)
    assert status == 400
    _no_errors_logged(caplog)


@pytest.mark.parametrize("change", [
    {"from": "29:just-a-string"},
    {"from": ["29:a", "29:b"]},
    pytest.param({"conversation": None}, marks=pytest.mark.xfail(strict=True, reason=(
        "bot/teams/app.py: an activity without a conversation reaches _remember/_on_message, which read "
        "activity.conversation.conversation_type: an AttributeError and a logged traceback; handle() should "
        "answer 400 when conversation is not an object with an id"))),
    {"conversation": "a:1personal-chat"},
    {"recipient": 7},
    {"text": {"nested": "object"}},
    {"text": 12345},
    {"entities": "not a list"},
    {"entities": [1, "x", None, {"type": "mention"}, {"type": "mention", "mentioned": "28:callboard-bot-id"},
                  {"type": "mention", "mentioned": {"id": 5}, "text": 7}, {"type": ["mention"]}]},
    {"channelData": "junk"},
    {"timestamp": "not a time"},
    {"localTimestamp": 7},
    {"id": {"no": "id"}},
    {"type": "message", "attachments": "junk"},
    {"value": ["a", "list"]},
    {"value": "cmd=owner payment-service"},
    {"membersAdded": "28:callboard-bot-id"},
], ids=lambda c: ",".join(f"{k}={type(v).__name__}" for k, v in c.items()))
async def test_wrong_types_anywhere_in_a_message_are_refused_or_ignored_never_a_crash(
        rig: Rig, change: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    activity = rig.activity("message", text="owner payment-service", conversation="a:1wrong-types")
    activity.update(change)
    status, _, _ = await rig.post(activity)
    assert status in (200, 400), status
    await rig.settled()
    for card in _cards(rig, "a:1wrong-types"):
        assert_inert(card)
    _no_errors_logged(caplog)
    await _still_answers(rig)


@pytest.mark.parametrize("text,asked", [
    (" " * 100_000, "help"),  # nothing but spaces: the help, as for an empty message
    ("owner payment-service\x00\x00" + "\x00" * 1000, "owner payment-service"),
    ("\u202eecivres-tnemyap renwo", None),  # a right-to-left override: asked literally, shown inert
    ("owner payment-service " + "y" * 20_000, None),  # a Teams-sized message in one word
], ids=["spaces", "nuls", "rlo", "20k-word"])
async def test_odd_message_texts_are_acknowledged_at_once_and_answered_inert(rig: Rig, text: str,
                                                                            asked: str | None) -> None:
    status, _, took = await rig.post(rig.activity("message", text=text))
    assert status == 200 and took < 2.0, took
    (card,) = [c for p in await _posted(rig) for c in [p["attachments"][0]["content"]]]
    assert_inert(card)
    if asked is not None:
        assert [t.replace("\x00", "") for t in rig.dispatched] == [asked], rig.dispatched
    assert "\x00" not in json.dumps(rig.connector.posted(), ensure_ascii=False)


@pytest.mark.xfail(strict=True, reason="bot/teams/app.py _AT = <at(?:\\s[^>]*)?>(.*?)</at> with DOTALL: every <at> "
                   "without a closing tag scans to the end of the text, so teams_text is quadratic and runs on the "
                   "event loop: 7,000 '<at>' (a 28 KB Teams message) block every conversation for ~1.5 s")
def test_mention_markup_without_closing_tags_is_read_in_linear_time() -> None:
    for text in ("<at>" * 7000, "<at " * 7000, "<at x>" + "<at>y" * 5000):
        started = time.perf_counter()
        teams_text(text, [(BOT, "<at>Callboard</at>")], BOT)
        assert time.perf_counter() - started < 0.1, text[:20]


@pytest.mark.parametrize("name", ["fileConsent/invoke", "signin/verifyState", "actionableMessage/executeAction",
                                  "composeExtension/submitAction", "task/fetch\x00", "x" * 10_000, ""])
async def test_unknown_invokes_are_refused_without_running_anything(rig: Rig, name: str) -> None:
    status, body, _ = await rig.post(rig.activity("invoke", name=name, value={"data": {DATA_COMMAND: "help"}}))
    assert status == 501, (status, body)
    assert len(json.dumps(body)) < 300 and "\x00" not in json.dumps(body, ensure_ascii=False)
    await rig.settled()
    assert not rig.dispatched and not rig.connector.posted()


@pytest.mark.parametrize("tz", ["../../etc/passwd", "/etc/localtime", "Europe/../../../etc/shadow", "Europe\x00Berlin",
                                pytest.param("A" * 10_240, marks=pytest.mark.xfail(strict=True, reason=(
                                    "commands/oncall.py _zone catches ZoneInfoNotFoundError and ValueError but "
                                    "not the OSError (ENAMETOOLONG) ZoneInfo raises for a 10 KB key: the answer is "
                                    "'Sorry, oncall failed'; bot/teams/app.py _asked passes Teams' localTimezone "
                                    "unchecked"))),
                                "UTC\u202e", "Etc/GMT+99", "", "   "])
async def test_a_garbage_local_time_zone_falls_back_and_reads_nothing(rig: Rig, tz: str,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    await rig.message("oncall payment-service", tz=tz)
    (card,) = _cards(rig) or [c["attachments"][0]["content"] for c in await _posted(rig)]
    text = json.dumps(card)
    assert "On call for payment-service" in text, text[:500]
    assert "root:" not in text and tz[:40] not in text.replace("Callboard", "") or not tz.strip(), text[:500]
    assert_inert(card)
    _no_errors_logged(caplog)


@pytest.mark.xfail(strict=True, reason="bot/teams/app.py _on_message passes a message of any length to the "
                   "dispatcher, whose shlex.split is quadratic and runs on the event loop: 250,000 characters "
                   "hold every other conversation for seconds (Teams itself sends at most ~28 KB)")
async def test_a_very_long_message_does_not_hold_up_other_conversations(rig: Rig) -> None:
    await rig.message("owner payment-service " + "y z" * 85_000, conversation="a:1long")
    started = time.perf_counter()
    status, body, _ = await rig.post(rig.activity("invoke", name="adaptiveCard/action", conversation="a:1other",
                                                  value={"action": {"type": "Action.Execute", "verb": VERB_RUN,
                                                                    "data": {DATA_COMMAND: "owner checkout-api"}}}))
    assert status == 200 and "checkout-team" in json.dumps(body)
    assert time.perf_counter() - started < 1.0


# --- A2. development mode talks only to a Bot Connector on this machine ------------------------------


@pytest.mark.parametrize("service_url", [
    "http://127.0.0.1@evil.example", "http://127.0.0.1:80@evil.example/", "http://localhost.evil.example",
    "http://localhost@evil.example", "http://0x7f000001", "http://2130706433", "http://127.1", "http://0177.0.0.1",
    "http://[::ffff:127.0.0.1]", "http://[::ffff:7f00:1]", "http://evil.example#@127.0.0.1",
    "http://evil.example?@127.0.0.1", "http://127.0.0.1\t.evil.example", "http://127.0.0.1%2eevil.example",
    "http://127.0.0.1\u3002evil.example", "http://127.0.0.1:8080 @evil.example", "http://169.254.169.254",
    "http://[fe80::1]", "http://[::]", "http://0.0.0.0", "https://smba.trafficmanager.net/emea/",
    "HTTP://EVIL.EXAMPLE", "http://[::1]@evil.example", "http://evil.example/127.0.0.1",
], ids=lambda u: u[:40])
async def test_development_mode_refuses_service_urls_off_this_machine(rig: Rig, service_url: str) -> None:
    for activity in (rig.activity("message", text="owner payment-service", serviceUrl=service_url),
                     rig.activity("invoke", name="adaptiveCard/action", serviceUrl=service_url, value={"action": {
                         "type": "Action.Execute", "verb": VERB_RUN, "data": {DATA_COMMAND: "owner payment-service"}}}),
                     rig.activity("conversationUpdate", serviceUrl=service_url,
                                  membersAdded=[{"id": BOT, "name": "Callboard"}])):
        status, _, _ = await rig.post(activity)
        assert status in (400, 401), (service_url, activity["type"], status)
    await rig.settled()
    assert not rig.dispatched and not rig.connector.calls


@pytest.fixture
def evil_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``evil.example`` resolves to this machine (where a second Bot Connector fake stands for a
    stranger's server); every name looked up is recorded."""
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
        looked_up.append(host if isinstance(host, str) else repr(host))
        return real("127.0.0.1" if host == "evil.example" else host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up


@pytest.mark.xfail(strict=True, reason="bot/teams/app.py _dev_connector reads the host with urllib.parse, which takes "
                   "everything up to the last '@' as user info even across a backslash; requests (the SDK's HTTP "
                   "client) ends the host at the backslash: http://evil.example:P\\@127.0.0.1:Q passes the check "
                   "and the answer is POSTed to evil.example:P. Fix: refuse a serviceUrl whose netloc holds '@', "
                   "'\\\\' or anything but host[:port]")
async def test_a_service_url_that_parsers_read_differently_is_refused(tmp_path: Path, evil_dns: list[str]) -> None:
    evil = BotConnectorFake()
    await evil.start()
    try:
        async with serving(tmp_path) as rig:
            service_url = f"http://evil.example:{evil.url.rsplit(':', 1)[1]}\\@{rig.connector.url.removeprefix('http://')}"
            status, _, _ = await rig.post(rig.activity("message", text="owner payment-service", serviceUrl=service_url))
            await rig.settled()
            assert not evil.calls, [(c.method, c.path, json.dumps(c.body)[:200]) for c in evil.calls]
            assert "evil.example" not in evil_dns
            assert status == 401
    finally:
        await evil.stop()


async def test_service_urls_on_this_machine_in_any_spelling_do_reach_the_local_connector(tmp_path: Path) -> None:
    """The refusals above are not a refusal of everything: localhost and [::1] spellings work."""
    connector = BotConnectorFake()
    await connector.start()
    try:
        async with serving(tmp_path, connector=connector) as rig:
            port = connector.url.rsplit(":", 1)[1]
            for n, url in enumerate((f"http://localhost:{port}", f"http://LOCALHOST:{port}/", f"http://127.0.0.1:{port}")):
                await rig.message("owner payment-service", serviceUrl=url, conversation=f"a:1local-{n}")
                assert "payments-team" in json.dumps(await _posted(rig, f"a:1local-{n}"))
    finally:
        await connector.stop()
