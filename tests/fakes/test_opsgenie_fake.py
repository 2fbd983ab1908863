"""The Opsgenie fake, driven over real HTTP and checked against Opsgenie's own Swagger 2 description."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from tests.fakes._schemas import api_description, schema_errors_at
from tests.fakes.opsgenie import OpsgenieFake

REST_API = api_description("opsgenie")

NOW = datetime(2024, 3, 6, 12, 0, tzinfo=UTC)  # a Wednesday
MONDAY = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
WEEK = timedelta(days=7)
AUTH = {"Authorization": "GenieKey og-test-key"}


# ---------------------------------------------------------------------------- schema helper


def _errors(body: Any, pointer: str) -> list[str]:
    return schema_errors_at(REST_API, body, pointer)


def schema_errors(body: Any, path: str, status: str = "200") -> list[str]:
    """Where ``body`` breaks the description's response schema for ``GET path`` (``[]`` when valid)."""
    pointer = path.replace("~", "~0").replace("/", "~1")
    return _errors(body, f"/paths/{pointer}/get/responses/{status}/schema")


def error_schema_errors(body: Any) -> list[str]:
    return _errors(body, "/definitions/ErrorResponse")


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture
async def fake() -> AsyncIterator[OpsgenieFake]:
    async with OpsgenieFake(clock=lambda: NOW) as running:
        running.add_team("payments", [("alice@example.com", "admin"), "bob@example.com"], description="Money")
        running.add_schedule(
            "payments_schedule",
            "payments",
            timezone="Europe/Dublin",
            rotations=[
                ("primary", 0, MONDAY, MONDAY + WEEK, "alice@example.com"),
                ("primary", 0, MONDAY + WEEK, MONDAY + 2 * WEEK, "bob@example.com"),
                ("primary", 0, MONDAY + 2 * WEEK, MONDAY + 3 * WEEK, "alice@example.com"),
            ],
        )
        # Carol covers Alice on Wednesday 10:00-14:00; Dave is the secondary for three weeks.
        running.add_period(
            "payments_schedule", "primary", 0, NOW - timedelta(hours=2), NOW + timedelta(hours=2),
            "carol@example.com", type="override",
        )
        running.add_period("payments_schedule", "secondary", 1, MONDAY, MONDAY + 3 * WEEK, "dave@example.com")
        running.add_schedule("search_schedule", "search", description="Search rota")
        yield running


@pytest.fixture
async def session(fake: OpsgenieFake) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=fake.url + "/", headers=AUTH) as client:
        yield client


async def get(session: aiohttp.ClientSession, path: str, params: Any = None) -> tuple[int, Any]:
    async with session.get(path.lstrip("/"), params=params) as resp:
        body = await resp.json()
        assert resp.headers["X-Request-ID"] == body["requestId"]
        return resp.status, body


def _envelope_ok(body: Any) -> None:
    assert isinstance(body["took"], float)
    uuid.UUID(body["requestId"])


def _periods(rotation: Any) -> list[tuple[str, str, str, str]]:
    return [(p["startDate"], p["endDate"], p["type"], p["recipient"]["name"]) for p in rotation["periods"]]


# ---------------------------------------------------------------------------- auth and schedules


async def test_requests_without_the_key_get_401(fake: OpsgenieFake) -> None:
    async with aiohttp.ClientSession() as anonymous:
        for headers in ({}, {"Authorization": "GenieKey wrong"}, {"Authorization": "Bearer og-test-key"}):
            async with anonymous.get(f"{fake.url}/v2/schedules", headers=headers) as resp:
                assert resp.status == 401
                body = await resp.json()
                assert body["message"] == "Could not authenticate" and body["took"] == 0.0
                uuid.UUID(body["requestId"])
                assert error_schema_errors(body) == []
    assert [c.status for c in fake.calls_to("/v2/schedules")] == [401, 401, 401]


async def test_schedule_round_trip(fake: OpsgenieFake, session: aiohttp.ClientSession) -> None:
    status, body = await get(session, "/v2/schedules")
    assert status == 200 and schema_errors(body, "/v2/schedules") == []
    _envelope_ok(body)
    assert body["expandable"] == ["rotation"]
    payments, search = body["data"]
    assert payments == {
        "id": fake.schedule_id("payments_schedule"),
        "name": "payments_schedule",
        "description": "",
        "timezone": "Europe/Dublin",
        "enabled": True,
        "ownerTeam": {"id": fake.team_id("payments"), "name": "payments"},
        "rotations": [],
    }
    assert (search["name"], search["ownerTeam"]["name"], search["timezone"]) == ("search_schedule", "search", "UTC")

    status, body = await get(session, "/v2/schedules", {"expand": "rotation"})
    assert status == 200 and schema_errors(body, "/v2/schedules") == []
    assert body["expandable"] == []
    primary, secondary = body["data"][0]["rotations"]
    assert primary["name"] == "primary" and (primary["type"], primary["length"]) == ("weekly", 1)
    assert (primary["startDate"], primary["endDate"]) == ("2024-03-04T09:00:00Z", "2024-03-25T09:00:00Z")
    assert [p["username"] for p in primary["participants"]] == ["alice@example.com", "bob@example.com"]
    assert primary["participants"][0] == {"type": "user", "id": fake.user_id("alice@example.com"),
                                          "username": "alice@example.com"}
    assert (secondary["type"], secondary["length"]) == ("weekly", 3)

    fake.remove_schedule("payments_schedule")
    status, body = await get(session, "/v2/schedules/payments_schedule/timeline", {"identifierType": "name"})
    assert status == 404 and body["message"] == "No schedule exists with name [payments_schedule]"
    assert error_schema_errors(body) == []
    assert [s["name"] for s in (await get(session, "/v2/schedules"))[1]["data"]] == ["search_schedule"]
    assert fake.calls_to("/v2/schedules/")[0].query == {"identifierType": ["name"]}
    assert fake.calls[0].headers["authorization"] == AUTH["Authorization"]


