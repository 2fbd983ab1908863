"""The terminal surface: ``callboard ask`` (one shot) and ``callboard chat`` (interactive)."""

from __future__ import annotations

from callboard.bot.app import Callboard

from .render import render_json, render_rich, render_text

__all__ = ["Shell", "render_json", "render_rich", "render_text"]


class Shell:
    """Drives a Callboard app the way a person at a terminal would (used by tests too)."""

    def __init__(self, app: Callboard, user: str | None = None) -> None:
        self.app = app
        self.user = user

    async def exec(self, text: str) -> str:
        reply = await self.app.ask(text, platform="shell", user=self.user)
        return render_text(reply)
