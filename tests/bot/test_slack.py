"""Callboard's real server and slack-bolt stack over HTTP, against a local fake of Slack's Web API."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer

from callboard.bot import server as server_module
from callboard.bot.app import Callboard, demo_catalog_path
from callboard.bot.config import Settings
from callboard.bot.server import create_server
from callboard.bot import conversation as conversation_module
from callboard.bot.slack.app import SLASH_COMMANDS, SlackSettings
from callboard.commands.dispatch import CommandRegistry

from ..conftest import REFERENCE
from ..fakes.slack import SlackFake

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Rig:
    fake: SlackFake
    server: TestServer
    http: aiohttp.ClientSession
    app: Callboard

    async def post(self, body: str, content_type: str, *, sign: bool = True, ts: int | None = None,
                   secret: str = SECRET, headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
        stamp = str(ts if ts is not None else int(time.time()))
        h = {"Content-Type": content_type, **(headers or {})}
        if sign:
            base = f"v0:{stamp}:{body}".encode()
            h["X-Slack-Request-Timestamp"] = stamp
            h["X-Slack-Signature"] = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
        return await self.http.post(self.server.make_url("/slack/events"), data=body.encode(), headers=h)

    async def slash(self, command: str, text: str, *, user: str = "U0ASKER01", response_url: str = "",
                    **kw: object) -> aiohttp.ClientResponse:
        form = {"token": "x", "team_id": "T0FAKE001", "channel_id": "C0GENERAL1", "user_id": user,
                "command": command, "text": text, "response_url": response_url or self.fake.response_url("slash"),
                "trigger_id": "1.2.3"}
        return await self.post(urllib.parse.urlencode(form), "application/x-www-form-urlencoded", **kw)  # type: ignore[arg-type]

    async def event(self, event: dict, *, event_id: str = "Ev0001", retry: int | None = None) -> aiohttp.ClientResponse:
        body = json.dumps({"token": "x", "team_id": "T0FAKE001", "api_app_id": "A0FAKEAPP1", "type": "event_callback",
                           "event_id": event_id, "event_time": int(time.time()), "event": event,
                           "authorizations": [{"team_id": "T0FAKE001", "user_id": "U0FAKEBOT", "is_bot": True}]})
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else None
        return await self.post(body, "application/json", headers=headers)

    async def interactive(self, payload: dict) -> aiohttp.ClientResponse:
        body = urllib.parse.urlencode({"payload": json.dumps(payload)})
        return await self.post(body, "application/x-www-form-urlencoded")


@contextlib.asynccontextmanager
async def _serving(fake: SlackFake, database_url: str, data_dir: Path) -> AsyncIterator[Rig]:
    """A real ``callboard serve`` application on ``database_url``, ready (demo catalog synced)."""
    app = await Callboard.open(
        Settings(database_url=database_url, data_dir=str(data_dir)),
        CommandRegistry.from_entry_points(),
        resident=True,
    )
    web_app = create_server(app, catalog=(str(demo_catalog_path()),), sync_interval=3600,
                            slack=SlackSettings(bot_token="xoxb-test", signing_secret=SECRET, api_url=fake.url))
    server = TestServer(web_app, host="127.0.0.1")
    await server.start_server()
    http = aiohttp.ClientSession()
    try:
        for _ in range(100):  # the background sync loads the demo catalog
            async with http.get(server.make_url("/readyz")) as resp:
                if resp.status == 200:
                    break
            await asyncio.sleep(0.05)
        yield Rig(fake, server, http, app)
    finally:
        await http.close()
        await server.close()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    fake = SlackFake()
    await fake.start()
    fake.add_user("U0PRIYA01", "priya.raman@acme.example.com", "priya.raman")
    try:
        async with _serving(fake, f"sqlite:///{tmp_path / 'cb.db'}", tmp_path / "data") as r:
            yield r
    finally:
        await fake.stop()


@pytest.mark.postgres
async def test_event_retry_to_another_replica_is_answered_once(tmp_path: Path, postgres_url: str) -> None:
    """Two servers on one PostgreSQL database: Slack's retry reaching the other replica is dropped."""
    fake = SlackFake()
    await fake.start()
    event = {"type": "message", "channel_type": "im", "user": "U0ASKER01", "text": "owner payment-service",
             "ts": "1700000003.000100", "channel": "D0ASKER001", "event_ts": "1700000003.000100"}
    try:
        async with _serving(fake, postgres_url, tmp_path / "a") as first, _serving(fake, postgres_url, tmp_path / "b") as second:
            assert (await first.event(event, event_id="Ev0PG01")).status == 200
            assert (await second.event(event, event_id="Ev0PG01", retry=1)).status == 200
            assert (await second.event(event, event_id="Ev0PG01", retry=2)).status == 200
            await fake.wait_for("chat.postMessage")
            await asyncio.sleep(0.3)
            assert len(fake.calls_to("chat.postMessage")) == 1
            # a different event is still answered, by either replica
            assert (await second.event({**event, "ts": "1700000004.000100"}, event_id="Ev0PG02")).status == 200
            await fake.wait_for("chat.postMessage", count=2)
    finally:
        await fake.stop()


