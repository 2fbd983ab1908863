"""The terminal surface: ``callboard ask`` (one shot) and ``callboard chat`` (interactive).

A surface like Slack's, on the same conversation policy: the person is whoever
``CALLBOARD_USER_EMAIL`` names, there are no mentions, and lists are not paged (the terminal
shows the first 25 items and ``--format json`` has them all).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from callboard.bot.conversation import Conversation
from callboard.bot.surface import Answer, Asked, Profile
from callboard.commands.api import Reply
from callboard.commands.forms import Form

from .refs import short_commands
from .render import render_form_text, render_json, render_rich, render_text

if TYPE_CHECKING:
    from callboard.bot.app import Callboard

__all__ = ["Shell", "ShellSurface", "render_form_text", "render_json", "render_rich", "render_text"]

#: The terminal's one person.
TERMINAL_USER = "terminal"


class ShellSurface:
    """The terminal as a surface: ``send`` prints through ``out``."""

    name = "shell"
    page_size: int | None = None

    def __init__(self, app: Callboard, *, email: str | None = None, out: Callable[[str], Any] = print) -> None:
        self.app = app
        self.email = email
        self.out = out
        self.conversation = Conversation(self, app, set())

    async def identify(self, user: str) -> Profile:
        return Profile(email=self.email)

    async def find_people(self, emails: Sequence[str]) -> Mapping[str, str]:
        return {}  # a terminal has no mentions

    async def send(self, to: Any, answer: Answer) -> None:
        self.out(render_text(short_commands(answer.reply, self.app.catalog.search)))

    async def open_form(self, to: Any, form: Form, key: str) -> None:
        self.out(render_form_text(form))

    async def ask(self, text: str) -> Reply:
        """Answer one line as the terminal's person; suggested commands name entities as briefly as
        the catalog allows (``bot/shell/refs.py``)."""
        answer = await self.conversation.answer(Asked(text=text, user=TERMINAL_USER if self.email else None))
        return short_commands(answer.reply, self.app.catalog.search)


class Shell:
    """Drives a Callboard app the way a person at a terminal would (used by tests too)."""

    def __init__(self, app: Callboard, user: str | None = None) -> None:
        self.app = app
        self.user = user

    async def exec(self, text: str) -> str:
        reply = await self.app.ask(text)
        return render_text(reply)
