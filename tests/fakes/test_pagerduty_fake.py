"""The PagerDuty fake, driven over real HTTP and checked against PagerDuty's own OpenAPI description."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from tests.fakes._schemas import api_description, schema_errors_at
from tests.fakes.pagerduty import PagerDutyFake

REST_API = api_description("pagerduty")

NOW = datetime(2024, 3, 6, 12, 0, tzinfo=UTC)  # a Wednesday
WEEK_START = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)  # Monday 09:00
WEEK = timedelta(days=7)
AUTH = {"Authorization": "Token token=pd-test-token"}


# ---------------------------------------------------------------------------- schema helper


def schema_errors(body: Any, path: str, status: str = "200") -> list[str]:
    """Where ``body`` breaks the description's response schema for ``GET path`` (``[]`` when valid)."""
    pointer = path.replace("~", "~0").replace("/", "~1")
    return schema_errors_at(REST_API, body, f"/paths/{pointer}/get/responses/{status}/content/application~1json/schema")


def error_schema_errors(body: Any) -> list[str]:
    return schema_errors_at(REST_API, body, "/components/responses/NotFound/content/application~1json/schema",
                            formats=False)


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture
async def fake() -> AsyncIterator[PagerDutyFake]:
    async with PagerDutyFake(clock=lambda: NOW) as running:
        running.add_user("PUALICE", "Alice Liddell", "alice@example.com", time_zone="Europe/Dublin")
        running.add_user("PUBOB", "Bob Builder", "bob@example.com")
        running.add_user("PUCAROL", "Carol Danvers", "carol@example.com", time_zone="America/New_York")
        running.add_policy("PPAY", "Payments")
        running.add_policy("PSRCH", "Search")
        for sid, name in [("PS1", "payments-api"), ("PS2", "billing-api"), ("PS3", "ledger"), ("PS4", "search-api")]:
            running.add_service(sid, name, "PSRCH" if name == "search-api" else "PPAY", [f"key-{sid}"])
        running.add_service("PS5", "checkout-web", "PPAY")
        # Payments: a weekly schedule on level 1 (Alice this week, Bob the next), Carol always on level 2.
        running.add_oncall("PPAY", 1, "PUALICE", WEEK_START, WEEK_START + WEEK, "PSCHED1", "Payments weekly")
        running.add_oncall("PPAY", 1, "PUBOB", WEEK_START + WEEK, WEEK_START + 2 * WEEK, "PSCHED1", "Payments weekly")
        running.add_oncall("PPAY", 2, "PUCAROL")
        running.add_oncall("PSRCH", 1, "PUBOB", WEEK_START, WEEK_START + WEEK, "PSCHED2")
        yield running


@pytest.fixture
async def session(fake: PagerDutyFake) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=fake.url + "/", headers=AUTH) as client:
        yield client


async def get(session: aiohttp.ClientSession, path: str, params: Any = None) -> tuple[int, Any]:
    async with session.get(path.lstrip("/"), params=params) as resp:
        return resp.status, await resp.json()


# ---------------------------------------------------------------------------- auth and services


async def test_requests_without_the_token_get_401(fake: PagerDutyFake) -> None:
    async with aiohttp.ClientSession() as anonymous:
        for headers in ({}, {"Authorization": "Token token=wrong"}, {"Authorization": "Bearer pd-test-token"}):
            async with anonymous.get(f"{fake.url}/services/PS1", headers=headers) as resp:
                assert resp.status == 401
                body = await resp.json()
                assert body == {"error": {"message": "Unauthorized", "code": 2006}}
                assert error_schema_errors(body) == []
    assert [c.status for c in fake.calls_to("/services")] == [401, 401, 401]


