"""From a line of text to a ``Reply``: parse, route (commands or plain questions), run.

One error boundary: a command that raises is logged with a reference id and the
user gets "failed (ref …)" — never the exception text. When the failure is the database
(unreachable, or not answering while an answer waits on it), the user gets "temporarily
unavailable, try again in a minute" instead, with the same reference.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import re
import secrets
import shlex
import time
from collections.abc import Iterable, Sequence
from importlib.metadata import entry_points
from typing import Any, Protocol

from rapidfuzz import process as fuzz_process

from .api import Actions, CommandSpec, Deps, Invocation, Reply, RunCommand, Status, Unanswered

__all__ = ["BUILTIN_COMMANDS", "ENTITY_ACTIONS", "Availability", "CommandRegistry", "Dispatcher", "StartupError", "Unavailable", "loggable", "parse",
           "unavailable_reply"]

log = logging.getLogger(__name__)

BUILTIN_COMMANDS = ("owner", "find", "info", "deps", "team", "mine", "help")
#: What can be asked next about an entity an answer is about: label and command.
ENTITY_ACTIONS = (("Owner", "owner"), ("On-call", "oncall"), ("Runbook", "runbook"), ("Docs", "docs"),
                  ("Dependencies", "deps"), ("Card", "info"))
_DOCS_COMMANDS = frozenset({"runbook", "docs"})

_SMART = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'", "\u2014": "--", "\u2013": "-"})

#: Plain questions and the command that answers them.
_QUESTIONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), cmd)
    for p, cmd in (
        (r"^what\s+(?:do|does)\s+(?:my\s+teams?|i)\s+own$", "mine"),
        (r"^(?:who|whom)\s+(?:owns|maintains|runs|is\s+responsible\s+for)\s+(?:the\s+)?(?P<q>.+)$", "owner"),
        (r"^who(?:'s|\s+is|\s+are)\s+(?:the\s+)?owners?\s+of\s+(?:the\s+)?(?P<q>.+)$", "owner"),
        (r"^(?:the\s+)?owners?\s+of\s+(?:the\s+)?(?P<q>.+)$", "owner"),
        (r"^what\s+(?:does|do|is)\s+(?P<q>.+?)\s+own(?:ing)?$", "owner"),
        (r"^what\s+(?:depends|relies)\s+on\s+(?:the\s+)?(?P<q>.+)$", "deps"),
        (r"^what\s+does\s+(?P<q>.+?)\s+depend\s+on$", "deps"),
        (r"^(?:dependencies|deps)\s+(?:of|for)\s+(?P<q>.+)$", "deps"),
        (r"^(?:who(?:'s|\s+is|\s+are)\s+(?:in|on)|members\s+of)\s+(?:team\s+)?(?P<q>.+)$", "team"),
        (r"^(?:find|search(?:\s+for)?|look\s+for|where\s+is)\s+(?P<q>.+)$", "find"),
        (r"^(?:what|who)\s+is\s+(?:the\s+)?(?P<q>.+)$", "info"),
        (r"^(?:tell\s+me\s+about|describe|show\s+me)\s+(?:the\s+)?(?P<q>.+)$", "info"),
    )
)


class StartupError(Exception):
    """The command set is broken (duplicate names, a run that is not a coroutine, ...)."""


class Unavailable(Exception):
    """What an answer needs (the database) is not answering; the text is for the log, not for chat."""


class Availability(Protocol):
    """What the dispatcher asks about the infrastructure under the commands (the database).

    ``patience``: seconds an answer may take before the dispatcher asks ``problem()``; a database
    that does not answer then ends the answer with "temporarily unavailable", anything else slow
    (an on-call service) is waited for.
    """

    @property
    def patience(self) -> float:
        ...

    def failed(self, exc: BaseException) -> bool:
        """True when ``exc`` means the infrastructure is unavailable (not a bug in a command)."""
        ...

    async def problem(self) -> str | None:
        """None when it answers (within a short, fixed time); otherwise what is wrong, for the log."""
        ...


def unavailable_reply(ref: str) -> Reply:
    """The reply when the database cannot be used: no exception text, no URL; a reference for the log."""
    return Reply.notice(Status.ERROR, f"Callboard is temporarily unavailable (its database is not answering); "
                                      f"try again in a minute. (ref {ref})")


def _clean(text: str) -> str:
    text = text.translate(_SMART).strip()
    return re.sub(r"^@\S+\s+", "", text)  # a leading @mention of the bot


def parse(text: str) -> tuple[str, tuple[str, ...]]:
    """``"owner payment-service"`` -> ``("owner", ("payment-service",))``."""
    cleaned = _clean(text)
    try:
        words = shlex.split(cleaned)
    except ValueError:
        words = cleaned.split()
    if not words:
        return "", ()
    return words[0].lower().lstrip("/"), tuple(words[1:])


#: A plain question longer than this is not one (and is never run through the question patterns).
_QUESTION_MAX = 500


def _question(text: str) -> tuple[str, str] | None:
    # one space between words: patterns like ``what does <q> own`` backtrack over every way to split
    # a run of whitespace, cubically (a DM of "what does" and 2,000 spaces held the server for 50 s)
    cleaned = " ".join(_clean(text).split()).strip("\"'`").rstrip("?!. ").strip()
    if len(cleaned) > _QUESTION_MAX:
        return None
    for pattern, command in _QUESTIONS:
        m = pattern.match(cleaned)
        if m:
            if "q" not in pattern.groupindex:
                return command, ""
            q = m.group("q").strip().strip("\"'`").strip()
            if q:
                return command, q
    return None


class CommandRegistry:
    """The commands of one app instance (built-ins register like plugins, by entry point)."""

    def __init__(self, specs: Iterable[CommandSpec]) -> None:
        self.specs: tuple[CommandSpec, ...] = tuple(specs)
        self._by_name: dict[str, CommandSpec] = {}
        for spec in self.specs:
            if not spec.summary or not spec.usage:
                raise StartupError(f'Command "{spec.name}" needs a summary and a usage line')
            if not inspect.iscoroutinefunction(spec.run):
                raise StartupError(f'Command "{spec.name}": run must be an "async def" function')
            for name in (spec.name, *spec.aliases):
                if name in self._by_name:
                    raise StartupError(f'Command name "{name}" is registered twice')
                self._by_name[name] = spec

    @classmethod
    def from_entry_points(cls, group: str = "callboard.commands", only: Sequence[str] | None = None) -> CommandRegistry:
        specs = []
        for ep in sorted(entry_points(group=group), key=lambda e: (e.name not in BUILTIN_COMMANDS, e.name)):
            if only is not None and ep.name not in only:
                continue
            module = ep.load()
            spec = getattr(module, "SPEC", module)
            if not isinstance(spec, CommandSpec):
                raise StartupError(f"Entry point {ep.name} = {ep.value} does not provide a CommandSpec")
            specs.append(spec)
        order = {name: i for i, name in enumerate(BUILTIN_COMMANDS)}
        specs.sort(key=lambda s: (order.get(s.name, len(order)), s.name))
        return cls(specs)

    def get(self, name: str) -> CommandSpec | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return list(self._by_name)


class Dispatcher:
    """Runs text through the registry; the only place a command's exception is caught."""

    def __init__(self, registry: CommandRegistry, deps: Deps, availability: Availability | None = None) -> None:
        self.registry = registry
        self.deps = deps
        self.availability = availability

    def route(self, text: str) -> tuple[CommandSpec | None, tuple[str, ...], str]:
        name, args = parse(text)
        spec = self.registry.get(name)
        if spec is not None:
            return spec, args, name
        asked = _question(text)
        if asked is not None:
            command, query = asked
            return self.registry.get(command), ((query,) if query else ()), name
        return None, args, name

    async def dispatch(self, text: str, *, platform: str = "shell", user: str | None = None,
                       user_ref: str | None = None, channel: str | None = None, tz: str | None = None,
                       identified: bool = True) -> Reply:
        """Answer ``text`` asked by ``user`` (a platform id; ``user_ref`` their catalog User) on
        ``platform``. Every path, a bare entity name included, runs inside the same guard."""
        started = time.perf_counter()
        spec, args, name = self.route(text)
        command = spec.name if spec is not None else loggable(name) or "-"
        inv = Invocation(command=spec.name if spec is not None else "", args=args, text=text, platform=platform,
                         user=user, user_ref=user_ref, channel=channel, tz=tz, identified=identified)
        try:
            if spec is None:
                reply = await self._patiently(self._unknown(inv, name))
            else:
                reply = await self._patiently(self._run(spec, inv))
        except Exception as exc:
            ref = secrets.token_hex(3)
            if isinstance(exc, Unavailable) or (self.availability is not None and self.availability.failed(exc)):
                log.warning("command unavailable command=%s platform=%s user=%s ref=%s error=%s", command, platform,
                            user, ref, exc if isinstance(exc, Unavailable) else type(exc).__name__)
                reply = unavailable_reply(ref)
            elif spec is None:
                raise
            else:
                log.exception("command failed command=%s platform=%s user=%s ref=%s", spec.name, platform, user, ref)
                reply = Reply.notice(Status.ERROR, f"Sorry, {spec.name} failed (ref {ref}). The error is in the log.")
        log.info(
            "command=%s platform=%s user=%s status=%s duration_ms=%.1f",
            command, platform, user, reply.status.value, (time.perf_counter() - started) * 1000,
        )
        return reply

    async def _patiently(self, answer: Any) -> Reply:
        """Await ``answer``; past ``availability.patience``, ask whether the database answers and, if
        it does not, give up on it (it would wait for the database's own time limits)."""
        if self.availability is None:
            return await answer
        task: asyncio.Future[Reply] = asyncio.ensure_future(answer)
        try:
            done, _ = await asyncio.wait({task}, timeout=self.availability.patience)
            if not done:
                problem = await self.availability.problem()
                if problem is not None and not task.done():
                    task.cancel()  # not awaited: cleaning up a connection that hangs must not hold the reply
                    task.add_done_callback(_retrieve)
                    raise Unavailable(problem)
            return await task
        except asyncio.CancelledError:
            task.cancel()
            raise

    async def _run(self, spec: CommandSpec, inv: Invocation) -> Reply:
        """Run one command; the reply names it, and an answer about one entity gets the entity's
        actions (Owner, On-call, Runbook, Docs, Dependencies) once, here, for every surface."""
        try:
            reply = await spec.run(inv, self.deps)
        except Unanswered as unanswered:
            reply = unanswered.reply
        if reply.command is None:
            reply = dataclasses.replace(reply, command=spec.name)
        if reply.status is Status.OK and reply.subject is not None:
            actions = await self._entity_actions(reply.subject, spec.name)
            if actions:
                reply = dataclasses.replace(reply, blocks=(*reply.blocks, Actions(actions=actions)))
        return reply

    async def _entity_actions(self, key: str, ran: str) -> tuple[RunCommand, ...]:
        """What to ask next about ``key``: the registered entity commands but the one that ran;
        Runbook and Docs only when the entity has built docs, On-call not for a person."""
        kind = key.split(":", 1)[0]
        wanted = [(label, cmd) for label, cmd in ENTITY_ACTIONS
                  if cmd != ran and self.registry.get(cmd) is not None
                  and not (cmd == "oncall" and kind in ("user", "location", "template"))]
        if any(cmd in _DOCS_COMMANDS for _, cmd in wanted):
            docs = self.deps.docs
            if docs is None or not docs.has_site(key):
                wanted = [(label, cmd) for label, cmd in wanted if cmd not in _DOCS_COMMANDS]
        return tuple(RunCommand(label=label, command=f"{cmd} {key}") for label, cmd in wanted)

    async def _unknown(self, inv: Invocation, name: str) -> Reply:
        text = inv.text
        if not name:
            return Reply.notice(Status.USAGE, "Ask me something, e.g. `owner payment-service` or `help`.")
        # A bare entity name: show its card when the catalog is sure which one.
        result = self.deps.catalog.search(_clean(text).rstrip("?"))
        if result.match is not None:
            info = self.registry.get("info")
            if info is not None:
                return await self._run(info, dataclasses.replace(inv, command="info", args=(result.match.key,)))
        best = fuzz_process.extractOne(name, self.registry.names(), score_cutoff=70)
        hint = f' Did you mean "{best[0]}"?' if best else ""
        return Reply.notice(
            Status.USAGE,
            f'I don\'t know the command "{name}".{hint} Type `help` for the list of commands.',
            data={"command": name, "suggestion": best[0] if best else None},
        )


def loggable(word: str) -> str:
    """An unknown command is the asker's own text: in a log line it keeps to one line and cannot
    reach the terminal reading the log as a control sequence (``repr`` escapes both), and is short."""
    return repr(word[:64])[1:-1]


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Collect an abandoned answer's outcome (its failure is the outage already reported)."""
    if not task.cancelled() and task.exception() is not None:
        log.debug("abandoned answer ended with %s", type(task.exception()).__name__)
