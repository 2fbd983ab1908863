"""The Slack fake, driven by the real slack_sdk AsyncWebClient and checked against Slack's own schema."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import Call, SlackError, SlackFake

_HERE = Path(__file__).resolve()
_CANDIDATES = [
    _HERE.parents[3] / "shared" / "reference" / "apis" / "slack" / "web-api.json",
    _HERE.parents[2] / "shared" / "reference" / "apis" / "slack" / "web-api.json",
]
WEB_API = next((p for p in _CANDIDATES if p.exists()), _CANDIDATES[0])

BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*payments-api* is owned by `team-payments`"}},
    {"type": "context", "elements": [{"type": "mrkdwn", "text": "from the catalog"}]},
]


@pytest.fixture
async def fake() -> AsyncIterator[SlackFake]:
    async with SlackFake() as running:
        running.add_user("U0ALICE001", "alice@example.com", "alice", real_name="Alice Liddell")
        running.add_user("W0BOB00001", "Bob@Example.com", "bob", tz="Asia/Tokyo", display_name="bobby")
        running.add_channel("C0GENERAL1", "general", is_general=True, members=["U0ALICE001"])
        yield running


@pytest.fixture
def client(fake: SlackFake) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=fake.url)


# ---------------------------------------------------------------------------- basics


async def test_base_url_is_what_slack_sdk_expects(fake: SlackFake, client: AsyncWebClient) -> None:
    assert AsyncWebClient.BASE_URL == "https://slack.com/api/"
    assert fake.url == f"http://127.0.0.1:{fake.port}/api/"
    assert client.base_url == fake.url
    resp = await client.auth_test()
    assert resp["ok"] is True
    assert resp.api_url == f"http://127.0.0.1:{fake.port}/api/auth.test"
    assert resp["user_id"] == fake.bot_user_id and resp["bot_id"] == fake.bot_id
    assert "chat:write" in resp.headers["x-oauth-scopes"]


async def test_start_stop_without_context_manager() -> None:
    fake = SlackFake(tokens=["xoxb-other"])
    url = await fake.start()
    try:
        assert url.endswith("/api/")
        resp = await AsyncWebClient(token="xoxb-other", base_url=url).auth_test()
        assert resp["team_id"] == fake.team_id
    finally:
        await fake.stop()
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as session, session.post(url + "auth.test"):
            pass


async def test_post_message_with_blocks_is_recorded_decoded(fake: SlackFake, client: AsyncWebClient) -> None:
    resp = await client.chat_postMessage(channel="C0GENERAL1", text="owner of payments-api", blocks=BLOCKS)
    assert resp["ok"] is True
    assert resp["channel"] == "C0GENERAL1"
    assert resp["ts"] == "1700000000.000100"
    assert resp["message"]["text"] == "owner of payments-api"
    assert [b["type"] for b in resp["message"]["blocks"]] == ["section", "context"]
    assert all("block_id" in b for b in resp["message"]["blocks"])  # Slack fills these in

    [call] = fake.calls_to("chat.postMessage")
    assert isinstance(call, Call)
    assert call.params == {"channel": "C0GENERAL1", "text": "owner of payments-api", "blocks": BLOCKS}
    assert call.token == "xoxb-test"
    assert call.headers["authorization"] == "Bearer xoxb-test"
    assert call.headers["Content-Type"].startswith("application/json")
    assert call.status == 200 and call.response == resp.data
    assert fake.messages["C0GENERAL1"][resp["ts"]]["text"] == "owner of payments-api"

    second = await client.chat_postMessage(channel="C0GENERAL1", text="again", thread_ts=resp["ts"])
    assert second["ts"] == "1700000000.000200"
    assert second["message"]["thread_ts"] == resp["ts"]


async def test_form_encoded_blocks_arrive_decoded(fake: SlackFake, client: AsyncWebClient) -> None:
    # slack_sdk sends form data for some methods; blocks then travel as a JSON string.
    resp = await client.api_call(
        "chat.postMessage", data={"channel": "#general", "text": "hi", "blocks": json.dumps(BLOCKS)}
    )
    assert resp["channel"] == "C0GENERAL1"  # "#general" resolved to the seeded channel's ID
    [call] = fake.calls_to("chat.postMessage")
    assert call.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert call.params["blocks"] == BLOCKS

    # and a token passed as a form parameter works too, but is not kept in params
    async with aiohttp.ClientSession() as session:
        async with session.post(fake.url + "reactions.add", data={
            "token": "xoxb-test", "channel": "C0GENERAL1", "name": ":eyes:", "timestamp": resp["ts"],
        }) as http:
            assert await http.json() == {"ok": True}
    call = fake.calls_to("reactions.add")[0]
    assert call.token == "xoxb-test" and "token" not in call.params
    assert fake.reactions[("C0GENERAL1", resp["ts"])] == ["eyes"]


async def test_post_to_user_id_lands_in_a_dm(client: AsyncWebClient) -> None:
    resp = await client.chat_postMessage(channel="U0ALICE001", text="psst")
    assert resp["channel"].startswith("D")
    info = await client.conversations_info(channel=resp["channel"])
    assert info["channel"]["is_im"] is True and info["channel"]["user"] == "U0ALICE001"


async def test_message_errors(fake: SlackFake, client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as err:
        await client.api_call("chat.postMessage", json={"channel": "C0GENERAL1"})
    assert err.value.response["error"] == "no_text"
    with pytest.raises(SlackApiError) as err:
        await client.chat_update(channel="C0GENERAL1", ts="1700000099.000000", text="x")
    assert err.value.response["error"] == "message_not_found"
    async with SlackFake(strict_channels=True) as strict:
        strict_client = AsyncWebClient(token="xoxb-test", base_url=strict.url)
        with pytest.raises(SlackApiError) as err:
            await strict_client.chat_postMessage(channel="C0NOPE0001", text="x")
        assert err.value.response["error"] == "channel_not_found"


async def test_update_delete_ephemeral_and_reactions(fake: SlackFake, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="C0GENERAL1", text="working on it…")
    updated = await client.chat_update(channel="C0GENERAL1", ts=posted["ts"], text="done", blocks=BLOCKS)
    assert updated["ts"] == posted["ts"] and updated["text"] == "done"
    assert fake.messages["C0GENERAL1"][posted["ts"]]["blocks"][0]["type"] == "section"

    await client.reactions_add(channel="C0GENERAL1", name="white_check_mark", timestamp=posted["ts"])
    with pytest.raises(SlackApiError) as err:
        await client.reactions_add(channel="C0GENERAL1", name="white_check_mark", timestamp=posted["ts"])
    assert err.value.response["error"] == "already_reacted"
    assert fake.messages["C0GENERAL1"][posted["ts"]]["reactions"][0]["name"] == "white_check_mark"

    eph = await client.chat_postEphemeral(channel="C0GENERAL1", user="U0ALICE001", text="only you")
    assert eph["message_ts"] > posted["ts"]
    assert fake.calls_to("chat.postEphemeral")[0].params["user"] == "U0ALICE001"

    deleted = await client.chat_delete(channel="C0GENERAL1", ts=posted["ts"])
    assert deleted["ts"] == posted["ts"]
    assert posted["ts"] not in fake.messages["C0GENERAL1"]


# ---------------------------------------------------------------------------- users and channels


async def test_users_info_and_lookup_by_email(fake: SlackFake, client: AsyncWebClient) -> None:
    info = await client.users_info(user="U0ALICE001")
    user = info["user"]
    assert user["id"] == "U0ALICE001" and user["name"] == "alice" and user["real_name"] == "Alice Liddell"
    assert user["tz"] == "Europe/Dublin" and isinstance(user["tz_offset"], int)
    assert user["profile"]["email"] == "alice@example.com"
    assert user["profile"]["display_name"] == "alice" and user["profile"]["real_name"] == "Alice Liddell"
    assert "locale" not in user
    [call] = fake.calls_to("users.info")
    assert call.http_method == "GET" and call.params == {"user": "U0ALICE001"}

    bob = await client.users_lookupByEmail(email="bob@example.com")  # case-insensitive, as on Slack
    assert bob["user"]["id"] == "W0BOB00001" and bob["user"]["tz"] == "Asia/Tokyo"
    assert bob["user"]["tz_offset"] == 9 * 3600 and bob["user"]["profile"]["display_name"] == "bobby"

    with pytest.raises(SlackApiError) as err:
        await client.users_info(user="U0NOBODY01")
    assert err.value.response.status_code == 200
    assert err.value.response.data == {"ok": False, "error": "user_not_found"}
    with pytest.raises(SlackApiError) as err:
        await client.users_lookupByEmail(email="nobody@example.com")
    assert err.value.response["error"] == "users_not_found"  # plural: web-api.json and Slack agree


async def test_conversations_info(client: AsyncWebClient) -> None:
    info = await client.conversations_info(channel="C0GENERAL1", include_num_members=True)
    assert info["channel"]["name"] == "general" and info["channel"]["num_members"] == 1
    auto = await client.conversations_info(channel="G0PRIVATE1")
    assert auto["channel"]["is_private"] is True
    with pytest.raises(SlackApiError) as err:
        await client.conversations_info(channel="#general")  # names are not IDs
    assert err.value.response["error"] == "channel_not_found"


# ---------------------------------------------------------------------------- auth


async def test_invalid_or_missing_token(fake: SlackFake) -> None:
    with pytest.raises(SlackApiError) as err:
        await AsyncWebClient(token="xoxb-wrong", base_url=fake.url).chat_postMessage(channel="C0GENERAL1", text="x")
    assert err.value.response.status_code == 200
    assert err.value.response.data == {"ok": False, "error": "invalid_auth"}
    with pytest.raises(SlackApiError) as err:
        await AsyncWebClient(base_url=fake.url).auth_test()
    assert err.value.response["error"] == "not_authed"
    assert not fake.messages  # nothing was posted
    assert [c.token for c in fake.calls] == ["xoxb-wrong", None]


# ---------------------------------------------------------------------------- failure injection


async def test_rate_limit_surfaces_status_and_retry_after(fake: SlackFake, client: AsyncWebClient) -> None:
    fake.fail_next("chat.postMessage", error="ratelimited", status=429, retry_after=1)
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C0GENERAL1", text="x")
    resp = err.value.response
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "1"
    assert resp.data == {"ok": False, "error": "ratelimited"}
    # only the next call fails
    assert (await client.chat_postMessage(channel="C0GENERAL1", text="x"))["ok"] is True


async def test_rate_limit_retry_handler_succeeds(fake: SlackFake) -> None:
    client = AsyncWebClient(token="xoxb-test", base_url=fake.url)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
    fake.fail_next("chat.postMessage")  # 429 + Retry-After: 1 by default
    started = time.monotonic()
    resp = await client.chat_postMessage(channel="C0GENERAL1", text="eventually")
    assert resp["ok"] is True
    assert time.monotonic() - started >= 1.0
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [429, 200]


async def test_error_injection_with_times(fake: SlackFake, client: AsyncWebClient) -> None:
    fake.fail_next("chat.postMessage", error="channel_not_found", times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as err:
            await client.chat_postMessage(channel="C0GENERAL1", text="x")
        assert err.value.response.status_code == 200
        assert err.value.response.data == {"ok": False, "error": "channel_not_found"}
        assert "Retry-After" not in err.value.response.headers
    assert (await client.chat_postMessage(channel="C0GENERAL1", text="x"))["ok"] is True


async def test_delay_and_stop_releases_slow_calls(fake: SlackFake, client: AsyncWebClient) -> None:
    fake.delay("users.info", 0.5, times=1)
    started = time.monotonic()
    await client.users_info(user="U0ALICE001")
    assert time.monotonic() - started >= 0.5
    started = time.monotonic()
    await client.users_info(user="U0ALICE001")  # times=1: back to fast
    assert time.monotonic() - started < 0.5

    fake.delay("auth.test", 30)
    slow = asyncio.create_task(client.auth_test())
    await fake.wait_for("auth.test")
    started = time.monotonic()
    await fake.stop()
    assert time.monotonic() - started < 5
    await asyncio.wait_for(asyncio.gather(slow, return_exceptions=True), 5)


async def test_custom_handler_and_unknown_method(fake: SlackFake, client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as err:
        await client.api_call("conversations.replies", params={"channel": "C0GENERAL1", "ts": "1.2"})
    assert err.value.response["error"] == "unknown_method"

    def replies(call: Call) -> dict[str, Any]:
        if call.params.get("ts") == "bad":
            raise SlackError("thread_not_found")
        return {"messages": [{"type": "message", "text": "root", "ts": call.params["ts"]}], "has_more": False}

    fake.set_handler("conversations.replies", replies)
    resp = await client.conversations_replies(channel="C0GENERAL1", ts="1700000000.000100")
    assert resp["ok"] is True and resp["messages"][0]["text"] == "root"
    with pytest.raises(SlackApiError) as err:
        await client.conversations_replies(channel="C0GENERAL1", ts="bad")
    assert err.value.response["error"] == "thread_not_found"


# ---------------------------------------------------------------------------- waiting, response_url


async def test_wait_for_replies_after_the_ack(fake: SlackFake, client: AsyncWebClient) -> None:
    async def reply_later() -> None:
        await asyncio.sleep(0.1)
        await client.chat_postMessage(channel="C0GENERAL1", text="one")
        await client.chat_postMessage(channel="C0GENERAL1", text="two")

    task = asyncio.create_task(reply_later())
    calls = await fake.wait_for("chat.postMessage", count=2, timeout=5)
    assert [c.params["text"] for c in calls] == ["one", "two"]
    await task
    with pytest.raises(TimeoutError, match="chat.delete"):
        await fake.wait_for("chat.delete", timeout=0.05)


async def test_response_url_posts_are_recorded(fake: SlackFake) -> None:
    url = fake.response_url("cmd-1")
    assert url == f"http://127.0.0.1:{fake.port}/response/cmd-1"
    payload = {"response_type": "ephemeral", "text": "looking…", "replace_original": False}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=payload) as resp:
            assert resp.status == 200
            assert await resp.json() == {"ok": True}
        fake.fail_next("response_url:cmd-1", error="expired_url", status=404)
        async with session.post(url, json={"text": "late"}) as resp:
            assert resp.status == 404
    [first, second] = await fake.wait_for("response_url:cmd-1", count=2)
    assert first.params == payload and first.token is None
    assert second.status == 404


# ---------------------------------------------------------------------------- views


async def test_views_flow(fake: SlackFake, client: AsyncWebClient) -> None:
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "Find"}, "blocks": BLOCKS,
             "callback_id": "find", "private_metadata": "C0GENERAL1"}
    opened = await client.views_open(trigger_id="123.456.abc", view=modal)
    view = opened["view"]
    assert view["id"].startswith("V") and view["callback_id"] == "find" and view["root_view_id"] == view["id"]
    assert fake.calls_to("views.open")[0].params["view"] == modal

    pushed = await client.views_push(trigger_id="123.456.def", view=modal)
    assert pushed["view"]["previous_view_id"] == view["id"]

    updated = await client.views_update(view_id=view["id"], view=modal, hash=view["hash"])
    assert updated["view"]["id"] == view["id"] and updated["view"]["hash"] != view["hash"]
    with pytest.raises(SlackApiError) as err:
        await client.views_update(view_id=view["id"], view=modal, hash=view["hash"])  # stale hash
    assert err.value.response["error"] == "hash_conflict"
    with pytest.raises(SlackApiError) as err:
        await client.views_update(view_id="V0NOPE", view=modal)
    assert err.value.response["error"] == "not_found"

    home = {"type": "home", "blocks": BLOCKS}
    first = await client.views_publish(user_id="U0ALICE001", view=home)
    again = await client.views_publish(user_id="U0ALICE001", view=home)
    assert first["view"]["type"] == "home" and again["view"]["id"] == first["view"]["id"]
    with pytest.raises(SlackApiError) as err:
        await client.views_open(trigger_id="1.2.3", view=home)
    assert err.value.response["error"] == "invalid_arguments"
    assert err.value.response["response_metadata"]["messages"]


# ---------------------------------------------------------------------------- the official schema


def _swagger_to_json_schema(node: Any) -> Any:
    """web-api.json writes "one of these" as ``{"items": [A, B]}`` on non-array nodes (objs_user,
    objs_conversation, ``tz``, ``bot_id``...). JSON Schema ignores ``items`` on a non-array, which would
    make those checks vacuous, so turn them into ``anyOf``."""
    if isinstance(node, list):
        return [_swagger_to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _swagger_to_json_schema(v) for k, v in node.items()}
    if isinstance(out.get("items"), list) and out.get("type") != "array":
        out["anyOf"] = out.pop("items")
    return out


def _response_schema(method: str, response: str) -> dict[str, Any]:
    if not WEB_API.exists():
        pytest.skip(f"{WEB_API} is not there")
    spec = json.loads(WEB_API.read_text())
    [operation] = spec["paths"][f"/{method}"].values()
    schema: dict[str, Any] = _swagger_to_json_schema(operation["responses"][response]["schema"])
    schema["definitions"] = _swagger_to_json_schema(spec["definitions"])  # so "#/definitions/..." resolves
    return schema


def _validate(validator: str, method: str, body: dict[str, Any]) -> None:
    """Swagger 2.0 schemas are JSON Schema draft 4 (plus a few keywords these responses don't use)."""
    schema = _response_schema(method, "200" if body.get("ok") else "default")
    if validator == "jsonschema":
        jsonschema = pytest.importorskip("jsonschema")
        jsonschema.Draft4Validator(schema).validate(body)
    else:
        fastjsonschema = pytest.importorskip("fastjsonschema")  # a Callboard dependency: always there
        fastjsonschema.compile(schema)(body)


def test_schema_rewrite_makes_user_checks_real() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = _response_schema("users.info", "200")
    bogus = {"ok": True, "user": {"id": "nope"}}
    assert jsonschema.Draft4Validator(schema).is_valid(bogus) is False
    raw = json.loads(WEB_API.read_text())
    raw_schema = raw["paths"]["/users.info"]["get"]["responses"]["200"]["schema"]
    assert jsonschema.Draft4Validator({**raw_schema, "definitions": raw["definitions"]}).is_valid(bogus) is True


@pytest.mark.parametrize("validator", ["jsonschema", "fastjsonschema"])
async def test_responses_match_web_api_schema(validator: str, fake: SlackFake, client: AsyncWebClient) -> None:
    checked: list[tuple[str, dict[str, Any]]] = []

    async def check(method: str, call: Any) -> dict[str, Any]:
        body: dict[str, Any]
        try:
            body = (await call).data
        except SlackApiError as err:
            body = err.response.data
        _validate(validator, method, body)
        checked.append((method, body))
        return body

    await check("auth.test", client.auth_test())
    posted = await check("chat.postMessage", client.chat_postMessage(channel="C0GENERAL1", text="hi", blocks=BLOCKS))
    await check("chat.postMessage", client.chat_postMessage(
        channel="C0GENERAL1", text="reply", thread_ts=posted["ts"], username="cb", icon_emoji=":robot_face:",
        attachments=[{"fallback": "fb"}],
    ))
    await check("chat.postMessage", client.chat_postMessage(channel="#new-channel", text="auto-created"))
    await check("chat.postEphemeral", client.chat_postEphemeral(channel="C0GENERAL1", user="U0ALICE001", text="e"))
    await check("chat.update", client.chat_update(channel="C0GENERAL1", ts=posted["ts"], text="u", blocks=BLOCKS))
    await check("reactions.add", client.reactions_add(channel="C0GENERAL1", name="eyes", timestamp=posted["ts"]))
    await check("chat.delete", client.chat_delete(channel="C0GENERAL1", ts=posted["ts"]))
    await check("users.info", client.users_info(user="U0ALICE001", include_locale=True))
    await check("users.info", client.users_info(user=fake.bot_user_id))
    await check("users.lookupByEmail", client.users_lookupByEmail(email="bob@example.com"))
    await check("conversations.info", client.conversations_info(channel="C0GENERAL1", include_num_members=True))
    dm = await client.chat_postMessage(channel="U0ALICE001", text="dm")
    await check("conversations.info", client.conversations_info(channel=dm["channel"]))
    await check("views.open", client.views_open(
        trigger_id="1.2.3", view={"type": "modal", "title": {"type": "plain_text", "text": "t"}, "blocks": []}
    ))
    await check("views.publish", client.views_publish(user_id="U0ALICE001", view={"type": "home", "blocks": BLOCKS}))

    # error bodies against each method's "default" schema
    await check("users.info", client.users_info(user="U0NOBODY01"))
    await check("users.lookupByEmail", client.users_lookupByEmail(email="x@example.com"))
    await check("chat.delete", client.chat_delete(channel="C0GENERAL1", ts="1700000099.000000"))
    await check("reactions.add", client.reactions_add(channel="C0GENERAL1", name="eyes", timestamp="nope"))
    await check("views.update", client.views_update(view_id="V0NOPE", view={"type": "modal"}))
    fake.fail_next("chat.postMessage", error="channel_not_found")
    await check("chat.postMessage", client.chat_postMessage(channel="C0GENERAL1", text="x"))
    await check("auth.test", AsyncWebClient(token="xoxb-bad", base_url=fake.url).auth_test())

    assert {m for m, _ in checked} >= {"auth.test", "chat.postMessage", "users.info"}
    assert sum(1 for _, body in checked if not body["ok"]) == 7
