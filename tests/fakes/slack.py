"""A local fake of the Slack Web API, served by a real aiohttp server on 127.0.0.1.

Tests run Callboard's real code and point ``slack_sdk``'s client at the fake; the
production code cannot tell it apart from Slack, because the fake answers in the
shapes of the official description (``shared/reference/apis/slack/web-api.json``)::

    from slack_sdk.web.async_client import AsyncWebClient
    from tests.fakes.slack import SlackFake

    async with SlackFake() as fake:     # or: url = await fake.start() ... await fake.stop()
        fake.add_user("U0ALICE01", "alice@example.com", "alice", tz="Europe/Dublin")
        client = AsyncWebClient(token="xoxb-test", base_url=fake.url)   # fake.url ends with "/api/"
        await client.chat_postMessage(channel="C0GENERAL1", text="hi", blocks=[...])
        [call] = await fake.wait_for("chat.postMessage")                # waits for replies sent after the ack
        assert call.params["blocks"][0]["type"] == "section"            # JSON strings already decoded

What it serves (any HTTP verb, form-encoded, multipart, JSON body or query string, like Slack):

* ``auth.test``, ``chat.postMessage``, ``chat.postEphemeral``, ``chat.update``, ``chat.delete``,
  ``users.info``, ``users.lookupByEmail``, ``conversations.info``, ``views.open``, ``views.update``,
  ``views.push``, ``views.publish``, ``reactions.add``; any other method answers ``unknown_method``
  unless a test installs one with :meth:`SlackFake.set_handler`.
* Auth: ``Authorization: Bearer <token>`` or a ``token`` parameter, checked against ``fake.tokens``
  (default ``{"xoxb-test"}``). Missing -> ``not_authed``, unknown -> ``invalid_auth`` (HTTP 200, as Slack).
* ``fake.response_url(name)`` is a URL on the fake that takes the JSON posts Slack's ``response_url``
  takes and answers ``{"ok": true}``; they are recorded as calls with method ``"response_url:<name>"``.

State the tests can seed and inspect:

* ``add_user(id, email, name, tz=...)`` feeds ``users.info`` / ``users.lookupByEmail``; the bot user
  (``fake.bot_user_id``) is there from the start.
* ``add_channel(id, name, ...)`` feeds ``conversations.info`` and resolves ``#name`` channel references.
  Unless ``strict_channels=True`` any well-formed conversation ID is accepted and auto-created (a user
  ID given as channel becomes the app's DM with that user, ``D...``, as on Slack).
* ``fake.messages[channel_id][ts]`` holds what the bot posted (``chat.update`` / ``chat.delete`` only
  accept such ``ts``: ``message_not_found`` otherwise); ``fake.views[view_id]`` the views it opened;
  ``fake.reactions[(channel_id, ts)]`` the reaction names it added (to any message).

Recording: ``fake.calls`` is every request in arrival order as :class:`Call` (``token`` is taken out of
``params`` into ``call.token``; ``call.status``/``call.response`` are filled in once answered), plus
``calls_to(method)`` and ``await wait_for(method, count=1, timeout=5)``.

Failure injection: ``fail_next(method)`` answers the next call with HTTP 429, ``Retry-After: 1`` and
``{"ok": false, "error": "ratelimited"}``; ``fail_next(method, error="channel_not_found")`` with HTTP 200
``ok: false``; ``body=`` answers with raw text (an HTML error page) instead of JSON; ``times=`` repeats
it, and queued failures are used in order. ``delay(method, seconds)``
makes every (or the next ``times=``) call to a method slow; ``delay(method, 0)`` clears it.
Both also work for ``"response_url:<name>"``.

Notes: ``ts`` values are deterministic (``1700000000.000100``, ``...000200``, ...). Responses that
Slack's schema describes are kept valid against it: e.g. ``chat.update``'s ``message`` carries no
``blocks`` (the schema types them as an object), and ``users.lookupByEmail`` answers
``users_not_found`` (plural, as the schema and Slack do) while ``users.info`` answers ``user_not_found``.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import inspect
import itertools
import json
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from multidict import CIMultiDict

__all__ = ["Call", "SlackFake", "SlackError", "METHODS"]

JSONDict = dict[str, Any]

#: Web API methods the fake implements out of the box.
METHODS: tuple[str, ...] = (
    "auth.test",
    "chat.postMessage",
    "chat.postEphemeral",
    "chat.update",
    "chat.delete",
    "users.info",
    "users.lookupByEmail",
    "conversations.info",
    "views.open",
    "views.update",
    "views.push",
    "views.publish",
    "reactions.add",
)

#: Parameters that carry JSON text inside a form (``blocks=[...]`` as a URL-encoded string).
JSON_PARAMS = frozenset({"blocks", "attachments", "view", "metadata", "user_auth_blocks"})

DEFAULT_SCOPES: tuple[str, ...] = (
    "app_mentions:read",
    "channels:read",
    "chat:write",
    "commands",
    "groups:read",
    "im:history",
    "im:write",
    "reactions:write",
    "users:read",
    "users:read.email",
)

_TS_RE = re.compile(r"^\d{10}\.\d{6}$")
_CONVERSATION_ID_RE = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_USER_ID_RE = re.compile(r"^[UW][A-Z0-9]{2,}$")
_TRUE = frozenset({"1", "true", "True", "yes"})


class SlackError(Exception):
    """Raise from a handler (built-in or :meth:`SlackFake.set_handler`) to answer ``ok: false``."""

    def __init__(self, error: str, *, status: int = 200, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.extra = extra

    def body(self) -> JSONDict:
        return {"ok": False, "error": self.error, **self.extra}


@dataclass
class Call:
    """One request the fake received.

    ``params`` merges query string and body, with JSON-in-form values (``blocks``, ``attachments``,
    ``view``, ...) decoded to Python objects and ``token`` moved to :attr:`token`. ``headers`` is
    case-insensitive. ``status`` and ``response`` stay ``None`` until the fake has answered.
    """

    method: str
    params: dict[str, Any]
    headers: Mapping[str, str]
    token: str | None = None
    http_method: str = "POST"
    status: int | None = None
    response: JSONDict | None = None


#: A custom method handler: ``handler(call) -> dict`` or an ``async`` one.
Handler = Callable[[Call], "JSONDict | Awaitable[JSONDict]"]


@dataclass
class _Failure:
    error: str
    status: int
    retry_after: int | None
    remaining: int
    body: str | None = None  # sent as it is instead of Slack's JSON error (an HTML error page, say)
    content_type: str = "text/html"


@dataclass
class _Delay:
    seconds: float
    remaining: int | None  # None: every call until cleared


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value) in _TRUE


def _short_hash(*parts: str, length: int = 10) -> str:
    return hashlib.sha1(":".join(parts).encode()).hexdigest()[:length].upper()


class SlackFake:
    """A Slack Web API double on a random local port. See the module docstring for usage."""

    def __init__(
        self,
        *,
        tokens: Iterable[str] = ("xoxb-test",),
        team_id: str = "T0FAKE001",
        team_name: str = "Callboard Test",
        team_domain: str = "callboard-test",
        bot_user_id: str = "U0FAKEBOT",
        bot_id: str = "B0FAKEBOT1",
        bot_name: str = "callboard",
        app_id: str = "A0FAKEAPP1",
        scopes: Iterable[str] = DEFAULT_SCOPES,
        strict_channels: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        self.tokens: set[str] = set(tokens)
        self.team_id = team_id
        self.team_name = team_name
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.app_id = app_id
        self.scopes: list[str] = list(scopes)
        self.strict_channels = strict_channels
        self.host = host

        self.calls: list[Call] = []
        self.users: dict[str, JSONDict] = {}
        self.channels: dict[str, JSONDict] = {}
        self.messages: dict[str, dict[str, JSONDict]] = {}
        self.views: dict[str, JSONDict] = {}
        self.reactions: dict[tuple[str, str], list[str]] = {}

        self._failures: dict[str, list[_Failure]] = {}
        self._delays: dict[str, _Delay] = {}
        self._handlers: dict[str, Handler] = {}
        self._builtin: dict[str, Callable[[Call], JSONDict]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "users.info": self._users_info,
            "users.lookupByEmail": self._users_lookup_by_email,
            "conversations.info": self._conversations_info,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.push": self._views_push,
            "views.publish": self._views_publish,
            "reactions.add": self._reactions_add,
        }
        self._ts_counter = itertools.count(100, 100)
        self._id_counter = itertools.count(1)
        self._home_views: dict[str, str] = {}
        self._last_modal: str | None = None
        self._changed = asyncio.Condition()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

        self._add_bot_user()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> str:
        """Start serving on a free port of ``host``; returns the base URL (``http://127.0.0.1:N/api/``)."""
        if self._runner is not None:
            return self.url
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/response/{name}", self._handle_response_url)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self.host, 0))
        site = web.SockSite(runner, sock)
        try:
            await site.start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._port = sock.getsockname()[1]
        self._runner = runner
        # Made here, so they belong to the loop that runs the server.
        self._changed = asyncio.Condition()
        self._stopping = asyncio.Event()
        return self.url

    async def stop(self) -> None:
        """Stop serving; delayed requests still in flight are released at once."""
        self._stopping.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> SlackFake:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("SlackFake is not started: await fake.start() first")
        return self._port

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The base URL for ``AsyncWebClient(base_url=...)``; ends with ``/api/`` like ``https://slack.com/api/``."""
        return f"{self.origin}/api/"

    def response_url(self, name: str) -> str:
        """A ``response_url`` on the fake; posts to it are recorded as method ``response_url:<name>``."""
        return f"{self.origin}/response/{name}"

    # ------------------------------------------------------------------ seeding

    def add_user(
        self,
        user_id: str,
        email: str | None,
        name: str,
        tz: str = "Europe/Dublin",
        *,
        real_name: str | None = None,
        display_name: str | None = None,
        title: str = "",
        is_bot: bool = False,
        is_admin: bool = False,
        deleted: bool = False,
    ) -> JSONDict:
        """Add (or replace) a user; returns the stored user object, which tests may edit further."""
        real = real_name if real_name is not None else name
        display = display_name if display_name is not None else name
        try:
            zone = ZoneInfo(tz)
            now = datetime.now(zone)
            offset = now.utcoffset()
            tz_offset = int(offset.total_seconds()) if offset is not None else 0
            tz_label = now.tzname() or tz
        except (ZoneInfoNotFoundError, ValueError):
            tz_offset, tz_label = 0, tz
        avatar = _short_hash(user_id, length=12).lower()
        profile: JSONDict = {
            "title": title,
            "phone": "",
            "skype": "",
            "real_name": real,
            "real_name_normalized": real,
            "display_name": display,
            "display_name_normalized": display,
            "fields": {},
            "status_text": "",
            "status_emoji": "",
            "status_expiration": 0,
            "avatar_hash": avatar,
            "first_name": real.split(" ")[0] if real else "",
            "last_name": " ".join(real.split(" ")[1:]),
            "team": self.team_id,
        }
        if email is not None:
            profile["email"] = email
        for size in (24, 32, 48, 72, 192, 512):
            profile[f"image_{size}"] = f"https://avatars.slack-edge.com/fake/{avatar}_{size}.png"
        user: JSONDict = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": deleted,
            "color": _short_hash(user_id, length=6).lower(),
            "real_name": real,
            "tz": tz,
            "tz_label": tz_label,
            "tz_offset": tz_offset,
            "profile": profile,
            "is_admin": is_admin,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": 1700000000,
            "has_2fa": False,
        }
        self.users[user_id] = user
        return user

    def add_channel(
        self,
        channel_id: str,
        name: str | None = None,
        *,
        is_private: bool = False,
        is_archived: bool = False,
        is_general: bool = False,
        user: str | None = None,
        members: Iterable[str] = (),
        topic: str = "",
        purpose: str = "",
    ) -> JSONDict:
        """Add (or replace) a conversation. IDs starting with ``D`` are DMs (``user`` = the other party)."""
        if channel_id.startswith("D"):
            conv: JSONDict = {
                "id": channel_id,
                "created": 1700000000,
                "is_im": True,
                "is_org_shared": False,
                "user": user or self.bot_user_id,
                "priority": 0,
                "is_archived": is_archived,
                "is_open": True,
                "is_user_deleted": False,
            }
        else:
            channel_name = (name or channel_id.lower()).lstrip("#")
            conv = {
                "id": channel_id,
                "name": channel_name,
                "name_normalized": channel_name,
                "created": 1700000000,
                "creator": self.bot_user_id,
                "is_channel": not is_private,
                "is_group": is_private,
                "is_im": False,
                "is_mpim": False,
                "is_private": is_private,
                "is_archived": is_archived,
                "is_general": is_general,
                "is_shared": False,
                "is_ext_shared": False,
                "is_org_shared": False,
                "is_pending_ext_shared": False,
                "is_member": True,
                "is_read_only": False,
                "unlinked": 0,
                "parent_conversation": None,
                "pending_shared": [],
                "previous_names": [],
                "topic": {"value": topic, "creator": self.bot_user_id if topic else "", "last_set": 0},
                "purpose": {"value": purpose, "creator": self.bot_user_id if purpose else "", "last_set": 0},
            }
        conv["members"] = list(members)
        self.channels[channel_id] = conv
        return conv

    def add_message(self, channel_id: str, ts: str, text: str, *, user: str | None = None) -> JSONDict:
        """Seed a message the bot may ``chat.update``/``chat.delete`` (normally only its own posts)."""
        msg: JSONDict = {"type": "message", "text": text, "user": user or self.bot_user_id, "ts": ts}
        self.messages.setdefault(channel_id, {})[ts] = msg
        return msg

    # ------------------------------------------------------------------ behaviour control

    def fail_next(
        self,
        method: str,
        error: str = "ratelimited",
        *,
        status: int | None = None,
        retry_after: int | None = None,
        times: int = 1,
        body: str | None = None,
        content_type: str = "text/html",
    ) -> None:
        """Make the next ``times`` calls to ``method`` fail.

        ``error="ratelimited"`` defaults to HTTP 429 with ``Retry-After: 1``; other errors default to
        HTTP 200 with ``{"ok": false, "error": error}``. A ``Retry-After`` header is sent whenever
        ``retry_after`` is given or the status is 429. ``body`` answers with that text (of
        ``content_type``) instead of JSON, as a proxy or load balancer in front of Slack may:
        ``fail_next("users.info", status=500, body="<html>…</html>")``.
        """
        if times < 1:
            raise ValueError("times must be >= 1")
        if status is None:
            status = 429 if error == "ratelimited" else 200
        if retry_after is None and status == 429:
            retry_after = 1
        self._failures.setdefault(method, []).append(_Failure(error, status, retry_after, times, body, content_type))

    def delay(self, method: str, seconds: float, *, times: int | None = None) -> None:
        """Answer calls to ``method`` after ``seconds`` (every call, or the next ``times``); 0 clears."""
        if seconds <= 0:
            self._delays.pop(method, None)
        else:
            self._delays[method] = _Delay(seconds, times)

    def set_handler(self, method: str, handler: Handler | None) -> None:
        """Answer ``method`` with ``handler(call) -> dict`` (sync or async; ``ok: true`` is added if
        missing; raise :class:`SlackError` for ``ok: false``). ``None`` restores the built-in one."""
        if handler is None:
            self._handlers.pop(method, None)
        else:
            self._handlers[method] = handler

    def reset(self) -> None:
        """Forget recorded calls and pending failures/delays (seeded users and channels stay)."""
        self.calls.clear()
        self._failures.clear()
        self._delays.clear()

    # ------------------------------------------------------------------ inspection

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Wait until at least ``count`` calls to ``method`` have arrived; returns all calls to it."""

        async def arrived() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.calls_to(method)) >= count)

        try:
            await asyncio.wait_for(arrived(), timeout)
        except TimeoutError:
            seen = [c.method for c in self.calls]
            raise TimeoutError(
                f"SlackFake: expected {count} call(s) to {method} within {timeout}s, "
                f"got {len(self.calls_to(method))}; all calls so far: {seen}"
            ) from None
        return self.calls_to(method)

    # ------------------------------------------------------------------ HTTP plumbing

    async def _record(self, call: Call) -> None:
        self.calls.append(call)
        async with self._changed:
            self._changed.notify_all()

    async def _apply_delay(self, method: str) -> None:
        rule = self._delays.get(method)
        if rule is None:
            return
        if rule.remaining is not None:
            rule.remaining -= 1
            if rule.remaining <= 0:
                self._delays.pop(method, None)
        try:
            await asyncio.wait_for(self._stopping.wait(), rule.seconds)
        except TimeoutError:
            pass

    def _take_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            queue.pop(0)
        return failure

    def _respond(
        self, call: Call, body: JSONDict, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> web.Response:
        call.status = status
        call.response = body
        all_headers = {
            "X-Slack-Req-Id": _short_hash(str(id(call)), str(len(self.calls)), length=16).lower(),
            "X-OAuth-Scopes": ",".join(self.scopes),
            **(headers or {}),
        }
        return web.json_response(body, status=status, headers=all_headers)

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params, body_error = await _read_params(request)
        token = _bearer(request.headers.get("Authorization"))
        param_token = params.pop("token", None)
        if token is None and isinstance(param_token, str) and param_token:
            token = param_token
        call = Call(method, params, CIMultiDict(request.headers), token, request.method)
        await self._record(call)
        await self._apply_delay(method)

        if body_error is not None:
            return self._respond(call, {"ok": False, "error": body_error})
        if method not in self._handlers and method not in self._builtin:
            return self._respond(call, {"ok": False, "error": "unknown_method", "req_method": method}, status=404)
        if token is None:
            return self._respond(call, {"ok": False, "error": "not_authed"})
        if token not in self.tokens:
            return self._respond(call, {"ok": False, "error": "invalid_auth"})
        failure = self._take_failure(method)
        if failure is not None:
            return self._fail(call, failure)
        try:
            custom = self._handlers.get(method)
            if custom is not None:
                result = custom(call)
                body = await result if inspect.isawaitable(result) else result
                body = {"ok": True, **body}
            else:
                body = self._builtin[method](call)
        except SlackError as err:
            return self._respond(call, err.body(), status=err.status)
        return self._respond(call, body)

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        method = f"response_url:{request.match_info['name']}"
        raw = await request.text()
        payload: Any
        try:
            payload = json.loads(raw) if raw.strip() else {}
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            form = dict(parse_qsl(raw, keep_blank_values=True))
            if "payload" in form:  # legacy: payload=<json>
                try:
                    payload = json.loads(form["payload"])
                except ValueError:
                    payload = None
            elif form and payload is None:
                payload = _decode_json_params(form)
        call = Call(method, payload if isinstance(payload, dict) else {}, CIMultiDict(request.headers), None, "POST")
        await self._record(call)
        await self._apply_delay(method)
        if not isinstance(payload, dict):
            return self._respond(call, {"ok": False, "error": "invalid_payload"}, status=400)
        failure = self._take_failure(method)
        if failure is not None:
            return self._fail(call, failure)
        return self._respond(call, {"ok": True})

    def _fail(self, call: Call, failure: _Failure) -> web.Response:
        headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else None
        if failure.body is not None:
            call.status, call.response = failure.status, None
            return web.Response(text=failure.body, status=failure.status, content_type=failure.content_type,
                                headers=headers)
        return self._respond(call, {"ok": False, "error": failure.error}, status=failure.status, headers=headers)

    # ------------------------------------------------------------------ helpers for handlers

    def _next_ts(self) -> str:
        n = next(self._ts_counter)
        return f"{1700000000 + n // 1_000_000}.{n % 1_000_000:06d}"

    def _add_bot_user(self) -> None:
        bot = self.add_user(self.bot_user_id, None, self.bot_name, "America/Los_Angeles", is_bot=True)
        bot["profile"].update({"bot_id": self.bot_id, "api_app_id": self.app_id, "always_active": True})

    def _bot_profile(self) -> JSONDict:
        icons = {f"image_{s}": f"https://avatars.slack-edge.com/fake/{self.bot_id}_{s}.png" for s in (36, 48, 72)}
        return {
            "id": self.bot_id,
            "deleted": False,
            "name": self.bot_name,
            "updated": 1700000000,
            "app_id": self.app_id,
            "icons": icons,
            "team_id": self.team_id,
        }

    def _resolve_channel(self, ref: Any, *, allow_names: bool = True) -> JSONDict:
        if not isinstance(ref, str) or not ref.strip():
            raise SlackError("channel_not_found")
        ref = ref.strip()
        if ref in self.channels:
            return self.channels[ref]
        if _USER_ID_RE.match(ref):  # posting to a user ID goes to the app's DM with them
            for conv in self.channels.values():
                if conv.get("is_im") and conv.get("user") == ref:
                    return conv
            if self.strict_channels and ref not in self.users:
                raise SlackError("channel_not_found")
            return self.add_channel("D" + ref[1:].ljust(8, "0"), user=ref)
        if allow_names and not _CONVERSATION_ID_RE.match(ref):
            name = ref.lstrip("#")
            for conv in self.channels.values():
                if conv.get("name") == name:
                    return conv
            if self.strict_channels:
                raise SlackError("channel_not_found")
            return self.add_channel("C" + _short_hash("channel", name), name)
        if self.strict_channels or not _CONVERSATION_ID_RE.match(ref):
            raise SlackError("channel_not_found")
        return self.add_channel(ref, is_private=ref.startswith("G"))

    def _stamp_blocks(self, blocks: Any, seed: str) -> Any:
        """Copy ``blocks`` and give each block lacking one a ``block_id``, as Slack does."""
        if not isinstance(blocks, list):
            return copy.deepcopy(blocks)
        stamped = []
        for i, block in enumerate(blocks):
            block = copy.deepcopy(block)
            if isinstance(block, dict) and "block_id" not in block:
                block["block_id"] = _short_hash(seed, str(i), length=5).lower()
            stamped.append(block)
        return stamped

    def _message_body(self, p: JSONDict, ts: str) -> JSONDict:
        text = p.get("text")
        blocks = p.get("blocks")
        attachments = p.get("attachments")
        if not text and not blocks and not attachments:
            raise SlackError("no_text")
        if isinstance(text, str) and len(text) > 40000:
            raise SlackError("msg_too_long")
        if isinstance(attachments, list) and len(attachments) > 100:
            raise SlackError("too_many_attachments")
        msg: JSONDict = {
            "user": self.bot_user_id,
            "type": "message",
            "ts": ts,
            "bot_id": self.bot_id,
            "text": text if isinstance(text, str) else "",
            "team": self.team_id,
            "bot_profile": self._bot_profile(),
        }
        if blocks:
            msg["blocks"] = self._stamp_blocks(blocks, ts)
        if isinstance(attachments, list) and attachments:
            msg["attachments"] = [
                {**copy.deepcopy(a), "id": i} if isinstance(a, dict) else a for i, a in enumerate(attachments, 1)
            ]
        if p.get("username"):
            msg["subtype"] = "bot_message"
            msg["username"] = str(p["username"])
        if p.get("icon_emoji"):
            msg["icons"] = {"emoji": str(p["icon_emoji"])}
        elif p.get("icon_url"):
            msg["icons"] = {"image_64": str(p["icon_url"])}
        return msg

    # ------------------------------------------------------------------ method handlers

    def _auth_test(self, call: Call) -> JSONDict:
        return {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, call: Call) -> JSONDict:
        p = call.params
        conv = self._resolve_channel(p.get("channel"))
        if conv.get("is_archived"):
            raise SlackError("is_archived")
        ts = self._next_ts()
        msg = self._message_body(p, ts)
        thread_ts = p.get("thread_ts")
        if isinstance(thread_ts, str) and thread_ts:
            msg["thread_ts"] = thread_ts
            parent = self.messages.get(conv["id"], {}).get(thread_ts)
            if parent is not None:
                msg["parent_user_id"] = parent.get("user", self.bot_user_id)
                parent["thread_ts"] = thread_ts
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                parent["latest_reply"] = ts
        self.messages.setdefault(conv["id"], {})[ts] = msg
        return {"ok": True, "channel": conv["id"], "ts": ts, "message": copy.deepcopy(msg)}

    def _chat_post_ephemeral(self, call: Call) -> JSONDict:
        p = call.params
        conv = self._resolve_channel(p.get("channel"))
        if conv.get("is_archived"):
            raise SlackError("is_archived")
        if not p.get("user"):
            raise SlackError("user_not_in_channel")
        self._message_body(p, "0000000000.000000")  # same validation as a message
        return {"ok": True, "message_ts": self._next_ts()}

    def _stored_message(self, p: JSONDict) -> tuple[JSONDict, str, JSONDict]:
        conv = self._resolve_channel(p.get("channel"))
        ts = p.get("ts")
        ts = str(ts) if ts is not None else ""
        msg = self.messages.get(conv["id"], {}).get(ts)
        if msg is None:
            raise SlackError("message_not_found")
        return conv, ts, msg

    def _chat_update(self, call: Call) -> JSONDict:
        p = call.params
        conv, ts, msg = self._stored_message(p)
        if msg.get("user") != self.bot_user_id:
            raise SlackError("cant_update_message")
        if "text" not in p and "blocks" not in p and "attachments" not in p:
            raise SlackError("no_text")
        if "text" in p:
            msg["text"] = str(p["text"])
        if "blocks" in p:
            if p["blocks"]:
                msg["blocks"] = self._stamp_blocks(p["blocks"], ts + ":edit")
            else:
                msg.pop("blocks", None)
        if "attachments" in p:
            if isinstance(p["attachments"], list) and p["attachments"]:
                msg["attachments"] = [
                    {**copy.deepcopy(a), "id": i} if isinstance(a, dict) else a
                    for i, a in enumerate(p["attachments"], 1)
                ]
            else:
                msg.pop("attachments", None)
        msg["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        # The schema types chat.update's message.blocks as an object, so blocks are left out of the echo.
        echo = {k: copy.deepcopy(v) for k, v in msg.items() if k not in ("blocks", "edited")}
        return {"ok": True, "channel": conv["id"], "ts": ts, "text": msg["text"], "message": echo}

    def _chat_delete(self, call: Call) -> JSONDict:
        conv, ts, msg = self._stored_message(call.params)
        if msg.get("user") != self.bot_user_id:
            raise SlackError("cant_delete_message")
        del self.messages[conv["id"]][ts]
        return {"ok": True, "channel": conv["id"], "ts": ts}

    def _user_object(self, user: JSONDict, params: JSONDict) -> JSONDict:
        out = copy.deepcopy(user)
        if _truthy(params.get("include_locale", False)):
            out["locale"] = "en-US"
        return out

    def _users_info(self, call: Call) -> JSONDict:
        user = self.users.get(str(call.params.get("user", "")))
        if user is None:
            raise SlackError("user_not_found")
        return {"ok": True, "user": self._user_object(user, call.params)}

    def _users_lookup_by_email(self, call: Call) -> JSONDict:
        email = str(call.params.get("email", "")).strip().lower()
        for user in self.users.values():
            if email and str(user["profile"].get("email", "")).lower() == email:
                return {"ok": True, "user": self._user_object(user, call.params)}
        raise SlackError("users_not_found")

    def _conversations_info(self, call: Call) -> JSONDict:
        conv = self._resolve_channel(call.params.get("channel"), allow_names=False)
        out = copy.deepcopy(conv)
        members = out.pop("members", [])
        if _truthy(call.params.get("include_num_members", False)) and not out.get("is_im"):
            out["num_members"] = len(members)
        return {"ok": True, "channel": out}

    # views -------------------------------------------------------------------

    @staticmethod
    def _invalid(message: str) -> SlackError:
        return SlackError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {message}"]})

    def _view_payload(self, p: JSONDict, *, kinds: tuple[str, ...]) -> JSONDict:
        view = p.get("view")
        if view is None:
            raise self._invalid("missing required field: view")
        if not isinstance(view, dict):
            raise self._invalid("failed to parse view")
        if view.get("type") not in kinds:
            raise self._invalid(f"must be one of {list(kinds)} [json-pointer:/view/type]")
        if view.get("type") == "modal" and not view.get("title"):
            raise self._invalid("missing required field: title [json-pointer:/view]")
        return view

    def _build_view(self, view: JSONDict, view_id: str, *, root: str | None, previous: str | None) -> JSONDict:
        built: JSONDict = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view["type"],
            "blocks": self._stamp_blocks(view.get("blocks", []), view_id),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{self._next_ts()}.{_short_hash(view_id, length=8).lower()}",
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": copy.deepcopy(view.get("close")),
            "submit": copy.deepcopy(view.get("submit")),
            "previous_view_id": previous,
            "root_view_id": root or view_id,
            "app_id": self.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        if "title" in view:
            built["title"] = copy.deepcopy(view["title"])
        if view.get("external_id"):
            for other in self.views.values():
                if other["external_id"] == view["external_id"] and other["id"] != view_id:
                    raise SlackError("duplicate_external_id")
        self.views[view_id] = built
        return built

    def _new_view_id(self) -> str:
        return f"V0FAKE{next(self._id_counter):05d}"

    def _check_hash(self, p: JSONDict, current: JSONDict) -> None:
        if p.get("hash") and p["hash"] != current["hash"]:
            raise SlackError("hash_conflict")

    def _views_open(self, call: Call) -> JSONDict:
        p = call.params
        if not p.get("trigger_id"):
            raise self._invalid("missing required field: trigger_id")
        view = self._view_payload(p, kinds=("modal",))
        view_id = self._new_view_id()
        self._last_modal = view_id
        return {"ok": True, "view": copy.deepcopy(self._build_view(view, view_id, root=None, previous=None))}

    def _views_push(self, call: Call) -> JSONDict:
        p = call.params
        if not p.get("trigger_id"):
            raise self._invalid("missing required field: trigger_id")
        view = self._view_payload(p, kinds=("modal",))
        previous = self._last_modal
        root = self.views[previous]["root_view_id"] if previous in self.views else None
        view_id = self._new_view_id()
        self._last_modal = view_id
        return {"ok": True, "view": copy.deepcopy(self._build_view(view, view_id, root=root, previous=previous))}

    def _views_update(self, call: Call) -> JSONDict:
        p = call.params
        view_id, external_id = p.get("view_id"), p.get("external_id")
        if not view_id and not external_id:
            raise self._invalid("either view_id or external_id is required")
        current = self.views.get(str(view_id)) if view_id else None
        if current is None and external_id:
            current = next((v for v in self.views.values() if v["external_id"] == external_id), None)
        if current is None:
            raise SlackError("not_found")
        self._check_hash(p, current)
        view = self._view_payload(p, kinds=(current["type"],))
        built = self._build_view(
            view, current["id"], root=current["root_view_id"], previous=current["previous_view_id"]
        )
        return {"ok": True, "view": copy.deepcopy(built)}

    def _views_publish(self, call: Call) -> JSONDict:
        p = call.params
        user_id = p.get("user_id")
        if not user_id:
            raise self._invalid("missing required field: user_id")
        view = self._view_payload(p, kinds=("home",))
        existing = self._home_views.get(str(user_id))
        if existing is not None:
            self._check_hash(p, self.views[existing])
        view_id = existing or self._new_view_id()
        self._home_views[str(user_id)] = view_id
        return {"ok": True, "view": copy.deepcopy(self._build_view(view, view_id, root=None, previous=None))}

    def _reactions_add(self, call: Call) -> JSONDict:
        p = call.params
        conv = self._resolve_channel(p.get("channel"))
        ts = p.get("timestamp")
        if not ts:
            raise SlackError("no_item_specified")
        if not _TS_RE.match(str(ts)):
            raise SlackError("bad_timestamp")
        name = str(p.get("name", "")).strip(":")
        if not name:
            raise SlackError("invalid_name")
        names = self.reactions.setdefault((conv["id"], str(ts)), [])
        if name in names:
            raise SlackError("already_reacted")
        names.append(name)
        msg = self.messages.get(conv["id"], {}).get(str(ts))
        if msg is not None:
            msg.setdefault("reactions", []).append({"name": name, "users": [self.bot_user_id], "count": 1})
        return {"ok": True}


# ---------------------------------------------------------------------- request decoding


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _decode_json_params(params: dict[str, Any]) -> dict[str, Any]:
    for key in JSON_PARAMS & params.keys():
        value = params[key]
        if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
            try:
                params[key] = json.loads(value)
            except ValueError:
                pass  # left as sent; the handler reports what Slack would
    return params


async def _read_params(request: web.Request) -> tuple[dict[str, Any], str | None]:
    """Merge query string and body into one dict; returns ``(params, slack_error_or_None)``."""
    params: dict[str, Any] = dict(request.query)
    if not request.body_exists:
        return _decode_json_params(params), None
    ctype = request.content_type
    if ctype == "application/json":
        raw = await request.text()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return params, "invalid_json"
        if not isinstance(body, dict):
            return params, "json_not_object"
        params.update(body)
        return _decode_json_params(params), None
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            params[key] = value if isinstance(value, str) else getattr(value, "filename", str(value))
        return _decode_json_params(params), None
    raw = await request.text()
    if raw.strip():
        if ctype in ("", "application/octet-stream", "text/plain"):
            params.update(parse_qsl(raw, keep_blank_values=True))
        else:
            return params, "invalid_post_type"
    return _decode_json_params(params), None
