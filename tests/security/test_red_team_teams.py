"""Red-team cases against the Microsoft Teams surface: hostile activities, card actions, dialogs,
typeahead and link unfurls sent over HTTP to the real server (``tests/bot/teams/rig.py``: the real
``callboard serve`` application, botbuilder's CloudAdapter inside, the Bot Connector fake behind it),
hostile catalog text through the real card renderer, the app password against every log line and
the app package, and a Bot Connector that fails in every way it can.

The rule under test (``docs/security.md``): every chat message, click and catalog string may be
hostile; nothing from them may run, reach an address off this machine in development mode, or
reach a person as a live mention, link or escape sequence; secrets never reach logs or chat.
Each hole found was fixed; its test stays.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging
import re
import socket
import time
import unicodedata
import zipfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from callboard.bot.config import Settings
from callboard.bot.surface import View
from callboard.bot.teams import cards
from callboard.bot.teams.app import teams_text
from callboard.bot.teams.package import build_package
from callboard.bot.teams.protocol import (DATA_COMMAND, DATA_FORM, DATA_FORM_KEY, DATA_PAGE, DATA_PAGE_KEY,
                                          DATA_PICK_COMMAND, DATASET_FORM, PICK_INPUT, VERB_PAGE, VERB_PICK,
                                          VERB_RUN)
from callboard.bot.teams.settings import TeamsSettings
from callboard.commands.api import (Actions, Code, Fields, Header, Hit, Hits, Item, ItemList, Links, Notice,
                                    OpenUrl, Person, Reply, RunCommand, Status, Steps, Text)
from callboard.commands.dispatch import CommandRegistry
from callboard.commands.forms import Choice, Field, FieldError, FieldType, Form, FormPage

from ..bot.teams.rig import BOT, PRIYA, STRANGER, Rig, serving, walk as _walk
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



async def _raw(rig: Rig, body: bytes, content_type: str = "application/json") -> tuple[int, bytes]:
    async with rig.http.post(rig.server.make_url("/api/messages"), data=io.BytesIO(body),
                             headers={"Content-Type": content_type}) as resp:
        return resp.status, await resp.read()


async def _still_answers(rig: Rig, conversation: str = "a:1still-here") -> None:
    """The bot is alive and answering other people after whatever the case did."""
    before = len(rig.connector.posted(conversation))
    await rig.message("owner payment-service", conversation=conversation)
    posted = await rig.posted(conversation, before + 1)
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
async def test_deeply_nested_json_is_a_400_not_a_server_error(rig: Rig, body: bytes,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    status, _ = await _raw(rig, body)
    assert status == 400
    _no_errors_logged(caplog)


#: Fields of a message with the wrong type (each alone, the rest as Teams sends it).
WRONG_TYPES: list[dict[str, Any]] = [
    {"from": "29:just-a-string"}, {"from": ["29:a", "29:b"]}, {"conversation": "a:1personal-chat"},
    {"recipient": 7}, {"text": {"nested": "object"}}, {"text": 12345}, {"entities": "not a list"},
    {"entities": [1, "x", None, {"type": "mention"}, {"type": "mention", "mentioned": "28:callboard-bot-id"},
                  {"type": "mention", "mentioned": {"id": 5}, "text": 7}, {"type": ["mention"]}]},
    {"channelData": "junk"}, {"timestamp": "not a time"}, {"localTimestamp": 7}, {"id": {"no": "id"}},
    {"attachments": "junk"}, {"value": ["a", "list"]}, {"value": "cmd=owner payment-service"},
    {"membersAdded": "28:callboard-bot-id"}, {"type": 7}, {"serviceUrl": None}, {"localTimezone": ["UTC"]},
]


async def test_wrong_types_anywhere_in_a_message_are_refused_or_ignored_never_a_crash(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    for n, change in enumerate(WRONG_TYPES):
        conversation = f"a:1wrong-{n}"
        activity = {**rig.activity("message", text="owner payment-service", conversation=conversation), **change}
        status, _, _ = await rig.post(activity)
        assert status in (200, 400), (change, status)
        await rig.settled()
        for card in _cards(rig, conversation):
            assert_inert(card, where=str(change))
        _no_errors_logged(caplog)
    await _still_answers(rig)


async def test_a_message_without_a_conversation_is_a_400(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    activity = {**rig.activity("message", text="owner payment-service"), "conversation": None}
    status, _, _ = await rig.post(activity)
    await rig.settled()
    _no_errors_logged(caplog)
    assert status == 400


async def test_odd_message_texts_are_acknowledged_at_once_and_answered_inert(rig: Rig) -> None:
    for n, (text, asked) in enumerate((
            (" " * 100_000, "help"),  # nothing but spaces: the help, as for an empty message
            ("owner payment-service\x00\x00" + "\x00" * 1000, "owner payment-service"),
            ("\u202eecivres-tnemyap renwo", None),  # a right-to-left override: asked literally, shown inert
            ("owner payment-service " + "y" * 20_000, None))):  # a Teams-sized message in one word
        conversation = f"a:1odd-{n}"
        status, _, took = await rig.post(rig.activity("message", text=text, conversation=conversation))
        assert status == 200 and took < 2.0, took
        (posted,) = await rig.posted(conversation)
        assert_inert(posted["attachments"][0]["content"], where=text[:30])
        if asked is not None:
            assert rig.dispatched[-1].replace("\x00", "") == asked, rig.dispatched[-1][:100]
    assert len(rig.dispatched) == 4
    assert "\x00" not in json.dumps(rig.connector.posted(), ensure_ascii=False)


def test_mention_markup_without_closing_tags_is_read_in_linear_time() -> None:
    for text in ("<at>" * 7000, "<at " * 7000, "<at x>" + "<at>y" * 5000):
        started = time.perf_counter()
        teams_text(text, [(BOT, "<at>Callboard</at>")], BOT)
        assert time.perf_counter() - started < 0.1, text[:20]


async def test_unknown_invokes_are_refused_without_running_anything(rig: Rig) -> None:
    for name in ("fileConsent/invoke", "signin/verifyState", "actionableMessage/executeAction",
                 "composeExtension/submitAction", "task/fetch\x00", "x" * 10_000, "", "adaptivecard/action"):
        status, body, _ = await rig.post(rig.activity("invoke", name=name, value={"data": {DATA_COMMAND: "help"}}))
        assert status == 501, (name[:40], status, body)
        assert len(json.dumps(body)) < 300 and "\x00" not in json.dumps(body, ensure_ascii=False)
    await rig.settled()
    assert not rig.dispatched and not rig.connector.posted()


async def _oncall_with_zone(rig: Rig, tz: str, conversation: str) -> dict[str, Any]:
    await rig.message("oncall payment-service", tz=tz, conversation=conversation)
    (posted,) = await rig.posted(conversation)
    card: dict[str, Any] = posted["attachments"][0]["content"]
    assert_inert(card, where=tz[:40])
    return card


async def test_a_garbage_local_time_zone_falls_back_and_reads_nothing(rig: Rig,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    for n, tz in enumerate(("../../etc/passwd", "/etc/localtime", "Europe/../../../etc/shadow", "Europe\x00Berlin",
                            "UTC\u202e", "Etc/GMT+99", "", "   ", "A" * 255)):
        text = json.dumps(await _oncall_with_zone(rig, tz, f"a:1tz-{n}"))
        assert "On call for payment-service" in text and "root:" not in text, (tz, text[:300])
    _no_errors_logged(caplog)


async def test_a_ten_kilobyte_time_zone_falls_back(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    card = await _oncall_with_zone(rig, "A" * 10_240, "a:1tz-long")
    assert "On call for payment-service" in json.dumps(card)
    _no_errors_logged(caplog)


async def test_a_very_long_message_does_not_hold_up_other_conversations(rig: Rig) -> None:
    await rig.message("owner payment-service " + "y z" * 85_000, conversation="a:1long")
    started = time.perf_counter()
    status, body, _ = await rig.post(rig.activity("invoke", name="adaptiveCard/action", conversation="a:1other",
                                                  value={"action": {"type": "Action.Execute", "verb": VERB_RUN,
                                                                    "data": {DATA_COMMAND: "owner checkout-api"}}}))
    assert status == 200 and "checkout-team" in json.dumps(body)
    assert time.perf_counter() - started < 1.0


# --- A2. development mode talks only to a Bot Connector on this machine ------------------------------


#: serviceUrls that are not this machine, however they are spelled.
NOT_HERE = (
    "http://127.0.0.1@evil.example", "http://127.0.0.1:80@evil.example/", "http://localhost.evil.example",
    "http://localhost@evil.example", "http://0x7f000001", "http://2130706433", "http://127.1", "http://0177.0.0.1",
    "http://[::ffff:127.0.0.1]", "http://[::ffff:7f00:1]", "http://evil.example#@127.0.0.1",
    "http://evil.example?@127.0.0.1", "http://127.0.0.1\t.evil.example", "http://127.0.0.1%2eevil.example",
    "http://127.0.0.1\u3002evil.example", "http://127.0.0.1:8080 @evil.example", "http://169.254.169.254",
    "http://[fe80::1]", "http://[::]", "http://0.0.0.0", "https://smba.trafficmanager.net/emea/",
    "HTTP://EVIL.EXAMPLE", "http://[::1]@evil.example", "http://evil.example/127.0.0.1", "file:///etc/passwd",
    "http://", "http://:80",
)


async def test_development_mode_refuses_service_urls_off_this_machine(rig: Rig) -> None:
    for service_url in NOT_HERE:
        for activity in (rig.activity("message", text="owner payment-service", serviceUrl=service_url),
                         rig.activity("invoke", name="adaptiveCard/action", serviceUrl=service_url, value=_execute(
                             VERB_RUN, {DATA_COMMAND: "owner payment-service"})),
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
                assert "payments-team" in json.dumps(await rig.posted(f"a:1local-{n}"))
    finally:
        await connector.stop()


# --- A3. with credentials: nothing unauthenticated runs, and the password is never written -----------


INVOKES = {
    "adaptiveCard/action": {"action": {"type": "Action.Execute", "verb": VERB_RUN,
                                       "data": {DATA_COMMAND: "owner payment-service"}}},
    "task/fetch": {"data": {DATA_FORM: "template:default/python-service", "values": {}}},
    "task/submit": {"data": {DATA_FORM_KEY: "k"}},
    "application/search": {"queryText": "payment", "dataset": "pick:owner"},
    "composeExtension/query": {"commandId": "searchEntity", "parameters": [{"name": "query", "value": "payment"}]},
    "composeExtension/queryLink": {"url": f"{PUBLIC_URL}/docs/default/component/payment-service/"},
}


@pytest.fixture
async def authed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> AsyncIterator[tuple[Rig, BotFrameworkIdentityFake]]:
    caplog.set_level(logging.DEBUG)  # every logger, every level: the password must be in none of them
    with BotFrameworkIdentityFake() as identity:
        teams = TeamsSettings(app_id=APP_ID, app_password=PASSWORD, openid_metadata_url=identity.metadata_url,
                              token_issuer="https://api.botframework.com", public_url=PUBLIC_URL)
        async with serving(tmp_path, teams=teams, public_url=PUBLIC_URL) as rig:
            yield rig, identity


async def test_with_an_app_id_nothing_unauthenticated_runs(authed: tuple[Rig, BotFrameworkIdentityFake]) -> None:
    """Every kind of activity, each refused token: 401, and nothing of Callboard runs (one server
    for all of them: a server per kind cost more than the checks)."""
    rig, identity = authed
    for kind in ("message", "conversationUpdate", *INVOKES):
        if kind in INVOKES:
            activity = rig.activity("invoke", name=kind, value=INVOKES[kind])
        else:
            activity = rig.activity(kind, text="owner payment-service", membersAdded=[{"id": BOT, "name": "Callboard"}])
        for headers in ({}, {"Authorization": "Bearer " + identity.token(APP_ID, unsigned=True)},
                        {"Authorization": "Bearer " + identity.token("99999999-2222-3333-4444-555555555555",
                                                                     service_url=rig.connector.url)},
                        {"Authorization": "Bearer " + identity.token(APP_ID, service_url="http://evil.example/")}):
            status, body, _ = await rig.post(activity, headers=headers)
            assert status == 401, (kind, headers, status, body)
    await rig.settled()
    assert not rig.dispatched and not rig.connector.calls


async def test_the_app_password_is_in_no_log_line_or_answer(authed: tuple[Rig, BotFrameworkIdentityFake],
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """Start, good and bad tokens, every invoke, a reply whose token cannot be fetched (no
    network to Microsoft here): the password appears nowhere, at any level."""
    rig, identity = authed
    token = identity.token(APP_ID, service_url=rig.connector.url)
    answers = []
    for name, value in INVOKES.items():
        status, body, _ = await rig.post(rig.activity("invoke", name=name, value=value), token=token)
        answers.append((status, body))
    await rig.post(rig.activity("message", text="owner payment-service"), token=token)
    await rig.post(rig.activity("message", text="owner payment-service"), token="garbage")
    await rig.settled()
    assert any(status == 200 for status, _ in answers), answers  # really authenticated and answered
    seen = caplog.text + "".join(f"{r.args!r}{r.exc_text or ''}" for r in caplog.records)
    assert PASSWORD not in seen
    assert PASSWORD not in json.dumps(answers) + json.dumps([c.body for c in rig.connector.calls])
    assert PASSWORD not in repr(rig.surface.settings) and PASSWORD not in repr(rig.surface)


def test_the_app_package_never_holds_the_password(tmp_path: Path) -> None:
    developer = {"developer": "Acme", "website_url": "https://acme.example.com", "privacy_url":
                 "https://acme.example.com/privacy", "terms_url": "https://acme.example.com/terms"}
    settings = Settings(teams_app_id=APP_ID, teams_app_password=PASSWORD, teams_tenant_id=APP_ID,
                        public_url=PUBLIC_URL, teams_app=developer)
    package = build_package(settings, CommandRegistry.from_entry_points().specs)
    data = package.zip_bytes()
    assert PASSWORD.encode() not in data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            assert PASSWORD.encode() not in archive.read(name), name
    assert PASSWORD not in json.dumps(package.manifest) and PASSWORD not in repr(package)


# --- B. card actions, dialogs and typeahead ----------------------------------------------------------


def _execute(verb: str, data: Any) -> dict[str, Any]:
    return {"action": {"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"}


async def test_a_button_runs_exactly_one_command_line_as_text(rig: Rig) -> None:
    for n, command in enumerate(("owner payment-service\ncreate python-service", "owner payment-service; rm -rf /",
                                 "owner payment-service && help", "owner `id` $(id) payment-service",
                                 "owner payment-service\r\n\r\nhelp")):
        answer = await rig.invoke("adaptiveCard/action", _execute(VERB_RUN, {DATA_COMMAND: command}))
        assert len(rig.dispatched) == n + 1, rig.dispatched  # one line, one dispatch: nothing chained
        assert answer["statusCode"] in (200, 400)
        if answer["statusCode"] == 200:
            assert_inert(answer["value"], where=command)


async def test_a_button_with_a_command_that_is_not_a_short_line_is_refused(rig: Rig) -> None:
    for data in ({DATA_COMMAND: "owner " + "x" * 2001}, {DATA_COMMAND: "owner " + "x" * 500_000},
                 {DATA_COMMAND: ["owner", "x"]}, {DATA_COMMAND: {"cmd": "owner x"}}, {DATA_COMMAND: None},
                 {DATA_COMMAND: "   \n\t "}, "owner payment-service", ["owner payment-service"], None, 7):
        answer = await rig.invoke("adaptiveCard/action", _execute(VERB_RUN, data))
        assert answer["statusCode"] == 400 and "not one of Callboard's" in answer["value"]["message"], (data, answer)
    assert not rig.dispatched


async def test_control_characters_in_a_button_command_reach_nobody(rig: Rig) -> None:
    command = "owner \x1b]8;;https://evil.example\x07pay\u202ement\u200b-service\x1b]8;;\x07 <at>Everyone</at> [x](https://evil.example)"
    answer = await rig.invoke("adaptiveCard/action", _execute(VERB_RUN, {DATA_COMMAND: command}))
    assert answer["statusCode"] == 200
    assert_inert(answer["value"])
    assert "https://evil.example" not in json.dumps([a.get("url") for a in _walk(answer["value"]) if "url" in a])


async def test_a_did_you_mean_pick_runs_a_known_command_on_one_ref_or_nothing(rig: Rig) -> None:
    for data in ({DATA_PICK_COMMAND: "rm", PICK_INPUT: "component:default/payment-service"},
                 {DATA_PICK_COMMAND: "owner", PICK_INPUT: "component:default/payment-service\ncreate python-service"},
                 {DATA_PICK_COMMAND: ["owner"], PICK_INPUT: "component:default/payment-service"},
                 {DATA_PICK_COMMAND: "owner", PICK_INPUT: ["component:default/payment-service"]},
                 {DATA_PICK_COMMAND: "owner", PICK_INPUT: "   "},
                 {DATA_PICK_COMMAND: "owner", PICK_INPUT: "x" * 5000}):
        before = len(rig.dispatched)
        answer = await rig.invoke("adaptiveCard/action", _execute(VERB_PICK, data))
        assert len(rig.dispatched) - before <= 1
        if answer["statusCode"] == 200:
            assert_inert(answer["value"], where=str(data)[:60])
    assert {asked.split()[0] for asked in rig.dispatched} <= {"info", "owner"}, rig.dispatched


def _long_team(root: Path, count: int = 40) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    docs = [{"kind": "Group", "metadata": {"name": "platform-team"}, "spec": {"type": "team", "children": []}},
            {"kind": "Component", "metadata": {"name": "secret-project-x"},
             "spec": {"type": "service", "lifecycle": "production", "owner": "platform-team"}}]
    docs += [{"kind": "Component", "metadata": {"name": f"ledger-{i:02d}"},
              "spec": {"type": "service", "lifecycle": "production", "owner": "platform-team"}} for i in range(count)]
    (root / "catalog-info.yaml").write_text("\n---\n".join(
        json.dumps({"apiVersion": "backstage.io/v1alpha1", **d}) for d in docs) + "\n")
    return root / "catalog-info.yaml"


async def test_page_keys_replay_only_the_question_as_whoever_clicks(tmp_path: Path) -> None:
    """A page key keeps the question's text, never its answer: like Slack's, whoever clicks (the
    card is visible to the whole conversation) gets that question answered as themselves."""
    async with serving(tmp_path, catalog=_long_team(tmp_path / "catalog")) as rig:
        await rig.message("team platform-team")
        card = (await rig.posted())[0]["attachments"][0]["content"]
        (nxt,) = [a for a in _walk(card) if a.get("type") == "Action.Execute" and a.get("verb") == VERB_PAGE]
        key = nxt["data"][DATA_PAGE_KEY]
        assert len(key) >= 16 and "team platform-team" not in key  # not guessable, not the question
        stranger = await rig.invoke("adaptiveCard/action", _execute(VERB_PAGE, nxt["data"]), person=STRANGER,
                                    conversation="a:1stranger")
        assert "page 2 of" in json.dumps(stranger["value"])
        assert rig.dispatched == ["team platform-team", "team platform-team"]  # the question, not another
        for data in ({DATA_PAGE_KEY: key, DATA_PAGE: 10**12}, {DATA_PAGE_KEY: key, DATA_PAGE: 0},
                     {DATA_PAGE_KEY: key, DATA_PAGE: -1}, {DATA_PAGE_KEY: key, DATA_PAGE: True},
                     {DATA_PAGE_KEY: key, DATA_PAGE: "2"}, {DATA_PAGE_KEY: key, DATA_PAGE: 2.5},
                     {DATA_PAGE_KEY: [key], DATA_PAGE: 2}, {DATA_PAGE_KEY: "' OR 1=1 --", DATA_PAGE: 2},
                     {DATA_PAGE_KEY: "x" * 100_000, DATA_PAGE: 2}, {DATA_PAGE_KEY: key[:-1], DATA_PAGE: 2}):
            answer = await rig.invoke("adaptiveCard/action", _execute(VERB_PAGE, data))
            text = json.dumps(answer)
            assert answer["statusCode"] in (200, 400), (data, text[:300])
            if answer["statusCode"] == 200:
                assert_inert(answer["value"])
                assert "page 2 of" not in text or data[DATA_PAGE] == 2 and data[DATA_PAGE_KEY] == key, data
        assert len(rig.dispatched) <= 3  # only the huge page number re-asked (and shows the last page)


@pytest.fixture
async def forms(tmp_path: Path) -> AsyncIterator[tuple[Rig, str]]:
    """A server with a template, and Priya's dialog open on its first page: (rig, her form key)."""
    async with serving(tmp_path, catalog=template_catalog(tmp_path / "catalog")) as rig:
        opened = await rig.invoke("task/fetch", {"data": {DATA_FORM: "template:default/tiny-service", "values": {}}})
        card = opened["task"]["value"]["card"]["content"]
        assert_inert(card)
        (submit,) = [a for a in _walk(card) if a.get("type") == "Action.Submit"]
        yield rig, submit["data"][DATA_FORM_KEY]


