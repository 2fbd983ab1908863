"""The seam every chat surface implements (Slack, Teams, the terminal).

A surface only translates: platform input into an ``Asked``, a ``Reply`` (with its ``View``) or a
``Form`` into platform output. Everything that is the same on every platform — who is asking,
the ack budget, work after the ack, retries answered once, paging state, mentions — lives once
in ``bot/conversation.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import runtime_checkable, Any, Protocol

from typing import TYPE_CHECKING

from callboard.commands.api import Reply
from callboard.commands.forms import Form

if TYPE_CHECKING:
    from aiohttp import web

    from .app import Callboard

__all__ = ["GREETING", "DirectMessages", "Answer", "Asked", "Mounted", "Profile", "Surface", "SurfaceError", "View"]

#: Words people put before addressing the bot ("hey @Callboard, …"), dropped with its mention (a regex).
GREETING = r"(?:(?:hey|hi|hello|yo|hiya|ok|okay|please|pls|thanks|dear)[\s,.!]*)+"


class SurfaceError(Exception):
    """The platform's API failed (an error answer, not JSON, slow, unreachable). The text is for
    the log; the conversation goes on without what was asked for."""


@dataclass(frozen=True, slots=True)
class Profile:
    """What a platform says about a person."""

    email: str | None
    tz: str | None = None  # IANA time zone
    name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Asked:
    """One thing a person asked, as a surface parsed it (mentions removed, platform escaping undone)."""

    text: str
    user: str | None = None  # the platform's user id
    channel: str | None = None
    page: int = 1
    tz: str | None = None  # when the platform sends it with the message (Teams does)
    profile: Profile | None = None  # when the platform sends who it is with the message


@dataclass(frozen=True, slots=True, kw_only=True)
class View:
    """What a renderer needs beside the reply."""

    asked: str  # the question the reply answers (what Share re-asks)
    page_key: str | None = None  # the server-side key ``ShowPage`` actions carry
    mentions: Mapping[str, str] = field(default_factory=dict)  # person ref -> platform user id


@dataclass(frozen=True, slots=True)
class Answer:
    reply: Reply
    view: View


class Surface(Protocol):
    """One chat platform. ``name`` goes into logs and ``Invocation.platform``; ``page_size`` is how
    many list items one message shows (None: the whole list)."""

    name: str
    page_size: int | None

    async def identify(self, user: str) -> Profile:
        """What the platform says about ``user``; raises ``SurfaceError`` when it cannot say."""
        ...

    async def find_people(self, emails: Sequence[str]) -> Mapping[str, str]:
        """Platform user ids of the people with these emails (those it knows); raises ``SurfaceError``."""
        ...

    async def send(self, to: Any, answer: Answer) -> None:
        """Post ``answer`` where ``to`` (the surface's own notion of a place) says."""
        ...

    async def open_form(self, to: Any, form: Form, key: str) -> None:
        """Show ``form``; its submission comes back with ``key`` (the form's server-side state)."""
        ...


@runtime_checkable
class DirectMessages(Protocol):
    """A surface that can write to a person on their own (a template run's progress goes there)."""

    def direct(self, user: str) -> Any:
        """Where ``send`` posts to reach ``user`` (the platform's id) directly."""
        ...


class Mounted(Protocol):
    """A surface served by ``callboard serve``: its HTTP routes, and what it does when the server
    starts and stops (Slack's Socket Mode connects then). ``attach`` hands it the app once the
    database is open."""

    name: str

    def routes(self) -> list[web.RouteDef]:
        ...

    def attach(self, app: Callboard) -> None:
        ...

    async def start(self) -> None:
        ...

    async def stop(self) -> None:
        ...
