"""What the REST fakes (PagerDuty, Opsgenie) share: a local aiohttp server, a record of every call,
and fault injection (``fail_next``: an error status, ``Retry-After`` on 429; ``hang_next``: an
answer delayed past a client's time limit, released at once by ``stop()``).

A subclass gives ``_routes()`` and ``_dispatch(request, handler)``, which calls
``self._injected(request)`` first and answers the fault it returns, if any.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

__all__ = ["Call", "Fault", "RestFake", "reason"]


@dataclass
class Call:
    """One request the fake received. ``query`` keeps repeated keys (``{"include[]": ["users"]}``);
    ``headers`` is case-insensitive; ``status`` stays ``None`` until the fake has answered."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    status: int | None = None


@dataclass
class Fault:
    prefix: str
    status: int
    retry_after: int | float | str | None
    body: Any
    remaining: int

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


@dataclass
class _Hang:
    prefix: str
    seconds: float
    remaining: int


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _take(queue: list[Any], path: str) -> Any:
    """Use up one turn of the first queued fault/hang matching ``path``."""
    for rule in queue:
        if path.startswith(rule.prefix):
            rule.remaining -= 1
            if rule.remaining <= 0:
                queue.remove(rule)
            return rule
    return None


class RestFake(abc.ABC):
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.calls: list[Call] = []
        self._faults: list[Fault] = []
        self._hangs: list[_Hang] = []
        self._server: TestServer | None = None
        self._stopping: asyncio.Event | None = None

    # ------------------------------------------------------------------ to give in a subclass

    @abc.abstractmethod
    def _routes(self) -> list[web.RouteDef]:
        """The endpoints this fake answers."""

    @abc.abstractmethod
    async def _dispatch(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Injected faults, authentication, then ``handler``."""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> str:
        """Start serving on a free port; returns the base URL (``http://127.0.0.1:N``, no trailing slash)."""
        if self._server is not None:
            return self.url
        self._stopping = asyncio.Event()
        app = web.Application(middlewares=[self._middleware()])
        app.add_routes(self._routes())
        server = TestServer(app, host=self.host)
        await server.start_server(shutdown_timeout=1.0)
        self._server = server
        return self.url

    async def stop(self) -> None:
        """Stop serving; hanging requests are released at once. Safe to call twice."""
        if self._stopping is not None:
            self._stopping.set()
        server, self._server = self._server, None
        if server is not None:
            await server.close()

    async def __aenter__(self) -> Any:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started: await fake.start() first")
        return str(self._server.make_url("")).rstrip("/")

    # ------------------------------------------------------------------ behaviour control

    def fail_next(
        self,
        path_prefix: str,
        status: int,
        *,
        times: int = 1,
        retry_after: int | float | str | None = None,
        body: Any = None,
    ) -> None:
        """Answer the next ``times`` requests whose path starts with ``path_prefix`` with ``status``.

        429 sends ``Retry-After: 1`` unless ``retry_after`` says otherwise (any status sends it when
        given). ``body`` defaults to the service's own error object; a ``str`` is sent verbatim as text.
        """
        if times < 1:
            raise ValueError("times must be >= 1")
        if retry_after is None and status == 429:
            retry_after = 1
        self._faults.append(Fault(path_prefix, status, retry_after, body, times))

    def hang_next(self, path_prefix: str, seconds: float, *, times: int = 1) -> None:
        """Wait ``seconds`` before answering the next ``times`` matching requests (cut short by ``stop()``)."""
        if times < 1:
            raise ValueError("times must be >= 1")
        self._hangs.append(_Hang(path_prefix, seconds, times))

    def calls_to(self, path_prefix: str) -> list[Call]:
        """The recorded calls whose path starts with ``path_prefix``."""
        return [c for c in self.calls if c.path.startswith(path_prefix)]

    # ------------------------------------------------------------------ HTTP plumbing

    def _middleware(self) -> Any:
        @web.middleware
        async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
            call = Call(
                request.method,
                request.path,
                {key: request.query.getall(key) for key in dict.fromkeys(request.query.keys())},
                CIMultiDict(request.headers),
            )
            self.calls.append(call)
            response = await self._dispatch(request, handler)
            call.status = response.status
            return response

        return middleware

    async def _injected(self, request: web.Request) -> Fault | None:
        """Apply a queued hang (a stop during it becomes a 503) and return a queued fault, if any."""
        hang = _take(self._hangs, request.path)
        if hang is not None and await self._sleep(hang.seconds):
            return Fault(request.path, 503, None, None, 0)
        return _take(self._faults, request.path)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep, unless the fake stops first; returns True when it did stop."""
        assert self._stopping is not None
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True