async def test_health_and_readiness(rig: Rig) -> None:
    async with rig.http.get(rig.server.make_url("/healthz")) as resp:
        assert resp.status == 200
    async with rig.http.get(rig.server.make_url("/readyz")) as resp:
        body = await resp.json()
        assert resp.status == 200 and body["entities"] > 50


async def test_slash_owner_answers_in_the_ack_ephemerally(rig: Rig) -> None:
    started = time.perf_counter()
    resp = await rig.slash("/owner", "paymnet-servce")
    assert time.perf_counter() - started < 3
    assert resp.status == 200
    body = await resp.json()
    assert body["response_type"] == "ephemeral"
    assert "payment-service" in body["text"]
    blob = json.dumps(body["blocks"])
    assert "payments-team@acme.example.com" in blob
    assert '"action_id": "share"' in blob
    assert '"value": "deps component:default/payment-service"' in blob  # entity actions for registered commands


async def test_bad_signatures_get_401_and_do_nothing(rig: Rig) -> None:
    assert (await rig.slash("/owner", "payment-service", sign=False)).status == 401
    assert (await rig.slash("/owner", "payment-service", secret="forged")).status == 401
    assert (await rig.slash("/owner", "payment-service", ts=int(time.time()) - 600)).status == 401
    assert not [c for c in rig.fake.calls if not c.method.startswith("auth.")]


async def test_mention_replies_in_thread(rig: Rig) -> None:
    event = {"type": "app_mention", "user": "U0ASKER01", "text": "<@U0FAKEBOT> who owns checkout-api?",
             "ts": "1700000001.000100", "channel": "C0GENERAL1", "event_ts": "1700000001.000100"}
    assert (await rig.event(event)).status == 200
    (call,) = await rig.fake.wait_for("chat.postMessage")
    assert call.params["thread_ts"] == "1700000001.000100"
    assert "checkout-team" in call.params["text"] + json.dumps(call.params.get("blocks"))


async def test_dm_and_retry_is_answered_once(rig: Rig) -> None:
    event = {"type": "message", "channel_type": "im", "user": "U0ASKER01", "text": "team sre-team",
             "ts": "1700000002.000100", "channel": "D0ASKER001", "event_ts": "1700000002.000100"}
    assert (await rig.event(event, event_id="Ev0002")).status == 200
    assert (await rig.event(event, event_id="Ev0002", retry=1)).status == 200
    await rig.fake.wait_for("chat.postMessage")
    await asyncio.sleep(0.3)
    assert len(rig.fake.calls_to("chat.postMessage")) == 1


async def test_card_button_runs_in_place(rig: Rig) -> None:
    payload = {"type": "block_actions", "user": {"id": "U0ASKER01"}, "team": {"id": "T0FAKE001"},
               "channel": {"id": "C0GENERAL1"}, "response_url": rig.fake.response_url("card"),
               "trigger_id": "1.2", "container": {"type": "message", "is_ephemeral": True},
               "actions": [{"action_id": "run:0", "block_id": "nav", "type": "button",
                            "value": "deps component:default/payment-service", "action_ts": "1"}]}
    assert (await rig.interactive(payload)).status == 200
    (call,) = await rig.fake.wait_for("response_url:card")
    assert call.params["replace_original"] is True
    assert "fraud-detector" in json.dumps(call.params["blocks"])


async def test_picker_options_come_from_the_fuzzy_index(rig: Rig) -> None:
    payload = {"type": "block_suggestion", "user": {"id": "U0ASKER01"}, "team": {"id": "T0FAKE001"},
               "action_id": "entity_pick", "block_id": "pick:owner", "value": "paymnt"}
    resp = await rig.interactive(payload)
    assert resp.status == 200
    options = (await resp.json())["options"]
    assert options and len(options) <= 100
    assert "component:default/payment-service" in [o["value"] for o in options]
    assert all(len(o["text"]["text"]) <= 75 for o in options)


async def test_mine_maps_the_slack_user_by_email(rig: Rig) -> None:
    resp = await rig.slash("/callboard", "mine", user="U0PRIYA01")
    body = await resp.json()
    assert "teams own" in body["text"]
    assert rig.fake.calls_to("users.info")


