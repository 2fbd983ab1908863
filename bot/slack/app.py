"""Callboard on Slack: slash commands, mentions, DMs, buttons, pickers, pagers and forms.

A surface (``bot/surface.py``): it turns Slack payloads into ``Asked`` values for the shared
conversation policy (``bot/conversation.py``) and ``Reply``/``Form`` values into Block Kit
(``render.py``, ``forms.py``). No Slack type gets past this package.

Slack as it really sends things:
- Text arrives with ``&``, ``<`` and ``>`` escaped and mentions, links and channels as
  ``<@U…>``, ``<https://…|label>``, ``<#C…|name>``: it is decoded before it is parsed, and the
  bot's own mention is removed wherever it is (people write "@Callboard who owns x" in DMs).
- Every HTTP request's signature is checked on the raw body before anything parses it; a Socket
  Mode app has no HTTP endpoint (its events come over Slack's own connection).
- Slash commands are acknowledged within Slack's 3 s: the answer goes in the acknowledgement when
  it is ready in time, otherwise "Working on it…" first and the answer through ``response_url``.
  Replies are private, with "Share in channel" on answers.
- A button on a shared (public) message answers the person who clicked, privately, and leaves the
  shared message alone; on the asker's own private message it replaces it.
- A reply that cannot be posted (the bot is not in the channel) is explained to the asker in a DM
  with how to ``/invite`` the bot.
- Web API calls retry on 429 (``Retry-After``) and 5xx; a failed ``users.info`` gives an answer
  without personal touches, never a wrong one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from callboard.bot.app import Callboard
from callboard.bot.conversation import Conversation
from callboard.bot.surface import GREETING, Answer, Asked, Profile, SurfaceError, View
from callboard.commands.api import Unanswered
from callboard.commands.find import picker_options
from callboard.commands.forms import Form, FormHandler

from .forms import CALLBACK_ID, FormTooBig, form_errors, form_values, notice_view, picker_kinds, render_form
from .render import escape, render

__all__ = ["SLASH_COMMANDS", "SlackSettings", "SlackSurface", "slack_text"]

log = logging.getLogger(__name__)

#: Slash command -> the Callboard command it runs ("" = the text is the whole command).
SLASH_COMMANDS = {
    "/owner": "owner",
    "/find": "find",
    "/oncall": "oncall",
    "/docs": "docs",
    "/runbook": "runbook",
    "/create": "create",
    "/callboard": "",
}
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
#: ``<…>`` in Slack's text: mentions, channels, special mentions and links (with an optional label).
_ANGLED = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
#: Errors that mean "the bot cannot post in that conversation" (it is not a member, or cannot see it).
_NOT_THERE = frozenset({"not_in_channel", "channel_not_found", "is_archived", "restricted_action"})
#: A reply posted to a channel the bot is not in: what the asker is told, in a DM.
_INVITE = ("I couldn't answer in {where}: I'm not a member of it. Type `/invite @Callboard` there "
           "(or ask me here in a DM).")
_PAGE_VALUE = re.compile(r"([A-Za-z0-9_-]{1,64}):([0-9]{1,6})")
#: What Slack's channel ids look like: the only thing put inside ``<#…>``.
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,20}")


@dataclass(frozen=True, slots=True)
class SlackSettings:
    bot_token: str
    signing_secret: str
    app_token: str | None = None
    api_url: str = "https://slack.com/api/"

    def __repr__(self) -> str:  # never print secrets
        return f"SlackSettings(api_url={self.api_url!r}, socket_mode={self.app_token is not None})"


def slack_text(text: str, bot_user: str | None = None) -> str:
    """What a person typed, from Slack's encoding of it: the bot's mention removed wherever it is
    (every user mention when the bot's id is unknown), with a greeting before it ("hey @Callboard, …")
    and a comma or colon after it, other mentions and channels as ``@id`` and
    ``#name``, a link as its label (or its URL), then ``&amp;`` ``&lt;`` ``&gt;`` decoded (the only
    three Slack escapes; decoded last, so ``&amp;lt;`` stays ``&lt;``)."""

    def one(m: re.Match[str]) -> str:
        target, label = m.group(1), m.group(2)
        if target.startswith("@"):
            if bot_user is None or target[1:] == bot_user:
                return " "
            return f"@{label or target[1:]}"
        if target.startswith("#"):
            return f"#{label or target[1:]}"
        if target.startswith("!"):
            return f"@{label or target[1:].split('^')[0]}"
        return label or target

    if bot_user is not None:
        # "hey @Callboard who owns x": a greeting before the bot's mention is not part of the question
        mention = rf"<@{re.escape(bot_user)}(?:\|[^<>]*)?>[,:;]?"
        text = re.sub(rf"^\s*{GREETING}[\s,.!:;-]*{mention}", " ", text, flags=re.IGNORECASE)
        text = re.sub(mention, " ", text)
    decoded = _ANGLED.sub(one, text)
    decoded = decoded.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return " ".join(decoded.split())


class SlackSurface:
    """The Slack side of one Callboard process."""

    name = "slack"
    page_size: int | None = 15

    def __init__(self, settings: SlackSettings, app: Callboard | None, tasks: set[asyncio.Task[Any]], *,
                 forms: FormHandler | None = None) -> None:
        self.settings = settings
        self.client = AsyncWebClient(
            token=settings.bot_token,
            base_url=settings.api_url,
            retry_handlers=[
                AsyncRateLimitErrorRetryHandler(max_retry_count=3),
                AsyncServerErrorRetryHandler(max_retry_count=2),
                AsyncConnectionErrorRetryHandler(max_retry_count=2),
            ],
        )
        self.conversation = Conversation(self, app, tasks, forms=forms)  # the Software Templates as modals
        self._socket: Any = None
        self._verifier = SignatureVerifier(settings.signing_secret) if settings.signing_secret.strip() else None
        # process_before_response: bolt returns the HTTP response when the listener returns
        # (our listeners ack and hand slow work to tracked tasks), instead of polling for the ack.
        # The signature is checked before bolt sees a request (``handle``), so bolt's own check is off.
        self.bolt = AsyncApp(
            process_before_response=True,
            client=self.client,
            logger=logging.getLogger("callboard.slack.bolt"),
            request_verification_enabled=False,
        )
        self._register()

    @property
    def app(self) -> Callboard | None:
        return self.conversation.app

    def attach(self, app: Callboard) -> None:
        """The database is open: answer from ``app`` from now on."""
        self.conversation.attach(app)

    # --- the server ------------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/slack/events", self.handle)]

    async def start(self) -> None:
        """In Socket Mode, connect to Slack (events then come over that connection, not HTTP)."""
        if self.settings.app_token:
            from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

            self._socket = AsyncSocketModeHandler(self.bolt, self.settings.app_token)
            await self._socket.connect_async()
            log.info("slack socket mode connected")

    async def stop(self) -> None:
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None

    # --- HTTP --------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """``POST /slack/events``: the signature is checked on the raw body before anything parses
        it (401 otherwise); a body that is signed but not a Slack payload gets a 400."""
        if self.settings.app_token:
            raise web.HTTPNotFound(text="This Callboard talks to Slack over Socket Mode; it has no HTTP endpoint.")
        body = await request.read()
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        verifier = self._verifier
        if not (verifier and _TIMESTAMP.fullmatch(timestamp) and verifier.is_valid(body, timestamp, signature)):
            log.warning("slack request refused: signature or timestamp invalid (timestamp=%.20r)", timestamp)
            return web.json_response({"error": "invalid request"}, status=401)
        try:
            text = body.decode("utf-8")
            _check_payload(text, request.content_type)
            bolt_request = AsyncBoltRequest(body=text, query=request.query_string,
                                            headers={k.lower(): v for k, v in request.headers.items()})
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("slack request refused: body is not a Slack payload (%s)", type(exc).__name__)
            return web.json_response({"error": "the body is not a Slack payload"}, status=400)
        return await to_aiohttp_response(await self.bolt.async_dispatch(bolt_request))

    # --- the Surface seam ----------------------------------------------------------------------

    async def identify(self, user: str) -> Profile:
        try:
            info = await self.client.users_info(user=user)  # the conversation bounds the wait
            found = info.get("user") or {}
            profile = found.get("profile") or {}
        except (SlackApiError, SlackClientError, ValueError, TypeError, AttributeError, asyncio.TimeoutError,
                OSError) as exc:
            raise SurfaceError(f"users.info failed: {_api_error(exc)}") from None
        if not isinstance(found, dict) or not isinstance(profile, dict):
            raise SurfaceError("users.info answered without a user")
        email, tz = profile.get("email"), found.get("tz")
        return Profile(email=email if isinstance(email, str) else None, tz=tz if isinstance(tz, str) and tz else None,
                       name=profile.get("real_name") if isinstance(profile.get("real_name"), str) else None)

    async def find_people(self, emails: Sequence[str]) -> Mapping[str, str]:
        out: dict[str, str] = {}
        for email in emails:
            try:
                found = await self.client.users_lookupByEmail(email=email)
            except SlackApiError as exc:
                if exc.response.get("error") in ("users_not_found", "user_not_found"):
                    continue  # not in this workspace: a name, not a mention
                raise SurfaceError(f"users.lookupByEmail failed: {_api_error(exc)}") from None
            except (SlackClientError, ValueError, TypeError, asyncio.TimeoutError, OSError) as exc:
                raise SurfaceError(f"users.lookupByEmail failed: {_api_error(exc)}") from None
            user = found.get("user") or {}
            if isinstance(user, dict) and isinstance(user.get("id"), str):
                out[email] = user["id"]
        return out

    async def send(self, to: Any, answer: Answer) -> None:
        """Post ``answer`` in a conversation: ``to`` is ``(channel, thread_ts, asker)``."""
        channel, thread_ts, asker = to
        msg = render(answer.reply, answer.view)
        try:
            await self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=msg.text, blocks=msg.blocks)
        except SlackApiError as exc:
            error = exc.response.get("error")
            log.error("reply failed command=%s channel=%s error=%s", answer.reply.command or "-", channel, error)
            if error in _NOT_THERE and asker:
                where = f"<#{channel}>" if isinstance(channel, str) and _CHANNEL_ID.fullmatch(channel) else "that channel"
                await self._tell(asker, _INVITE.format(where=where))

    def direct(self, user: str) -> Any:
        """A direct message to ``user``: ``chat.postMessage`` to a user id opens the app's DM with them."""
        return (user, None, user)

    async def open_form(self, to: Any, form: Form, key: str) -> None:
        """Open ``form`` as a modal: ``to`` is the trigger id of the click that asked for it (a page
        Slack cannot show opens as a modal saying so)."""
        try:
            view = render_form(form, key)
        except FormTooBig as too_big:
            view = notice_view(form.title, str(too_big))
        await self.client.views_open(trigger_id=to, view=view)

    async def _tell(self, user: str, text: str) -> None:
        """A direct message to ``user`` (Slack opens the DM when the channel is a user id)."""
        try:
            await self.client.chat_postMessage(channel=user, text=text)
        except SlackApiError as exc:
            log.error("could not tell the asker either user=%s error=%s", user, exc.response.get("error"))

    # --- wiring --------------------------------------------------------------------------------

    def _register(self) -> None:
        logging.getLogger("callboard.slack.bolt").addFilter(_QuietBoltWarnings())
        app = self.bolt
        app.middleware(self._dedupe_events)
        for slash in SLASH_COMMANDS:
            app.command(slash)(self._on_slash)
        app.event("app_mention")(self._on_mention)
        app.event("message")(self._on_message)
        app.action(re.compile(r"^run:\d+(\.\d+)?$"))(self._on_run_button)
        app.action(re.compile(r"^url:\d+(\.\d+)?$"))(self._on_url_button)
        app.action(re.compile(r"^page:(next|prev)$"))(self._on_page)
        app.action("share")(self._on_share)
        app.action(re.compile(r"^form:open(\.\d+)?$"))(self._on_open_form)  # .N: the Nth such button of a message
        app.action("entity_pick")(self._on_pick)
        app.options("entity_pick")(self._on_options)
        app.options(re.compile(r"^pick:"))(self._on_options)
        app.view("callboard_form")(self._on_form_submit)
        app.error(self._on_error)

    async def _dedupe_events(self, body: dict[str, Any], next: Callable[[], Awaitable[Any]]) -> Any:  # noqa: A002
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if isinstance(event_id, str) and not await self.conversation.first_time(event_id):
            log.info("slack event already handled event_id=%s", event_id)
            return BoltResponse(status=200, body="")
        return await next()

    async def _on_error(self, error: Exception, body: dict[str, Any]) -> None:
        log.error("slack listener failed type=%s error=%s", body.get("type"), type(error).__name__)

    # --- asking --------------------------------------------------------------------------------

    async def _on_slash(self, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        verb = SLASH_COMMANDS.get(command.get("command", ""), "")
        typed = slack_text(str(command.get("text") or ""))
        text = f"{verb} {typed}".strip() if verb else (typed or "help")
        app = self.app
        if verb and app is not None and app.registry.get(verb) is None:
            await ack(response_type="ephemeral",
                      text=f"`{command.get('command')}` needs the {verb} integration, which this Callboard "
                           "does not have installed yet. `/callboard help` lists what it can do.")
            return
        asked = Asked(text=text, user=command.get("user_id"), channel=command.get("channel_id"))

        async def late(answer: Answer) -> None:
            msg = render(answer.reply, answer.view, shareable=True)
            await respond(response_type="ephemeral", replace_original=True, text=msg.text, blocks=msg.blocks)

        answer = await self.conversation.answer_in_time(asked, late)
        if answer is None:
            await ack(response_type="ephemeral", text=f"Working on `{escape(text)}`…")  # the asker's text, inert
            return
        msg = render(answer.reply, answer.view, shareable=True)
        await ack(response_type="ephemeral", text=msg.text, blocks=msg.blocks)

    async def _on_mention(self, ack: AsyncAck, event: dict[str, Any], body: dict[str, Any]) -> None:
        await ack()
        self._answer_event(event, body, thread_ts=event.get("thread_ts") or event.get("ts"))

    async def _on_message(self, ack: AsyncAck, event: dict[str, Any], body: dict[str, Any]) -> None:
        await ack()
        if event.get("channel_type") != "im" or event.get("bot_id") or event.get("subtype"):
            return
        self._answer_event(event, body, thread_ts=event.get("thread_ts"))

    def _answer_event(self, event: dict[str, Any], body: dict[str, Any], *, thread_ts: str | None) -> None:
        text = slack_text(str(event.get("text") or ""), _bot_user(body)) or "help"
        asked = Asked(text=text, user=event.get("user"), channel=event.get("channel"))

        async def post() -> None:
            answer = await self.conversation.answer(asked)
            await self.send((event.get("channel"), thread_ts, event.get("user")), answer)

        self.conversation.track(post(), "event")

    # --- buttons -------------------------------------------------------------------------------

    async def _on_run_button(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any],
                             respond: AsyncRespond) -> None:
        await ack()
        self._click(Asked(text=str(action.get("value") or "help"), user=_user(body), channel=_channel(body)),
                    body, respond)

    async def _on_url_button(self, ack: AsyncAck) -> None:
        await ack()  # Slack opens the URL itself; the click only needs acknowledging

    async def _on_page(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        m = _PAGE_VALUE.fullmatch(str(action.get("value") or ""))
        if m is None:
            return
        key, page = m.group(1), int(m.group(2))
        asked = Asked(text="", user=_user(body), channel=_channel(body), page=page)

        async def turn() -> None:
            answer = await self.conversation.page(key, page, asked)
            if answer is None:
                await respond(response_type="ephemeral", replace_original=False,
                              text="That list has expired; ask again to page through it.")
                return
            await self._show(answer, body, respond)

        self.conversation.track(turn(), "page")

    async def _on_share(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        text = str(action.get("value") or "")
        if not text:
            return

        async def share() -> None:
            answer = await self.conversation.answer(Asked(text=text, user=_user(body), channel=_channel(body)))
            msg = render(answer.reply, answer.view)
            await respond(response_type="in_channel", replace_original=False, text=msg.text, blocks=msg.blocks)

        self.conversation.track(share(), "share")

    async def _on_pick(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        ref = ((action.get("selected_option") or {}).get("value")) or ""
        verb = str(action.get("block_id", "pick:info")).split(":", 1)[-1] or "info"
        app = self.app
        if app is not None and app.registry.get(verb) is None:
            verb = "info"
        if ref:
            self._click(Asked(text=f"{verb} {ref}", user=_user(body), channel=_channel(body)), body, respond)

    async def _on_options(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        query = str(body.get("value") or "")
        view: dict[str, Any] = body["view"] if isinstance(body.get("view"), dict) else {}
        if view.get("callback_id") == CALLBACK_ID and view.get("private_metadata"):
            # a form's picker: its owner knows the field's rules and who asks (their teams first)
            choices = await self.conversation.form_options(
                str(view["private_metadata"]), str(body.get("block_id") or ""), query, Asked(text="", user=_user(body)))
            if choices is not None:
                await ack(options=[{"text": {"type": "plain_text", "text": " ".join(c.label.split())[:75] or "-"},
                                    "value": c.value[:150]} for c in choices[:100]])
                return
        kinds = picker_kinds(str(body.get("action_id") or ""))  # a form's entity field offers its kinds only
        app = self.app
        options = [
            {"text": {"type": "plain_text", "text": label[:75]}, "value": ref[:150]}
            for ref, label in (picker_options(app.catalog, query, kinds=kinds) if app is not None else ())
        ]
        await ack(options=options)

    def _click(self, asked: Asked, body: dict[str, Any], respond: AsyncRespond) -> None:
        async def answer() -> None:
            await self._show(await self.conversation.answer(asked), body, respond)

        self.conversation.track(answer(), "button")

    async def _show(self, answer: Answer, body: dict[str, Any], respond: AsyncRespond) -> None:
        """A click's answer: on the clicker's own private message it replaces that message; on a
        shared message it goes to the clicker alone, and the shared message stays as it is."""
        private = bool((body.get("container") or {}).get("is_ephemeral"))
        msg = render(answer.reply, answer.view, shareable=True)
        if private:
            await respond(replace_original=True, text=msg.text, blocks=msg.blocks)
        else:
            await respond(response_type="ephemeral", replace_original=False, text=msg.text, blocks=msg.blocks)

    # --- forms ---------------------------------------------------------------------------------

    async def _on_open_form(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any],
                            respond: AsyncRespond) -> None:
        await ack()
        try:
            asked_for = json.loads(str(action.get("value") or "{}"))
            form_id, values = str(asked_for["f"]), dict(asked_for.get("v") or {})
        except (ValueError, KeyError, TypeError):
            return
        trigger = body.get("trigger_id")
        asked = Asked(text="", user=_user(body), channel=_channel(body))
        # views.open must follow the click within 3 s: opening is not tracked work
        try:
            key, form = await self.conversation.open_form(form_id, values, asked)
        except Unanswered as unanswered:
            await self._show(Answer(unanswered.reply, View(asked="")), body, respond)
            return
        await self.open_form(trigger, form, key)

    async def _on_form_submit(self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        key = str(view.get("private_metadata") or "")
        values = form_values(view)
        user = _user(body)
        key, step = await self.conversation.submit_form(key, values, Asked(text="", user=user))
        if isinstance(step, Form):
            shown = {b.get("block_id") for b in view.get("blocks") or () if isinstance(b, dict)}
            errors = form_errors(step)
            if step.errors and set(errors) <= shown:  # each error under its field, the person's input kept
                await ack(response_action="errors", errors=errors)
                return
            try:  # the next page, or this one grown by the fields its answers turned on
                await ack(response_action="update", view=render_form(step, key))
            except FormTooBig as too_big:
                await ack(response_action="update", view=notice_view(step.title, str(too_big)))
            return
        await ack(response_action="clear")
        if user:
            self.conversation.track(self.send((user, None, None), Answer(step, View(asked=""))), "form result")


def _check_payload(text: str, content_type: str) -> None:
    """Raise ValueError unless ``text`` is what Slack sends: a JSON object, or a form body
    (slash commands; interactivity carries a JSON ``payload`` field)."""
    if content_type == "application/json":
        if not isinstance(json.loads(text), dict):
            raise ValueError("not a JSON object")
        return
    fields = dict(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text)))
    if "payload" in fields and not isinstance(json.loads(fields["payload"]), dict):
        raise ValueError("payload is not a JSON object")


def _api_error(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError):
        response = exc.response
        try:
            return str(response.get("error") or f"HTTP {response.status_code}")
        except Exception:  # noqa: BLE001 - a body that is not JSON has no error field
            return f"HTTP {getattr(response, 'status_code', '?')}"
    return type(exc).__name__


def _bot_user(body: Mapping[str, Any]) -> str | None:
    """The bot's own user id, from the event's authorizations (None when Slack did not say)."""
    for auth in body.get("authorizations") or ():
        if isinstance(auth, dict) and auth.get("is_bot") and isinstance(auth.get("user_id"), str):
            return str(auth["user_id"])
    return None


def _user(body: dict[str, Any]) -> str | None:
    user = body.get("user") or {}
    return user.get("id") if isinstance(user, dict) else None


def _channel(body: dict[str, Any]) -> str | None:
    channel = body.get("channel") or {}
    return channel.get("id") if isinstance(channel, dict) else None


class _QuietBoltWarnings(logging.Filter):
    """Drop bolt's start-up notice about the token we deliberately pass through the client."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()
