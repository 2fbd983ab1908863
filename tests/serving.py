"""A real ``callboard serve`` application for tests: the aiohttp server over HTTP, ready."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from callboard.bot.app import Callboard, demo_catalog_path
from callboard.bot.server import create_server
from callboard.bot.slack.app import SlackSettings
from callboard.bot.surface import Mounted

__all__ = ["count_dispatches", "served"]


@contextlib.asynccontextmanager
async def served(app: Callboard, *, catalog: Path | str | None = None, slack: SlackSettings | None = None,
                 surfaces: Sequence[Callable[[Callboard | None, set[asyncio.Task[Any]]], Mounted]] = (),
                 docs: bool = False, timeout: float = 20.0) -> AsyncIterator[tuple[TestServer, aiohttp.ClientSession]]:
    """``app`` served with its ``catalog`` (the demo's by default) synced in the background; yields once
    ``/readyz`` says 200 (and, with ``docs``, once the first TechDocs pass is done)."""
    web_app = create_server(app, catalog=(str(catalog or demo_catalog_path()),), sync_interval=3600, slack=slack,
                            surfaces=surfaces)
    server = TestServer(web_app, host="127.0.0.1")
    await server.start_server()
    http = aiohttp.ClientSession()
    try:
        deadline = time.monotonic() + timeout
        while True:
            async with http.get(server.make_url("/readyz")) as resp:
                if resp.status == 200 and (not docs or app.last_docs is not None):
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not get ready in {timeout:.0f} s")
            await asyncio.sleep(0.05)
        yield server, http
    finally:
        await http.close()
        await server.close()


def count_dispatches(app: Callboard) -> list[str]:
    """Every text the app's dispatcher is asked to run from now on, in order."""
    asked: list[str] = []
    dispatch = app.dispatcher.dispatch

    async def counted(text: str, **kw: Any) -> Any:
        asked.append(text)
        return await dispatch(text, **kw)

    app.dispatcher.dispatch = counted  # type: ignore[method-assign]
    return asked