async def test_service_round_trip(fake: PagerDutyFake, session: aiohttp.ClientSession) -> None:
    status, body = await get(session, "/services/PS1")
    assert status == 200
    assert schema_errors(body, "/services/{id}") == []
    service = body["service"]
    assert service["id"] == "PS1" and service["type"] == "service" and service["status"] == "active"
    assert service["name"] == service["summary"] == "payments-api"
    assert service["self"] == f"{fake.url}/services/PS1"
    assert service["html_url"] == "https://callboard-test.pagerduty.com/service-directory/PS1"
    assert service["teams"] == []
    assert service["escalation_policy"] == {
        "id": "PPAY",
        "type": "escalation_policy_reference",
        "summary": "Payments",
        "self": f"{fake.url}/escalation_policies/PPAY",
        "html_url": "https://callboard-test.pagerduty.com/escalation_policies/PPAY",
    }
    [integration] = service["integrations"]
    assert integration["type"] == "generic_events_api_inbound_integration_reference"
    assert {"id", "summary"} <= integration.keys() and "integration_key" not in integration

    status, body = await get(session, "/services/PS1", {"include[]": "integrations"})
    assert status == 200 and schema_errors(body, "/services/{id}") == []
    assert body["service"]["integrations"][0]["integration_key"] == "key-PS1"

    fake.remove_service("PS1")
    status, body = await get(session, "/services/PS1")
    assert (status, body) == (404, {"error": {"message": "Not Found", "code": 2100}})
    status, body = await get(session, "/nowhere")
    assert status == 404 and body["error"]["code"] == 2100

    [first, *_] = fake.calls_to("/services/PS1")
    assert first.method == "GET" and first.path == "/services/PS1" and first.status == 200
    assert first.headers["authorization"] == AUTH["Authorization"]
    assert fake.calls_to("/services/PS1")[1].query == {"include[]": ["integrations"]}


async def test_services_paginate_by_offset(session: aiohttp.ClientSession) -> None:
    pages = []
    for offset in (0, 2, 4):
        params = [("include[]", "integrations"), ("limit", 2), ("offset", offset)]
        status, body = await get(session, "/services", params)
        assert status == 200
        assert schema_errors(body, "/services") == []
        assert (body["limit"], body["offset"], body["total"]) == (2, offset, None)
        pages.append(body)
    assert [p["more"] for p in pages] == [True, True, False]
    names = [s["name"] for p in pages for s in p["services"]]
    assert names == ["billing-api", "checkout-web", "ledger", "payments-api", "search-api"]
    keys = {s["name"]: [i["integration_key"] for i in s["integrations"]] for p in pages for s in p["services"]}
    assert keys["payments-api"] == ["key-PS1"] and keys["checkout-web"] == []

    status, body = await get(session, "/services")
    assert (body["limit"], body["offset"], body["more"], len(body["services"])) == (25, 0, False, 5)
    assert "integration_key" not in body["services"][0]["integrations"][0]
    status, body = await get(session, "/services", {"limit": 1000, "total": "true"})
    assert (body["limit"], body["total"]) == (100, 5)
    status, body = await get(session, "/services", {"offset": 10})
    assert (body["services"], body["more"]) == ([], False)
    status, body = await get(session, "/services", {"limit": "lots"})
    assert status == 400 and body["error"]["message"] == "Invalid Input Provided"


# ---------------------------------------------------------------------------- on-calls


def _who(body: Any) -> list[tuple[str, int, str]]:
    return [(o["escalation_policy"]["id"], o["escalation_level"], o["user"]["id"]) for o in body["oncalls"]]


