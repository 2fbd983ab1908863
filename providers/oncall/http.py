"""The HTTP client on-call sources share: one session each, a time limit per request, backing
off on 429 (honouring ``Retry-After``) and 5xx, and errors that say what failed and what to do."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import aiohttp

from .model import OnCallError

__all__ = ["JsonClient", "parse_time"]

_RETRIES = 2
_MAX_WAIT = 5.0


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time as the APIs write it (``Z`` included); None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class JsonClient:
    def __init__(self, base_url: str, headers: Mapping[str, str], *, timeout: float, source: str,
                 credential_hint: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = dict(headers)
        self._timeout = timeout
        self._source = source
        self._hint = credential_hint
        self._session: aiohttp.ClientSession | None = None

    async def get(self, path: str, params: Sequence[tuple[str, str]] | Mapping[str, str] = (), *, what: str) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers,
                                                  timeout=aiohttp.ClientTimeout(total=self._timeout))
        delay = 0.2
        for attempt in range(_RETRIES + 1):
            try:
                async with self._session.get(f"{self.base_url}{path}", params=list(params.items())
                                             if isinstance(params, Mapping) else list(params)) as resp:
                    if resp.status == 200:
                        return await resp.json(content_type=None)
                    body = (await resp.text())[:300]
                    if resp.status in (429, 500, 502, 503, 504) and attempt < _RETRIES:
                        wait = delay
                        if resp.status == 429:
                            try:
                                wait = float(resp.headers.get("Retry-After", delay))
                            except ValueError:
                                wait = delay
                        await asyncio.sleep(min(max(wait, 0.0), _MAX_WAIT))
                        delay *= 2.5
                        continue
                    if resp.status == 404:
                        raise OnCallError(f"{self._source}: {what} was not found.")
                    if resp.status in (401, 403):
                        raise OnCallError(f"{self._source} refused the request ({resp.status}); {self._hint}")
                    if resp.status == 429:
                        raise OnCallError(f"{self._source} is rate-limiting Callboard (429); try again shortly.")
                    raise OnCallError(f"{self._source} answered {resp.status} for {what}: {body}")
            except (asyncio.TimeoutError, TimeoutError):
                raise OnCallError(f"{self._source} did not answer within {self._timeout:g} s ({what}).") from None
            except aiohttp.ClientError as exc:
                if attempt < _RETRIES:
                    await asyncio.sleep(delay)
                    delay *= 2.5
                    continue
                raise OnCallError(f"{self._source} could not be reached: {exc}") from None
        raise OnCallError(f"{self._source}: no answer for {what}")  # pragma: no cover - loop always returns

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
