"""Slack requests an attacker can send: forged, replayed, oversized. Through the real server over HTTP.

Each case sends a request to ``/slack/events`` of a real ``callboard serve`` application (aiohttp,
slack-bolt, the Web API faked by ``tests/fakes/slack.py``) and proves both halves of a refusal: the
HTTP status, and that no command ran (the dispatcher was never called, the fake Slack Web API saw
nothing but what a refusal may do). ``serving`` is shared with ``test_output.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import io
import json
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from callboard.bot.app import Callboard, demo_catalog_path
from callboard.bot.config import Settings
from callboard.bot.server import STATE, create_server
from callboard.bot.slack.app import SlackSettings
from callboard.commands.dispatch import CommandRegistry

from ..fakes.slack import SlackFake

SECRET = "5e1f0c3a9b7d4e2f8a6c1b0d9e8f7a6b"
#: aiohttp's ``client_max_size`` in ``create_server``: bodies above it are refused before bolt reads them.
BODY_LIMIT = 2 * 1024 * 1024


@dataclass
class Signed:
    """One request exactly as it goes on the wire: the same bytes can be sent again (a replay)."""

    body: bytes
    headers: dict[str, str]


def sign(body: str | bytes, content_type: str, *, ts: int | None = None, secret: str = SECRET) -> Signed:
    raw = body.encode() if isinstance(body, str) else body
    stamp = str(ts if ts is not None else int(time.time()))
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + raw, hashlib.sha256).hexdigest()
    return Signed(raw, {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp,
                        "X-Slack-Signature": f"v0={digest}"})


def slash_body(fake: SlackFake, command: str, text: str, *, user: str = "U0ASKER01", name: str = "slash") -> str:
    return urllib.parse.urlencode({
        "token": "x", "team_id": "T0FAKE001", "channel_id": "C0GENERAL1", "user_id": user, "command": command,
        "text": text, "response_url": fake.response_url(name), "trigger_id": "1.2.3"})


def event_body(event: dict[str, Any], *, event_id: str) -> str:
    return json.dumps({"token": "x", "team_id": "T0FAKE001", "api_app_id": "A0FAKEAPP1", "type": "event_callback",
                       "event_id": event_id, "event_time": int(time.time()), "event": event,
                       "authorizations": [{"team_id": "T0FAKE001", "user_id": "U0FAKEBOT", "is_bot": True}]})


def interactive_body(payload: dict[str, Any]) -> str:
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


@dataclass
class Rig:
    fake: SlackFake
    server: TestServer
    http: aiohttp.ClientSession
    app: Callboard
    dispatched: list[str] = field(default_factory=list)  # every text the dispatcher was asked to run

    async def send(self, request: Signed) -> tuple[int, str]:
        # a file-like body: aiohttp warns (an error here) about sending megabytes of raw bytes
        async with self.http.post(self.server.make_url("/slack/events"), data=io.BytesIO(request.body),
                                  headers=request.headers) as resp:
            return resp.status, await resp.text()

    async def slash(self, command: str, text: str, **kw: Any) -> dict[str, Any]:
        status, body = await self.send(sign(slash_body(self.fake, command, text, **kw),
                                            "application/x-www-form-urlencoded"))
        assert status == 200, body
        return json.loads(body)

    async def event(self, event: dict[str, Any], *, event_id: str) -> None:
        status, body = await self.send(sign(event_body(event, event_id=event_id), "application/json"))
        assert status == 200, body

    async def interactive(self, payload: dict[str, Any]) -> tuple[int, str]:
        return await self.send(sign(interactive_body(payload), "application/x-www-form-urlencoded"))

    async def settled(self) -> None:
        """Every piece of work the Slack surface handed to a tracked task after its acknowledgement has
        finished (its replies are posted). The server's own background loops are not waited for."""
        while work := [t for t in self.server.app[STATE].tasks if _is_slack_work(t)]:
            await asyncio.gather(*work, return_exceptions=True)

    def web_api_calls(self) -> list[str]:
        """What Callboard asked of Slack, beyond checking its token."""
        return [c.method for c in self.fake.calls if not c.method.startswith("auth.")]


def _is_slack_work(task: asyncio.Task[Any]) -> bool:
    return "Conversation.track" in getattr(task.get_coro(), "__qualname__", "")


@contextlib.asynccontextmanager
async def serving(fake: SlackFake, tmp_path: Path, catalog: Path | None = None, *,
                  docs: bool = False, **settings: Any) -> AsyncIterator[Rig]:
    """A real ``callboard serve`` application on SQLite, ready: its catalog synced (and, with ``docs``,
    its TechDocs built); the dispatcher counts what it is asked to run."""
    app = await Callboard.open(
        Settings(database_url=f"sqlite:///{tmp_path / 'cb.db'}", data_dir=str(tmp_path / "data"), **settings),
        CommandRegistry.from_entry_points(),
        resident=True,
    )
    web_app = create_server(app, catalog=(str(catalog or demo_catalog_path()),), sync_interval=3600,
                            slack=SlackSettings(bot_token="xoxb-test", signing_secret=SECRET, api_url=fake.url))
    server = TestServer(web_app, host="127.0.0.1")
    await server.start_server()
    http = aiohttp.ClientSession()
    rig = Rig(fake, server, http, app)
    dispatch = app.dispatcher.dispatch

    async def counted(text: str, **kw: Any) -> Any:
        rig.dispatched.append(text)
        return await dispatch(text, **kw)

    app.dispatcher.dispatch = counted  # type: ignore[method-assign]
    try:
        for _ in range(200):  # the background sync loads the catalog, then builds its TechDocs
            async with http.get(server.make_url("/readyz")) as resp:
                if resp.status == 200 and (not docs or app.last_docs is not None):
                    break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the server did not get ready in 10 s")
        yield rig
    finally:
        await http.close()
        await server.close()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    fake = SlackFake()
    await fake.start()
    try:
        async with serving(fake, tmp_path) as r:
            yield r
    finally:
        await fake.stop()


