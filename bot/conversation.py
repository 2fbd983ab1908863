"""The conversation policy, written once for every surface.

A surface parses a platform request into an ``Asked`` and hands it here; this module decides
everything that does not depend on the platform:

- **who is asking**: the platform's profile (email, time zone) and the catalog User with that
  email, cached for an hour; when the platform cannot say, the answer goes on without personal
  touches and tells ``mine`` so (``Invocation.identified``), instead of claiming "not in the catalog";
- **the ack budget**: an answer ready within the budget goes in the acknowledgement, otherwise
  the surface acknowledges at once and the answer is delivered after, as tracked work;
- **retries answered once**: a platform event id is claimed in the database (both dialects, so
  it holds across replicas), in memory when the database does not answer within a second;
- **paging**: long lists are cut to the surface's page size; the question behind Next/Previous
  is kept in the database (``chat_state``) and buttons carry only its key;
- **mentions**: people a reply names become platform mentions where the platform knows them;
- **forms**: a form's values so far are kept server-side between pages.

The lookups around an answer (who asks, whom to mention, has this event been seen, paging state)
have short time limits and answer without the database rather than wait for it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from callboard.commands.api import Reply, Status, Unanswered
from callboard.commands.dispatch import loggable, unavailable_reply
from callboard.commands.forms import Choice, FieldOptions, Form, FormHandler, FormStep, FormSubmission
from callboard.commands.paging import paginate
from callboard.scaffolder.tasks import Notify
from callboard.storage import chat, repo
from callboard.storage.engine import within

from .surface import Answer, Asked, Profile, Surface, SurfaceError, View
from .tasks_notify import surface_notify, template_forms

if TYPE_CHECKING:
    from .app import Callboard

__all__ = ["ACK_BUDGET_S", "Conversation"]

log = logging.getLogger(__name__)

#: How long an answer may take to go in the platform's acknowledgement (Slack allows 3 s).
ACK_BUDGET_S = 2.0
#: Seconds the database may take for a lookup made around an answer before the answer goes on without it.
LOOKUP_LIMIT_S = 1.0
#: How long the platform may take to say who is asking (its retries included) before the answer
#: goes on without it.
IDENTIFY_LIMIT_S = 1.0
#: How long what the platform says about a person, and their mention id, are trusted.
PEOPLE_TTL_S = 3600.0
#: How long "the platform could not say who this is" is remembered: a platform that is down (or
#: does not know the person) is not asked again on every message, but soon enough.
UNKNOWN_TTL_S = 60.0
#: How long event ids and paging/form state are kept (platforms retry within minutes).
KEEP = timedelta(days=1)
_PRUNE_EVERY_S = 3600.0
_MENTIONS_PER_REPLY = 10
_PEOPLE_KEPT = 50_000


@dataclasses.dataclass(slots=True)
class _Known:
    profile: Profile | None  # None: the platform could not say
    user_ref: str | None
    fetched: float


class Conversation:
    """One surface's conversations with a Callboard app (``None`` until the database is open)."""

    def __init__(self, surface: Surface, app: Callboard | None, tasks: set[asyncio.Task[Any]], *,
                 forms: FormHandler | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.surface = surface
        self.app = app
        #: the Software Templates' forms unless the surface was given others (tests, plugins); made
        #: again when the database opens after the server started
        self._template_forms = forms is None
        self.forms = template_forms(app, surface) if forms is None and app is not None else forms
        self._tasks = tasks
        self._clock = clock
        self._people: dict[str, _Known] = {}
        self._users: dict[str, tuple[str | None, float]] = {}  # email -> (catalog User, fetched)
        self._looking_up: dict[str, asyncio.Future[str | None]] = {}
        self._mention_ids: dict[str, tuple[str | None, float]] = {}  # email -> (platform id, fetched)
        self._seen: dict[str, None] = {}
        self._pruned_at = -_PRUNE_EVERY_S

    def attach(self, app: Callboard) -> None:
        """The database is open: answer from ``app`` (and run its templates' forms) from now on."""
        self.app = app
        if self._template_forms:
            self.forms = template_forms(app, self.surface)

    # --- work after the acknowledgement ------------------------------------------------------

    def track(self, work: Awaitable[Any], what: str) -> None:
        """Run ``work`` after the acknowledgement, keeping a reference and logging its failure."""

        async def guarded() -> None:
            try:
                await work
            except Exception:
                log.exception("%s work failed what=%s", self.surface.name, what)

        task = asyncio.ensure_future(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def answer_in_time(self, asked: Asked, late: Callable[[Answer], Awaitable[None]], *,
                             budget: float | None = None) -> Answer | None:
        """The answer when it is ready within ``budget`` (``ACK_BUDGET_S``); otherwise None, and
        ``late`` gets it (or the failure reply) when it is ready."""
        work = asyncio.ensure_future(self.answer(asked))
        done, _ = await asyncio.wait({work}, timeout=ACK_BUDGET_S if budget is None else budget)
        if done:
            return self._settled(work, asked)

        async def deliver() -> None:
            await asyncio.wait({work})
            await late(self._settled(work, asked))

        self.track(deliver(), f"answer {_loggable(asked.text)}")
        return None

    def _settled(self, work: asyncio.Future[Answer], asked: Asked) -> Answer:
        exc = work.exception()
        if exc is None:
            return work.result()
        ref = secrets.token_hex(3)
        log.error("%s answer failed asked=%s ref=%s", self.surface.name, _loggable(asked.text), ref, exc_info=exc)
        reply = Reply.notice(Status.ERROR, f"Sorry, that failed (ref {ref}). The error is in Callboard's log.")
        return Answer(reply, View(asked=asked.text))

    # --- retries --------------------------------------------------------------------------------

    async def first_time(self, event_id: str) -> bool:
        """True the first time a platform event id is seen (by any replica sharing the database)."""
        app = self.app
        if app is not None:
            try:
                return await within(LOOKUP_LIMIT_S, self._claim(app, event_id))
            except Exception as exc:  # noqa: BLE001 - a database that is down must not hold up the ack
                if not self._outage(exc, "event claimed in memory only"):
                    raise
        if event_id in self._seen:
            return False
        self._seen[event_id] = None
        while len(self._seen) > 10_000:
            self._seen.pop(next(iter(self._seen)))
        return True

    async def _claim(self, app: Callboard, event_id: str) -> bool:
        async with app.engine.begin() as conn:
            first = await repo.claim_event(conn, event_id)
            if self._clock() - self._pruned_at > _PRUNE_EVERY_S:
                self._pruned_at = self._clock()
                await repo.prune_events(conn, datetime.now(timezone.utc) - KEEP)
                await chat.prune_state(conn, datetime.now(timezone.utc) - KEEP)
            return first

    def _outage(self, exc: BaseException, what: str) -> bool:
        """True (and logged) when ``exc`` is the database being unavailable, not a bug."""
        app = self.app
        if app is None or not app.probe.failed(exc):
            return False
        log.warning("%s: database unavailable (%s)", what, type(exc).__name__)
        app.probe.discard_connections()
        return True

    # --- answering ------------------------------------------------------------------------------

    async def answer(self, asked: Asked, *, page_key: str | None = None) -> Answer:
        """Answer what was asked: who asks, the command, the page, the mentions."""
        app = self.app
        if app is None:  # the server has not opened the database yet
            ref = secrets.token_hex(3)
            log.warning("answer unavailable: database not open yet ref=%s", ref)
            return Answer(unavailable_reply(ref), View(asked=asked.text))
        profile, user_ref, identified = await self.who(asked)
        reply = await app.dispatcher.dispatch(
            asked.text, platform=self.surface.name, user=asked.user, user_ref=user_ref, channel=asked.channel,
            tz=asked.tz or (profile.tz if profile else None), identified=identified,
        )
        paged = paginate(reply, asked.page, self.surface.page_size)
        if paged.pages > 1 and page_key is None:
            # None when it cannot be kept: renderers show no page buttons without a key
            page_key = await self._keep("page", {"text": asked.text})
        return Answer(paged.reply, View(asked=asked.text, page_key=page_key, mentions=await self.mentions(paged.reply)))

    async def page(self, key: str, page: int, asked: Asked) -> Answer | None:
        """Page ``page`` of the question kept under ``key``; None when it is not kept (expired, or
        a key nobody made)."""
        state = await self._load(key, "page")
        if not isinstance(state, dict) or not isinstance(state.get("text"), str):
            return None
        return await self.answer(dataclasses.replace(asked, text=state["text"], page=page), page_key=key)

    async def who(self, asked: Asked) -> tuple[Profile | None, str | None, bool]:
        """(what the platform says about the asker, their catalog User, whether the platform could say)."""
        user = asked.user
        if asked.profile is not None:
            return asked.profile, await self._user_ref(asked.profile.email), True
        if not user:
            return None, None, True
        known = self._people.get(user)
        if known is not None and self._clock() - known.fetched < (PEOPLE_TTL_S if known.profile else UNKNOWN_TTL_S):
            return known.profile, known.user_ref, known.profile is not None
        try:
            # bounded here, for every surface: the answer must still fit in the platform's ack budget
            profile = await asyncio.wait_for(self.surface.identify(user), IDENTIFY_LIMIT_S)
        except (SurfaceError, asyncio.TimeoutError) as exc:
            log.warning("%s could not say who is asking (%s); answering without it for %.0f s", self.surface.name,
                        str(exc) or f"no answer in {IDENTIFY_LIMIT_S:.0f} s", UNKNOWN_TTL_S)
            self._remember(user, _Known(None, None, self._clock()))
            return None, None, False
        try:
            user_ref = await within(LOOKUP_LIMIT_S, self._by_email(profile.email))
        except Exception as exc:  # noqa: BLE001 - answer without knowing who asks; the answer reports an outage
            if not self._outage(exc, "user lookup skipped"):
                raise
            return profile, None, True  # not cached: known again once the database answers
        self._remember(user, _Known(profile, user_ref, self._clock()))
        return profile, user_ref, True

    def _remember(self, user: str, known: _Known) -> None:
        self._people.pop(user, None)
        self._people[user] = known
        while len(self._people) > _PEOPLE_KEPT:  # the longest-known go first
            self._people.pop(next(iter(self._people)))

    async def _user_ref(self, email: str | None) -> str | None:
        """The catalog User with ``email`` (a platform that sends who asks with every message,
        Teams): cached like a platform's profile, an hour when found and a minute when not, so a
        question does not cost a lookup among every User."""
        if not email:
            return None
        key = email.lower()
        cached = self._users.get(key)
        if cached is not None and self._clock() - cached[1] < (PEOPLE_TTL_S if cached[0] else UNKNOWN_TTL_S):
            return cached[0]
        # one lookup per email at a time: the questions a person sends while it runs wait for it
        pending = self._looking_up.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._look_up(key, email))
            self._looking_up[key] = pending
            pending.add_done_callback(lambda _: self._looking_up.pop(key, None))
        return await asyncio.shield(pending)

    async def _look_up(self, key: str, email: str) -> str | None:
        try:
            user_ref = await within(LOOKUP_LIMIT_S, self._by_email(email))
        except Exception as exc:  # noqa: BLE001
            if not self._outage(exc, "user lookup skipped"):
                raise
            return None  # not cached: known again once the database answers
        self._users.pop(key, None)
        self._users[key] = (user_ref, self._clock())
        while len(self._users) > _PEOPLE_KEPT:
            self._users.pop(next(iter(self._users)))
        return user_ref

    async def _by_email(self, email: str | None) -> str | None:
        if not email or self.app is None:
            return None
        return await self.app.catalog.user_by_email(email)

    async def mentions(self, reply: Reply) -> Mapping[str, str]:
        """Platform ids of the people a reply names (at most ten lookups, cached for an hour)."""
        people = reply.people()[:_MENTIONS_PER_REPLY]
        if not people or self.app is None:
            return {}
        emails = {p.ref: p.email for p in people if p.email}
        missing = [p.ref for p in people if not p.email]
        if missing:
            try:
                found = await within(LOOKUP_LIMIT_S, self.app.catalog.get_many(missing))
            except Exception as exc:  # noqa: BLE001 - names without mentions beat no answer
                if not self._outage(exc, "mentions skipped"):
                    raise
                found = {}
            emails.update({ref: e.email for ref, e in found.items() if e.email})
        now = self._clock()
        todo = [e for e in dict.fromkeys(emails.values())
                if not (e in self._mention_ids and now - self._mention_ids[e][1] < PEOPLE_TTL_S)]
        if todo:
            try:
                ids = await self.surface.find_people(todo)
            except SurfaceError as exc:
                log.warning("%s could not look people up (%s); names without mentions", self.surface.name, exc)
                ids = None
            if ids is not None:
                for email in todo:
                    self._mention_ids[email] = (ids.get(email), now)
        out: dict[str, str] = {}
        for ref, email in emails.items():
            platform_id = self._mention_ids.get(email, (None, 0.0))[0]
            if platform_id:
                out[ref] = platform_id
        return out

    # --- forms ----------------------------------------------------------------------------------

    async def open_form(self, form_id: str, values: Mapping[str, Any], asked: Asked) -> tuple[str, Form]:
        """The first page of a form and the key its state is kept under (``Unanswered`` when it
        cannot be opened: the reply says why)."""
        if self.forms is None:
            raise Unanswered(Reply.notice(Status.ERROR, "Forms are not available in this Callboard."))
        _, user_ref, _ = await self.who(asked)
        opened = await self.forms.open(form_id, values, user_ref)
        key = await self._keep("form", _form_state(opened, asked.user))
        if key is None:
            raise Unanswered(Reply.notice(Status.ERROR, "Callboard cannot keep a form right now (its database is "
                                                        "not answering); try again in a minute."))
        return key, opened

    async def submit_form(self, key: str, values: Mapping[str, Any], asked: Asked) -> tuple[str, FormStep]:
        """Take one page's values: the next page (or this one with errors) under a new key, or the answer."""
        if self.forms is None:
            return key, Reply.notice(Status.ERROR, "Forms are not available in this Callboard.")
        state = await self._load(key, "form")
        # a form's values so far are its opener's: a key sent by anyone else finds nothing
        if not isinstance(state, dict) or state.get("user") != asked.user:
            return key, Reply.notice(Status.ERROR, "This form has expired; open it again.")
        _, user_ref, _ = await self.who(asked)
        try:
            opened = await self.forms.open(str(state["form"]), state.get("values") or {}, user_ref)
        except Unanswered as unanswered:  # the form went away between two pages
            return key, unanswered.reply
        form = dataclasses.replace(opened, page=int(state.get("page") or 0), values=state.get("values") or {})
        step = await self.forms.submit(form, FormSubmission(form=form.id, page=form.page, values=values,
                                                           user=asked.user, user_ref=user_ref))
        if isinstance(step, Form):
            new_key = await self._keep("form", _form_state(step, asked.user))
            return (new_key or key), step
        return key, step

    async def form_options(self, key: str, field: str, query: str, asked: Asked) -> list[Choice] | None:
        """A form field's options as the person types (its owner's ``FieldOptions``); ``None`` when
        the form is not theirs or not kept any more, or its owner offers none."""
        if self.forms is None or not isinstance(self.forms, FieldOptions):
            return None
        state = await self._load(key, "form")
        if not isinstance(state, dict) or state.get("user") != asked.user:
            return None
        _, user_ref, _ = await self.who(asked)
        try:
            opened = await self.forms.open(str(state["form"]), state.get("values") or {}, user_ref)
        except Unanswered:
            return None
        form = dataclasses.replace(opened, page=int(state.get("page") or 0), values=state.get("values") or {})
        return await self.forms.options(form, field, query, user_ref)

    def task_notify(self, to: Any) -> Notify:
        """The ``notify`` of a template run started in this conversation: each step's end and the
        final message with the output's links, posted through this surface where ``to`` says."""
        return surface_notify(self.surface, to)

    # --- state kept in the database -------------------------------------------------------------

    async def _keep(self, kind: str, value: Any) -> str | None:
        app = self.app
        if app is None:
            return None

        async def keep() -> str:
            async with app.engine.begin() as conn:
                return await chat.save_state(conn, kind, value)

        try:
            return await within(LOOKUP_LIMIT_S, keep())
        except Exception as exc:  # noqa: BLE001
            if not self._outage(exc, f"{kind} state not kept"):
                raise
            return None

    async def _load(self, key: str, kind: str) -> Any:
        app = self.app
        if app is None:
            return None

        async def load() -> Any:
            async with app.engine.connect() as conn:
                return await chat.load_state(conn, key, kind)

        try:
            return await within(LOOKUP_LIMIT_S, load())
        except Exception as exc:  # noqa: BLE001
            if not self._outage(exc, f"{kind} state not read"):
                raise
            return None


def _form_state(form: Form, user: str | None) -> dict[str, Any]:
    return {"form": form.id, "page": form.page, "values": dict(form.values), "user": user}


def _loggable(text: str) -> str:
    """The asker's first word, for a log line (escaped and short, as the dispatcher logs it)."""
    words = text.split()
    return loggable(words[0]) if words else ""
