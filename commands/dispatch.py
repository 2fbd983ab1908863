"""From a line of text to a ``Reply``: parse, route (commands or plain questions), run.

Routing, in order: a typed command (``owner x``, ``/owner x``, an alias; its own phrasings read its
arguments when they match, ``runbook for x``); a question in words, read by the phrasings every
command declares in its ``Grammar`` (the phrasing matching the most words wins, then the one whose
entity the catalog knows); a bare entity name (its card when the catalog is sure which one, the
candidates when it is not). An entity slot is looked up as asked, then without a kind word around it
(``the payments team``, ``the payment-service service``), that kind preferred.

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
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Protocol

from rapidfuzz.distance import DamerauLevenshtein

from .api import Actions, CommandSpec, Deps, Invocation, Reply, RunCommand, Status, Unanswered
from .grammar import COMMON_STOP_WORDS, GrammarError, Match, Matcher, Word, compile_grammar, openings, text_of, \
    trim, words

__all__ = ["BUILTIN_COMMANDS", "ENTITY_ACTIONS", "Availability", "CommandRegistry", "Dispatcher", "Route", "StartupError",
           "Unavailable", "loggable", "parse", "unavailable_reply"]

log = logging.getLogger(__name__)

BUILTIN_COMMANDS = ("owner", "find", "info", "deps", "team", "mine", "help")
#: What can be asked next about an entity an answer is about: label and command.
ENTITY_ACTIONS = (("Owner", "owner"), ("On-call", "oncall"), ("Runbook", "runbook"), ("Docs", "docs"),
                  ("Dependencies", "deps"), ("Card", "info"))
_DOCS_COMMANDS = frozenset({"runbook", "docs"})

_SMART = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'", "\u2014": "--", "\u2013": "-"})

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


_MENTION = re.compile(r"^@\S+\s+")  # a leading @mention of the bot


def _clean(text: str) -> str:
    text = text.translate(_SMART).strip()
    return _MENTION.sub("", text)


def parse(text: str) -> tuple[str, tuple[str, ...]]:
    """``"owner payment-service"`` -> ``("owner", ("payment-service",))``."""
    return _parse_cleaned(_clean(text))


#: what shlex's splitting (POSIX, no comments) treats specially; anything else is a word character
_SHELL_SPACE = re.compile(r"[ \t\r\n]+")


def _parse_cleaned(cleaned: str) -> tuple[str, tuple[str, ...]]:
    # shlex reads a character at a time (a tenth of a question's routing); most text has nothing it
    # would read differently from a split at its whitespace, and a text whose only quotes are an odd
    # number of apostrophes (``who's on call``) is one shlex gives up on, split as below anyway
    if '"' not in cleaned and "\\" not in cleaned and "'" not in cleaned:
        words = [w for w in _SHELL_SPACE.split(cleaned) if w]
    elif '"' not in cleaned and "\\" not in cleaned and cleaned.count("'") % 2 == 1:
        words = cleaned.split()
    else:
        try:
            words = shlex.split(cleaned)
        except ValueError:
            words = cleaned.split()
    if not words:
        return "", ()
    return words[0].lower().lstrip("/"), tuple(words[1:])


#: A plain question longer than this (in characters, or in words) is not one, and is never read by
#: the phrasings (reading is quadratic in the words at worst: long runs of stop words)
_QUESTION_MAX = 500
_QUESTION_WORDS = 40
#: Phrasing matches whose entity is looked up, at most, among those matching the most words.
_MATCHES_TRIED = 8
#: Words an entity slot may end (or begin) with that say its kind: tried with and without.
_KIND_WORDS = {
    "team": "group", "teams": "group", "group": "group", "squad": "group", "org": "group",
    "service": "component", "component": "component", "app": "component", "application": "component",
    "library": "component", "website": "component", "system": "system", "api": "api", "domain": "domain",
    "resource": "resource", "database": "resource", "user": "user", "person": "user",
}
#: Words an entity's name may be split at, at most (``runbook for <entity> <topic>``).
_ENTITY_WORDS = 6


@dataclass(frozen=True, slots=True)
class Route:
    """What a line of text asks for: the command (None: none) and its arguments."""

    spec: CommandSpec | None
    args: tuple[str, ...]
    name: str  # the first word as typed (for logs and "did you mean")
    how: str  # command | question | entity | unknown
    suggestion: str | None = None  # a command name the first word is a typo of
    query: str = ""  # for unknown: the words looked up in the catalog


@dataclass(frozen=True, slots=True)
class _Resolved:
    arg: str  # what to pass the command: the words as asked, or the entity's ref when a kind decided it
    level: int  # 3: exactly one entity by name; 2: one, through a typo; 1: candidates; 0: nothing


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
        try:
            self.matcher = Matcher(p for order, spec in enumerate(self.specs) for p in compile_grammar(spec, order))
        except GrammarError as exc:
            raise StartupError(str(exc)) from None

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

    def route(self, text: str) -> Route:
        """What ``text`` asks for (no command runs here; the catalog's index is asked about names)."""
        cleaned = _clean(text)
        name, args = _parse_cleaned(cleaned)
        spec = self.registry.get(name)
        if len(cleaned) > _QUESTION_MAX:
            return Route(spec, args, name, "command") if spec is not None else Route(None, args, name, "unknown")
        asked_words = words(cleaned)
        if len(asked_words) > _QUESTION_WORDS:
            return Route(spec, args, name, "command") if spec is not None else Route(None, args, name, "unknown")
        tried: list[Word] = []
        for opening in openings(asked_words):
            tried = opening
            asked = self._question(opening, only=spec.name if spec is not None else None)
            if asked is not None:
                return Route(asked[0], asked[1], name, "question")
        if spec is not None:
            return Route(spec, args, name, "command")
        return self._bare(trim(tried, _COMMON_STOP), args, name)

    def _question(self, ws: list[Word], only: str | None) -> tuple[CommandSpec, tuple[str, ...]] | None:
        """The command and arguments of the phrasing that reads ``ws`` best (of ``only``'s phrasings)."""
        matches = self.registry.matcher.match(ws, commands=None if only is None else (only,))
        if not matches:
            return None
        top = [m for m in matches if m.literals == matches[0].literals][:_MATCHES_TRIED]
        best: tuple[int, int, tuple[str, ...]] | None = None
        for i, m in enumerate(top):
            level, args = self._arguments(m)
            if best is None or level > best[0]:
                best = (level, i, args)
            if level >= 3:
                break
        assert best is not None
        spec = self.registry.get(top[best[1]].phrasing.command)
        return (spec, best[2]) if spec is not None else None

    def _arguments(self, m: Match) -> tuple[int, tuple[str, ...]]:
        """How surely the catalog knows ``m``'s entity (see ``_Resolved.level``; 3 without one), and the
        command's arguments."""
        p = m.phrasing
        values: dict[str, str] = {name: text_of(ws) for name, ws in m.slots}
        level = 3
        entity_words = list(m.slot(p.entity)) if p.entity is not None else []
        if p.entity is not None and entity_words:
            if m.joined is not None:
                resolved, rest = self._split(entity_words, p.kinds, optional=m.joined[2], stop=p.stop)
                values[m.joined[1]] = text_of(rest)
            else:
                resolved = self._resolve(entity_words, p.kinds)
            values[p.entity] = resolved.arg
            level = resolved.level
        args: list[str] = []
        for arg in p.args:
            if arg.startswith("{"):
                value = values.get(arg.strip("{}?"), "")
                if value:
                    args.append(value)
            else:
                args.append(arg)
        return level, tuple(args)

    def _split(self, ws: list[Word], kinds: tuple[str, ...], *, optional: bool,
               stop: tuple[tuple[str, ...], ...]) -> tuple[_Resolved, list[Word]]:
        """Where an entity's name ends and the next slot begins (``payment service rollback``): the
        longest start naming exactly one entity, else the shortest naming one through a typo, else the
        shortest with candidates, else the first word."""
        best: tuple[tuple[int, int], _Resolved, list[Word]] | None = None
        last = min(len(ws), _ENTITY_WORDS)
        for i in range(1, last + 1):
            rest = trim(ws[i:], stop)
            if not rest and not optional:
                continue
            head = trim(ws[:i], stop)
            if not head:
                continue
            resolved = self._resolve(head, kinds)
            rank = (resolved.level, i if resolved.level == 3 else -i)
            if best is None or rank > best[0]:
                best = (rank, resolved, rest)
        if best is None:
            return _Resolved(text_of(ws[:1]), 0), list(ws[1:])
        return best[1], best[2]

    def _resolve(self, ws: Sequence[Word], kinds: tuple[str, ...]) -> _Resolved:
        """The entity ``ws`` names: as asked; then as the kinds the phrasing prefers; then without a
        kind word at its end or start (``payments team``, ``service payment``), that kind preferred."""
        catalog = self.deps.catalog
        text = text_of(ws)
        variants: list[tuple[str, tuple[str, ...] | None]] = [(text, None)]
        if kinds:
            variants.append((text, kinds))
        if len(ws) >= 2:
            for kind_word, rest in ((ws[-1].word, ws[:-1]), (ws[0].word, ws[1:])):
                kind = _KIND_WORDS.get(kind_word)
                if kind is not None:
                    bare = text_of(rest)
                    variants.extend(((bare, None), (bare, (kind,))) if not kinds else
                                    ((bare, None), (bare, (kind,)), (bare, kinds)))
        first_close: str | None = None
        for query, kind_filter in dict.fromkeys(variants):
            if not query:
                continue
            result = catalog.search(query, kinds=kind_filter)
            match = result.match
            if match is not None and (kind_filter is None or match.exact or _nothing_exact(catalog, query)):
                level = 3 if match.exact else 2
                return _Resolved(query if kind_filter is None else match.key, level)
            if first_close is None and kind_filter is None and result.candidates:
                first_close = query
        if first_close is not None:
            return _Resolved(first_close, 1)
        return _Resolved(text, 0)

    def _bare(self, ws: list[Word], args: tuple[str, ...], name: str) -> Route:
        """Text that is no command and no question: an entity's name (its card, or the candidates),
        a command mistyped (``ownr x``), or nothing the catalog knows."""
        if not ws:
            return Route(None, args, name, "unknown")
        info = self.registry.get("info")
        resolved = self._resolve(ws, ())
        if info is not None and resolved.level >= 2:
            return Route(info, (resolved.arg,), name, "entity")
        first = ws[0].text or ws[0].word
        suggestion = self._command_like(ws[0].word)
        # "ownr payment-service" is a mistyped command, though a name stands in it; "pay" is a name
        if info is not None and resolved.level == 1 and not (suggestion and len(ws) > 1):
            return Route(info, (resolved.arg,), first, "entity")
        return Route(None, args, first, "unknown", suggestion=suggestion, query=text_of(ws))

    def _command_like(self, word: str) -> str | None:
        """The command ``word`` is a typo of (``ownr``: owner; one edit, two in a long name), if any."""
        if len(word) < 3:
            return None
        scored = sorted((DamerauLevenshtein.distance(word, n), n) for n in self.registry.names())
        return next((n for d, n in scored if d <= (1 if len(n) <= 5 else 2)), None)

    async def dispatch(self, text: str, *, platform: str = "shell", user: str | None = None,
                       user_ref: str | None = None, channel: str | None = None, tz: str | None = None,
                       identified: bool = True) -> Reply:
        """Answer ``text`` asked by ``user`` (a platform id; ``user_ref`` their catalog User) on
        ``platform``. Every path, a bare entity name included, runs inside the same guard."""
        started = time.perf_counter()
        spec: CommandSpec | None = None
        name = how = ""
        try:
            route = self.route(text)
            spec, name, how = route.spec, route.name, route.how
            inv = Invocation(command=spec.name if spec is not None else "", args=route.args, text=text,
                             platform=platform, user=user, user_ref=user_ref, channel=channel, tz=tz,
                             identified=identified)
            if spec is None:
                reply = self._unknown(route)
            else:
                reply = await self._patiently(self._run(spec, inv))
        except Exception as exc:
            ref = secrets.token_hex(3)
            command = spec.name if spec is not None else loggable(name) or "-"
            if isinstance(exc, Unavailable) or (self.availability is not None and self.availability.failed(exc)):
                log.warning("command unavailable command=%s platform=%s user=%s ref=%s error=%s", command, platform,
                            user, ref, exc if isinstance(exc, Unavailable) else type(exc).__name__)
                reply = unavailable_reply(ref)
            else:
                log.exception("command failed command=%s platform=%s user=%s ref=%s", command, platform, user, ref)
                reply = Reply.notice(Status.ERROR, f"Sorry, {spec.name if spec is not None else 'that'} failed "
                                                   f"(ref {ref}). The error is in the log.")
        log.info(
            "command=%s asked_as=%s platform=%s user=%s status=%s duration_ms=%.1f",
            spec.name if spec is not None else loggable(name) or "-", how or "-", platform, user, reply.status.value,
            (time.perf_counter() - started) * 1000,
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

    def _unknown(self, route: Route) -> Reply:
        if not route.name:
            return Reply.notice(Status.USAGE, "Ask me something, e.g. `owner payment-service` or `help`.")
        if route.suggestion is not None:
            return Reply.notice(
                Status.USAGE,
                f'I don\'t know the command "{route.name}". Did you mean "{route.suggestion}"? '
                f"Type `help` for the list of commands.",
                data={"command": route.name, "suggestion": route.suggestion},
            )
        query = route.query or route.name
        return Reply.notice(
            Status.USAGE,
            f'I don\'t know "{query}": it is no command or question I know, and nothing in the catalog is named '
            f"like it. Ask e.g. `who owns payment-service?`, or type `help`.",
            data={"command": route.name, "suggestion": None, "query": query, "candidates": []},
        )


_COMMON_STOP = tuple(tuple(w.word for w in words(s)) for s in COMMON_STOP_WORDS)


def _nothing_exact(catalog: Any, query: str) -> bool:
    """No entity of any kind is named ``query`` exactly (then a typo-match among preferred kinds may answer)."""
    return not any(c.exact for c in catalog.search(query).candidates)


def loggable(word: str) -> str:
    """An unknown command is the asker's own text: in a log line it keeps to one line and cannot
    reach the terminal reading the log as a control sequence (``repr`` escapes both), and is short."""
    return repr(word[:64])[1:-1]


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Collect an abandoned answer's outcome (its failure is the outage already reported)."""
    if not task.cancelled() and task.exception() is not None:
        log.debug("abandoned answer ended with %s", type(task.exception()).__name__)