async def test_oncalls_now_by_policy(fake: PagerDutyFake, session: aiohttp.ClientSession) -> None:
    status, body = await get(session, "/oncalls", {"escalation_policy_ids[]": "PPAY"})
    assert status == 200
    assert schema_errors(body, "/oncalls") == [
        # Carol is directly on level 2: real PagerDuty (and the fake) say null, the schema allows no null.
        "oncalls/1/end: None is not of type 'string'",
        "oncalls/1/schedule: None is not valid under any of the given schemas",
        "oncalls/1/start: None is not of type 'string'",
    ]
    assert _who(body) == [("PPAY", 1, "PUALICE"), ("PPAY", 2, "PUCAROL")]
    alice, carol = body["oncalls"]
    assert (alice["start"], alice["end"]) == ("2024-03-04T09:00:00Z", "2024-03-11T09:00:00Z")
    assert alice["schedule"]["id"] == "PSCHED1" and alice["schedule"]["summary"] == "Payments weekly"
    assert alice["user"] == {
        "id": "PUALICE",
        "type": "user_reference",
        "summary": "Alice Liddell",
        "self": f"{fake.url}/users/PUALICE",
        "html_url": "https://callboard-test.pagerduty.com/users/PUALICE",
    }
    assert (carol["start"], carol["end"], carol["schedule"]) == (None, None, None)


async def test_oncalls_main_case_matches_schema(session: aiohttp.ClientSession) -> None:
    """Schedule-based shifts without include[]=users validate fully against the Oncall schema."""
    params = [("escalation_policy_ids[]", "PPAY"), ("escalation_policy_ids[]", "PSRCH")]
    params += [("since", "2024-03-05T00:00:00Z"), ("until", "2024-03-20T00:00:00Z"), ("limit", "3")]
    status, body = await get(session, "/oncalls", params)
    assert status == 200
    assert _who(body) == [("PPAY", 1, "PUALICE"), ("PSRCH", 1, "PUBOB"), ("PPAY", 1, "PUBOB")]
    assert schema_errors(body, "/oncalls") == []
    assert body["more"] is True


async def test_oncalls_time_window(fake: PagerDutyFake, session: aiohttp.ClientSession) -> None:
    next_week = {"since": "2024-03-12T00:00:00Z", "until": "2024-03-13T00:00:00Z"}
    _, body = await get(session, "/oncalls", next_week)
    assert _who(body) == [("PPAY", 1, "PUBOB"), ("PPAY", 2, "PUCAROL")]
    _, body = await get(session, "/oncalls", {"since": "2024-03-10T00:00:00Z", "until": "2024-03-12T00:00:00Z"})
    assert _who(body) == [("PPAY", 1, "PUALICE"), ("PSRCH", 1, "PUBOB"), ("PPAY", 1, "PUBOB"), ("PPAY", 2, "PUCAROL")]
    # The end of a shift is exclusive; a window ending where a shift starts does not overlap it.
    _, body = await get(session, "/oncalls", {"since": "2024-03-11T09:00:00Z", "until": "2024-03-11T09:00:00Z"})
    assert _who(body) == [("PPAY", 1, "PUBOB"), ("PPAY", 2, "PUCAROL")]
    _, body = await get(session, "/oncalls", {"since": "2024-03-01T00:00:00Z", "until": "2024-03-04T09:00:00Z"})
    assert _who(body) == [("PPAY", 2, "PUCAROL")]
    # Offsets and time_zone are honoured; "+" left unencoded in a query string still parses.
    _, body = await get(session, "oncalls?since=2024-03-12T09:00:00+09:00&until=2024-03-12T10:00:00%2B09:00")
    assert _who(body) == [("PPAY", 1, "PUBOB"), ("PPAY", 2, "PUCAROL")]
    _, body = await get(session, "/oncalls", {"escalation_policy_ids[]": "PSRCH", "time_zone": "Asia/Tokyo"})
    assert body["oncalls"][0]["start"] == "2024-03-04T18:00:00+09:00"
    # earliest=true keeps the first shift per (policy, level, user).
    fake.add_oncall("PPAY", 1, "PUBOB", WEEK_START + 3 * WEEK, WEEK_START + 4 * WEEK, "PSCHED1")
    bobs = {"user_ids[]": "PUBOB", "until": "2024-04-01T00:00:00Z"}
    _, body = await get(session, "/oncalls", bobs)
    assert len(body["oncalls"]) == 3
    _, body = await get(session, "/oncalls", {**bobs, "earliest": "true"})
    assert [(o["escalation_policy"]["id"], o["start"]) for o in body["oncalls"]] == [
        ("PSRCH", "2024-03-04T09:00:00Z"),
        ("PPAY", "2024-03-11T09:00:00Z"),
    ]
    status, body = await get(session, "/oncalls", {"since": "2024-03-12T00:00:00Z", "until": "2024-03-11T00:00:00Z"})
    assert status == 400 and body["error"]["code"] == 2001
    status, body = await get(session, "/oncalls", {"since": "yesterday"})
    assert status == 400 and body["error"]["errors"] == ["Since is not a valid date"]


