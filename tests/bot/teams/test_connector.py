"""The Bot Connector client (``bot/teams/connector.py``) against the connector fake: what it posts is
what the SDK would have posted, signed with the SDK's own credentials, and a failing connector
costs one call, never a duplicate message."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, ActivityTypes, Attachment, ConversationReference
from botframework.connector.auth import MicrosoftAppCredentials

from callboard.bot.teams.app import _ReusedClients, _SdkConfig
from callboard.bot.teams.connector import BotConnector, ConnectorError, addressed
from callboard.bot.teams.settings import TeamsSettings
from tests.fakes.botconnector import BotConnectorFake

APP_ID = "11111111-2222-3333-4444-555555555555"
CHANNEL = "19:general@thread.tacv2;messageid=1700000000000"


def _auth(app_id: str | None = None) -> _ReusedClients:
    settings = TeamsSettings(app_id=app_id, app_password="secret" if app_id else None) if app_id else TeamsSettings(dev=True)
    return _ReusedClients(ConfigurationBotFrameworkAuthentication(_SdkConfig(settings)))


def _reference(url: str, conversation: str = "a:1personal", activity_id: str | None = "1700000000001") -> dict[str, Any]:
    reference = {"activityId": activity_id, "user": {"id": "29:alice", "name": "Alice", "aadObjectId": "a11ce"},
                 "bot": {"id": "28:callboard", "name": "Callboard"},
                 "conversation": {"id": conversation, "conversationType": "personal", "tenantId": "t"},
                 "channelId": "msteams", "locale": "en-US", "serviceUrl": url}
    return {k: v for k, v in reference.items() if v is not None}


_CARD = {"contentType": "application/vnd.microsoft.card.adaptive",
         "content": {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "ünïcode ✓"}]}}


@pytest.fixture
async def fake() -> AsyncIterator[BotConnectorFake]:
    async with BotConnectorFake() as connector:
        yield connector


@pytest.fixture
async def client() -> AsyncIterator[BotConnector]:
    connector = BotConnector(_auth(), None)
    yield connector
    await connector.close()


def test_an_addressed_activity_is_what_the_sdk_sends() -> None:
    """The same JSON as the SDK's ``apply_conversation_reference`` then msrest's serialization, but
    for the conversation's ``tenantId``: the SDK's model maps it to ``tenantID`` and so drops it on
    the way out of a stored reference; it is kept, as the Connector API's description spells it."""
    reference = _reference("https://smba.trafficmanager.net/amer/", CHANNEL)
    body = {"type": "message", "summary": "payment-service is owned by payments-team", "attachments": [_CARD]}
    sdk = TurnContext.apply_conversation_reference(
        Activity(type=ActivityTypes.message, summary=body["summary"],
                 attachments=[Attachment(content_type=_CARD["contentType"], content=_CARD["content"])]),
        ConversationReference().deserialize(reference))
    ours = addressed(reference, body)
    assert ours["conversation"].pop("tenantId") == "t"
    assert ours == sdk.serialize()


async def test_a_reply_goes_in_the_thread_and_a_post_without_one_to_the_conversation(
        fake: BotConnectorFake, client: BotConnector) -> None:
    posted = await client.post(_reference(fake.url, CHANNEL), {"type": "message", "attachments": [_CARD]})
    [reply] = fake.calls_to("reply")
    assert reply.conversation_id == CHANNEL and reply.activity_id == "1700000000001"  # the ;messageid= kept whole
    assert posted == reply.resource_id and reply.authorization is None  # development mode: no token, as the SDK
    assert reply.body["attachments"][0]["content"]["body"][0]["text"] == "ünïcode ✓"
    await client.post(_reference(fake.url, activity_id=None), {"type": "message", "text": "hello"})
    [send] = fake.calls_to("send")
    assert send.body["text"] == "hello" and "replyToId" not in send.body
    assert not fake.invalid