# ---------------------------------------------------------------------------- timeline


async def test_timeline_week_with_override(fake: OpsgenieFake, session: aiohttp.ClientSession) -> None:
    params = {"identifierType": "name", "interval": "1", "intervalUnit": "weeks", "date": "2024-03-04T09:00:00Z"}
    status, body = await get(session, "/v2/schedules/payments_schedule/timeline", params)
    assert status == 200
    assert schema_errors(body, "/v2/schedules/{identifier}/timeline") == []
    _envelope_ok(body)
    data = body["data"]
    assert data["_parent"] == {"id": fake.schedule_id("payments_schedule"), "name": "payments_schedule",
                               "enabled": True}
    assert (data["startDate"], data["endDate"]) == ("2024-03-04T09:00:00Z", "2024-03-11T09:00:00Z")
    primary, secondary = data["finalTimeline"]["rotations"]
    assert (primary["name"], primary["order"], secondary["order"]) == ("primary", 0.0, 1.0)
    assert _periods(primary) == [
        ("2024-03-04T09:00:00Z", "2024-03-06T10:00:00Z", "default", "alice@example.com"),
        ("2024-03-06T10:00:00Z", "2024-03-06T14:00:00Z", "override", "carol@example.com"),
        ("2024-03-06T14:00:00Z", "2024-03-11T09:00:00Z", "default", "alice@example.com"),
    ]
    assert primary["periods"][1]["recipient"] == {"id": fake.user_id("carol@example.com"), "type": "user",
                                                  "name": "carol@example.com"}
    assert _periods(secondary) == [("2024-03-04T09:00:00Z", "2024-03-11T09:00:00Z", "default", "dave@example.com")]
    assert [_periods(r) for r in data["baseTimeline"]["rotations"]] == [
        [("2024-03-04T09:00:00Z", "2024-03-11T09:00:00Z", "default", "alice@example.com")],
        [("2024-03-04T09:00:00Z", "2024-03-11T09:00:00Z", "default", "dave@example.com")],
    ]
    [override] = data["overrideTimeline"]["rotations"]
    assert _periods(override) == [("2024-03-06T10:00:00Z", "2024-03-06T14:00:00Z", "override", "carol@example.com")]


async def test_timeline_clipping_units_and_ids(fake: OpsgenieFake, session: aiohttp.ClientSession) -> None:
    by_id = f"/v2/schedules/{fake.schedule_id('payments_schedule')}/timeline"  # identifierType defaults to id
    _, body = await get(session, by_id, {"interval": 2, "intervalUnit": "days", "date": "2024-03-10T00:00:00Z"})
    primary = body["data"]["finalTimeline"]["rotations"][0]
    assert _periods(primary) == [
        ("2024-03-10T00:00:00Z", "2024-03-11T09:00:00Z", "default", "alice@example.com"),
        ("2024-03-11T09:00:00Z", "2024-03-12T00:00:00Z", "default", "bob@example.com"),
    ]
    assert body["data"]["overrideTimeline"]["rotations"][0]["periods"] == []
    # Three consecutive weekly windows page through the rota.
    who = []
    for week in range(3):
        date = (MONDAY + week * WEEK).isoformat()  # "+00:00" is encoded by aiohttp
        _, body = await get(session, by_id, {"date": date})  # interval 1, intervalUnit weeks by default
        who.append([p[3] for p in _periods(body["data"]["finalTimeline"]["rotations"][0])])
    assert who == [["alice@example.com", "carol@example.com", "alice@example.com"], ["bob@example.com"],
                   ["alice@example.com"]]
    _, body = await get(session, by_id, {"interval": 1, "intervalUnit": "months", "date": "2024-01-31T00:00:00Z"})
    assert body["data"]["endDate"] == "2024-02-29T00:00:00Z"
    assert body["data"]["finalTimeline"]["rotations"][0]["periods"] == []
    _, body = await get(session, by_id, {"expand": "base,forwarding"})
    assert body["expandable"] == ["override"] and body["data"]["forwardingTimeline"] == {"rotations": []}
    _, body = await get(session, by_id)
    assert body["data"]["startDate"] == "2024-03-06T12:00:00Z"  # the fake's clock

    status, body = await get(session, "/v2/schedules/payments_schedule/timeline")  # a name, read as an id
    assert status == 404 and body["message"] == "No schedule exists with id [payments_schedule]"
    status, body = await get(session, by_id, {"intervalUnit": "years"})
    assert status == 422 and "intervalUnit" in body["message"]
    status, body = await get(session, by_id, {"date": "soon"})
    assert status == 422


