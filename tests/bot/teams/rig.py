"""A real ``callboard serve`` with Teams on, and activities as Teams sends them.

The server is Callboard's own (``create_server`` with the Teams surface, botbuilder's CloudAdapter
inside), over HTTP; the Bot Connector it replies to is ``tests/fakes/botconnector.py``. Activities
carry what Teams puts in them: ``serviceUrl``, ``channelId: msteams``, the conversation's type and
tenant, ``from`` with the AAD object id, ``recipient`` (the bot), mention entities, ``localTimezone``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from callboard.bot.app import Callboard
from callboard.bot.config import Settings
from callboard.bot.server import STATE
from callboard.bot.teams.app import TeamsSurface
from callboard.bot.teams.settings import TeamsSettings
from callboard.commands.dispatch import CommandRegistry

from ...fakes.botconnector import BotConnectorFake
from ...serving import count_dispatches, served

__all__ = ["BOT", "PRIYA", "STRANGER", "TENANT", "Rig", "serving", "walk"]

BOT = "28:callboard-bot-id"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
#: a demo-catalog person as Teams knows her (members API: email and UPN)
PRIYA = {"id": "29:1priya-raman", "name": "Priya Raman", "aadObjectId": "00000000-0000-0000-0000-0000000a11ce",
         "email": "priya.raman@acme.example.com"}
#: someone Teams knows who is not in the catalog
STRANGER = {"id": "29:1someone-else", "name": "Sam Stranger", "aadObjectId": "00000000-0000-0000-0000-00000000b0b0",
            "email": "sam@elsewhere.example.com"}
_ids = itertools.count(1)


@dataclass
class Rig:
    connector: BotConnectorFake
    server: TestServer
    http: aiohttp.ClientSession
    app: Callboard
    dispatched: list[str] = field(default_factory=list)

    @property
    def surface(self) -> TeamsSurface:
        (surface,) = [s for s in self.server.app[STATE].surfaces if s.name == "teams"]
        assert isinstance(surface, TeamsSurface)
        return surface

    def activity(self, type: str, *, text: str | None = None, conversation: str = "a:1personal-chat",
                 conversation_type: str = "personal", person: Mapping[str, str] = PRIYA, tz: str = "Europe/Berlin",
                 mentions: tuple[tuple[str, str], ...] = (), **more: Any) -> dict[str, Any]:
        """An activity as Teams posts it; ``mentions`` are (id, name) of ``<at>name</at>`` in the text."""
        activity: dict[str, Any] = {
            "type": type, "id": f"1700000000{next(_ids):06d}", "timestamp": "2026-11-30T09:00:00.000Z",
            "localTimestamp": "2026-11-30T10:00:00.000+01:00", "localTimezone": tz,
            "serviceUrl": self.connector.url, "channelId": "msteams",
            "from": {"id": person["id"], "name": person["name"], "aadObjectId": person["aadObjectId"]},
            "conversation": {"id": conversation, "conversationType": conversation_type, "tenantId": TENANT,
                             **({"isGroup": True} if conversation_type != "personal" else {})},
            "recipient": {"id": BOT, "name": "Callboard"},
            "channelData": {"tenant": {"id": TENANT}},
            "entities": [{"type": "mention", "text": f"<at>{name}</at>", "mentioned": {"id": who, "name": name}}
                         for who, name in mentions],
        }
        if text is not None:
            activity["text"] = text
            activity["textFormat"] = "plain"
        activity.update(more)
        return activity

    async def post(self, activity: Mapping[str, Any], *, token: str | None = None,
                   headers: Mapping[str, str] | None = None) -> tuple[int, Any, float]:
        """POST one activity to /api/messages: (status, JSON body or None, seconds to the response)."""
        sent = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        started = time.perf_counter()
        async with self.http.post(self.server.make_url("/api/messages"), data=json.dumps(activity), headers=sent) as resp:
            raw = await resp.read()
            took = time.perf_counter() - started
            body = json.loads(raw) if raw and resp.content_type == "application/json" else None
            return resp.status, body, took

    async def message(self, text: str, **kw: Any) -> dict[str, Any]:
        activity = self.activity("message", text=text, **kw)
        status, _, _ = await self.post(activity)
        assert status == 200, status
        return activity

    async def invoke(self, name: str, value: Mapping[str, Any], **kw: Any) -> Any:
        """An invoke activity; its answer (the HTTP response Teams shows)."""
        status, body, _ = await self.post(self.activity("invoke", name=name, value=dict(value), **kw))
        assert status == 200, (status, body)
        return body

    async def settled(self) -> None:
        """Every piece of work the surface handed to a tracked task has finished."""
        while work := [t for t in self.server.app[STATE].tasks
                       if "Conversation.track" in getattr(t.get_coro(), "__qualname__", "")]:
            await asyncio.gather(*work, return_exceptions=True)

    async def posted(self, conversation: str = "a:1personal-chat", count: int = 1) -> list[dict[str, Any]]:
        """The activities posted to ``conversation``, once there are at least ``count`` (work settled first)."""
        await self.settled()
        for _ in range(100):
            found = self.connector.posted(conversation)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.05)
        raise AssertionError(f"nothing posted to {conversation}: "
                             f"{[(c.operation, c.status) for c in self.connector.calls]}")

    def cards(self, conversation: str = "a:1personal-chat") -> list[dict[str, Any]]:
        return list(self.connector.cards(conversation))

    def card_text(self, conversation: str = "a:1personal-chat") -> str:
        return json.dumps(self.cards(conversation), ensure_ascii=False)


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, *, catalog: Path | None = None, database_url: str | None = None,
                  teams: TeamsSettings | None = None, connector: BotConnectorFake | None = None,
                  docs: bool = False, **settings: Any) -> AsyncIterator[Rig]:
    """A real ``callboard serve`` application with Teams on (development mode unless ``teams``
    says otherwise), its catalog synced, replying to a Bot Connector fake."""
    own = connector is None
    connector = connector or BotConnectorFake()
    if own:
        await connector.start()
    for person in (PRIYA, STRANGER):
        connector.add_member(person["id"], person["name"], email=person["email"], upn=person["email"],
                             aad_object_id=person["aadObjectId"])
    app = await Callboard.open(
        Settings(database_url=database_url or f"sqlite:///{tmp_path / 'cb.db'}", data_dir=str(tmp_path / "data"),
                 **settings),
        CommandRegistry.from_entry_points(), resident=True,
    )
    on = teams or TeamsSettings(dev=True, public_url=settings.get("public_url"))
    try:
        async with served(app, catalog=catalog, surfaces=[lambda opened, tasks: TeamsSurface(on, opened, tasks)],
                          docs=docs) as (server, http):
            yield Rig(connector, server, http, app, count_dispatches(app))
    finally:
        if own:
            await connector.stop()


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in ``node`` (a card, an activity), depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)