async def test_an_update_replaces_the_card_the_bot_posted(fake: BotConnectorFake, client: BotConnector) -> None:
    fake.add_activity("a:1personal", "card-1", {"text": "Working on it…"})
    await client.update(_reference(fake.url), "card-1", {"type": "message", "attachments": [_CARD]})
    assert fake.activities["a:1personal"]["card-1"]["attachments"] == [_CARD]
    fake.fail_next("update", 404)
    with pytest.raises(ConnectorError, match="404"):
        await client.update(_reference(fake.url), "gone", {"type": "message", "text": "x"})


async def test_a_member_is_looked_up_with_their_email(fake: BotConnectorFake, client: BotConnector) -> None:
    fake.add_member("29:alice", "Alice Liddell", email="alice@example.com", upn="alice@example.com")
    member = await client.member(fake.url, "a:1personal", "29:alice")
    assert member["email"] == "alice@example.com" and member["name"] == "Alice Liddell"
    with pytest.raises(ConnectorError, match="404"):
        await client.member(fake.url, "a:1personal", "29:nobody")


async def test_throttling_is_waited_out_once_and_then_posted_once(fake: BotConnectorFake, client: BotConnector) -> None:
    fake.fail_next("reply", 429, retry_after="0.2")
    started = time.perf_counter()
    await client.post(_reference(fake.url), {"type": "message", "text": "x"})
    assert time.perf_counter() - started >= 0.2
    assert [c.status for c in fake.calls_to("reply")] == [429, 200]
    assert len(fake.posted("a:1personal")) == 1


async def test_a_post_that_may_have_arrived_is_never_sent_twice(fake: BotConnectorFake, client: BotConnector) -> None:
    """A 500, or a connection dropped after the request went out: the message may be posted; a
    second try could post it twice. One call, one error naming it — not the HTML it answered."""
    fake.fail_next("reply", 500, body="<html><body><script>alert(1)</script></body></html>")
    with pytest.raises(ConnectorError) as failed:
        await client.post(_reference(fake.url), {"type": "message", "text": "x"})
    assert "500" in str(failed.value) and "alert" not in str(failed.value) and "1700000000001" not in str(failed.value)
    fake.drop_next("reply")
    with pytest.raises(ConnectorError, match="dropped"):
        await client.post(_reference(fake.url), {"type": "message", "text": "x"})
    assert len(fake.calls_to("reply")) == 2


async def test_an_update_is_tried_again_after_a_dropped_connection(fake: BotConnectorFake, client: BotConnector) -> None:
    fake.add_activity("a:1personal", "card-1")
    fake.drop_next("update")
    await client.update(_reference(fake.url), "card-1", {"type": "message", "text": "done"})
    assert fake.activities["a:1personal"]["card-1"]["text"] == "done"


async def test_a_connector_that_is_not_there_is_an_error_after_a_few_tries(client: BotConnector) -> None:
    gone = BotConnectorFake()
    url = await gone.start()
    await gone.stop()
    started = time.perf_counter()
    with pytest.raises(ConnectorError, match="unreachable"):
        await client.post(_reference(url), {"type": "message", "text": "x"})
    assert time.perf_counter() - started < 3


async def test_a_reference_that_names_no_conversation_is_refused(client: BotConnector) -> None:
    for broken in ({"serviceUrl": "http://127.0.0.1:9/"}, {"conversation": {"id": "a"}},
                   {"serviceUrl": "http://127.0.0.1:9/", "conversation": {"id": ""}}):
        with pytest.raises(ConnectorError, match="conversation|serviceUrl"):
            await client.post(broken, {"type": "message"})