# ---------------------------------------------------------------------------- on-calls and teams


async def test_on_calls(fake: OpsgenieFake, session: aiohttp.ClientSession) -> None:
    path = "/v2/schedules/payments_schedule/on-calls"
    status, body = await get(session, path, {"scheduleIdentifierType": "name", "flat": "false"})
    assert status == 200
    assert schema_errors(body, "/v2/schedules/{identifier}/on-calls") == []
    _envelope_ok(body)
    assert body["data"]["_parent"]["name"] == "payments_schedule"
    assert body["data"]["onCallParticipants"] == [
        {"id": fake.user_id("carol@example.com"), "name": "carol@example.com", "type": "user"},
        {"id": fake.user_id("dave@example.com"), "name": "dave@example.com", "type": "user"},
    ]
    params = {"scheduleIdentifierType": "name", "date": "2024-03-12T00:00:00Z", "flat": "true"}
    status, body = await get(session, path, params)
    assert body["data"]["onCallRecipients"] == ["bob@example.com", "dave@example.com"]
    assert schema_errors(body, "/v2/schedules/{identifier}/on-calls") == []
    params = {"scheduleIdentifierType": "name", "date": "2024-04-01T00:00:00Z"}
    assert (await get(session, path, params))[1]["data"]["onCallParticipants"] == []
    status, body = await get(session, "/v2/schedules/nope/on-calls", {"scheduleIdentifierType": "name"})
    assert status == 404 and body["message"] == "No schedule exists with name [nope]"


async def test_team(fake: OpsgenieFake, session: aiohttp.ClientSession) -> None:
    status, body = await get(session, "/v2/teams/payments", {"identifierType": "name"})
    assert status == 200
    assert schema_errors(body, "/v2/teams/{identifier}") == []
    _envelope_ok(body)
    assert body["data"] == {
        "id": fake.team_id("payments"),
        "name": "payments",
        "description": "Money",
        "members": [
            {"user": {"id": fake.user_id("alice@example.com"), "username": "alice@example.com"}, "role": "admin"},
            {"user": {"id": fake.user_id("bob@example.com"), "username": "bob@example.com"}, "role": "user"},
        ],
    }
    status, same = await get(session, f"/v2/teams/{fake.team_id('payments')}")
    assert status == 200 and same["data"] == body["data"]
    status, body = await get(session, "/v2/teams/ghosts", {"identifierType": "name"})
    assert status == 404 and body["message"] == "No team exists with name [ghosts]"


# ---------------------------------------------------------------------------- failure injection


async def test_429_with_retry_after_then_success(fake: OpsgenieFake, session: aiohttp.ClientSession) -> None:
    fake.fail_next("/v2/schedules", 429)
    async with session.get("v2/schedules") as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "1"
        assert resp.headers["X-RateLimit-State"] == "THROTTLED"
        body = await resp.json()
        assert body["message"] == "Request throttled" and error_schema_errors(body) == []
    status, _ = await get(session, "/v2/schedules")
    assert status == 200
    assert [c.status for c in fake.calls_to("/v2/schedules")] == [429, 200]


async def test_500_then_success(fake: OpsgenieFake, session: aiohttp.ClientSession) -> None:
    fake.fail_next("/v2/teams", 500, times=2)
    fake.fail_next("/v2/teams", 503, body="upstream down")
    for _ in range(2):
        status, body = await get(session, "/v2/teams/payments", {"identifierType": "name"})
        assert (status, body["message"]) == (500, "Internal Server Error")
    async with session.get("v2/teams/payments", params={"identifierType": "name"}) as resp:
        assert (resp.status, await resp.text()) == (503, "upstream down")
        assert "Retry-After" not in resp.headers
    assert (await get(session, "/v2/teams/payments", {"identifierType": "name"}))[0] == 200


async def test_hang_beyond_client_timeout_then_clean_stop() -> None:
    fake = OpsgenieFake(key="other")
    url = await fake.start()
    fake.add_schedule("s", "t")
    fake.hang_next("/v2/schedules", 5)
    async with aiohttp.ClientSession(headers={"Authorization": "GenieKey other"}) as client:
        started = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            async with client.get(f"{url}/v2/schedules", timeout=aiohttp.ClientTimeout(total=0.2)):
                pass
        assert time.monotonic() - started < 1
        async with client.get(f"{url}/v2/schedules") as resp:
            assert resp.status == 200
        fake.hang_next("/v2/schedules", 30)
        pending = asyncio.create_task(client.get(f"{url}/v2/schedules"))
        while len(fake.calls) < 3:
            await asyncio.sleep(0.01)
        started = time.monotonic()
        await fake.stop()
        assert time.monotonic() - started < 2
        try:
            resp = await pending
            assert resp.status == 503
            resp.release()
        except aiohttp.ClientError:
            pass
    await fake.stop()
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as again, again.get(f"{url}/v2/schedules"):
            pass