async def test_slow_answers_go_through_response_url(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conversation_module, "ACK_BUDGET_S", 0.0)
    resp = await rig.slash("/owner", "payment-service", response_url=rig.fake.response_url("slow"))
    assert "Working on" in (await resp.json())["text"]
    (call,) = await rig.fake.wait_for("response_url:slow")
    assert "payments-team" in json.dumps(call.params)


async def test_rate_limited_reply_is_retried(rig: Rig) -> None:
    rig.fake.fail_next("chat.postMessage", error="ratelimited", status=429, retry_after=1)
    event = {"type": "app_mention", "user": "U0ASKER01", "text": "<@U0FAKEBOT> owner checkout-api",
             "ts": "1700000003.000100", "channel": "C0GENERAL1", "event_ts": "1700000003.000100"}
    await rig.event(event, event_id="Ev0003")
    calls = await rig.fake.wait_for("chat.postMessage", count=2, timeout=8)
    assert calls[-1].status == 200


@pytest.mark.reference
def test_manifest_is_valid_and_matches_the_handlers() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema_path = REFERENCE.parent / "platforms" / "slack-app-manifest-1.0.0.schema.json"
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    jsonschema.validate(manifest, json.loads(schema_path.read_text()))
    declared = {c["command"] for c in manifest["features"]["slash_commands"]}
    assert declared == set(SLASH_COMMANDS)
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == {"app_mention", "message.im"}
    assert manifest["settings"]["socket_mode_enabled"] is False
    for url in (c.get("url") for c in manifest["features"]["slash_commands"]):
        assert url is None or url.endswith("/slack/events")
    assert callable(server_module.slack_settings)  # the same module serves what the manifest points at


async def test_oncall_in_slack_mentions_the_people(rig: Rig) -> None:
    """The demo's schedule file answers /oncall; a person Slack knows by email is a mention."""
    rig.fake.add_user("U0MARCUS1", "marcus.oyelaran@acme.example.com", "marcus")
    rig.fake.add_user("U0PRIYA02", "priya.raman@acme.example.com", "priya")
    rig.fake.add_user("U0ELENA01", "elena.petrova@acme.example.com", "elena")
    body = await (await rig.slash("/oncall", "payment-service")).json()
    blob = json.dumps(body["blocks"])
    assert "via its owner payments-team" in blob
    assert any(f"<@{uid}>" in blob for uid in ("U0MARCUS1", "U0PRIYA02", "U0ELENA01"))


async def test_no_secret_reaches_the_logs(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    event = {"type": "app_mention", "user": "U0PRIYA01", "text": "<@U0FAKEBOT> mine",
             "ts": "1700000009.000100", "channel": "C0GENERAL1", "event_ts": "1700000009.000100"}
    await rig.event(event, event_id="Ev0009")
    await rig.fake.wait_for("chat.postMessage")
    await rig.slash("/owner", "payment-service")
    assert "xoxb-test" not in caplog.text
    assert SECRET not in caplog.text
    assert "xoxb-test" not in repr(rig.app.settings) and SECRET not in repr(rig.app.settings)


async def test_runbook_and_docs_in_slack(rig: Rig) -> None:
    """TechDocs answers as Block Kit: steps and commands inline, snippets escaped, links."""
    for _ in range(300):  # the server builds the demo's docs in the background after the catalog
        if rig.app.last_docs is not None:
            break
        await asyncio.sleep(0.05)
    assert rig.app.last_docs is not None and rig.app.last_docs.failed == 0, rig.app.last_docs
    resp = await rig.slash("/runbook", "payment-service webhook backlog")
    body = await resp.json()
    blob = json.dumps(body["blocks"])
    assert "Stripe webhook backlog" in body["text"]
    assert "1. Check the backlog size and age" in blob and "```" in blob  # steps with their commands
    assert "payments-team@acme.example.com" in blob
    resp = await rig.slash("/docs", "databse conection pool")
    body = await resp.json()
    assert "Database connection pool exhausted" in json.dumps(body["blocks"])


async def test_oncall_times_are_in_the_askers_time_zone(rig: Rig) -> None:
    rig.fake.add_user("U0TOKYO01", "someone@example.com", "someone", tz="Asia/Tokyo")
    body = await (await rig.slash("/oncall", "payments-team", user="U0TOKYO01")).json()
    assert "JST" in json.dumps(body["blocks"])
    rig.fake.add_user("U0NYC0001", "other@example.com", "other", tz="America/New_York")
    body = await (await rig.slash("/oncall", "payments-team", user="U0NYC0001")).json()
    assert "EST" in json.dumps(body["blocks"]) or "EDT" in json.dumps(body["blocks"])
