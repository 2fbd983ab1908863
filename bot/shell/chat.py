"""``callboard chat``: the terminal conversation loop.

At the prompt Ctrl-C drops the line being typed and asks again, Ctrl-D (or ``exit``) leaves;
while an answer is being worked out Ctrl-C abandons it and returns to the prompt. Questions come
from prompt_toolkit (history, editing) or, when stdin is not a terminal, one per line from it.
Answers are printed by ``render_rich``: catalog text is never read as markup, and commands, code
and URLs are printed unframed and unwrapped so they copy cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console
from rich.text import Text as RichText

from callboard.commands.api import Reply

from .render import print_rich

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession

    from callboard.bot.app import Callboard

__all__ = ["PROMPT", "answer_lines", "converse"]

PROMPT = "you> "
_LEAVE = frozenset({"exit", "quit"})


async def converse(app: Callboard, console: Console, session: PromptSession[str]) -> int:
    """Ask, answer, repeat until Ctrl-D or ``exit``; 0."""
    while True:
        try:
            line = await session.prompt_async(PROMPT)
        except KeyboardInterrupt:  # Ctrl-C: the line typed so far is dropped
            continue
        except EOFError:  # Ctrl-D
            return 0
        text = line.strip()
        if text in _LEAVE:
            return 0
        if text:
            await _answer(app, console, text)


async def answer_lines(app: Callboard, console: Console, lines: TextIO) -> int:
    """Answer each non-empty line of ``lines`` (a pipe), read off the event loop; 0."""
    while True:
        line = await asyncio.to_thread(lines.readline)
        if not line:
            return 0
        text = line.strip()
        if text in _LEAVE:
            return 0
        if text:
            await _answer(app, console, text)


async def _answer(app: Callboard, console: Console, text: str) -> None:
    reply = await _interruptible(app.ask(text))
    if reply is None:
        console.print(RichText("(interrupted)", style="dim"))
        return
    print_rich(console, reply)
    console.print()


async def _interruptible(work: Any) -> Reply | None:
    """``work``'s reply, or None when Ctrl-C (SIGINT) abandoned it."""
    task: asyncio.Task[Reply] = asyncio.ensure_future(work)
    interrupted = False

    def interrupt() -> None:
        nonlocal interrupted
        interrupted = True
        task.cancel()

    with _on_sigint(interrupt):
        try:
            return await task
        except asyncio.CancelledError:
            if interrupted and task.cancelled():
                return None
            raise


@contextlib.contextmanager
def _on_sigint(callback: Any) -> Iterator[None]:
    """Call ``callback`` on SIGINT while inside; the handler that was there before comes back."""
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGINT)
    try:
        loop.add_signal_handler(signal.SIGINT, callback)
    except (NotImplementedError, RuntimeError, ValueError):  # no signals here (another thread, Windows)
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
