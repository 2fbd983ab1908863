"""The shared HTTP client's retry rule: 429 waits as Retry-After says (when it is short enough),
5xx and failed connections are asked again only for idempotent methods, time-outs never."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from callboard.providers.http import Answer, FetchLimits, Fetcher, FetchProblem, retry_after

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


class StillClock:
    """A clock whose pauses are only written down."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def now(self) -> datetime:
        return NOW

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


@pytest.fixture
async def server() -> AsyncIterator[tuple[TestServer, list[tuple[int, dict[str, str]]], list[str]]]:
    script: list[tuple[int, dict[str, str]]] = []  # answers to give, in order; then 200
    seen: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(request.method)
        if request.path == "/slow":
            await asyncio.sleep(5)
        status, headers = script.pop(0) if script else (200, {})
        return web.json_response({"ok": status == 200}, status=status, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    srv = TestServer(app, host="127.0.0.1")
    await srv.start_server()
    yield srv, script, seen
    await srv.close()


async def test_429_waits_as_retry_after_says(server) -> None:
    srv, script, seen = server
    clock = StillClock()
    script += [(429, {"Retry-After": "2"}), (429, {"Retry-After": format_datetime(NOW + timedelta(seconds=3))})]
    async with Fetcher(clock=clock) as http:
        got = await http.request("POST", str(srv.make_url("/x")), trusted=True, max_bytes=1000, json={"a": 1})
    assert isinstance(got, Answer) and got.status == 200 and got.json() == {"ok": True}
    assert clock.slept == [2.0, 3.0] and seen == ["POST"] * 3  # 429: the request was not handled, so POST too


async def test_a_long_retry_after_is_the_answer(server) -> None:
    srv, script, seen = server
    clock = StillClock()
    script.append((429, {"Retry-After": "3600"}))
    async with Fetcher(clock=clock) as http:
        got = await http.get(str(srv.make_url("/x")), trusted=True, max_bytes=1000)
    assert isinstance(got, Answer) and got.status == 429 and clock.slept == [] and len(seen) == 1


async def test_5xx_is_retried_with_growing_pauses_for_get_only(server) -> None:
    srv, script, seen = server
    clock = StillClock()
    script += [(503, {}), (502, {})]
    async with Fetcher(clock=clock, limits=FetchLimits(backoff=0.5, backoff_factor=3)) as http:
        got = await http.get(str(srv.make_url("/x")), trusted=True, max_bytes=1000)
        assert isinstance(got, Answer) and got.status == 200 and clock.slept == [0.5, 1.5]
        script.append((503, {}))
        posted = await http.request("POST", str(srv.make_url("/x")), trusted=True, max_bytes=1000, json={})
    assert isinstance(posted, Answer) and posted.status == 503  # maybe done already: not sent twice
    script += [(500, {})] * 5
    async with Fetcher(clock=clock, limits=FetchLimits(retries=1)) as http:
        got = await http.get(str(srv.make_url("/x")), trusted=True, max_bytes=1000)
    assert isinstance(got, Answer) and got.status == 500


async def test_a_timeout_is_not_repeated(server) -> None:
    srv, _script, seen = server
    clock = StillClock()
    async with Fetcher(clock=clock, allow=("127.0.0.1",)) as http:
        got = await http.get(str(srv.make_url("/slow")), trusted=True, max_bytes=1000, timeout=0.3)
        data = await http.get(str(srv.make_url("/slow")), trusted=False, max_bytes=1000, timeout=0.3)
    assert isinstance(got, FetchProblem) and got.kind == "timeout" and "0.3 s" in got.message
    assert isinstance(data, FetchProblem) and data.kind == "unreachable"  # data URLs: one message for all
    assert len(seen) == 2 and clock.slept == []


def test_retry_after_values() -> None:
    assert retry_after("7", NOW) == 7.0 and retry_after("-1", NOW) == 0.0
    assert retry_after(format_datetime(NOW + timedelta(seconds=30)), NOW) == 30.0
    assert retry_after("soon", NOW) is None and retry_after(None, NOW) is None