async def test_someone_elses_form_key_is_expired_for_them(forms: tuple[Rig, str]) -> None:
    rig, key = forms
    for person, conversation in ((STRANGER, "a:1stranger"), (STRANGER, "a:1personal-chat")):
        answer = await rig.invoke("task/submit", {"data": {DATA_FORM_KEY: key, "name": "stolen",
                                                           "owner": "group:default/web-team"}},
                                  person=person, conversation=conversation)
        assert answer["task"]["type"] == "message" and "expired" in answer["task"]["value"], answer
    mine = await rig.invoke("task/submit", {"data": {DATA_FORM_KEY: key, "name": "Bad Name!",
                                                     "owner": "group:default/web-team"}})
    assert mine["task"]["type"] == "continue"  # still hers: the page again, with its error
    assert "stolen" not in json.dumps(mine)


async def test_someone_elses_form_picker_finds_nothing(forms: tuple[Rig, str]) -> None:
    rig, key = forms
    query = {"queryText": "web", "queryOptions": {"skip": 0, "top": 15}}
    mine = await rig.invoke("application/search", {**query, "dataset": f"{DATASET_FORM}{key}:owner"})
    assert "group:default/web-team" in json.dumps(mine)  # the probe below is not empty for any reason but whose
    for dataset in (f"{DATASET_FORM}{key}:owner", f"{DATASET_FORM}{key}:owner:extra", f"{DATASET_FORM}{key}"):
        theirs = await rig.invoke("application/search", {**query, "dataset": dataset}, person=STRANGER,
                                  conversation="a:1stranger")
        assert theirs["value"]["results"] == [], (dataset, theirs)


