"""An on-call service's REST API as its source sees it: JSON from the operator's base URL through
the app's shared HTTP client (``providers.http``: time limits, retries with back-off, 429
``Retry-After``), and errors that say what failed and what to do."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ..http import Fetcher, FetchProblem
from .model import OnCallError

__all__ = ["OnCallApi", "parse_time"]

#: an on-call answer is a page of JSON; anything bigger is not what was asked for
MAX_ANSWER = 16 * 1024 * 1024


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time as the APIs write it (``Z`` included); None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class OnCallApi:
    """GETs of JSON from ``base_url`` (trusted: the operator configured it) with fixed headers."""

    def __init__(self, http: Fetcher, base_url: str, headers: Mapping[str, str], *, timeout: float, source: str,
                 credential_hint: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = http
        self._headers = dict(headers)
        self._timeout = timeout
        self._source = source
        self._hint = credential_hint

    async def get(self, path: str, params: Sequence[tuple[str, str]] | Mapping[str, str] = (), *, what: str) -> Any:
        query = list(params.items()) if isinstance(params, Mapping) else list(params)
        got = await self._http.get(f"{self.base_url}{path}", trusted=True, max_bytes=MAX_ANSWER,
                                   headers=self._headers, params=query, timeout=self._timeout)
        if isinstance(got, FetchProblem):
            if got.kind == "timeout":
                raise OnCallError(f"{self._source} did not answer within {self._timeout:g} s ({what}).")
            raise OnCallError(f"{self._source} could not be reached: {got.message}")
        if got.status == 200:
            data = got.json()
            if data is None:
                raise OnCallError(f"{self._source}: the answer for {what} is not JSON.")
            return data
        if got.status == 404:
            raise OnCallError(f"{self._source}: {what} was not found.")
        if got.status in (401, 403):
            raise OnCallError(f"{self._source} refused the request ({got.status}); {self._hint}")
        if got.status == 429:
            raise OnCallError(f"{self._source} is rate-limiting Callboard (429); try again shortly.")
        body = got.body[:300].decode("utf-8", "replace")
        raise OnCallError(f"{self._source} answered {got.status} for {what}: {body}")
