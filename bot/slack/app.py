"""Callboard on Slack: slash commands, mentions, DMs, card buttons, pagers and pickers.

A thin adapter: it turns Slack payloads into dispatcher calls and ``Reply``
values into Block Kit (``render.py``). No Slack type gets past this package.

- Slash commands are acknowledged within Slack's 3 s: the answer goes in the
  acknowledgement when it is ready in time, otherwise "Working on it…" first and
  the answer through ``response_url`` afterwards. Replies are ephemeral, with a
  "Share in channel" button.
- Events API retries never answer twice: on PostgreSQL every event id is claimed
  in the database (``chat_events``), which holds across replicas; a SQLite database
  serves one process, which claims them in memory.
- Web API calls retry on 429 (``Retry-After``) and 5xx; a failure to reply is
  logged with the command and never takes the server down.
- A database that is down or not answering never leaves a user without a reply: until the
  server has opened it (``attach``) every request is answered "temporarily unavailable", the
  dispatcher says the same when an answer finds it gone, and the lookups around an answer
  (who is asking, whom to mention, has this event been seen) have short time limits and
  answer without the database rather than wait for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from callboard.bot.app import Callboard
from callboard.commands.api import ItemList, Reply
from callboard.commands.dispatch import unavailable_reply
from callboard.commands.find import picker_options
from callboard.storage import repo
from callboard.storage.engine import within as _within

from .render import SlackMessage, escape, render

__all__ = ["ACK_BUDGET_S", "SLASH_COMMANDS", "SlackSettings", "SlackSurface"]

log = logging.getLogger(__name__)

#: How long a slash command may take to answer inside the acknowledgement.
ACK_BUDGET_S = 2.0
#: Slash command -> the Callboard command it runs ("" = the text is the whole command).
SLASH_COMMANDS = {
    "/owner": "owner",
    "/find": "find",
    "/oncall": "oncall",
    "/docs": "docs",
    "/runbook": "runbook",
    "/callboard": "",
}
#: Slack retries an event three times within about five minutes; event ids are kept a day.
_EVENT_MEMORY = timedelta(days=1)
_EVENT_PRUNE_EVERY_S = 3600.0
_MENTION = re.compile(r"<@[A-Z0-9]+>")
#: Seconds the database may take for a lookup made around an answer (claim an event, find who
#: is asking, whom to mention) before the answer goes on without it.
_LOOKUP_LIMIT_S = 1.0
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True, slots=True)
class SlackSettings:
    bot_token: str
    signing_secret: str
    app_token: str | None = None
    api_url: str = "https://slack.com/api/"

    def __repr__(self) -> str:  # never print secrets
        return f"SlackSettings(api_url={self.api_url!r}, socket_mode={self.app_token is not None})"


@dataclass(slots=True)
class _Person:
    email: str | None
    user_ref: str | None
    fetched: float
    tz: str | None = None  # the Slack user's IANA time zone (users.info ``tz``)


class SlackSurface:
    """The Slack side of one Callboard process."""

    def __init__(self, settings: SlackSettings, app: Callboard | None, tasks: set[asyncio.Task[Any]]) -> None:
        self.settings = settings
        self.app = app  # None until the server has opened the database (see ``attach``)
        self._tasks = tasks
        self._people: dict[str, _Person] = {}
        self._seen_events: dict[str, None] = {}
        self._events_pruned_at = 0.0
        self._slack_ids: dict[str, tuple[str | None, float]] = {}
        self.client = AsyncWebClient(
            token=settings.bot_token,
            base_url=settings.api_url,
            retry_handlers=[
                AsyncRateLimitErrorRetryHandler(max_retry_count=3),
                AsyncServerErrorRetryHandler(max_retry_count=2),
                AsyncConnectionErrorRetryHandler(max_retry_count=2),
            ],
        )
        # process_before_response: bolt returns the HTTP response when the listener returns
        # (our listeners ack and hand slow work to tracked tasks), instead of polling for
        # the ack every 10 ms.
        self.bolt = AsyncApp(
            process_before_response=True,
            signing_secret=settings.signing_secret,
            client=self.client,
            logger=logging.getLogger("callboard.slack.bolt"),
            # bolt's own check answers 500 to a timestamp that is not a number; ours (same place in
            # the chain, before authorization) answers 401 to every request it cannot verify
            request_verification_enabled=False,
            before_authorize=_RequestVerification(settings.signing_secret),
        )
        self._register()

    def attach(self, app: Callboard) -> None:
        """The database is open: answer from ``app`` from now on."""
        self.app = app

    # --- wiring ---------------------------------------------------------------------------

    def _register(self) -> None:
        logging.getLogger("callboard.slack.bolt").addFilter(_QuietBoltWarnings())
        app = self.bolt
        app.middleware(self._dedupe_events)
        for slash in SLASH_COMMANDS:
            app.command(slash)(self._on_slash)
        app.event("app_mention")(self._on_mention)
        app.event("message")(self._on_message)
        app.action(re.compile(r"^(run:\d+|card:\w+)$"))(self._on_run_button)
        app.action(re.compile(r"^page:(next|prev)$"))(self._on_page)
        app.action("share")(self._on_share)
        app.action("entity_pick")(self._on_pick)
        app.options("entity_pick")(self._on_options)
        app.error(self._on_error)

    def _track(self, coro: Awaitable[Any], what: str) -> None:
        """Run work after the acknowledgement, keeping a reference and logging its failure."""

        async def guarded() -> None:
            try:
                await coro
            except Exception:
                log.exception("slack work failed what=%s", what)

        task = asyncio.ensure_future(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dedupe_events(self, body: dict[str, Any], next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse | None:  # noqa: A002
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if isinstance(event_id, str):
            first = await self._claim(event_id)
            if not first:
                log.info("slack event already handled event_id=%s", event_id)
                return BoltResponse(status=200, body="")
        return await next()

    async def _claim(self, event_id: str) -> bool:
        """True the first time this event is seen. On PostgreSQL the claim is a row, so it holds
        across replicas; a SQLite database belongs to one process, and a sync's long write
        transaction must not hold up an acknowledgement, so there it is claimed in memory."""
        engine = self.app.engine if self.app is not None else None
        if engine is not None and engine.dialect.name == "postgresql":
            try:
                return await _within(_LOOKUP_LIMIT_S, self._claim_in_database(engine, event_id))
            except Exception as exc:  # noqa: BLE001 - a database that is down must not hold up the ack
                if not self.app or not self.app.probe.failed(exc):
                    raise
                log.warning("event claimed in memory only: database unavailable (%s) event_id=%s",
                            type(exc).__name__, event_id)
                self.app.probe.discard_connections()
        if event_id in self._seen_events:
            return False
        self._seen_events[event_id] = None
        while len(self._seen_events) > 10_000:
            self._seen_events.pop(next(iter(self._seen_events)))
        return True

    async def _claim_in_database(self, engine: Any, event_id: str) -> bool:
        async with engine.begin() as conn:
            first = await repo.claim_event(conn, event_id)
            if time.monotonic() - self._events_pruned_at > _EVENT_PRUNE_EVERY_S:
                self._events_pruned_at = time.monotonic()
                await repo.prune_events(conn, datetime.now(timezone.utc) - _EVENT_MEMORY)
            return first

    async def _on_error(self, error: Exception, body: dict[str, Any]) -> None:
        log.error("slack listener failed type=%s error=%s", body.get("type"), type(error).__name__)

    # --- people ---------------------------------------------------------------------------

    async def person(self, slack_user: str | None) -> str | None:
        """The catalog User for a Slack user (by email, cached for an hour)."""
        if not slack_user:
            return None
        cached = self._people.get(slack_user)
        if cached and time.monotonic() - cached.fetched < 3600:
            return cached.user_ref
        email: str | None = None
        tz: str | None = None
        try:
            info = await self.client.users_info(user=slack_user)
            profile = (info.get("user") or {}).get("profile") or {}
            email = profile.get("email")
            tz = (info.get("user") or {}).get("tz") or None
        except SlackApiError as exc:
            log.warning("users.info failed user=%s error=%s", slack_user, exc.response.get("error"))
        user_ref = None
        if email and self.app is not None:
            try:
                user_ref = await _within(_LOOKUP_LIMIT_S, self.app.catalog.user_by_email(email))
            except Exception as exc:  # noqa: BLE001 - answer without knowing who asks; the answer reports the outage
                if not self.app.probe.failed(exc):
                    raise
                log.warning("user lookup skipped: database unavailable (%s) user=%s", type(exc).__name__, slack_user)
                self.app.probe.discard_connections()
                return None  # not cached: known again once the database answers
        self._people[slack_user] = _Person(email, user_ref, time.monotonic(), tz)
        return user_ref

    async def mentions(self, reply: Reply) -> dict[str, str]:
        """Slack ids for the catalog users a reply names (at most 10 lookups, cached)."""
        refs: list[str] = []
        for block in reply.blocks:
            if isinstance(block, ItemList):
                refs.extend(item.ref for item in block.items if item.ref and item.ref.startswith("user:"))
        for owner in reply.data.get("owners", []) if isinstance(reply.data.get("owners"), list) else []:
            if isinstance(owner, dict) and str(owner.get("ref", "")).startswith("user:"):
                refs.append(owner["ref"])
        out: dict[str, str] = {}
        wanted = list(dict.fromkeys(refs))[:10]
        todo = [r for r in wanted if not (r in self._slack_ids and time.monotonic() - self._slack_ids[r][1] < 3600)]
        people: dict[str, Any] = {}
        if todo and self.app is not None:
            try:
                people = await _within(_LOOKUP_LIMIT_S, self.app.catalog.get_many(todo))
            except Exception as exc:  # noqa: BLE001 - names without @-mentions beat no answer
                if not self.app.probe.failed(exc):
                    raise
                log.warning("mentions skipped: database unavailable (%s)", type(exc).__name__)
                self.app.probe.discard_connections()
                return {}
        emails = {ref: e.email for ref, e in people.items() if e.email}
        for ref in wanted:
            cached = self._slack_ids.get(ref)
            if cached and time.monotonic() - cached[1] < 3600:
                if cached[0]:
                    out[ref] = cached[0]
                continue
            email = emails.get(ref)
            slack_id = None
            if email:
                try:
                    found = await self.client.users_lookupByEmail(email=email)
                    slack_id = (found.get("user") or {}).get("id")
                except SlackApiError:
                    slack_id = None
            self._slack_ids[ref] = (slack_id, time.monotonic())
            if slack_id:
                out[ref] = slack_id
        return out

    # --- answering ------------------------------------------------------------------------

    async def answer(self, text: str, *, user: str | None, channel: str | None, page: int = 1,
                     shareable: bool = False) -> SlackMessage:
        if self.app is None:  # the server has not opened the database yet
            ref = secrets.token_hex(3)
            log.warning("answer unavailable: database not open yet ref=%s", ref)
            return render(unavailable_reply(ref), command_text=text, page=page, commands=set(), mentions={},
                          shareable=False)
        user_ref = await self.person(user)
        person = self._people.get(user or "")
        reply = await self.app.dispatcher.dispatch(text, platform="slack", user=user, user_ref=user_ref,
                                                   channel=channel, tz=person.tz if person else None)
        mentions = await self.mentions(reply)
        return render(reply, command_text=text, page=page, commands=set(self.app.registry.names()),
                      mentions=mentions, shareable=shareable)

    async def _on_slash(self, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        verb = SLASH_COMMANDS.get(command.get("command", ""), "")
        text = f"{verb} {command.get('text', '')}".strip() if verb else (command.get("text") or "help").strip()
        user, channel = command.get("user_id"), command.get("channel_id")
        if verb and self.app is not None and self.app.registry.get(verb) is None:
            await ack(response_type="ephemeral",
                      text=f"`{command.get('command')}` needs the {verb} integration, which this Callboard "
                           "does not have installed yet. `/callboard help` lists what it can do.")
            return
        work = asyncio.ensure_future(self.answer(text, user=user, channel=channel, shareable=True))
        done, _ = await asyncio.wait({work}, timeout=ACK_BUDGET_S)
        if done and not work.exception():
            msg = work.result()
            await ack(response_type="ephemeral", text=msg.text, blocks=msg.blocks)
            return
        if done:
            log.error("slash command failed command=%s", verb or _asked(text), exc_info=work.exception())
            await ack(response_type="ephemeral", text="Sorry, that failed. The error is in Callboard's log.")
            return
        await ack(response_type="ephemeral", text=f"Working on `{escape(text)}`…")  # the asker's text, inert

        async def later() -> None:
            try:
                msg = await work
            except Exception:
                log.exception("slash command failed command=%s", verb or _asked(text))
                await respond(response_type="ephemeral", replace_original=True,
                              text="Sorry, that failed. The error is in Callboard's log.")
                return
            await respond(response_type="ephemeral", replace_original=True, text=msg.text, blocks=msg.blocks)

        self._track(later(), f"slash {_asked(text)}")

    async def _on_mention(self, ack: AsyncAck, event: dict[str, Any]) -> None:
        await ack()
        text = _MENTION.sub("", event.get("text", "")).strip() or "help"
        thread = event.get("thread_ts") or event.get("ts")
        self._track(self._post(text, event, thread_ts=thread), "mention")

    async def _on_message(self, ack: AsyncAck, event: dict[str, Any]) -> None:
        await ack()
        if event.get("channel_type") != "im" or event.get("bot_id") or event.get("subtype"):
            return
        text = (event.get("text") or "").strip()
        if text:
            self._track(self._post(text, event, thread_ts=event.get("thread_ts")), "dm")

    async def _post(self, text: str, event: dict[str, Any], *, thread_ts: str | None) -> None:
        msg = await self.answer(text, user=event.get("user"), channel=event.get("channel"))
        try:
            await self.client.chat_postMessage(channel=event["channel"], thread_ts=thread_ts, text=msg.text,
                                               blocks=msg.blocks)
        except SlackApiError as exc:
            log.error("reply failed command=%s channel=%s error=%s", _asked(text),
                      event.get("channel"), exc.response.get("error"))

    # --- interactivity --------------------------------------------------------------------

    async def _on_run_button(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any],
                             respond: AsyncRespond) -> None:
        await ack()
        text = str(action.get("value") or "help")
        self._track(self._replace(text, body, respond), "button")

    async def _on_page(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        try:
            state = json.loads(action.get("value") or "{}")
            text, page = str(state["t"]), int(state["p"])
        except (ValueError, KeyError, TypeError, OverflowError):  # OverflowError: a page of 1e999
            return
        self._track(self._replace(text, body, respond, page=page), "page")

    async def _on_share(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        text = str(action.get("value") or "")

        async def share() -> None:
            msg = await self.answer(text, user=_user(body), channel=_channel(body))
            await respond(response_type="in_channel", replace_original=False, text=msg.text, blocks=msg.blocks)

        if text:
            self._track(share(), "share")

    async def _on_pick(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        ref = ((action.get("selected_option") or {}).get("value")) or ""
        verb = str(action.get("block_id", "pick:info")).split(":", 1)[-1] or "info"
        if ref:
            self._track(self._replace(f"{verb} {ref}", body, respond), "pick")

    async def _on_options(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        query = str(body.get("value") or "")
        options = [
            {"text": {"type": "plain_text", "text": label[:75]}, "value": ref[:150]}
            for ref, label in (picker_options(self.app.catalog, query) if self.app is not None else ())
        ]
        await ack(options=options)

    async def _replace(self, text: str, body: dict[str, Any], respond: AsyncRespond, page: int = 1) -> None:
        msg = await self.answer(text, user=_user(body), channel=_channel(body), page=page, shareable=True)
        await respond(replace_original=True, text=msg.text, blocks=msg.blocks)


def _asked(text: str) -> str:
    """The command a user asked (their first word), for a log line: their own text, so escaped
    (``repr``: no control sequence reaches the terminal reading the log) and short."""
    words = text.split()
    return repr(words[0][:64])[1:-1] if words else ""


def _user(body: dict[str, Any]) -> str | None:
    user = body.get("user") or {}
    return user.get("id") if isinstance(user, dict) else None


def _channel(body: dict[str, Any]) -> str | None:
    channel = body.get("channel") or {}
    return channel.get("id") if isinstance(channel, dict) else None


class _RequestVerification(AsyncMiddleware):
    """Slack's request signature over HTTP: ``v0=HMAC(secret, "v0:<timestamp>:<body>")`` with a timestamp
    at most five minutes away. Anything else (no header, a timestamp that is not a number, a replay
    from a recording) is a 401 before any listener runs. Socket Mode requests come over Slack's own
    authenticated connection and carry no signature; a Socket Mode app has no signing secret, so
    every HTTP request to it is refused."""

    def __init__(self, signing_secret: str) -> None:
        self._verifier = SignatureVerifier(signing_secret) if signing_secret.strip() else None

    async def async_process(self, *, req: AsyncBoltRequest, resp: BoltResponse,
                            next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:  # noqa: A002
        if req.mode == "socket_mode":
            return await next()
        timestamp = (req.headers.get("x-slack-request-timestamp") or [""])[0]
        signature = (req.headers.get("x-slack-signature") or [""])[0]
        verifier = self._verifier
        if verifier and _TIMESTAMP.fullmatch(timestamp) and verifier.is_valid(req.raw_body, timestamp, signature):
            return await next()
        log.warning("slack request refused: signature or timestamp invalid (timestamp=%.20r)", timestamp)
        return BoltResponse(status=401, body={"error": "invalid request"})


class _QuietBoltWarnings(logging.Filter):
    """Drop bolt's start-up notice about the token we deliberately pass through the client."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()