async def test_typeahead_counts_of_any_kind_stay_within_teams_limits(rig: Rig) -> None:
    for options in ({"top": -1, "skip": -1}, {"top": 10**12, "skip": 10**12}, {"top": True}, {"top": "50"},
                    {"top": None}, {"top": 2.5}, {"top": [1]}, {"count": -5}, {"count": 10**9}, "junk"):
        found = await rig.invoke("application/search", {"queryText": "service", "dataset": "pick:owner",
                                                        "queryOptions": options})
        assert 1 <= len(found["value"]["results"]) <= 50, (options, found)
        extension = await rig.invoke("composeExtension/query", {"commandId": "searchEntity", "queryOptions": options,
                                                                "parameters": [{"name": "query", "value": "service"}]})
        assert 1 <= len(extension["composeExtension"]["attachments"]) <= 10, options
        for attachment in extension["composeExtension"]["attachments"]:
            assert_inert(attachment["content"])


async def test_typeahead_and_extension_queries_of_any_shape_answer_politely(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    for value in ({"queryText": ["a"], "dataset": {"x": 1}}, {"queryText": "x" * 200_000, "dataset": "pick:owner"},
                  {"queryText": "web", "dataset": "form:"}, {"queryText": "web", "dataset": "form::::"},
                  {"queryText": "web", "dataset": "form:../../etc/passwd:owner"},
                  {"queryText": "web", "dataset": "other:thing"}, {"parameters": "query"},
                  {"parameters": [{"value": ["x"]}, 5, None]},
                  {"parameters": [{"name": "query", "value": "x" * 200_000}]}, {"parameters": {"query": "x"}}):
        name = "composeExtension/query" if "parameters" in value else "application/search"
        started = time.perf_counter()
        status, body, _ = await rig.post(rig.activity("invoke", name=name, value=value))
        assert status == 200, (str(value)[:60], status, body)
        assert time.perf_counter() - started < 2.0
    _no_errors_logged(caplog)


async def test_an_extension_query_whose_parameters_are_a_number_answers_politely(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    status, _, _ = await rig.post(rig.activity("invoke", name="composeExtension/query", value={"parameters": 7}))
    _no_errors_logged(caplog)
    assert status == 200


async def test_a_dialog_opened_with_odd_data_is_refused_or_shown_inert(forms: tuple[Rig, str],
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    rig, _ = forms
    tiny = "template:default/tiny-service"
    for data in ({DATA_FORM: "../../../etc/passwd"}, {DATA_FORM: "template:default/no-such-template"},
                 {DATA_FORM: [tiny]}, {DATA_FORM: "component:default/payment-service"},
                 {DATA_FORM: tiny, "values": ["name", "x"]},
                 {DATA_FORM: tiny, "values": {"name": {"$gt": ""}, "owner": [[[]]], "__class__": 1}},
                 {DATA_FORM: tiny, "values": {"name": "\x1b[31m\u202eevil\u200b" + "n" * 50_000,
                                              "owner": "<at>Everyone</at>\x00[x](https://evil.example)"}}):
        answer = await rig.invoke("task/fetch", {"data": data})
        task = answer["task"]
        if task["type"] == "message":
            assert not _unsafe(task["value"]) and len(task["value"]) <= 500, task
        else:
            card = task["value"]["card"]["content"]
            assert_inert(card, where=str(data)[:60])
            assert cards.card_bytes(card) <= cards.MAX_CARD_BYTES
    _no_errors_logged(caplog)


async def test_a_dialog_page_submitted_with_odd_values_is_answered_inert(forms: tuple[Rig, str],
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    rig, key = forms
    for values in ({"name": ["a", "b"], "owner": 5}, {"name": {"x": 1}, "owner": None},
                   {"name": "\x1b]52;c;ZXZpbA==\x07\u202e" * 100, "owner": "group:default/web-team"},
                   {"name": "ok-name", "owner": "group:default/../../etc"}, {"msteams": {"type": "task/submit"}},
                   {"name": "n" * 300_000, "owner": "x"}):
        answer = await rig.invoke("task/submit", {"data": {DATA_FORM_KEY: key, **values}})
        task = answer["task"]
        assert task["type"] in ("continue", "message"), answer
        if task["type"] == "continue":
            assert_inert(task["value"]["card"]["content"])
            assert task["value"]["card"]["content"]["body"], task
    _no_errors_logged(caplog)
    await rig.settled()
    assert not rig.connector.posted()  # nothing was created from any of it


# --- C. hostile catalog text through the real renderer ------------------------------------------------

EVIL_LINK = "[Reset your password](https://evil.example/login)"
EVIL_HTML = '<a href="https://evil.example/login">Reset</a> <img src="https://evil.example/t.png"> <b>bold</b>'
EVIL_TEXT = (f"{EVIL_LINK} <at>Everyone</at> <at id=\"0\">General</at> &lt;at&gt;x&lt;/at&gt; &#x3C;b&#x3E; {EVIL_HTML} "
             "\u202egnp.exe\u202c zero\u200bwidth \u2066iso\u2069 \x1b[31mred\x1b[0m \x1b]8;;https://evil.example\x07"
             "hyper\x1b]8;;\x07 \x9b31m **bold** # heading\n- item\n> quote " + "W" * 3000)
BAD_URLS = ["javascript:alert(1)", "JaVaScRiPt:alert(1)", "file:///etc/passwd", "data:text/html,<script>x</script>",
            "https://user:hunter2@evil.example/", "https://evil.example\\@ok.example.com/", "https://ok.example.com/a b",
            "https://ok.example.com/\u202eexe.txt", "vbscript:x",
            "https://ok.example.com/\u200bzw"]
GOOD_URL = "https://ok.example.com/dash?a=1&b=2"
#: the links a card may carry for BAD_URLS: the catalog keeps a URL's host and drops its user info
#: (``user:hunter2@``, and ``evil.example\@`` read as such), the author meant a link there
LINKABLE = {GOOD_URL, "https://evil.example/", "https://ok.example.com/"}
MALLORY_ID = "29:1mallory"
FORGED_ID = "29:1eve</at><at>Everyone"


def _hostile_catalog(root: Path) -> Path:
    root.mkdir(parents=True)
    docs = [
        {"kind": "Group", "metadata": {"name": "evil-team", "title": EVIL_TEXT[:300], "description": EVIL_TEXT},
         "spec": {"type": "team", "profile": {"displayName": EVIL_LINK + " <at>Everyone</at>"}, "children": [],
                  "members": ["mallory", "eve"]}},
        {"kind": "User", "metadata": {"name": "mallory", "description": EVIL_TEXT},
         "spec": {"profile": {"displayName": "<at>Everyone</at> [Mallory](https://evil.example) \u202eM",
                              "email": "mallory@acme.example.com"}, "memberOf": ["evil-team"]}},
        {"kind": "User", "metadata": {"name": "eve"},
         "spec": {"profile": {"displayName": "Eve", "email": "eve@acme.example.com"}, "memberOf": ["evil-team"]}},
        {"kind": "Component", "metadata": {
            "name": "hostile-service", "title": EVIL_TEXT[:200], "description": EVIL_TEXT,
            "links": [{"url": url, "title": f"{EVIL_LINK} {n}"} for n, url in enumerate(BAD_URLS)]
            + [{"url": GOOD_URL, "title": "<at>Everyone</at> dash"}],
            "annotations": {"backstage.io/view-url": "javascript:alert(1)", "pagerduty.com/service-id": EVIL_LINK}},
         "spec": {"type": "service", "lifecycle": "production", "owner": "evil-team"}},
    ]
    (root / "catalog-info.yaml").write_text(yaml.safe_dump_all(
        [{"apiVersion": "backstage.io/v1alpha1", **d} for d in docs], allow_unicode=False))
    (root / "oncall.yaml").write_text("rotations:\n  - name: evil-primary\n    group: evil-team\n    time_zone: UTC\n"
                                      "    start: 2026-01-05T09:00\n    shift: 1w\n    members: [mallory]\n")
    return root / "catalog-info.yaml"


@pytest.fixture
async def hostile(tmp_path: Path) -> AsyncIterator[Rig]:
    async with serving(tmp_path, catalog=_hostile_catalog(tmp_path / "catalog"), public_url=PUBLIC_URL) as rig:
        for who, email in ((MALLORY_ID, "mallory@acme.example.com"), (FORGED_ID, "eve@acme.example.com")):
            rig.connector.add_member(who, "<at>Everyone</at>", email=email, upn=email)
            person = {"id": who, "name": "<at>Everyone</at>", "aadObjectId": "00000000-0000-0000-0000-00000000e5e5"}
            await rig.message("mine", person=person, conversation=f"a:1{len(who)}")  # Teams now knows them
        await rig.settled()
        yield rig


def _links(card: Mapping[str, Any]) -> list[str]:
    return [n["url"] for n in _walk(card) if n.get("type") == "Action.OpenUrl"]


async def test_hostile_catalog_text_reaches_teams_inert(hostile: Rig) -> None:
    rig = hostile
    asked = ["info hostile-service", "owner hostile-service", "team evil-team", "find hostile", "oncall hostile-service",
             "info user:mallory", "deps hostile-service", "owner hostile"]
    for n, text in enumerate(asked):
        await rig.message(text, conversation=f"a:1asked-{n}")
    shown = []
    for n, text in enumerate(asked):
        (posted,) = await rig.posted(f"a:1asked-{n}")
        card = posted["attachments"][0]["content"]
        assert_inert(card, where=text)
        assert set(_links(card)) <= LINKABLE | {u for u in _links(card) if u.startswith(PUBLIC_URL + "/")}, text
        assert not _unsafe(posted.get("summary") or "") and not _unsafe(card["fallbackText"]), text
        assert not re.search(r"(?<!\\)[\[<]", card["fallbackText"]), card["fallbackText"][:300]
        shown.append(json.dumps(card, ensure_ascii=False))
    info, team = shown[0], shown[2]
    assert EVIL_LINK in info and "<at>Everyone</at>" in info  # the data is there, as text
    assert "hunter2" not in "".join(shown)  # a URL's password is shown nowhere
    entities: list[dict[str, Any]] = [e for n in range(len(asked)) for c in rig.cards(f"a:1asked-{n}")
                                      for e in (c.get("msteams") or {}).get("entities", [])]
    assert {e["mentioned"]["id"] for e in entities} <= {MALLORY_ID}, entities  # the forged id is never mentioned
    assert any(e["mentioned"]["id"] == MALLORY_ID for e in entities), team[:2000]  # Callboard's own mention works


async def test_message_extension_results_and_unfurls_of_hostile_entities_are_inert(hostile: Rig) -> None:
    rig = hostile
    found = await rig.invoke("composeExtension/query", {"commandId": "searchEntity", "parameters": [
        {"name": "query", "value": "hostile"}]})
    unfurled = await rig.invoke("composeExtension/queryLink", {
        "url": f"{PUBLIC_URL}/docs/default/component/hostile-service/"})
    attachments = found["composeExtension"]["attachments"] + unfurled["composeExtension"]["attachments"]
    assert len(attachments) >= 2
    for attachment in attachments:
        assert_inert(attachment["content"])
        assert set(_links(attachment["content"])) <= LINKABLE
        for key in ("title", "text"):
            assert not _unsafe(attachment["preview"]["content"][key])


async def test_message_extension_previews_hold_no_markup(hostile: Rig) -> None:
    found = await hostile.invoke("composeExtension/query", {"commandId": "searchEntity", "parameters": [
        {"name": "query", "value": "hostile"}]})
    for attachment in found["composeExtension"]["attachments"]:
        preview = attachment["preview"]["content"]
        assert "<" not in preview["text"] and "<" not in preview["title"], preview


def test_a_preview_shows_markup_as_characters() -> None:
    """The renderer's preview (for the lead to use in _entity_attachment): title plain, text escaped."""
    made = cards.preview(f"{EVIL_LINK} \u202e\x1b[31m", EVIL_TEXT)
    assert made["contentType"] == "application/vnd.microsoft.card.thumbnail"
    title, text = made["content"]["title"], made["content"]["text"]
    assert not _unsafe(title) and not _unsafe(text) and len(title) <= 80
    bare = re.sub(r"&#\d+;", "", text)
    assert not re.search(r"[&<>\[\]()*_`#|]", bare), text
    assert re.sub(r"&#(\d+);", lambda m: chr(int(m.group(1))), text).startswith(EVIL_LINK + " <at>Everyone</at>")


def _reply(*blocks: Any, summary: str = "s") -> Reply:
    return Reply(status=Status.OK, blocks=tuple(blocks), summary=summary)


def test_the_renderer_keeps_every_block_kind_inert() -> None:
    ansi = "\x1b[31mred\x1b[0m \x1b]52;c;ZXZpbA==\x07 \x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\ \x9b2J \r\x08"
    reply = _reply(
        Header(text=EVIL_TEXT, subtitle=EVIL_LINK), Text(text=EVIL_TEXT), Text(text=EVIL_TEXT, strong=True),
        Steps(items=(EVIL_TEXT, f"```\n{ansi}\n```")), Code(text=f"{ansi}\n" * 50 + "<at>Everyone</at>"),
        Hits(title=EVIL_LINK, hits=tuple(Hit(title=EVIL_TEXT, where=EVIL_LINK, runs=((EVIL_TEXT, True), (ansi, False)),
                                             url=url) for url in [*BAD_URLS, GOOD_URL])),
        Fields(pairs=tuple((EVIL_LINK, url) for url in BAD_URLS)),
        Links(links=tuple((EVIL_TEXT, url) for url in [*BAD_URLS, GOOD_URL])),
        ItemList(title=EVIL_LINK, items=tuple(Item(label=EVIL_TEXT, detail=ansi) for _ in range(3))),
        Notice(level="error", text=EVIL_TEXT),
        Actions(actions=(RunCommand(label=EVIL_TEXT, command="owner x"),
                         *(OpenUrl(label=EVIL_LINK, url=url) for url in BAD_URLS))))
    card = cards.render(reply, View(asked=""))
    assert_inert(card)
    assert set(_links(card)) <= {GOOD_URL}  # (the card is cut to fit: the good link may be left out)
    code = [n["text"] for n in _walk(card) if n.get("fontType") == "monospace"]
    assert any("[31mred" in t for t in code) and not any("\x1b" in t for t in code)  # shown, not run


def test_mentions_only_for_well_formed_ids_under_plain_names() -> None:
    people = {f"user:default/p{n}": who for n, who in enumerate((
        "29:1good", "29:1x</at><at>Everyone", "29:1x y", "8:orgid:1ok", "28:a-bot", "19:general@thread.tacv2",
        "29:" + "a" * 500, "", "29:1good"))}
    names = ("<at>Everyone</at>", "[Priya](https://evil.example)", "\u202eevil", "&lt;at&gt;", "*bold* _i_ `c`",
             "General", "x" * 500, "Z", "Same Name")
    items = tuple(Item(label=name, person=Person(ref=ref, name=name)) for ref, name in zip(people, names))
    card = cards.render(_reply(ItemList(title="People", items=items)), View(asked="", mentions=people))
    assert_inert(card)
    entities = card["msteams"].get("entities", [])
    assert {e["mentioned"]["id"] for e in entities} <= {"29:1good", "8:orgid:1ok"}, entities
    assert all(re.fullmatch(r"<at>[\w .'-]+…?</at>", e["text"]) for e in entities), entities


def test_a_form_whose_every_text_is_hostile_renders_inert() -> None:
    evil_field = Field(name="f", label=EVIL_TEXT, help=EVIL_TEXT, placeholder=EVIL_TEXT, type=FieldType.CHOICE,
                       choices=tuple(Choice(value=f"v{n}", label=text) for n, text in enumerate((EVIL_TEXT, EVIL_LINK))))
    fields = (evil_field,
              Field(name="e", label=EVIL_LINK, type=FieldType.ENTITY, choices=(Choice(value="x", label=EVIL_TEXT),)),
              Field(name="t", label="\x1b[31m", type=FieldType.TEXT, placeholder="\u202e", help="<at>Everyone</at>"),
              Field(name="b", label=EVIL_LINK, type=FieldType.BOOLEAN))
    form = Form(id="t", title=EVIL_TEXT, pages=(FormPage(title=EVIL_LINK, fields=fields, description=EVIL_TEXT),
                                                FormPage(title="Review", fields=(), review=((EVIL_LINK, EVIL_TEXT),))),
                values={"e": "\x1b[2J<at>Everyone</at>", "t": EVIL_TEXT},
                errors=(FieldError(field="f", message=EVIL_TEXT), FieldError(field="nope", message=EVIL_LINK)))
    for page in (0, 1):
        card = cards.render_form(dataclasses.replace(form, page=page), "K")
        assert_inert(card)
        assert not _links(card)


# --- D. link unfurling -------------------------------------------------------------------------------


async def test_only_links_to_callboards_own_docs_unfurl(rig: Rig) -> None:
    ours = f"{PUBLIC_URL}/docs/default/component/payment-service/"
    answer = await rig.invoke("composeExtension/queryLink", {"url": ours})
    assert len(answer["composeExtension"]["attachments"]) == 1  # the probes below are refused for their own sake
    for url in (ours.replace("https://callboard.acme.example.com", "https://callboard.acme.example.com.evil.example"),
                ours.replace("https://", "ftp://"), ours.replace("https://", "javascript://"),
                ours.replace(".com/", ".com:8443/"), ours.replace("https://", "https://callboard.acme.example.com@evil.example#"),
                "https://evil.example/?u=" + ours, "https://evil.example/" + ours,
                f"{PUBLIC_URL}/docs/default/component/%2e%2e/%2e%2e/etc/passwd",
                f"{PUBLIC_URL}/docs/default/component/payment-service%2f..%2f..%2f/",
                f"{PUBLIC_URL}/docs/default/component/..%2fpayment-service/",
                f"{PUBLIC_URL}/docs/default/component/pаyment-service/",  # a Cyrillic а
                f"{PUBLIC_URL}/docs/default/user/../component/payment-service/",
                f"{PUBLIC_URL}/docs//component/payment-service/", f"{PUBLIC_URL}/docs/default/component/",
                f"{PUBLIC_URL}/Docs/default/component/payment-service/", "https://[::1]/docs/default/component/x/",
                "not a url", "http://[/docs/x", "x" * 100_000, 7, None, ["https://callboard.acme.example.com/docs/a/b/c"]):
        answer = await rig.invoke("composeExtension/queryLink", {"url": url})
        assert answer["composeExtension"]["attachments"] == [], str(url)[:120]
    assert rig.dispatched == ["info component:default/payment-service"]


async def test_a_link_a_browser_opens_elsewhere_does_not_unfurl(rig: Rig) -> None:
    for url in ("https://evil.example\\@callboard.acme.example.com/docs/default/component/payment-service/",
                "https://user:pw@callboard.acme.example.com/docs/default/component/payment-service/"):
        answer = await rig.invoke("composeExtension/queryLink", {"url": url})
        assert answer["composeExtension"]["attachments"] == [], url


async def test_a_link_with_an_impossible_port_is_not_unfurled_and_not_an_error(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    for url in (f"{PUBLIC_URL}:99999/docs/default/component/payment-service/",
                f"{PUBLIC_URL}:abc/docs/default/component/payment-service/"):
        status, body, _ = await rig.post(rig.activity("invoke", name="composeExtension/queryLink", value={"url": url}))
        assert status == 200 and body["composeExtension"]["attachments"] == [], (status, body)
    _no_errors_logged(caplog)


# --- E. a Bot Connector that fails ---------------------------------------------------------------------


async def test_a_failing_connector_costs_one_reply_never_the_bot_or_other_conversations(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    html = "<html><body><h1>502 Bad Gateway</h1><script>alert(1)</script></body></html>"
    faults = [lambda: rig.connector.fail_next("reply", 502, body=html), lambda: rig.connector.fail_next("reply", 500),
              lambda: rig.connector.fail_next("reply", 429, retry_after=1, times=5),
              lambda: rig.connector.drop_next("reply", times=5), lambda: rig.connector.fail_next("member", 503, body=html),
              lambda: rig.connector.fail_next("update", 500, body=html)]
    for n, fault in enumerate(faults):
        fault()
        started = time.perf_counter()
        await rig.message("owner payment-service", conversation=f"a:1failing-{n}")
        # meanwhile, someone else's button is answered at once
        answer = await rig.invoke("adaptiveCard/action", _execute(VERB_RUN, {DATA_COMMAND: "owner checkout-api"}),
                                  conversation=f"a:1other-{n}")
        assert "checkout-team" in json.dumps(answer) and time.perf_counter() - started < 2.0
        await rig.settled()
        rig.connector.reset()
        await _still_answers(rig, f"a:1after-{n}")
    for posted in rig.connector.posted():
        assert "Bad Gateway" not in json.dumps(posted) and "alert(1)" not in json.dumps(posted)
    assert "alert(1)" not in " ".join(r.getMessage() for r in caplog.records if r.name.startswith("callboard"))


async def test_a_connector_that_hangs_holds_up_only_its_own_reply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from callboard.bot.teams import app as teams_app

    monkeypatch.setattr(teams_app, "CONNECTOR_LIMIT_S", 1.5)
    async with serving(tmp_path) as rig:
        rig.connector.hang_next("reply", 30, times=3)
        for n in range(3):
            await rig.message("owner payment-service", conversation=f"a:1hung-{n}")
        started = time.perf_counter()
        answer = await rig.invoke("adaptiveCard/action", _execute(VERB_RUN, {DATA_COMMAND: "owner checkout-api"}),
                                  conversation="a:1free")
        assert "checkout-team" in json.dumps(answer) and time.perf_counter() - started < 1.0
        await asyncio.wait_for(rig.settled(), 5)  # the hung replies were given up on
        await _still_answers(rig)


async def test_a_connector_that_is_gone_is_survived(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from callboard.bot.teams import app as teams_app

    monkeypatch.setattr(teams_app, "CONNECTOR_LIMIT_S", 1.0)  # the SDK's client retries a refused POST for seconds
    connector = BotConnectorFake()
    await connector.start()
    async with serving(tmp_path, connector=connector) as rig:
        await connector.stop()  # nothing listens there any more: every call is refused
        status, _, took = await rig.post(rig.activity("message", text="owner payment-service"))
        assert status == 200 and took < 1.0
        answer = await rig.invoke("adaptiveCard/action", _execute(VERB_RUN, {DATA_COMMAND: "owner checkout-api"}))
        assert "checkout-team" in json.dumps(answer)  # an invoke's answer is the response, not the connector's
        await asyncio.wait_for(rig.settled(), 20)
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("Bot Connector" in m or "teams" in m for m in messages), messages


async def test_a_form_opened_by_the_surface_seam_shows_its_title_inert(rig: Rig) -> None:
    await rig.message("help")
    await rig.posted()
    form = Form(id="template:default/x", title="\u202eevil\x1b[31m " + EVIL_LINK, pages=(FormPage(title="p", fields=()),))
    await rig.surface.open_form(rig.surface.direct(PRIYA["id"]), form, "K")
    posted = rig.connector.posted()[-1]
    assert not _unsafe(posted.get("summary") or "")
    assert_inert(posted["attachments"][0]["content"])
