"""The Bot Connector fake, driven by the SDK's own ConnectorClient and raw HTTP, and checked against
the official description (ConnectorAPI.json)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from botbuilder.schema import (
    Activity,
    Attachment,
    ChannelAccount,
    ConversationAccount,
    ConversationParameters,
    ErrorResponseException,
)
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import MicrosoftAppCredentials
from msrest.authentication import BasicTokenAuthentication

from tests.fakes._schemas import schema_errors_at
from tests.fakes.botconnector import ADAPTIVE_CARD, BotConnectorFake, Call, connector_description

pytestmark = pytest.mark.reference

CHANNEL = "19:general0123@thread.tacv2;messageid=1700000000000"  # ':' '@' ';' all need quoting in a path
CARD = {
    "type": "AdaptiveCard",
    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
    "version": "1.5",
    "body": [{"type": "TextBlock", "text": "payments-api is owned by team-payments", "wrap": True}],
    "actions": [{"type": "Action.Execute", "title": "On-call", "verb": "oncall", "data": {"entity": "payments-api"}}],
}


def schema_errors(body: Any, definition: str) -> list[str]:
    return schema_errors_at(connector_description(), body, f"/definitions/{definition}")


def response_errors(body: Any, path: str, method: str = "get") -> list[str]:
    pointer = path.replace("~", "~0").replace("/", "~1")
    return schema_errors_at(connector_description(), body, f"/paths/{pointer}/{method}/responses/200/schema")


def message(text: str, **extra: Any) -> Activity:
    return Activity(type="message", text=text, **extra)


@pytest.fixture
async def fake() -> AsyncIterator[BotConnectorFake]:
    async with BotConnectorFake() as running:
        running.add_member("29:1alice", "Alice Liddell", email="alice@example.com", upn="Alice@Contoso.com",
                           aad_object_id="6a1ce000-0000-4000-8000-00000000a11c")
        running.add_member("29:1bob", "Bob Builder", email="bob@example.com", upn="bob@contoso.com",
                           aad_object_id="6a1ce000-0000-4000-8000-000000000b0b")
        yield running


@pytest.fixture
def client(fake: BotConnectorFake) -> ConnectorClient:
    # A dev-mode bot's client: no app id, so no token.
    return ConnectorClient(MicrosoftAppCredentials.empty(), base_url=fake.url)


async def raw(fake: BotConnectorFake, method: str, path: str, **kwargs: Any) -> tuple[int, Any, aiohttp.ClientResponse]:
    async with aiohttp.ClientSession() as session, session.request(method, fake.url + path, **kwargs) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body, resp


# ---------------------------------------------------------------------------- activities


async def test_send_reply_update_delete_through_the_sdk(fake: BotConnectorFake, client: ConnectorClient) -> None:
    card = Attachment(content_type=ADAPTIVE_CARD, content=CARD)
    sent = await client.conversations.send_to_conversation(CHANNEL, message("owner", attachments=[card]))
    replied = await client.conversations.reply_to_activity(CHANNEL, sent.id, message("in the thread"))
    assert sent.id != replied.id

    [send] = await fake.wait_for("send")
    assert isinstance(send, Call)
    assert send.method == "POST" and send.conversation_id == CHANNEL and send.activity_id is None
    assert send.body == {"type": "message", "text": "owner",
                         "attachments": [{"contentType": ADAPTIVE_CARD, "content": CARD}]}
    assert send.authorization is None and send.token is None  # a dev-mode bot sends none
    assert send.status == 200 and send.response == {"id": sent.id} and send.resource_id == sent.id
    assert response_errors(send.response, "/v3/conversations/{conversationId}/activities", "post") == []
    [reply] = fake.calls_to("reply")
    assert reply.activity_id == sent.id and reply.conversation_id == CHANNEL

    assert [(a["id"], a["text"], a.get("replyToId")) for a in fake.posted(CHANNEL)] == [
        (sent.id, "owner", None), (replied.id, "in the thread", sent.id)]
    assert fake.posted("19:other@thread.tacv2") == []
    assert fake.cards(CHANNEL) == [CARD]

    updated = await client.conversations.update_activity(CHANNEL, sent.id, message("owner (updated)"))
    assert updated.id == sent.id
    assert fake.activities[CHANNEL][sent.id]["text"] == "owner (updated)"
    await client.conversations.delete_activity(CHANNEL, replied.id)
    assert set(fake.activities[CHANNEL]) == {sent.id}
    [delete] = fake.calls_to("delete")
    assert delete.status == 200 and delete.response is None
    # posted() is history: what was sent, even if since updated or deleted
    assert [a["text"] for a in fake.posted(CHANNEL)] == ["owner", "in the thread"]


async def test_update_and_delete_need_a_known_activity(fake: BotConnectorFake, client: ConnectorClient) -> None:
    for attempt in (client.conversations.update_activity(CHANNEL, "1699999999999", message("x")),
                    client.conversations.delete_activity(CHANNEL, "1699999999999")):
        with pytest.raises(ErrorResponseException) as err:
            await attempt
        assert err.value.response.status_code == 404
        assert err.value.error.error.code == "ActivityNotFoundInConversation"
        assert "1699999999999" in err.value.error.error.message
    fake.add_activity(CHANNEL, "1699999999999", {"text": "seeded card"})
    await client.conversations.update_activity(CHANNEL, "1699999999999", message("now updated"))
    assert fake.activities[CHANNEL]["1699999999999"]["text"] == "now updated"
    await client.conversations.delete_activity(CHANNEL, "1699999999999")
    assert fake.activities[CHANNEL] == {}


async def test_posted_filters_by_type(fake: BotConnectorFake, client: ConnectorClient) -> None:
    await client.conversations.send_to_conversation(CHANNEL, Activity(type="typing"))
    await client.conversations.send_to_conversation(CHANNEL, message("hello"))
    assert [a["type"] for a in fake.posted(CHANNEL)] == ["typing", "message"]
    assert [a["text"] for a in fake.posted(CHANNEL, type="message")] == ["hello"]


async def test_a_full_sdk_reply_validates(fake: BotConnectorFake, client: ConnectorClient) -> None:
    # What TurnContext.send_activity fills in on a reply in Teams.
    reply = Activity(
        type="message", text="hi <at>Alice</at>", text_format="markdown", input_hint="acceptingInput",
        channel_id="msteams", service_url=fake.url, reply_to_id="1700000000001", locale="en-GB",
        from_property=ChannelAccount(id="28:bot-app-id", name="Callboard"),
        recipient=ChannelAccount(id="29:1alice", name="Alice Liddell", aad_object_id="6a1ce000"),
        conversation=ConversationAccount(id=CHANNEL, is_group=True, conversation_type="channel",
                                         tenant_id="72f988bf-0000-4000-8000-000000000001"),
        entities=[{"type": "mention", "text": "<at>Alice</at>", "mentioned": {"id": "29:1alice", "name": "Alice"}}],
        attachments=[Attachment(content_type=ADAPTIVE_CARD, content=CARD)],
        channel_data={"tenant": {"id": "72f988bf-0000-4000-8000-000000000001"}},
    )
    await client.conversations.reply_to_activity(CHANNEL, "1700000000001", reply)
    [call] = fake.calls_to("reply")
    assert call.status == 200 and fake.invalid == []
    assert call.body["from"]["id"] == "28:bot-app-id" and call.body["conversation"]["conversationType"] == "channel"
    assert schema_errors(call.body, "Activity") == []


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"type": "message", "text": 5}, "text: 5 is not of type 'string'"),
        ({"type": "message", "attachments": {"contentType": ADAPTIVE_CARD}}, "attachments: "),
        ({"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD, "content": "not a card"}]},
         "attachments/0/content: 'not a card' is not of type 'object'"),
        ({"type": "shout", "text": "hi"}, "type: 'shout' is not one of"),
        ({"type": "message", "from": {"id": "28:bot", "role": "admin"}}, "from/role: 'admin' is not one of"),
        ({"type": "message", "conversation": {"id": CHANNEL, "isGroup": "yes"}}, "conversation/isGroup: 'yes'"),
        ({"text": "no type"}, "type: an activity needs a type"),
        ([{"type": "message"}], "the body must be a JSON object (Activity), got list"),
    ],
)
async def test_activities_that_do_not_validate_are_refused(fake: BotConnectorFake, body: Any, expected: str) -> None:
    status, answer, _ = await raw(fake, "POST", "/v3/conversations/c1/activities", json=body)
    assert status == 400
    assert answer["error"]["code"] == "BadArgument" and expected in answer["error"]["message"]
    assert schema_errors(answer, "ErrorResponse") == []
    [refused] = fake.invalid
    assert refused.operation == "send" and refused.body == body
    assert any(expected in error for error in refused.errors), refused.errors
    assert fake.posted() == [] and fake.activities == {}


async def test_bodies_that_are_not_json_are_refused(fake: BotConnectorFake) -> None:
    status, answer, _ = await raw(fake, "POST", "/v3/conversations/c1/activities/1",
                                  data=b"{not json", headers={"Content-Type": "application/json"})
    assert status == 400 and answer == {"error": {"code": "BadArgument", "message": "the body is not JSON"}}
    [call] = fake.calls
    assert call.operation == "reply" and call.body is None


async def test_size_limit_is_opt_in() -> None:
    async with BotConnectorFake(max_activity_bytes=1000) as fake:
        status, _, _ = await raw(fake, "POST", "/v3/conversations/c1/activities", json={"type": "message", "text": "ok"})
        assert status == 200
        status, answer, _ = await raw(fake, "POST", "/v3/conversations/c1/activities",
                                      json={"type": "message", "text": "x" * 1000})
        assert status == 413 and answer["error"]["code"] == "MessageSizeTooBig"
        assert fake.invalid == []  # too big is not malformed


async def test_unknown_routes_answer_404_and_are_recorded(fake: BotConnectorFake) -> None:
    for method, path in [("GET", "/v3/teams/19:team/conversations"), ("GET", "/v3/conversations"),
                         ("PATCH", "/v3/conversations/c1/activities/1"), ("GET", "/api/messages")]:
        status, answer, _ = await raw(fake, method, path)
        assert status == 404 and answer["error"]["code"] == "NotFound", (method, path)
    assert [c.operation for c in fake.calls] == ["unknown"] * 4
    assert [c.operation for c in await fake.wait_for("unknown", count=4)] == ["unknown"] * 4


# ---------------------------------------------------------------------------- members


async def test_members_are_teams_channel_accounts(fake: BotConnectorFake, client: ConnectorClient) -> None:
    members = await client.conversations.get_conversation_members(CHANNEL)
    assert [m.id for m in members] == ["29:1alice", "29:1bob"]
    # TeamsInfo rebuilds TeamsChannelAccount from the ChannelAccount's extra properties
    alice = {**members[0].serialize(), **members[0].additional_properties}
    assert alice == {
        "id": "29:1alice", "name": "Alice Liddell", "aadObjectId": "6a1ce000-0000-4000-8000-00000000a11c",
        "email": "alice@example.com", "userPrincipalName": "Alice@Contoso.com", "givenName": "Alice",
        "surname": "Liddell", "tenantId": fake.tenant_id, "userRole": "user",
    }
    [call] = fake.calls_to("members")
    assert response_errors(call.response, "/v3/conversations/{conversationId}/members") == []


async def test_one_member_by_id_aad_object_id_or_upn(fake: BotConnectorFake, client: ConnectorClient) -> None:
    for key in ("29:1bob", "6a1ce000-0000-4000-8000-000000000b0b", "BOB@contoso.com"):
        member = await client.conversations.get_conversation_member(CHANNEL, key)
        assert member.id == "29:1bob" and member.additional_properties["email"] == "bob@example.com", key
    assert [c.member_id for c in fake.calls_to("member")] == ["29:1bob", "6a1ce000-0000-4000-8000-000000000b0b",
                                                               "BOB@contoso.com"]
    assert schema_errors(fake.calls_to("member")[0].response, "ChannelAccount") == []
    with pytest.raises(ErrorResponseException) as err:
        await client.conversations.get_conversation_member(CHANNEL, "29:1nobody")
    assert err.value.response.status_code == 404
    assert err.value.error.error.code == "MemberNotFoundInConversation"
    assert schema_errors(fake.calls[-1].response, "ErrorResponse") == []


async def test_members_can_be_scoped_to_conversations(fake: BotConnectorFake, client: ConnectorClient) -> None:
    fake.add_member("29:1carol", "Carol", conversations=["a:personal-carol"])
    assert [m.id for m in await client.conversations.get_conversation_members("a:personal-carol")] == [
        "29:1alice", "29:1bob", "29:1carol"]
    assert [m.id for m in await client.conversations.get_conversation_members(CHANNEL)] == ["29:1alice", "29:1bob"]
    with pytest.raises(ErrorResponseException):
        await client.conversations.get_conversation_member(CHANNEL, "29:1carol")
    with pytest.raises(ValueError, match="id must not be empty"):
        fake.add_member("", "Nobody")


async def test_paged_members(fake: BotConnectorFake, client: ConnectorClient) -> None:
    for n in range(3):
        fake.add_member(f"29:1extra{n}", f"Extra {n}")
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = await client.conversations.get_teams_conversation_paged_members(CHANNEL, 2, token)
        seen += [m.id for m in page.members]
        pages += 1
        token = page.continuation_token
        if not token:
            break
    assert pages == 3 and seen == ["29:1alice", "29:1bob", "29:1extra0", "29:1extra1", "29:1extra2"]
    assert [c.query.get("pageSize") for c in fake.calls_to("pagedmembers")] == ["2", "2", "2"]
    for call in fake.calls_to("pagedmembers"):
        assert schema_errors(call.response, "PagedMembersResult") == []
    everyone = await client.conversations.get_teams_conversation_paged_members(CHANNEL)
    assert len(everyone.members) == 5 and everyone.continuation_token is None

    for query, expected in [({"continuationToken": "forged"}, "unknown continuationToken 'forged'"),
                            ({"pageSize": "many"}, "pageSize must be a number"),
                            ({"pageSize": "0"}, "pageSize must be at least 1")]:
        status, answer, _ = await raw(fake, "GET", f"/v3/conversations/{CHANNEL}/pagedmembers", params=query)
        assert status == 400 and answer["error"]["code"] == "BadArgument" and expected in answer["error"]["message"]


# ---------------------------------------------------------------------------- create conversation


async def test_create_conversation_with_an_initial_activity(fake: BotConnectorFake, client: ConnectorClient) -> None:
    params = ConversationParameters(
        is_group=False, bot=ChannelAccount(id="28:bot-app-id"), members=[ChannelAccount(id="29:1alice")],
        tenant_id=fake.tenant_id, activity=message("your task finished", attachments=[
            Attachment(content_type=ADAPTIVE_CARD, content=CARD)]),
    )
    created = await client.conversations.create_conversation(params)
    assert created.id and created.service_url == fake.url and created.activity_id
    [call] = await fake.wait_for("create")
    assert call.body["members"] == [{"id": "29:1alice"}] and call.resource_id == created.id
    assert response_errors(call.response, "/v3/conversations", "post") == []
    assert [(a["id"], a["text"]) for a in fake.posted(created.id)] == [(created.activity_id, "your task finished")]
    assert fake.cards(created.id) == [CARD]

    bare = await client.conversations.create_conversation(
        ConversationParameters(bot=ChannelAccount(id="28:bot-app-id"), members=[ChannelAccount(id="29:1bob")]))
    assert bare.id != created.id and bare.activity_id is None and fake.posted(bare.id) == []

    status, answer, _ = await raw(fake, "POST", "/v3/conversations", json={"members": "29:1alice"})
    assert status == 400 and "members: '29:1alice' is not of type 'array'" in answer["error"]["message"]
    status, answer, _ = await raw(fake, "POST", "/v3/conversations", json={"activity": {"text": "typeless"}})
    assert status == 400 and "an initial activity needs a type" in answer["error"]["message"]
    assert [c.operation for c in fake.invalid] == ["create", "create"]


# ---------------------------------------------------------------------------- tokens


async def test_require_token(fake: BotConnectorFake) -> None:
    fake.require_token = "connector-token"
    path = f"/v3/conversations/{CHANNEL}/activities"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "connector-token"}):
        status, answer, _ = await raw(fake, "POST", path, json={"type": "message"}, headers=headers)
        assert status == 401 and answer["error"]["code"] == "Unauthorized", headers
    signed = ConnectorClient(BasicTokenAuthentication({"access_token": "connector-token"}), base_url=fake.url)
    await signed.conversations.send_to_conversation(CHANNEL, message("signed"))
    assert [c.status for c in fake.calls_to("send")] == [401, 401, 401, 200]
    assert fake.calls_to("send")[-1].token == "connector-token"
    assert fake.calls_to("send")[-1].authorization == "Bearer connector-token"
    assert [a["text"] for a in fake.posted()] == ["signed"]


# ---------------------------------------------------------------------------- failure injection


async def test_429_with_retry_after(fake: BotConnectorFake, client: ConnectorClient) -> None:
    fake.fail_next("send", 429, times=2)
    for _ in range(2):
        status, answer, resp = await raw(fake, "POST", "/v3/conversations/c1/activities", json={"type": "message"})
        assert status == 429 and resp.headers["Retry-After"] == "1"
        assert answer["error"]["code"] == "TooManyRequests" and schema_errors(answer, "ErrorResponse") == []
    # the SDK does not retry POSTs: the error reaches the bot
    fake.fail_next("reply", 429, retry_after=7)
    with pytest.raises(ErrorResponseException) as err:
        await client.conversations.reply_to_activity("c1", "1", message("x"))
    assert err.value.response.status_code == 429 and err.value.response.headers["Retry-After"] == "7"
    await client.conversations.send_to_conversation("c1", message("third time lucky"))
    assert [c.status for c in fake.calls] == [429, 429, 429, 200]


async def test_5xx_html_and_sdk_retries_on_get(fake: BotConnectorFake, client: ConnectorClient) -> None:
    page = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    fake.fail_next("send", 502, body=page)
    status, answer, resp = await raw(fake, "POST", "/v3/conversations/c1/activities", json={"type": "message"})
    assert status == 502 and answer == page and resp.content_type == "text/html"
    # GETs are retried by the SDK's own policy (urllib3 Retry over 5xx), so one failure is invisible to the bot
    fake.fail_next("members", 503)
    members = await client.conversations.get_conversation_members("c1")
    assert len(members) == 2 and [c.status for c in fake.calls_to("members")] == [503, 200]


async def test_hang_is_released_by_stop() -> None:
    fake = BotConnectorFake()
    await fake.start()
    fake.hang_next("send", 30)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(asyncio.TimeoutError):
            async with session.post(fake.url + "/v3/conversations/c1/activities", json={"type": "message"},
                                    timeout=aiohttp.ClientTimeout(total=0.3)):
                pass
        fake.hang_next("members", 30)
        slow = asyncio.ensure_future(session.get(fake.url + "/v3/conversations/c1/members"))
        await asyncio.sleep(0.1)
        began = asyncio.get_running_loop().time()
        await fake.stop()
        try:
            async with await slow as resp:
                assert resp.status == 503
        except aiohttp.ClientError:
            pass  # or the connection closed under it: either way, released
        assert asyncio.get_running_loop().time() - began < 5


async def test_drop_closes_the_connection(fake: BotConnectorFake) -> None:
    fake.drop_next("send")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await raw(fake, "POST", "/v3/conversations/c1/activities", json={"type": "message"})
    [dropped] = await fake.wait_for("send")
    assert dropped.status == 0 and dropped.response is None and fake.posted() == []
    status, _, _ = await raw(fake, "POST", "/v3/conversations/c1/activities", json={"type": "message"})
    assert status == 200


async def test_faults_are_per_operation(fake: BotConnectorFake) -> None:
    fake.fail_next("reply", 500)
    status, _, _ = await raw(fake, "POST", "/v3/conversations/c1/activities", json={"type": "message"})
    assert status == 200  # a send is not a reply, though the paths share a prefix
    status, answer, _ = await raw(fake, "POST", "/v3/conversations/c1/activities/1", json={"type": "message"})
    assert status == 500 and answer["error"]["code"] == "InternalServerError"


def test_bad_fault_arguments_are_refused() -> None:
    fake = BotConnectorFake()
    with pytest.raises(ValueError, match="unknown operation 'post'"):
        fake.fail_next("post", 429)
    with pytest.raises(ValueError, match=r"status must be an error \(400-599\), got 200"):
        fake.fail_next("send", 200)
    with pytest.raises(ValueError, match="times must be >= 1, got 0"):
        fake.drop_next("send", times=0)
    with pytest.raises(ValueError, match="seconds must be > 0"):
        fake.hang_next("send", 0)
    with pytest.raises(RuntimeError, match="not started"):
        fake.url


# ---------------------------------------------------------------------------- recording


async def test_wait_for_waits_and_times_out_clearly(fake: BotConnectorFake, client: ConnectorClient) -> None:
    waiter = asyncio.ensure_future(fake.wait_for("send", count=2, timeout=5))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await client.conversations.send_to_conversation("c1", message("one"))
    await client.conversations.send_to_conversation("c1", message("two"))
    assert [c.body["text"] for c in await waiter] == ["one", "two"]
    with pytest.raises(TimeoutError, match=r"expected 1 'update' call\(s\) within 0.1s, got 0; all calls so far: "
                                            r"\['send POST /v3/conversations/c1/activities -> 200'"):
        await fake.wait_for("update", timeout=0.1)
    with pytest.raises(ValueError, match="unknown operation"):
        await fake.wait_for("sends")


async def test_reset_keeps_members_and_activities(fake: BotConnectorFake, client: ConnectorClient) -> None:
    sent = await client.conversations.send_to_conversation("c1", message("kept"))
    fake.fail_next("send", 500)
    fake.reset()
    assert fake.calls == [] and fake.invalid == []
    await client.conversations.update_activity("c1", sent.id, message("still updatable"))  # the fault is gone too
    assert len(await client.conversations.get_conversation_members("c1")) == 2


async def test_stopped_fake_refuses_connections() -> None:
    fake = BotConnectorFake()
    url = await fake.start()
    assert url == fake.url and url.startswith("http://127.0.0.1:")
    await fake.stop()
    await fake.stop()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.post(url + "/v3/conversations/c1/activities", json={"type": "message"}):
                pass
