"""A second surface is the ``Surface`` seam alone: a toy chat platform, written here in ~40 lines,
mounted by ``create_server`` next to nothing else, gets identity, time zones, retries answered
once, server-side paging and mentions from the shared conversation policy, over real HTTP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from callboard.bot.app import Callboard
from callboard.bot.config import Settings
from callboard.bot.conversation import Conversation
from callboard.bot.shell.render import render_text
from callboard.bot.surface import Answer, Asked, Profile, SurfaceError
from callboard.commands.api import ShowPage, Actions
from callboard.commands.dispatch import CommandRegistry
from callboard.commands.forms import Form

from ..serving import served


class ToySurface:
    """A chat platform that posts ``{"text", "user", "event_id"?, "page_key"?, "page"?}`` as JSON."""

    name = "toy"
    page_size: int | None = 3

    def __init__(self, app: Callboard | None, tasks: set[asyncio.Task[Any]], people: Mapping[str, Profile]) -> None:
        self.people = people
        self.conversation = Conversation(self, app, tasks)

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/toy", self.handle)]

    def attach(self, app: Callboard) -> None:
        self.conversation.attach(app)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def identify(self, user: str) -> Profile:
        if user not in self.people:
            raise SurfaceError(f"toy does not know {user}")
        return self.people[user]

    async def find_people(self, emails: Sequence[str]) -> Mapping[str, str]:
        return {e: "toy-" + e.split("@")[0] for e in emails}

    async def send(self, to: Any, answer: Answer) -> None:
        to.append(answer)

    async def open_form(self, to: Any, form: Form, key: str) -> None:
        to.append((form, key))

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        event_id = body.get("event_id")
        if event_id and not await self.conversation.first_time(event_id):
            return web.json_response({"duplicate": True})
        asked = Asked(text=body.get("text", ""), user=body.get("user"), page=body.get("page", 1))
        if body.get("page_key"):
            answer = await self.conversation.page(body["page_key"], asked.page, asked)
            if answer is None:
                return web.json_response({"expired": True})
        else:
            answer = await self.conversation.answer(asked)
        reply = answer.reply
        return web.json_response({"status": reply.status.value, "command": reply.command, "subject": reply.subject,
                                  "text": render_text(reply), "page_key": answer.view.page_key,
                                  "mentions": dict(answer.view.mentions)})


PEOPLE = {
    "priya": Profile(email="priya.raman@acme.example.com", tz="Asia/Tokyo"),
    "stranger": Profile(email="nobody@example.com"),
}


@pytest.fixture
async def toy(tmp_path: Path) -> AsyncIterator[tuple[aiohttp.ClientSession, TestServer]]:
    app = await Callboard.open(Settings(database_url=f"sqlite:///{tmp_path / 'cb.db'}", data_dir=str(tmp_path / "d")),
                               CommandRegistry.from_entry_points(), resident=True)
    async with served(app, surfaces=[lambda opened, tasks: ToySurface(opened, tasks, PEOPLE)]) as (server, http):
        yield http, server


async def _ask(toy: tuple[aiohttp.ClientSession, TestServer], **body: Any) -> dict[str, Any]:
    http, server = toy
    async with http.post(server.make_url("/toy"), json=body) as resp:
        assert resp.status == 200
        answer: dict[str, Any] = await resp.json()
        return answer


async def test_who_asks_comes_from_the_platform(toy: tuple[aiohttp.ClientSession, TestServer]) -> None:
    assert "teams own" in (await _ask(toy, text="mine", user="priya"))["text"]
    assert "no catalog User has your email" in (await _ask(toy, text="mine", user="stranger"))["text"]
    unknown = await _ask(toy, text="mine", user="ghost")  # the platform could not say: no false claim
    assert "can't tell who you are" in unknown["text"] and "no catalog User" not in unknown["text"]


async def test_a_bare_name_is_answered_in_the_askers_time_zone(toy: tuple[aiohttp.ClientSession, TestServer],
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="callboard.commands.dispatch")
    answer = await _ask(toy, text="payment-service", user="priya")
    assert answer["command"] == "info" and answer["subject"] == "component:default/payment-service"
    assert "JST" in answer["text"], answer["text"]  # the on-call shifts, in Tokyo time
    assert any("platform=toy" in r.getMessage() and "user=priya" in r.getMessage() for r in caplog.records)


async def test_a_retry_is_answered_once(toy: tuple[aiohttp.ClientSession, TestServer]) -> None:
    first = await _ask(toy, text="owner payment-service", user="priya", event_id="E1")
    assert "payments-team" in first["text"]
    assert await _ask(toy, text="owner payment-service", user="priya", event_id="E1") == {"duplicate": True}


async def test_long_lists_page_with_a_key_kept_server_side(toy: tuple[aiohttp.ClientSession, TestServer]) -> None:
    first = await _ask(toy, text="owner payments-team", user="priya")
    key = first["page_key"]
    assert key and len(key) <= 64 and "page 1 of" in first["text"]
    second = await _ask(toy, text="ignored", user="priya", page_key=key, page=2)
    assert "page 2 of" in second["text"] and second["text"] != first["text"]
    assert await _ask(toy, text="", user="priya", page_key="made-up", page=2) == {"expired": True}


async def test_people_become_the_platforms_mentions(toy: tuple[aiohttp.ClientSession, TestServer]) -> None:
    answer = await _ask(toy, text="team payments-team", user="priya")
    assert answer["mentions"] and all(v.startswith("toy-") for v in answer["mentions"].values())
    assert all(k.startswith("user:") for k in answer["mentions"])


def test_paging_is_pure_and_platform_neutral() -> None:
    from callboard.commands.api import Item, ItemList, Reply, Status
    from callboard.commands.paging import paginate

    reply = Reply(status=Status.OK, summary="s",
                  blocks=(ItemList(title="Owns", items=tuple(Item(label=f"c{i}") for i in range(7))),))
    paged = paginate(reply, 3, 3)
    (items, nav) = paged.reply.blocks
    assert isinstance(items, ItemList) and isinstance(nav, Actions)
    assert [i.label for i in items.items] == ["c6"] and items.offset == 6 and items.page == (3, 3)
    assert [a.page for a in nav.actions if isinstance(a, ShowPage)] == [2]
    assert paginate(reply, 1, None).reply is reply


async def test_the_platform_is_asked_who_someone_is_once_an_hour_or_once_a_minute_after_a_failure() -> None:
    """Identity is cached: an hour when the platform answered, a minute when it could not say (so a
    platform that is down is not asked on every message, and a person it did not know is asked again soon)."""
    now = [0.0]

    class Counting(ToySurface):
        asked: list[str] = []

        async def identify(self, user: str) -> Profile:
            self.asked.append(user)
            return await super().identify(user)

    surface = Counting(None, set(), PEOPLE)
    surface.conversation = Conversation(surface, None, set(), clock=lambda: now[0])
    for _ in range(3):
        assert (await surface.conversation.who(Asked(text="x", user="ghost")))[2] is False
        assert (await surface.conversation.who(Asked(text="x", user="stranger")))[2] is True
    assert surface.asked == ["ghost", "stranger"]
    now[0] = 61.0
    await surface.conversation.who(Asked(text="x", user="ghost"))
    await surface.conversation.who(Asked(text="x", user="stranger"))
    assert surface.asked == ["ghost", "stranger", "ghost"]
    now[0] = 3700.0
    await surface.conversation.who(Asked(text="x", user="stranger"))
    assert surface.asked[-1] == "stranger"


async def test_template_forms_arrive_with_a_database_opened_after_the_server_started(demo_app: Callboard) -> None:
    """``callboard serve`` starts before its database answers: a surface made without the app gets
    the Software Templates' forms when the database opens (a Slack modal, a Teams dialog), not
    "Forms are not available"."""
    from callboard.bot.slack.app import SlackSettings, SlackSurface

    surface = SlackSurface(SlackSettings(bot_token="xoxb-test", signing_secret="s"), None, set())
    assert surface.conversation.forms is None
    surface.attach(demo_app)
    key, form = await surface.conversation.open_form("template:default/python-service", {}, Asked(text="", user="U1"))
    assert key and form.title and form.pages


async def test_a_profile_sent_with_every_message_is_looked_up_in_the_catalog_once_an_hour(
        demo_app: Callboard, monkeypatch: pytest.MonkeyPatch) -> None:
    """Teams says who asks with every message: the User with that email is looked up once (an hour;
    a minute when there is none), not on every question."""
    now = [0.0]
    conversation = Conversation(ToySurface(demo_app, set(), {}), demo_app, set(), clock=lambda: now[0])
    lookups: list[str] = []
    real = demo_app.catalog.user_by_email

    async def counted(email: str) -> str | None:
        lookups.append(email)
        return await real(email)

    monkeypatch.setattr(demo_app.catalog, "user_by_email", counted)
    priya = Asked(text="", user="29:p", profile=Profile(email="Priya.Raman@acme.example.com"))
    stranger = Asked(text="", user="29:s", profile=Profile(email="nobody@elsewhere.example.com"))
    for _ in range(3):
        assert (await conversation.who(priya))[1] == "user:default/priya.raman"
        assert (await conversation.who(stranger))[1] is None
    assert len(lookups) == 2
    now[0] += 61  # the stranger may have been added to the catalog since
    await conversation.who(priya)
    await conversation.who(stranger)
    assert len(lookups) == 3
    now[0] += 3600
    await conversation.who(priya)
    assert len(lookups) == 4


async def test_questions_arriving_together_share_one_lookup_of_their_askers_user(
        demo_app: Callboard, monkeypatch: pytest.MonkeyPatch) -> None:
    conversation = Conversation(ToySurface(demo_app, set(), {}), demo_app, set())
    lookups: list[str] = []
    real = demo_app.catalog.user_by_email

    async def slow(email: str) -> str | None:
        lookups.append(email)
        await asyncio.sleep(0.05)
        return await real(email)

    monkeypatch.setattr(demo_app.catalog, "user_by_email", slow)
    priya = Asked(text="", user="29:p", profile=Profile(email="priya.raman@acme.example.com"))
    found = await asyncio.gather(*(conversation.who(priya) for _ in range(16)))
    assert {f[1] for f in found} == {"user:default/priya.raman"} and len(lookups) == 1