async def test_oncalls_pages_and_full_users(session: aiohttp.ClientSession) -> None:
    window = [("since", "2024-03-01T00:00:00Z"), ("until", "2024-03-31T00:00:00Z"), ("include[]", "users")]
    seen, mores = [], []
    for offset in (0, 2, 4):
        _, body = await get(session, "/oncalls", [*window, ("limit", "2"), ("offset", str(offset))])
        seen += _who(body)
        mores.append(body["more"])
        for oncall in body["oncalls"]:
            user = oncall["user"]
            assert user["type"] == "user"
            assert {"id", "summary", "name", "email", "time_zone", "html_url", "self"} <= user.keys()
    assert mores == [True, False, False] and len(seen) == 4
    assert seen[-1] == ("PPAY", 2, "PUCAROL")
    _, body = await get(session, "/oncalls", [*window, ("user_ids[]", "PUCAROL")])
    assert body["oncalls"][0]["user"]["time_zone"] == "America/New_York"
    # The description types Oncall.user as a UserReference, so full users are a known departure.
    assert "oncalls/0/user/type: 'user' is not one of ['user_reference']" in schema_errors(body, "/oncalls")


# ---------------------------------------------------------------------------- failure injection


async def test_429_with_retry_after_then_success(fake: PagerDutyFake, session: aiohttp.ClientSession) -> None:
    fake.fail_next("/oncalls", 429)
    async with session.get("oncalls") as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "1"
        assert await resp.json() == {"error": {"message": "Rate Limit Exceeded", "code": 2020}}
    status, _ = await get(session, "/oncalls")
    assert status == 200
    assert [c.status for c in fake.calls_to("/oncalls")] == [429, 200]


async def test_500_and_503(fake: PagerDutyFake, session: aiohttp.ClientSession) -> None:
    fake.fail_next("/services", 500, times=2)
    fake.fail_next("/services", 503, retry_after=3, body="<html>upstream down</html>")
    fake.fail_next("/oncalls", 502, body={"error": {"message": "Bad Gateway", "code": 9}})
    for _ in range(2):
        status, body = await get(session, "/services/PS1")
        assert (status, body["error"]["code"]) == (500, 2000)
    async with session.get("services") as resp:
        assert (resp.status, resp.headers["Retry-After"], await resp.text()) == (503, "3", "<html>upstream down</html>")
    assert (await get(session, "/services"))[0] == 200
    assert await get(session, "/oncalls") == (502, {"error": {"message": "Bad Gateway", "code": 9}})


async def test_hang_beyond_client_timeout_then_clean_stop() -> None:
    fake = PagerDutyFake(token="other")
    url = await fake.start()
    fake.add_policy("P1", "One")
    fake.add_service("S1", "one", "P1")
    fake.hang_next("/services", 5)
    headers = {"Authorization": "Token token=other"}
    async with aiohttp.ClientSession(headers=headers) as client:
        started = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            async with client.get(f"{url}/services/S1", timeout=aiohttp.ClientTimeout(total=0.2)):
                pass
        assert time.monotonic() - started < 1
        async with client.get(f"{url}/services/S1") as resp:  # the hang was used up
            assert resp.status == 200
        # A second hang still in flight when the fake stops is released at once.
        fake.hang_next("/services", 30)
        pending = asyncio.create_task(client.get(f"{url}/services/S1"))
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
    await fake.stop()  # idempotent
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as again, again.get(f"{url}/services/S1"):
            pass