async def test_with_an_app_id_every_call_carries_the_sdk_credentials_token(
        fake: BotConnectorFake, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's connector factory makes the credentials (``MicrosoftAppCredentials`` for our app id
    and the Bot Framework's scope); only MSAL's trip to Microsoft Entra is replaced here (there is
    no internet on this machine), counted to show the token is reused, not fetched per call."""
    fetched: list[tuple[str, str]] = []

    def token(self: MicrosoftAppCredentials, force_refresh: bool = False) -> str:
        fetched.append((self.microsoft_app_id, self.oauth_scope))
        return "entra-token"

    monkeypatch.setattr(MicrosoftAppCredentials, "get_access_token", token)
    fake.require_token = "entra-token"
    fake.add_member("29:alice", "Alice", email="alice@example.com")
    client = BotConnector(_auth(APP_ID), APP_ID)
    try:
        await client.post(_reference(fake.url), {"type": "message", "text": "x"})
        await client.member(fake.url, "a:1personal", "29:alice")
    finally:
        await client.close()
    assert [c.status for c in fake.calls] == [200, 200]
    assert fetched == [(APP_ID, "https://api.botframework.com")]


async def test_a_token_that_cannot_be_had_is_an_error_not_a_post_without_one(
        fake: BotConnectorFake, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(self: MicrosoftAppCredentials, force_refresh: bool = False) -> str:
        raise KeyError("access_token")  # what the SDK raises when MSAL answers an error

    monkeypatch.setattr(MicrosoftAppCredentials, "get_access_token", refused)
    client = BotConnector(_auth(APP_ID), APP_ID)
    try:
        with pytest.raises(KeyError):
            await client.post(_reference(fake.url), {"type": "message", "text": "x"})
    finally:
        await client.close()
    assert not fake.calls



async def test_a_proxy_named_in_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the only way out is a proxy (HTTPS_PROXY/HTTP_PROXY, as the SDK's requests honoured),
    the calls go through it."""
    from aiohttp import web

    seen: list[str] = []

    async def proxy(request: web.Request) -> web.Response:
        seen.append(request.raw_path)  # absolute-form: the URL the client meant, as sent
        return web.json_response({"id": "via-proxy"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = BotConnector(_auth(), None)
    try:
        posted = await client.post(_reference("http://smba.example.invalid/emea/", CHANNEL),
                                   {"type": "message", "text": "x"})
        monkeypatch.setenv("NO_PROXY", "smba.example.invalid")
        bypassing = BotConnector(_auth(), None)  # NO_PROXY names the host: straight there (and refused)
        with pytest.raises(ConnectorError, match="unreachable"):
            await bypassing.post(_reference("http://smba.example.invalid/emea/"), {"type": "message"})
        await bypassing.close()
    finally:
        await client.close()
        await runner.cleanup()
    assert posted == "via-proxy"
    # the channel thread's id quoted whole, as the SDK sends it: a bare ";" is a path parameter to some servers
    assert seen == ["http://smba.example.invalid/emea/v3/conversations/19%3Ageneral%40thread.tacv2%3Bmessageid%3D"
                    "1700000000000/activities/1700000000001"]


async def test_an_answer_that_comes_in_pieces_is_read_whole_and_a_huge_one_refused() -> None:
    from aiohttp import web

    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"id": "1:ab')
        await asyncio.sleep(0.05)
        await response.write(b'cdef"}')
        await response.write_eof()
        return response

    async def huge(request: web.Request) -> web.Response:
        return web.Response(body=b" " * (2 << 20), content_type="application/json")

    app = web.Application()
    app.router.add_post("/slow/{tail:.*}", slow)
    app.router.add_post("/huge/{tail:.*}", huge)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    client = BotConnector(_auth(), None)
    try:
        assert await client.post(_reference(f"{base}/slow/"), {"type": "message"}) == "1:abcdef"
        with pytest.raises(ConnectorError, match="too large"):
            await client.post(_reference(f"{base}/huge/"), {"type": "message"})
    finally:
        await client.close()
        await runner.cleanup()


async def test_a_netrc_file_lends_no_credentials(fake: BotConnectorFake, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """aiohttp's trust_env would read ~/.netrc: its password would go to whatever serviceUrl says."""
    netrc = tmp_path / "netrc"
    netrc.write_text("default login someone password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    client = BotConnector(_auth(), None)
    try:
        await client.post(_reference(fake.url), {"type": "message", "text": "x"})
    finally:
        await client.close()
    assert [c.authorization for c in fake.calls] == [None]
