"""A local fake of the Bot Connector REST API (what a bot calls at an activity's ``serviceUrl``),
served by a real aiohttp server on 127.0.0.1 and answering in the shapes of the official description
(``shared/reference/apis/botconnector/ConnectorAPI.json``, Swagger 2.0)::

    from tests.fakes.botconnector import BotConnectorFake

    async with BotConnectorFake() as fake:        # or: url = await fake.start() ... await fake.stop()
        fake.add_member("29:alice", "Alice Liddell", email="alice@example.com", upn="alice@example.com",
                        aad_object_id="00000000-0000-0000-0000-00000000a11c")
        activity = {..., "serviceUrl": fake.url}     # POST it to the bot's /api/messages
        [call] = await fake.wait_for("reply")        # the bot's answer, JSON body decoded
        [card] = fake.cards("19:general@thread.tacv2")   # Adaptive Card contents it posted there

What it serves (``fake.url`` has no trailing slash; paths as in the description):

* ``POST /v3/conversations/{conversationId}/activities`` ("send") and
  ``POST /v3/conversations/{conversationId}/activities/{activityId}`` ("reply") -> 200
  ``ResourceResponse`` ``{"id"}``; ``PUT .../activities/{activityId}`` ("update") -> 200
  ``ResourceResponse``; ``DELETE`` on that path ("delete") -> 200, empty. Update and delete only know
  activities posted through the fake or seeded with :meth:`BotConnectorFake.add_activity`; others
  answer 404 ``ActivityNotFoundInConversation``.
* ``GET /v3/conversations/{conversationId}/members`` ("members") -> ``[TeamsChannelAccount]``;
  ``GET .../members/{memberId}`` ("member") -> one, looked up by ``id``, ``aadObjectId`` or
  ``userPrincipalName`` as Teams does (404 ``MemberNotFoundInConversation`` otherwise);
  ``GET .../pagedmembers?pageSize=&continuationToken=`` ("pagedmembers") -> ``PagedMembersResult``.
* ``POST /v3/conversations`` ("create", body ``ConversationParameters``) ->
  ``ConversationResourceResponse`` ``{"id", "serviceUrl", "activityId"}``; an initial ``activity``
  counts as posted to the new conversation.

Every posted ``Activity`` (and ``ConversationParameters``) is validated against the description's
definition; a body that does not validate, is not a JSON object, or has no ``type`` (the Connector
requires one, the Swagger does not say so) answers 400 ``BadArgument`` and lands in ``fake.invalid``.
``max_activity_bytes`` optionally answers 413 ``MessageSizeTooBig`` for larger activities (off by
default: the exact Teams limit is not in the description).

Recording: ``fake.calls`` is every request as a :class:`Call` (operation, method, path, conversation,
activity and member id, JSON body, ``Authorization``, status and answer); ``calls_to(operation)``,
``await wait_for(operation, count=1, timeout=5)``; ``posted(conversation_id)`` the activities posted
there (send, reply, create) with the ids the fake gave them; ``cards(conversation_id)`` their
Adaptive Card contents; ``fake.activities[conversation_id][activity_id]`` the current state after
updates and deletes.

Failure injection, per operation: ``fail_next(op, 429)`` (``Retry-After: 1`` unless given),
``fail_next(op, 502, body="<html>...</html>")`` (text answered as ``text/html``), ``hang_next(op,
seconds)`` (released at once by ``stop()``), ``drop_next(op)`` (the connection is closed with no
answer); ``times=`` repeats each. A refused connection is a stopped fake. ``require_token = "..."``
makes every call without ``Authorization: Bearer <that>`` answer 401; by default any or no token is
accepted, as a dev-mode bot sends none.

Left out: attachments upload/download, conversation history, ``GET /v3/conversations``, activity
members, member removal, and the Teams-only ``/v3/teams/...`` and ``/v1/meetings/...`` routes (they
answer 404 ``NotFound``, recorded as operation ``"unknown"``). Member lookups are not scoped to the
conversation's real roster beyond what :meth:`add_member` says; ids are deterministic counters.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from multidict import CIMultiDict

from ._base import reason
from ._schemas import schema_errors_at

__all__ = ["ADAPTIVE_CARD", "OPERATIONS", "BotConnectorFake", "Call", "connector_description"]

JSONDict = dict[str, Any]

#: The operations the fake tells apart (``Call.operation``); anything else is ``"unknown"``.
OPERATIONS: tuple[str, ...] = ("send", "reply", "update", "delete", "members", "member", "pagedmembers", "create")

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"

_POSTING = frozenset({"send", "reply", "create"})
_DEFAULT_PAGE_SIZE = 200


def connector_description() -> Path:
    """``shared/reference/apis/botconnector/ConnectorAPI.json`` (see ``tests/conftest.py`` for where that is)."""
    from tests.conftest import REFERENCE

    return REFERENCE.parent / "apis" / "botconnector" / "ConnectorAPI.json"


@dataclass
class Call:
    """One request the fake received. ``body`` is the decoded JSON (``None`` when there was none or it
    was not JSON); ``headers`` is case-insensitive; ``status``/``response`` stay ``None`` until answered.
    ``errors`` says why a body was refused (schema paths and messages)."""

    operation: str
    method: str
    path: str
    conversation_id: str | None
    activity_id: str | None
    member_id: str | None
    query: dict[str, str]
    body: Any
    authorization: str | None
    headers: Mapping[str, str]
    status: int | None = None
    response: Any = None
    resource_id: str | None = None  # the id the fake gave a posted activity or created conversation
    errors: list[str] = field(default_factory=list)

    @property
    def token(self) -> str | None:
        """The bearer token sent, if any."""
        scheme, _, value = (self.authorization or "").strip().partition(" ")
        return (value.strip() or None) if scheme.lower() == "bearer" else None

    @property
    def activity(self) -> JSONDict | None:
        """The activity a send/reply/update carried (a create's initial one), as sent."""
        if self.operation == "create":
            inner = self.body.get("activity") if isinstance(self.body, dict) else None
            return inner if isinstance(inner, dict) else None
        if self.operation in ("send", "reply", "update") and isinstance(self.body, dict):
            return self.body
        return None


@dataclass
class _Fault:
    status: int | None  # None: drop the connection
    retry_after: int | float | str | None
    body: str | None
    remaining: int


@dataclass
class _Hang:
    seconds: float
    remaining: int


class _Refusal(Exception):
    """Answer an ``ErrorResponse`` and stop handling the request."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_body(code: str, message: str) -> JSONDict:
    """The description's ``ErrorResponse``."""
    return {"error": {"code": code, "message": message}}


class BotConnectorFake:
    """A Bot Connector double on a random local port. See the module docstring for usage."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        require_token: str | None = None,
        tenant_id: str = "72f988bf-0000-4000-8000-000000000001",
        max_activity_bytes: int | None = None,
    ) -> None:
        self.host = host
        self.require_token = require_token
        self.tenant_id = tenant_id
        self.max_activity_bytes = max_activity_bytes
        self.calls: list[Call] = []
        self.invalid: list[Call] = []
        self.members: list[tuple[JSONDict, frozenset[str] | None]] = []
        self.activities: dict[str, dict[str, JSONDict]] = {}
        self._faults: dict[str, list[_Fault]] = {}
        self._hangs: dict[str, list[_Hang]] = {}
        self._ids = itertools.count(1)
        self._description = connector_description()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._changed = asyncio.Condition()
        self._stopping = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> str:
        """Start serving on a free port; returns :attr:`url`. Skips the test when the description is missing."""
        if self._runner is not None:
            return self.url
        if not self._description.exists():
            import pytest

            from tests.conftest import NO_REFERENCE

            pytest.skip(NO_REFERENCE)  # every answer is checked against it: no fake without it
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
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
        """Stop serving; hanging requests are released at once. Safe to call twice."""
        self._stopping.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> BotConnectorFake:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """The ``serviceUrl`` to put in activities: ``http://127.0.0.1:N`` (no trailing slash)."""
        if self._port is None:
            raise RuntimeError("BotConnectorFake is not started: await fake.start() first")
        return f"http://{self.host}:{self._port}"

    # ------------------------------------------------------------------ seeding

    def add_member(
        self,
        id: str,
        name: str,
        *,
        email: str | None = None,
        upn: str | None = None,
        aad_object_id: str | None = None,
        given_name: str | None = None,
        surname: str | None = None,
        tenant_id: str | None = None,
        user_role: str = "user",
        conversations: Iterable[str] | None = None,
    ) -> JSONDict:
        """Add a ``TeamsChannelAccount``, a member of ``conversations`` (default: every conversation).
        Returns the stored object, which tests may edit further."""
        if not id:
            raise ValueError("add_member: id must not be empty")
        first, _, last = name.partition(" ")
        member: JSONDict = {
            "id": id,
            "name": name,
            "givenName": given_name if given_name is not None else first,
            "surname": surname if surname is not None else last,
            "tenantId": tenant_id or self.tenant_id,
            "userRole": user_role,
        }
        for key, value in (("aadObjectId", aad_object_id), ("email", email), ("userPrincipalName", upn)):
            if value is not None:
                member[key] = value
        scope = None if conversations is None else frozenset(conversations)
        self.members.append((member, scope))
        return member

    def add_activity(self, conversation_id: str, activity_id: str, activity: JSONDict | None = None) -> JSONDict:
        """Seed an activity the bot may update or delete (normally only ones it posted)."""
        stored = {"type": "message", **copy.deepcopy(activity or {}), "id": activity_id}
        self.activities.setdefault(conversation_id, {})[activity_id] = stored
        return stored

    # ------------------------------------------------------------------ behaviour control

    def fail_next(
        self,
        operation: str,
        status: int,
        *,
        times: int = 1,
        retry_after: int | float | str | None = None,
        body: str | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``operation`` with ``status``: an ``ErrorResponse``, or
        ``body`` as ``text/html`` (a proxy's error page). 429 sends ``Retry-After: 1`` unless given."""
        self._check(operation, times)
        if not 400 <= status <= 599:
            raise ValueError(f"fail_next: status must be an error (400-599), got {status}")
        if retry_after is None and status == 429:
            retry_after = 1
        self._faults.setdefault(operation, []).append(_Fault(status, retry_after, body, times))

    def drop_next(self, operation: str, *, times: int = 1) -> None:
        """Close the connection of the next ``times`` calls of ``operation`` without answering."""
        self._check(operation, times)
        self._faults.setdefault(operation, []).append(_Fault(None, None, None, times))

    def hang_next(self, operation: str, seconds: float, *, times: int = 1) -> None:
        """Wait ``seconds`` before answering the next ``times`` calls of ``operation`` (cut short by ``stop()``)."""
        self._check(operation, times)
        if seconds <= 0:
            raise ValueError(f"hang_next: seconds must be > 0, got {seconds}")
        self._hangs.setdefault(operation, []).append(_Hang(seconds, times))

    @staticmethod
    def _check(operation: str, times: int) -> None:
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}: expected one of {', '.join(OPERATIONS)}")
        if times < 1:
            raise ValueError(f"times must be >= 1, got {times}")

    # ------------------------------------------------------------------ inspection

    def calls_to(self, operation: str) -> list[Call]:
        return [c for c in self.calls if c.operation == operation]

    async def wait_for(self, operation: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Wait until at least ``count`` calls of ``operation`` were answered; returns all calls of it."""
        if operation not in (*OPERATIONS, "unknown"):
            raise ValueError(f"unknown operation {operation!r}: expected one of {', '.join(OPERATIONS)}")

        def done() -> list[Call]:
            return [c for c in self.calls_to(operation) if c.status is not None]

        async def arrived() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(done()) >= count)

        try:
            await asyncio.wait_for(arrived(), timeout)
        except TimeoutError:
            seen = [f"{c.operation} {c.method} {c.path} -> {c.status}" for c in self.calls]
            raise TimeoutError(
                f"BotConnectorFake: expected {count} {operation!r} call(s) within {timeout}s, "
                f"got {len(done())}; all calls so far: {seen}"
            ) from None
        return done()

    def posted(self, conversation_id: str | None = None, *, type: str | None = None) -> list[JSONDict]:
        """The activities accepted by send, reply and create (in ``conversation_id``, of ``type``), in
        order, as sent plus the ``id`` the fake gave them (and ``replyToId`` for replies)."""
        out = []
        for call in self.calls:
            activity = call.activity
            if call.operation not in _POSTING or call.status != 200 or activity is None:
                continue
            target = call.resource_id if call.operation == "create" else call.conversation_id
            if conversation_id is not None and target != conversation_id:
                continue
            if type is not None and activity.get("type") != type:
                continue
            shown = copy.deepcopy(activity)
            shown["id"] = call.response["activityId"] if call.operation == "create" else call.response["id"]
            if call.operation == "reply":
                shown.setdefault("replyToId", call.activity_id)
            out.append(shown)
        return out

    def cards(self, conversation_id: str | None = None) -> list[Any]:
        """The Adaptive Card contents of the activities :meth:`posted` there, in order."""
        return [
            a["content"]
            for activity in self.posted(conversation_id)
            for a in activity.get("attachments") or []
            if isinstance(a, dict) and a.get("contentType") == ADAPTIVE_CARD
        ]

    def reset(self) -> None:
        """Forget recorded calls and pending faults (members and activities stay)."""
        self.calls.clear()
        self.invalid.clear()
        self._faults.clear()
        self._hangs.clear()

    # ------------------------------------------------------------------ HTTP plumbing

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        operation, ids = _route(request.method, request.rel_url.raw_path)
        raw = await request.read()
        body: Any = None
        not_json = False
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                not_json = True
        call = Call(
            operation,
            request.method,
            request.path,
            ids.get("conversationId"),
            ids.get("activityId"),
            ids.get("memberId"),
            dict(request.query),
            body,
            request.headers.get("Authorization"),
            CIMultiDict(request.headers),
        )
        self.calls.append(call)
        try:
            response = await self._answer(request, call, raw, not_json)
        finally:
            if call.status is None:
                call.status = 0  # dropped, or the fake stopped under it: it still counts as handled
            async with self._changed:
                self._changed.notify_all()
        return response

    async def _answer(self, request: web.Request, call: Call, raw: bytes, not_json: bool) -> web.StreamResponse:
        hang = _take(self._hangs, call.operation)
        if hang is not None:
            try:
                await asyncio.wait_for(self._stopping.wait(), hang.seconds)
                return self._error(call, 503, "ServiceUnavailable", "the fake stopped")
            except TimeoutError:
                pass
        fault = _take(self._faults, call.operation)
        if fault is not None:
            if fault.status is None:
                if request.transport is not None:
                    request.transport.close()
                return web.Response(status=500)  # never reaches the client: the connection is gone
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            if fault.body is not None:
                call.status, call.response = fault.status, fault.body
                return web.Response(status=fault.status, text=fault.body, content_type="text/html", headers=headers)
            code = reason(fault.status).title().replace(" ", "").replace("-", "")
            return self._error(call, fault.status, code, f"injected failure: {reason(fault.status)}", headers)
        if self.require_token is not None and call.token != self.require_token:
            return self._error(call, 401, "Unauthorized", "Authorization has been denied for this request.")
        try:
            if call.operation == "unknown":
                raise _Refusal(404, "NotFound", f"the fake does not serve {call.method} {call.path}")
            if not_json:
                raise _Refusal(400, "BadArgument", "the body is not JSON")
            status, answer = self._operation(call, len(raw))
        except _Refusal as refusal:
            return self._error(call, refusal.status, refusal.code, refusal.message)
        call.status, call.response = status, answer
        if answer is None:
            return web.Response(status=status)
        return web.json_response(answer, status=status)

    def _error(
        self, call: Call, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> web.Response:
        body = error_body(code, message)
        call.status, call.response = status, body
        return web.json_response(body, status=status, headers=headers)

    # ------------------------------------------------------------------ operations

    def _operation(self, call: Call, size: int) -> tuple[int, Any]:
        conversation = call.conversation_id or ""
        if call.operation in ("send", "reply", "update"):
            self._valid(call, call.body, "Activity", size)
            activity = copy.deepcopy(call.body)
            if call.operation == "update":
                stored = self._stored(conversation, call.activity_id)
                activity["id"] = stored["id"]
                self.activities[conversation][stored["id"]] = activity
                return 200, {"id": stored["id"]}
            new_id = self._new_id()
            activity["id"] = new_id
            if call.operation == "reply":
                activity.setdefault("replyToId", call.activity_id)
            self.activities.setdefault(conversation, {})[new_id] = activity
            call.resource_id = new_id
            return 200, {"id": new_id}
        if call.operation == "delete":
            stored = self._stored(conversation, call.activity_id)
            del self.activities[conversation][stored["id"]]
            return 200, None
        if call.operation == "members":
            return 200, self._roster(conversation)
        if call.operation == "member":
            wanted = call.member_id or ""
            for member in self._roster(conversation):
                upn = str(member.get("userPrincipalName", ""))
                if wanted in (member["id"], member.get("aadObjectId")) or (upn and upn.lower() == wanted.lower()):
                    return 200, member
            raise _Refusal(404, "MemberNotFoundInConversation", f"The member {wanted!r} was not found in the conversation.")
        if call.operation == "pagedmembers":
            return 200, self._page(conversation, call.query)
        return self._create(call, size)

    def _create(self, call: Call, size: int) -> tuple[int, Any]:
        self._valid(call, call.body, "ConversationParameters", size)
        params: JSONDict = call.body
        initial = params.get("activity")
        if initial is not None and not (isinstance(initial, dict) and initial.get("type")):
            call.errors.append("activity: an initial activity needs a type")
            self.invalid.append(call)
            raise _Refusal(400, "BadArgument", "activity: an initial activity needs a type")
        conversation = f"a:fake-conversation-{next(self._ids)}"
        call.resource_id = conversation
        answer: JSONDict = {"id": conversation, "serviceUrl": self.url}
        if isinstance(initial, dict):
            activity_id = self._new_id()
            self.activities.setdefault(conversation, {})[activity_id] = {**copy.deepcopy(initial), "id": activity_id}
            answer["activityId"] = activity_id
        return 200, answer

    def _valid(self, call: Call, body: Any, definition: str, size: int) -> None:
        """Refuse (400 ``BadArgument``) a body the description's ``definition`` does not accept."""
        if not isinstance(body, dict):
            errors = [f": the body must be a JSON object ({definition}), got {type(body).__name__}"]
        else:
            errors = schema_errors_at(self._description, body, f"/definitions/{definition}")
            if definition == "Activity" and not body.get("type"):
                errors.append("type: an activity needs a type")
        if errors:
            call.errors.extend(errors)
            self.invalid.append(call)
            raise _Refusal(400, "BadArgument", f"{definition} does not validate: " + "; ".join(errors))
        if self.max_activity_bytes is not None and size > self.max_activity_bytes:
            raise _Refusal(413, "MessageSizeTooBig",
                           f"the activity is {size} bytes, more than the {self.max_activity_bytes} allowed")

    def _stored(self, conversation: str, activity_id: str | None) -> JSONDict:
        stored = self.activities.get(conversation, {}).get(activity_id or "")
        if stored is None:
            raise _Refusal(404, "ActivityNotFoundInConversation",
                           f"The activity {activity_id!r} was not found in the conversation.")
        return stored

    def _roster(self, conversation: str) -> list[JSONDict]:
        return [copy.deepcopy(m) for m, scope in self.members if scope is None or conversation in scope]

    def _page(self, conversation: str, query: Mapping[str, str]) -> JSONDict:
        roster = self._roster(conversation)
        try:
            size = int(query.get("pageSize", _DEFAULT_PAGE_SIZE))
        except ValueError:
            raise _Refusal(400, "BadArgument", f"pageSize must be a number, got {query['pageSize']!r}") from None
        if size < 1:
            raise _Refusal(400, "BadArgument", f"pageSize must be at least 1, got {size}")
        token = query.get("continuationToken")
        start = 0
        if token:
            prefix, _, offset = token.partition(":")
            if prefix != "fake-page" or not offset.isdigit() or int(offset) > len(roster):
                raise _Refusal(400, "BadArgument", f"unknown continuationToken {token!r}")
            start = int(offset)
        page: JSONDict = {"members": roster[start:start + size]}
        if start + size < len(roster):
            page["continuationToken"] = f"fake-page:{start + size}"
        return page

    def _new_id(self) -> str:
        # Teams' message ids are millisecond timestamps; counting from one keeps them stable across runs.
        return str(1700000000000 + next(self._ids))


def _route(method: str, raw_path: str) -> tuple[str, dict[str, str]]:
    """Which operation ``method raw_path`` is, and its path parameters, percent-decoded (the SDK quotes
    ids whole, so a ``/`` inside one arrives as ``%2F`` and must not split it)."""
    parts = [unquote(part) for part in raw_path.split("/")]
    if parts[:3] != ["", "v3", "conversations"]:
        return "unknown", {}
    rest = parts[3:]
    if rest in ([], [""]):
        return ("create", {}) if method == "POST" else ("unknown", {})
    ids = {"conversationId": rest[0]}
    if not rest[0]:
        return "unknown", ids
    tail = rest[1:]
    if tail == ["activities"] and method == "POST":
        return "send", ids
    if len(tail) == 2 and tail[0] == "activities" and tail[1]:
        ids["activityId"] = tail[1]
        return {"POST": "reply", "PUT": "update", "DELETE": "delete"}.get(method, "unknown"), ids
    if tail == ["members"] and method == "GET":
        return "members", ids
    if len(tail) == 2 and tail[0] == "members" and tail[1] and method == "GET":
        ids["memberId"] = tail[1]
        return "member", ids
    if tail == ["pagedmembers"] and method == "GET":
        return "pagedmembers", ids
    return "unknown", ids


def _take(queues: dict[str, list[Any]], operation: str) -> Any:
    """Use up one turn of the first fault/hang queued for ``operation``."""
    queue = queues.get(operation)
    if not queue:
        return None
    rule = queue[0]
    rule.remaining -= 1
    if rule.remaining <= 0:
        queue.pop(0)
    return rule