def _dm(text: str, ts: str) -> dict[str, Any]:
    return {"type": "message", "channel_type": "im", "user": "U0ASKER01", "text": text, "ts": ts,
            "channel": "D0ASKER001", "event_ts": ts}


async def test_a_valid_request_runs_its_command(rig: Rig) -> None:
    """The control for every refusal below: the same rig, correctly signed, answers."""
    body = await rig.slash("/owner", "payment-service")
    assert "payments-team" in body["text"]
    assert rig.dispatched == ["owner payment-service"]


@pytest.mark.parametrize("case", ["forged secret", "tampered body", "no signature", "no timestamp",
                                  "signature of another version", "timestamp not a number", "empty signature"])
async def test_a_bad_signature_is_401_and_runs_nothing(rig: Rig, case: str) -> None:
    body = slash_body(rig.fake, "/owner", "payment-service")
    request = sign(body, "application/x-www-form-urlencoded", secret="forged" if case == "forged secret" else SECRET)
    if case == "tampered body":
        request.body = slash_body(rig.fake, "/owner", "checkout-api").encode()
    elif case == "no signature":
        del request.headers["X-Slack-Signature"]
    elif case == "no timestamp":
        del request.headers["X-Slack-Request-Timestamp"]
    elif case == "signature of another version":
        request.headers["X-Slack-Signature"] = request.headers["X-Slack-Signature"].replace("v0=", "v1=")
    elif case == "timestamp not a number":
        request.headers["X-Slack-Request-Timestamp"] = "soon"
    elif case == "empty signature":
        request.headers["X-Slack-Signature"] = ""
    status, _ = await rig.send(request)
    assert status == 401
    await rig.settled()
    assert rig.dispatched == [] and rig.web_api_calls() == []


@pytest.mark.parametrize("age_s", [302, 3600, -400])
async def test_a_signed_request_outside_five_minutes_is_401(rig: Rig, age_s: int) -> None:
    """A recorded request replayed later (or stamped in the future) is refused although its signature
    is right: Slack's timestamps are only good for five minutes either way."""
    stale = int(time.time()) - age_s
    for request in (sign(slash_body(rig.fake, "/owner", "payment-service"), "application/x-www-form-urlencoded", ts=stale),
                    sign(event_body(_dm("owner payment-service", "1700000001.000100"), event_id="Ev0STALE"),
                         "application/json", ts=stale)):
        status, _ = await rig.send(request)
        assert status == 401
    await rig.settled()
    assert rig.dispatched == [] and rig.web_api_calls() == []


async def test_an_event_replayed_within_the_window_is_answered_once(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    """The very same signed bytes sent again (an attacker's replay or Slack's own retry without its
    retry headers) pass the signature check but not the event id: one answer, one command run."""
    caplog.set_level(logging.INFO, logger="callboard.bot.slack.app")
    request = sign(event_body(_dm("owner payment-service", "1700000002.000100"), event_id="Ev0REPLAY"),
                   "application/json")
    for _ in range(3):
        status, _ = await rig.send(request)
        assert status == 200
    await rig.settled()
    assert rig.dispatched == ["owner payment-service"]
    assert len(rig.fake.calls_to("chat.postMessage")) == 1
    assert caplog.text.count("slack event already handled event_id=Ev0REPLAY") == 2
    # another event is still answered
    await rig.event(_dm("owner checkout-api", "1700000003.000100"), event_id="Ev0OTHER")
    await rig.settled()
    assert len(rig.fake.calls_to("chat.postMessage")) == 2


async def test_a_body_over_the_limit_is_413_without_processing(rig: Rig) -> None:
    """A correctly signed body of more than 2 MiB is refused before it is parsed or verified."""
    filler = "x" * (BODY_LIMIT + 1024)
    for request in (sign(slash_body(rig.fake, "/owner", "payment-service " + filler), "application/x-www-form-urlencoded"),
                    sign(event_body(_dm("owner payment-service " + filler, "1700000004.000100"), event_id="Ev0BIG"),
                         "application/json")):
        assert len(request.body) > BODY_LIMIT
        status, _ = await rig.send(request)
        assert status == 413
    await rig.settled()
    assert rig.dispatched == [] and rig.web_api_calls() == []
    # a body just under the limit is still read (and this one, a long question, answered)
    await rig.slash("/find", "payment " + "y" * 1000)
    assert len(rig.dispatched) == 1


async def test_an_unsigned_interaction_runs_no_button(rig: Rig) -> None:
    """Buttons run commands too: an unsigned block action is refused like a slash command."""
    payload = {"type": "block_actions", "user": {"id": "U0ASKER01"}, "team": {"id": "T0FAKE001"},
               "channel": {"id": "C0GENERAL1"}, "response_url": rig.fake.response_url("card"),
               "trigger_id": "1.2", "container": {"type": "message"},
               "actions": [{"action_id": "run:0", "block_id": "nav", "type": "button",
                            "value": "deps payment-service", "action_ts": "1"}]}
    request = sign(interactive_body(payload), "application/x-www-form-urlencoded")
    del request.headers["X-Slack-Signature"]
    status, _ = await rig.send(request)
    assert status == 401
    await rig.settled()
    assert rig.dispatched == [] and rig.web_api_calls() == []
    status, _ = await rig.interactive(payload)  # signed: it runs
    assert status == 200
    await rig.settled()
    assert rig.dispatched == ["deps payment-service"]
