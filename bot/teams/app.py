"""Callboard on Microsoft Teams: messages, card actions, dialogs, typeahead and the message extension.

A surface (``bot/surface.py``): Teams activities become ``Asked`` values for the shared
conversation policy (``bot/conversation.py``), and ``Reply``/``Form`` values become Adaptive Cards
(``cards.py``). Every botbuilder type stays inside this package.

Teams as it really sends things:
- Every request to ``/api/messages`` carries a JWT the Bot Framework SDK validates (issuer,
  audience = our app id, expiry, the signing key's endorsement of the channel, the ``serviceurl``
  claim); anything it refuses gets 401. ``CALLBOARD_TEAMS_DEV=1`` turns Teams on without
  credentials for local development: then requests are not authenticated, so replies go only to a
  Bot Connector on this machine (the Emulator, a fake) — never to a ``serviceUrl`` a stranger named.
- Messages are acknowledged at once; the answer is posted after, through the Bot Connector, as a
  reply in the thread. In channels and group chats the bot hears only messages that @mention it;
  its mention is removed wherever it is, other people's become ``@Name``.
- Card buttons are ``Action.Execute``: the answer replaces the card in place (the invoke's response).
  A form opens as a dialog (``task/fetch``), each page's submission (``task/submit``) answers the
  next page, the page again with its errors, or closes the dialog and posts the result.
- Pickers ask for options as the person types (``application/search``); the message extension
  finds an entity (``composeExtension/query``) and unfurls Callboard's docs links
  (``composeExtension/queryLink``).
- The person is the catalog User with the email (or UPN) Teams gives for them (the conversation
  members API, cached); times are shown in the activity's ``localTimezone``.
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import json
import logging
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote, urlsplit

from aiohttp import web
from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, ActivityTypes
from botframework.connector.auth import (AuthenticateRequestResult, BotFrameworkAuthentication, ClaimsIdentity,
                                         ConnectorFactory, JwtTokenValidation)

from callboard.bot.app import Callboard
from callboard.bot.conversation import Conversation
from callboard.bot.surface import GREETING, Answer, Asked, Profile, SurfaceError, View
from callboard.commands.api import Reply, Status, Unanswered
from callboard.commands.find import picker_options
from callboard.commands.forms import Form, FormHandler

from . import cards
from .activity import parse_activity
from .connector import BotConnector, ConnectorError
from .settings import TeamsSettings
from .protocol import (
    DATA_COMMAND, DATA_FORM, DATA_FORM_KEY, DATA_FORM_VALUES, DATA_PAGE, DATA_PAGE_KEY, DATA_PICK_COMMAND,
    DATASET_FORM, DATASET_PICK, PICK_INPUT, SEARCH_PARAMETER, VERB_PAGE, VERB_PICK, VERB_RUN,
)

__all__ = ["TeamsSettings", "TeamsSurface", "teams_text"]

log = logging.getLogger(__name__)

#: How long an answer to a card action may take before the card says "Working on it…" and is
#: updated when the answer is ready (Teams waits a few seconds for an invoke's response).
INVOKE_BUDGET_S = 2.0
#: How long one call to the Bot Connector may take.
CONNECTOR_LIMIT_S = 15.0
#: How long what Teams says about a person is trusted.
PEOPLE_TTL_S = 3600.0
_PEOPLE_KEPT = 50_000
_PLACES_KEPT = 50_000
#: Teams' member ids (29:…, 8:orgid:…) and Microsoft Entra object ids: the only user ids we pass on.
_USER_ID = re.compile(r"(?:29|8):[A-Za-z0-9_:.@-]{1,200}|[0-9a-fA-F-]{36}")
#: a mention's markup; its content may not hold another <at> (a lazy ".*?" made 7,000 of them quadratic)
_AT = re.compile(r"<at(?:\s[^<>]*)?>((?:(?!</?at[\s>]).)*)</at>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
_SEARCH = "application/vnd.microsoft.search.searchResponse"
_REFERENCE = "callboard.reference"  # the turn's conversation reference, in its turn state
#: a URL whose authority is only a host and a port (no user info, no backslash)
_LOCAL_URL = re.compile(r"https?://(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?(?:/[^\\@\s]*)?")
#: Teams' messages are at most about 28 KB; longer text is not a message a person typed
MAX_TEXT = 30_000


class _ReusedClients(BotFrameworkAuthentication):
    """The SDK's authentication (``ConfigurationBotFrameworkAuthentication``, unchanged: every token
    is validated by it), with the Bot Connector and user-token clients it would make for each
    activity made once per app, service URL and audience and reused. Each new client builds msrest's
    retry policy (~4 ms of CPU on this machine): two per activity were most of a Teams request's cost.
    The clients hold no per-request state; their credentials refresh their own tokens."""

    _KEPT = 64  # service URLs are per region: a handful in practice

    def __init__(self, inner: BotFrameworkAuthentication) -> None:
        self._inner = inner
        self._connectors: dict[tuple[str | None, str, str | None], Any] = {}
        self._token_clients: dict[str | None, Any] = {}

    def _reuse(self, factory: ConnectorFactory, claims_identity: ClaimsIdentity | None) -> ConnectorFactory:
        app_id = JwtTokenValidation.get_app_id_from_claims(claims_identity.claims) if claims_identity else None
        return _ReusedConnectors(factory, app_id, self._connectors, self._KEPT)

    async def authenticate_request(self, activity: Activity, auth_header: str) -> AuthenticateRequestResult:
        result = await self._inner.authenticate_request(activity, auth_header)
        result.connector_factory = self._reuse(result.connector_factory, result.claims_identity)
        return result

    async def authenticate_streaming_request(self, auth_header: str, channel_id_header: str) -> AuthenticateRequestResult:
        result = await self._inner.authenticate_streaming_request(auth_header, channel_id_header)
        result.connector_factory = self._reuse(result.connector_factory, result.claims_identity)
        return result

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return self._reuse(self._inner.create_connector_factory(claims_identity), claims_identity)

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> Any:
        app_id = JwtTokenValidation.get_app_id_from_claims(claims_identity.claims)
        client = self._token_clients.get(app_id)
        if client is None:
            client = self._token_clients[app_id] = await self._inner.create_user_token_client(claims_identity)
        return client

    def create_bot_framework_client(self) -> Any:
        return self._inner.create_bot_framework_client()

    def get_originating_audience(self) -> str:
        return str(self._inner.get_originating_audience())

    async def authenticate_channel_request(self, auth_header: str) -> ClaimsIdentity:
        return await self._inner.authenticate_channel_request(auth_header)


class _ReusedConnectors(ConnectorFactory):
    def __init__(self, inner: ConnectorFactory, app_id: str | None,
                 kept: dict[tuple[str | None, str, str | None], Any], most: int) -> None:
        self._inner, self._app_id, self._kept, self._most = inner, app_id, kept, most

    async def create(self, service_url: str, audience: str | None = None) -> Any:
        key = (self._app_id, service_url, audience)
        client = self._kept.get(key)
        if client is None:
            client = await self._inner.create(service_url, audience)
            self._kept[key] = client
            while len(self._kept) > self._most:
                self._kept.pop(next(iter(self._kept)))
        return client


class _SdkConfig:
    """The configuration object the SDK reads its settings from (attribute names are the SDK's)."""

    def __init__(self, settings: TeamsSettings) -> None:
        self.APP_ID = settings.app_id or ""
        self.APP_PASSWORD = settings.app_password or ""
        self.APP_TYPE = settings.app_type
        self.APP_TENANTID = settings.tenant_id or ""
        if settings.openid_metadata_url:
            self.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL = settings.openid_metadata_url
        if settings.token_issuer:
            self.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER = settings.token_issuer


def teams_text(activity_text: str, mentions: Sequence[tuple[str, str]], bot_id: str | None) -> str:
    """What a person typed, from Teams' text of it: the bot's ``<at>…</at>`` mention removed
    wherever it is (with a greeting before it), other mentions as ``@Name``, any other markup
    dropped, HTML entities decoded. ``mentions`` are (mentioned id, mention text) of the activity's
    mention entities."""
    text = activity_text or ""
    bot_mentions = {t for who, t in mentions if bot_id and who == bot_id and t}
    for mention in bot_mentions:  # "hey <at>Callboard</at>, who owns x"
        text = re.sub(rf"^\s*{GREETING}[\s,.!:;-]*{re.escape(mention)}[,:;]?", " ", text, flags=re.IGNORECASE)
        text = text.replace(mention, " ")

    def other(m: re.Match[str]) -> str:
        name = " ".join(_TAG.sub("", m.group(1)).split())
        return f"@{name}" if name else " "

    text = _AT.sub(other, text)
    text = _TAG.sub(" ", text)
    return " ".join(html.unescape(text).split())


def _dev_connector(url: str) -> bool:
    """In dev mode (requests not authenticated) the bot only talks to a Bot Connector on this
    machine: a ``serviceUrl`` is the requester's to choose, and must not aim the bot elsewhere. The
    authority must be exactly ``host[:port]``: with ``@`` or ``\\`` in it, URL parsers disagree on
    the host (Python's sees 127.0.0.1 where the SDK's HTTP client connects to another)."""
    match = _LOCAL_URL.fullmatch(url)
    if match is None:
        return False
    host = match["host"].strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(slots=True)
class _Person:
    profile: Profile | None
    fetched: float


class TeamsSurface:
    """The Teams side of one Callboard process."""

    name = "teams"
    page_size: int | None = 15

    def __init__(self, settings: TeamsSettings, app: Callboard | None, tasks: set[asyncio.Task[Any]], *,
                 forms: FormHandler | None = None) -> None:
        self.settings = settings
        self.conversation = Conversation(self, app, tasks, forms=forms)  # the Software Templates as dialogs
        self._auth = _ReusedClients(ConfigurationBotFrameworkAuthentication(_SdkConfig(settings)))
        self.adapter = CloudAdapter(self._auth)
        self.adapter.on_turn_error = self._on_turn_error
        self.connector = BotConnector(self._auth, settings.app_id)  # replies, card updates, member lookups
        self._people: dict[str, _Person] = {}  # Teams user id -> what Teams said about them
        self._directory: dict[str, tuple[str, float]] = {}  # email -> (Teams user id, when seen)
        self._places: dict[str, dict[str, Any]] = {}  # Teams user id -> where they last talked to us

    @property
    def app(self) -> Callboard | None:
        return self.conversation.app

    def attach(self, app: Callboard) -> None:
        self.conversation.attach(app)

    # --- the server ------------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/api/messages", self.handle)]

    async def start(self) -> None:
        if self.settings.authenticated:
            log.info("teams on: requests to /api/messages are authenticated for app %s (%s)", self.settings.app_id,
                     self.settings.app_type)
        else:
            log.warning("TEAMS DEVELOPMENT MODE (CALLBOARD_TEAMS_DEV=1): requests to /api/messages are NOT "
                        "authenticated and replies go only to a Bot Connector on this machine. Never run this "
                        "way where Teams can reach it: set MICROSOFT_APP_ID and MICROSOFT_APP_PASSWORD.")

    async def stop(self) -> None:
        await self.connector.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/messages``: the SDK authenticates the request and runs the turn; a refused
        token is 401, a body that is not an activity 400."""
        if request.content_type != "application/json":
            return web.json_response({"error": "an activity is JSON (Content-Type: application/json)"}, status=415)
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError, RecursionError):
            return web.json_response({"error": "the body is not JSON"}, status=400)
        if not isinstance(body, dict) or not isinstance(body.get("type"), str) or not body["type"]:
            return web.json_response({"error": "the body is not an activity (it has no type)"}, status=400)
        service_url = body.get("serviceUrl")
        if not isinstance(service_url, str) or not service_url.startswith(("http://", "https://")):
            return web.json_response({"error": "the activity has no serviceUrl"}, status=400)
        if not self.settings.authenticated and not _dev_connector(service_url):
            log.warning("teams request refused: development mode answers only a Bot Connector on this machine "
                        "(serviceUrl %.80r)", service_url)
            return web.json_response({"error": "unauthorized"}, status=401)
        try:
            activity = parse_activity(body)  # the SDK's Activity, as msrest makes it
        except Exception:  # noqa: BLE001 - msrest's deserialization errors have several types
            return web.json_response({"error": "the body is not an activity"}, status=400)
        try:
            # the SDK's own validation: the token's signature, issuer, audience, expiry, the key's
            # endorsement of the channel and the serviceurl claim (or, in dev mode, that there is none)
            authenticated = await self._auth.authenticate_request(activity, request.headers.get("Authorization", ""))
        except Exception as exc:  # noqa: BLE001 - the SDK refuses tokens with several exception types
            log.warning("teams request refused: %s", type(exc).__name__)
            return web.json_response({"error": "unauthorized"}, status=401)
        conversation = body.get("conversation")
        if not isinstance(conversation, dict) or not isinstance(conversation.get("id"), str) or not conversation["id"]:
            return web.json_response({"error": "the activity names no conversation"}, status=400)
        answered: list[tuple[int, Any]] = []

        async def turn(context: TurnContext) -> None:
            result = await self._on_turn(context)
            if result is not None:
                answered.append(result)

        # the invoke's answer is taken from the turn itself: sent through the turn context, the SDK
        # would deep-copy the whole card and serialize it with msrest on every request
        invoke = await self.adapter.process_activity(authenticated, activity, turn)
        if answered:
            status, payload = answered[0]
        elif invoke is not None:  # the turn failed: _on_turn_error's answer
            status, payload = int(invoke.status), invoke.body
        else:  # a message (answered after the acknowledgement) or an update
            return web.Response(status=200)
        if payload is None:  # a dialog that closes
            return web.Response(status=status)
        return web.json_response(payload, status=status, dumps=_dumps)

    async def _on_turn_error(self, context: TurnContext, error: Exception) -> None:
        ref = secrets.token_hex(3)
        log.error("teams turn failed type=%s name=%s ref=%s", context.activity.type, context.activity.name, ref,
                  exc_info=error)
        if context.activity.type == ActivityTypes.invoke:
            await _invoke_response(context, 500, {"error": f"Sorry, that failed (ref {ref})."})

    # --- the Surface seam ----------------------------------------------------------------------

    async def identify(self, user: str) -> Profile:
        """What Teams said about ``user`` when they last wrote (the members API is asked during the
        turn, where a conversation to ask about them exists)."""
        known = self._people.get(user)
        if known is None or known.profile is None:
            raise SurfaceError("Teams has not said who this is")
        return known.profile

    async def find_people(self, emails: Sequence[str]) -> Mapping[str, str]:
        """Teams ids of the people with these emails, among those seen in conversations with us."""
        now = time.monotonic()
        out = {}
        for email in emails:
            found = self._directory.get(email.lower())
            if found and now - found[1] < PEOPLE_TTL_S:
                out[email] = found[0]
        return out

    async def send(self, to: Any, answer: Answer) -> None:
        """Post ``answer`` where ``to`` (a stored conversation reference) says, as a card."""
        await self._post(to, _message(answer))

    def direct(self, user: str) -> Any:
        """Where ``user`` last talked to Callboard (a conversation reference, stored as JSON with a
        template run, so any replica can post its progress there); None when they never did."""
        return self._places.get(user)

    async def open_form(self, to: Any, form: Form, key: str) -> None:
        """Teams opens a dialog only from a click (``task/fetch``): post a card whose button opens it."""
        reply = Reply(status=Status.OK, blocks=(), summary=cards.line(form.title, 300))
        card = cards.render(reply, View(asked=""))
        card.setdefault("actions", []).append({"type": "Action.Submit", "title": cards.line(f"Open {form.title}", 40),
                                               "data": {"msteams": {"type": "task/fetch"}, DATA_FORM: form.id,
                                                        DATA_FORM_VALUES: dict(form.values)}})
        await self._post(to, {"type": ActivityTypes.message, "summary": cards.line(form.title, 300),
                              "attachments": [cards.attachment(card)]})

    async def _post(self, to: Any, body: dict[str, Any], *, replacing: str | None = None) -> None:
        """Post ``body`` (an activity) where ``to`` (a conversation reference, as JSON) says — or,
        ``replacing`` an activity, update it — within ``CONNECTOR_LIMIT_S``."""
        if not isinstance(to, Mapping) or not isinstance(to.get("serviceUrl"), str):
            raise SurfaceError("no conversation to post to")
        if not self.settings.authenticated and not _dev_connector(to["serviceUrl"]):
            raise SurfaceError("development mode posts only to a Bot Connector on this machine")
        call = (self.connector.post(to, body) if replacing is None else self.connector.update(to, replacing, body))
        try:
            await asyncio.wait_for(call, CONNECTOR_LIMIT_S)
        except ConnectorError as exc:
            raise SurfaceError(str(exc)) from None
        except asyncio.TimeoutError:
            raise SurfaceError(f"the Bot Connector did not answer in {CONNECTOR_LIMIT_S:g} s") from None
        except Exception as exc:  # noqa: BLE001 - the credentials' failures (MSAL, the network) have many types
            raise SurfaceError(f"the Bot Connector failed: {type(exc).__name__}") from None

    # --- turns ---------------------------------------------------------------------------------

    async def _on_turn(self, context: TurnContext) -> tuple[int, Any] | None:
        """One activity; an invoke's answer (status, body) is returned."""
        activity = context.activity
        if activity.type == ActivityTypes.message:
            self._on_message(context)
        elif activity.type == ActivityTypes.invoke:
            return await self._on_invoke(context)
        elif activity.type == ActivityTypes.conversation_update:
            self._on_conversation_update(context)
        return None

    def _remember(self, context: TurnContext) -> dict[str, Any]:
        """The conversation's reference (where replies and a run's progress go), as JSON; made once
        a turn, however many handlers ask."""
        kept = context.turn_state.get(_REFERENCE)
        if kept is not None:
            return dict(kept)
        activity = context.activity
        reference = _reference_json(activity)
        context.turn_state[_REFERENCE] = reference
        user = activity.from_property.id if activity.from_property else None
        if user:  # where a run they start from here posts its progress: here
            self._places.pop(user, None)
            self._places[user] = reference
            while len(self._places) > _PLACES_KEPT:
                self._places.pop(next(iter(self._places)))
        return reference

    def _asked(self, activity: Activity, text: str, *, page: int = 1) -> Asked:
        """What ``activity`` (as Teams sent it) asked."""
        user = activity.from_property.id if activity.from_property else None
        known = self._people.get(user) if user else None
        return Asked(text=text, user=user, channel=activity.conversation.id if activity.conversation else None,
                     page=page, tz=activity.local_timezone or None,
                     profile=known.profile if known is not None and known.profile is not None else None)

    async def _learn(self, activity: Activity) -> None:
        """Ask the conversation members API who wrote ``activity`` (once an hour per person)."""
        user = activity.from_property.id if activity.from_property else None
        if not user or activity.conversation is None:
            return
        known = self._people.get(user)
        if known is not None and time.monotonic() - known.fetched < PEOPLE_TTL_S:
            return
        conversation_id = activity.conversation.id.split(";", 1)[0]  # a channel thread's messageid goes
        profile: Profile | None = None
        try:
            if not self.settings.authenticated and not _dev_connector(activity.service_url or ""):
                raise SurfaceError("development mode asks only a Bot Connector on this machine")
            member = await asyncio.wait_for(self.connector.member(activity.service_url or "", conversation_id, user), 1.0)
            email = member.get("email") or member.get("userPrincipalName")
            name = member.get("name")
            profile = Profile(email=email if isinstance(email, str) and email else None,
                              tz=activity.local_timezone or None, name=name if isinstance(name, str) else None)
        except Exception as exc:  # noqa: BLE001 - answered without personal touches; the log says why
            log.warning("teams could not say who is asking (%s); answering without it", type(exc).__name__)
        self._people.pop(user, None)
        self._people[user] = _Person(profile, time.monotonic())
        while len(self._people) > _PEOPLE_KEPT:
            self._people.pop(next(iter(self._people)))
        if profile is not None and profile.email:
            self._directory[profile.email.lower()] = (user, time.monotonic())
            while len(self._directory) > _PEOPLE_KEPT:
                self._directory.pop(next(iter(self._directory)))

    def _on_message(self, context: TurnContext) -> None:
        """Acknowledged at once; the answer is posted in the thread when it is ready."""
        activity = context.activity
        mentions = [((m.additional_properties.get("mentioned") or {}).get("id", ""),
                     str(m.additional_properties.get("text") or "")) for m in TurnContext.get_mentions(activity)]
        bot_id = activity.recipient.id if activity.recipient else None
        shared = (activity.conversation.conversation_type if activity.conversation else None) in ("channel", "groupChat")
        if shared and not any(who == bot_id for who, _ in mentions):
            return  # a channel or group chat message not addressed to Callboard (heard with RSC): not ours
        if len(activity.text or "") > MAX_TEXT:
            text = "help"  # no one typed that: what Callboard can answer instead of parsing it
        else:
            text = teams_text(activity.text or "", mentions, bot_id)
        if not text and activity.value:  # an Action.Submit of a card from an older client
            text = str((activity.value or {}).get(DATA_COMMAND) or "") if isinstance(activity.value, dict) else ""
        reference = self._remember(context)
        asked_text = text or "help"

        async def answer() -> None:
            await self._learn(activity)
            reply = await self.conversation.answer(self._asked(activity, asked_text))
            await self._post(reference, _message(reply))

        self.conversation.track(answer(), "message")

    def _on_conversation_update(self, context: TurnContext) -> None:
        """The bot added to a team, a chat or someone's personal apps: say hello with what to ask."""
        activity = context.activity
        reference = self._remember(context)
        bot_id = activity.recipient.id if activity.recipient else None
        if not any(m.id == bot_id for m in activity.members_added or ()):
            return

        async def greet() -> None:
            answer = await self.conversation.answer(Asked(text="help", user=None, channel=activity.conversation.id))
            await self._post(reference, _message(answer))

        self.conversation.track(greet(), "welcome")

    # --- invokes -------------------------------------------------------------------------------

    async def _on_invoke(self, context: TurnContext) -> tuple[int, Any]:
        name = context.activity.name or ""
        value = _object(context.activity.value)
        handler = {
            "adaptiveCard/action": self._on_card_action,
            "task/fetch": self._on_task_fetch,
            "task/submit": self._on_task_submit,
            "application/search": self._on_search,
            "composeExtension/query": self._on_extension_query,
            "composeExtension/queryLink": self._on_query_link,
        }.get(name)
        if handler is None:
            return 501, {"error": f"Callboard does not handle {name[:80]!r}"}
        self._remember(context)
        await self._learn(context.activity)
        return await handler(context, value)

    async def _on_card_action(self, context: TurnContext, value: dict[str, Any]) -> tuple[int, Any]:
        """A card's button: the answer replaces the card (within the budget; otherwise the card says
        it is working on it and is updated when the answer is ready)."""
        action = _object(value.get("action"))
        verb = action.get("verb")
        data = _object(action.get("data"))
        if verb == VERB_PAGE:
            key, page = data.get(DATA_PAGE_KEY), data.get(DATA_PAGE)
            if not isinstance(key, str) or not isinstance(page, int) or isinstance(page, bool) or page < 1:
                return _card_error("That button is not one of Callboard's.")
            answer = await self.conversation.page(key, page, self._asked(context.activity, ""))
            if answer is None:
                return _card(cards.render(Reply.notice(Status.NOT_FOUND, "That list has expired; ask again to page "
                                                                          "through it.")))
            return _card(cards.render(answer.reply, answer.view))
        if verb == VERB_RUN:
            text = data.get(DATA_COMMAND)
        elif verb == VERB_PICK:
            command, ref = data.get(DATA_PICK_COMMAND), data.get(PICK_INPUT)
            app = self.app
            if not isinstance(command, str) or (app is not None and app.registry.get(command) is None):
                command = "info"
            text = f"{command} {ref}" if isinstance(ref, str) and ref.strip() else None
        else:
            text = None
        if not isinstance(text, str) or not text.strip() or len(text) > 2000:
            return _card_error("That button is not one of Callboard's.")
        asked = self._asked(context.activity, text)
        reply_to = context.activity.reply_to_id
        where = self._remember(context)

        async def late(answer: Answer) -> None:
            if not reply_to:
                await self.send(where, answer)
                return
            card = cards.render(answer.reply, answer.view)
            await self._post(where, {"type": ActivityTypes.message, "attachments": [cards.attachment(card)]},
                             replacing=reply_to)

        answer = await self.conversation.answer_in_time(asked, late, budget=INVOKE_BUDGET_S)
        if answer is None:
            return _card(cards.render(Reply.notice(Status.OK, f"Working on {text[:200]}…")))
        return _card(cards.render(answer.reply, answer.view))

    async def _on_task_fetch(self, context: TurnContext, value: dict[str, Any]) -> tuple[int, Any]:
        """A form's button: the dialog opens on the form's first page."""
        data = _object(value.get("data"))
        form_id, values = data.get(DATA_FORM), data.get(DATA_FORM_VALUES)
        if not isinstance(form_id, str) or not form_id:
            return 200, _dialog_message("That button does not open one of Callboard's forms.")
        values = {str(k): v for k, v in values.items()} if isinstance(values, dict) else {}
        try:
            key, form = await self.conversation.open_form(form_id, values, self._asked(context.activity, ""))
        except Unanswered as unanswered:
            return 200, _dialog_message(unanswered.reply.summary)
        return 200, _dialog(form, key)

    async def _on_task_submit(self, context: TurnContext, value: dict[str, Any]) -> tuple[int, Any]:
        """A dialog page submitted: the next page, the page with its errors, or the dialog closes
        and the result is posted in the conversation."""
        data = _object(value.get("data"))
        key = data.get(DATA_FORM_KEY)
        if not isinstance(key, str) or not key:
            return 200, _dialog_message("This dialog is not one of Callboard's forms.")
        key, step = await self.conversation.submit_form(key, cards.form_values(data), self._asked(context.activity, ""))
        if isinstance(step, Form):
            return 200, _dialog(step, key)
        if not step.status.answered:  # expired, not allowed, the form gone: said in the dialog
            return 200, _dialog_message(step.summary)
        reference = self._remember(context)
        self.conversation.track(self.send(reference, Answer(step, View(asked=""))), "form result")
        return 200, None  # no task: the dialog closes

    async def _on_search(self, context: TurnContext, value: dict[str, Any]) -> tuple[int, Any]:
        """A picker's options as the person types (``Data.Query``)."""
        query = value.get("queryText")
        dataset = value.get("dataset")
        query = query if isinstance(query, str) else ""
        dataset = dataset if isinstance(dataset, str) else ""
        options = _object(value.get("queryOptions"))
        top = _count(options.get("top"), 25)
        app = self.app
        if dataset.startswith(DATASET_FORM):  # a form's picker: its owner knows the field's rules
            key, _, field_name = dataset.removeprefix(DATASET_FORM).rpartition(":")
            choices = await self.conversation.form_options(key, field_name, query, self._asked(context.activity, ""))
            found = [(c.value, c.label) for c in choices or ()]
        elif app is not None and (dataset.startswith(DATASET_PICK) or not dataset):  # did you mean: any entity
            found = [(ref, label) for ref, label in picker_options(app.catalog, query)]
        else:
            found = []
        return 200, {"type": _SEARCH, "value": {"results": cards.choices_result(found[: max(1, min(top, 50))])}}

    async def _on_extension_query(self, context: TurnContext, value: dict[str, Any]) -> tuple[int, Any]:
        """The message extension's search: entities matching what was typed, each as its card."""
        query = ""
        parameters = value.get("parameters")
        for parameter in parameters if isinstance(parameters, list) else ():
            if isinstance(parameter, dict) and parameter.get("name") == SEARCH_PARAMETER:
                query = parameter["value"] if isinstance(parameter.get("value"), str) else ""
        options = _object(value.get("queryOptions"))
        count = _count(options.get("count"), 10)
        app = self.app
        if app is None or not query.strip():  # the first run (initialRun) names no query
            return 200, _extension_result([])
        found = picker_options(app.catalog, query)[: max(1, min(count, 10))]
        attachments = await asyncio.gather(*(self._entity_attachment(context, ref, label) for ref, label in found),
                                           return_exceptions=True)
        for failed in (a for a in attachments if isinstance(a, BaseException)):
            log.error("teams message extension: an entity's card failed", exc_info=failed)
        return 200, _extension_result([a for a in attachments if isinstance(a, dict)])

    async def _on_query_link(self, context: TurnContext, value: dict[str, Any]) -> tuple[int, Any]:
        """A link to Callboard's docs pasted in a message unfurls into the entity's card."""
        url = value.get("url")
        ref = _docs_entity(url, self.settings.public_url) if isinstance(url, str) else None
        app = self.app
        if ref is None or app is None or ref not in app.catalog.index:
            return 200, _extension_result([])
        attachment = await self._entity_attachment(context, ref, ref)
        return 200, _extension_result([attachment] if attachment is not None else [])

    async def _entity_attachment(self, context: TurnContext, ref: str, label: str) -> dict[str, Any] | None:
        answer = await self.conversation.answer(self._asked(context.activity, f"info {ref}"))
        if not answer.reply.status.answered:
            return None
        card = cards.render(answer.reply, answer.view)
        return {**cards.attachment(card), "preview": cards.preview(label, answer.reply.summary)}


# --- activities and invoke answers ------------------------------------------------------------------


def _object(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (Teams' payloads are read defensively)."""
    return value if isinstance(value, dict) else {}


def _count(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _account(account: Any) -> dict[str, Any] | None:
    if account is None:
        return None
    return {k: v for k, v in (("id", account.id), ("name", account.name), ("aadObjectId", account.aad_object_id),
                              ("role", account.role)) if v is not None}


def _reference_json(activity: Activity) -> dict[str, Any]:
    """``TurnContext.get_conversation_reference(activity).serialize()``, read off the activity
    directly (msrest's serializer cost more than the rest of a card action)."""
    conversation = activity.conversation
    reference: dict[str, Any] = {
        "activityId": activity.id, "user": _account(activity.from_property), "bot": _account(activity.recipient),
        "conversation": None if conversation is None else {k: v for k, v in (
            ("id", conversation.id), ("conversationType", conversation.conversation_type),
            ("tenantId", conversation.tenant_id), ("isGroup", conversation.is_group), ("name", conversation.name))
            if v is not None},
        "channelId": activity.channel_id, "locale": activity.locale, "serviceUrl": activity.service_url,
    }
    return {k: v for k, v in reference.items() if v is not None}


def _dumps(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def _message(answer: Answer) -> dict[str, Any]:
    card = cards.render(answer.reply, answer.view)
    return {"type": ActivityTypes.message, "summary": cards.line(answer.reply.summary, 300),
            "attachments": [cards.attachment(card)]}


async def _invoke_response(context: TurnContext, status: int, body: Any) -> None:
    await context.send_activity(Activity(type=ActivityTypes.invoke_response,
                                         value=InvokeResponse(status=status, body=body)))


def _card(card: dict[str, Any]) -> tuple[int, Any]:
    return int(HTTPStatus.OK), {"statusCode": 200, "type": cards.CONTENT_TYPE, "value": card}


def _card_error(text: str) -> tuple[int, Any]:
    return int(HTTPStatus.OK), {"statusCode": 400, "type": "application/vnd.microsoft.error",
                                "value": {"code": "BadRequest", "message": text}}


def _dialog(form: Form, key: str) -> dict[str, Any]:
    try:
        card = cards.render_form(form, key)
    except ValueError as exc:  # a field the dialog cannot show
        card = cards.notice_card(form.title, f"{exc}. Fill this form in in the terminal with `callboard create`.")
    return {"task": {"type": "continue", "value": {"title": cards.line(form.title, 60), "width": "medium",
                                                     "height": "large", "card": cards.attachment(card)}}}


def _dialog_message(text: str) -> dict[str, Any]:
    return {"task": {"type": "message", "value": cards.line(text, 500)}}


def _extension_result(attachments: list[dict[str, Any]]) -> dict[str, Any]:
    return {"composeExtension": {"type": "result", "attachmentLayout": "list", "attachments": attachments}}


def _docs_entity(url: str, public_url: str | None) -> str | None:
    """The entity ref of a link to Callboard's docs (``<public_url>/docs/<ns>/<kind>/<name>/…``);
    None for any other link."""
    if not public_url:
        return None
    try:
        link, base = urlsplit(url), urlsplit(public_url)
    except ValueError:
        return None
    # the whole authority, as written: "evil.example\\@ours" is another host to a browser
    if link.scheme != base.scheme or link.netloc.lower() != base.netloc.lower():
        return None
    path = link.path
    prefix = base.path.rstrip("/") + "/docs/"
    if not path.startswith(prefix):
        return None
    parts = [unquote(p) for p in path[len(prefix):].split("/")]
    if len(parts) < 3 or not all(parts[:3]):
        return None
    namespace, kind, name = parts[:3]
    return f"{kind}:{namespace}/{name}".lower()

