"""The Bot Connector calls Callboard makes — post a reply, update a card, look a member up — over
one aiohttp session, with the Bot Framework SDK's own credentials.

Why not the SDK's ``ConnectorClient``: it serializes every outgoing ``Activity`` with msrest and
sends it with ``requests`` in a thread pool. With an Adaptive Card that cost ~5 ms of CPU per
answer on the server's event loop (``docs/benchmarks.md``, Teams), more than the rest of a message's
handling. Here the activity is JSON we already have, sent with the aiohttp client the server runs
on. What stays the SDK's: the credentials (``AppCredentials`` from the SDK's connector factory,
the same object its client would use, for every app type and cloud), so the token is the one the
SDK would send. Requests are authenticated, validated and turned into turns by the SDK as before;
only these outbound calls are ours.

Paths and bodies are those of the Bot Connector REST API (``Conversations_ReplyToActivity``,
``Conversations_SendToConversation``, ``Conversations_UpdateActivity``,
``Conversations_GetConversationMember``).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import yarl
from botframework.connector.auth import AuthenticationConstants, BotFrameworkAuthentication, ClaimsIdentity

__all__ = ["BotConnector", "ConnectorError"]

#: Answers worth one more try: the request was not taken (throttled, the service unavailable, or no
#: connection was made). Others (a 500, a dropped answer to a POST) might have posted the message:
#: trying again could post it twice.
_RETRY_STATUS = frozenset({429, 503})
_TRIES = 3
_BACKOFF_S = (0.25, 0.5)
#: A longer Retry-After is not waited out: the call is tried again sooner, and fails if still refused
#: (a reply that late is not worth holding the conversation for).
_RETRY_AFTER_MAX_S = 2.0
#: aiohttp's own bounds; the callers bound each call more tightly (``CONNECTOR_LIMIT_S``, 1 s for a member)
_TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=10)
#: How long a token from the credentials is reused. MSAL hands out only tokens with more than five
#: minutes left, so one minute is always safe, and saves a thread hop per call.
_TOKEN_REUSE_S = 60.0
_MAX_ANSWER = 1 << 20


class ConnectorError(Exception):
    """A call to the Bot Connector failed. The text names the call and the HTTP status, never the
    answer's body (a proxy's HTML error page is nothing to show or log)."""


class BotConnector:
    """Outbound calls to the Bot Connector at an activity's ``serviceUrl``, signed as the SDK signs them."""

    def __init__(self, auth: BotFrameworkAuthentication, app_id: str | None) -> None:
        self._auth = auth
        self._app_id = app_id or ""
        self._session: aiohttp.ClientSession | None = None
        self._credentials: dict[str, Any] = {}  # service URL -> the SDK's AppCredentials
        self._tokens: dict[str, tuple[str, float]] = {}  # service URL -> (token, when fetched)
        self._proxies: dict[str, str | None] = {}  # scheme://host -> the proxy the environment names

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- the calls ----------------------------------------------------------------------------

    async def post(self, reference: Mapping[str, Any], body: Mapping[str, Any]) -> str | None:
        """Post ``body`` (an activity) to the conversation ``reference`` names, as a reply to the
        activity it names (in its thread, in a channel) when it names one. The new activity's id."""
        activity = addressed(reference, body)
        conversation = _segment(activity["conversation"]["id"])
        reply_to = activity.get("replyToId")
        path = f"v3/conversations/{conversation}/activities"
        if reply_to:
            path += f"/{_segment(reply_to)}"
        answer = await self._call("POST", reference["serviceUrl"], path, activity, retry_unsent_only=True)
        posted = answer.get("id") if isinstance(answer, dict) else None
        return posted if isinstance(posted, str) else None

    async def update(self, reference: Mapping[str, Any], activity_id: str, body: Mapping[str, Any]) -> None:
        """Replace the activity ``activity_id`` (a card the bot posted) in ``reference``'s conversation."""
        activity = {**addressed(reference, body), "id": activity_id}
        conversation = _segment(activity["conversation"]["id"])
        await self._call("PUT", reference["serviceUrl"], f"v3/conversations/{conversation}/activities/"
                         f"{_segment(activity_id)}", activity, retry_unsent_only=False)

    async def member(self, service_url: str, conversation_id: str, member_id: str) -> dict[str, Any]:
        """What the conversation's roster says about ``member_id`` (a ``TeamsChannelAccount``)."""
        answer = await self._call("GET", service_url, f"v3/conversations/{_segment(conversation_id)}/members/"
                                  f"{_segment(member_id)}", None, retry_unsent_only=False)
        if not isinstance(answer, dict):
            raise ConnectorError("the member lookup answered something that is not a member")
        return answer

    # --- the plumbing ---------------------------------------------------------------------------

    async def _call(self, method: str, service_url: str, path: str, body: Any, *, retry_unsent_only: bool) -> Any:
        # already quoted: yarl would otherwise decode %3A %40 %3B back (a bare ";" in a path is cut off
        # as a path parameter by some servers and proxies); the SDK's client sends them quoted too
        url = yarl.URL(service_url.rstrip("/") + "/" + path, encoded=True)
        proxy = self._proxy(service_url)
        data = None if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json; charset=utf-8"} if data is not None else {}
        authorization = await self._authorization(service_url)
        if authorization:
            headers["Authorization"] = authorization
        session = self._client()
        for attempt in range(_TRIES):
            last = attempt == _TRIES - 1
            try:
                async with session.request(method, url, data=data, headers=headers, allow_redirects=False,
                                           proxy=proxy) as response:
                    status, retry_after = response.status, response.headers.get("Retry-After")
                    raw = b"" if status >= 300 else await _body(response, method, path)
            except aiohttp.ClientConnectorError as exc:  # no connection was made: nothing was sent
                if last:
                    raise ConnectorError(f"the Bot Connector is unreachable ({type(exc).__name__}) for "
                                         f"{_name(method, path)}") from None
                await asyncio.sleep(_BACKOFF_S[attempt])
                continue
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:  # sent, and then the answer was lost
                if retry_unsent_only or last:
                    raise ConnectorError(f"the Bot Connector dropped {_name(method, path)} "
                                         f"({type(exc).__name__})") from None
                await asyncio.sleep(_BACKOFF_S[attempt])
                continue
            if status in _RETRY_STATUS and not last:  # the refusal is let go of (its body unread) before the wait
                await asyncio.sleep(_wait(retry_after, attempt))
                continue
            if status >= 300:
                raise ConnectorError(f"the Bot Connector answered {status} to {_name(method, path)}")
            if not raw.strip():
                return None
            try:
                return json.loads(raw)
            except ValueError:  # a success that is not JSON: what was asked for happened
                return None
        raise ConnectorError(f"the Bot Connector kept refusing {_name(method, path)}")

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # no cookies, no .netrc (trust_env would send its credentials, or clash with ours): the
            # proxy is chosen per host by _proxy
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), trust_env=False,
                                                  timeout=_TIMEOUT,
                                                  connector=aiohttp.TCPConnector(limit=64, ttl_dns_cache=300))
        return self._session

    def _proxy(self, service_url: str) -> str | None:
        """The proxy ``HTTPS_PROXY``/``HTTP_PROXY`` name for ``service_url``, unless ``NO_PROXY``
        excludes its host (the environment is trusted; the SDK's requests-based client honoured them)."""
        parts = urlsplit(service_url)
        where = f"{parts.scheme}://{parts.netloc}"
        if where not in self._proxies:
            proxy = urllib.request.getproxies().get(parts.scheme)
            if proxy and urllib.request.proxy_bypass(parts.hostname or ""):
                proxy = None
            self._proxies[where] = proxy or None
        return self._proxies[where]

    async def _authorization(self, service_url: str) -> str | None:
        """``Bearer <token>`` as the SDK's credentials for ``service_url`` give it; None without an
        app id (development mode), as the SDK sends none then."""
        if not self._app_id or self._app_id == AuthenticationConstants.ANONYMOUS_SKILL_APP_ID:
            return None
        credentials = self._credentials.get(service_url)
        if credentials is None:
            # what CloudAdapter.continue_conversation does: claims for our app id, the originating audience
            claims = ClaimsIdentity({AuthenticationConstants.AUDIENCE_CLAIM: self._app_id,
                                     AuthenticationConstants.APP_ID_CLAIM: self._app_id}, True)
            factory = self._auth.create_connector_factory(claims)
            client = await factory.create(service_url, self._auth.get_originating_audience())
            credentials = client.config.credentials
            if len(self._credentials) >= 64:  # service URLs are per region: a handful in practice
                oldest = next(iter(self._credentials))
                del self._credentials[oldest]
                self._tokens.pop(oldest, None)
            self._credentials[service_url] = credentials
        kept = self._tokens.get(service_url)
        now = time.monotonic()
        if kept is not None and now - kept[1] < _TOKEN_REUSE_S:
            return f"Bearer {kept[0]}"
        token = await asyncio.to_thread(credentials.get_access_token)  # MSAL: its cache, else the network
        self._tokens[service_url] = (token, now)
        return f"Bearer {token}"


def addressed(reference: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` addressed from ``reference`` (a conversation reference as JSON) as the SDK's
    ``TurnContext.apply_conversation_reference`` does for an outgoing activity: from the bot, to
    the user, a reply to the referenced activity."""
    conversation = reference.get("conversation")
    if not isinstance(conversation, Mapping) or not isinstance(conversation.get("id"), str) or not conversation["id"]:
        raise ConnectorError("the conversation reference names no conversation")
    if not isinstance(reference.get("serviceUrl"), str):
        raise ConnectorError("the conversation reference has no serviceUrl")
    activity: dict[str, Any] = dict(body)
    for key, value in (("channelId", reference.get("channelId")), ("locale", reference.get("locale")),
                       ("serviceUrl", reference["serviceUrl"]), ("conversation", dict(conversation)),
                       ("from", reference.get("bot")), ("recipient", reference.get("user")),
                       ("replyToId", reference.get("activityId"))):
        if value is not None:
            activity[key] = value
    return activity


async def _body(response: aiohttp.ClientResponse, method: str, path: str) -> bytes:
    """The whole answer (it may come in several pieces), at most ``_MAX_ANSWER`` bytes."""
    if response.content_length is not None and response.content_length > _MAX_ANSWER:
        raise ConnectorError(f"the Bot Connector's answer to {_name(method, path)} is too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > _MAX_ANSWER:
            raise ConnectorError(f"the Bot Connector's answer to {_name(method, path)} is too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _segment(value: str) -> str:
    """One path segment: a channel thread's ``19:…@thread.tacv2;messageid=…`` id quoted whole."""
    return quote(value, safe="")


def _name(method: str, path: str) -> str:
    """The call, for a message: ``POST …/activities`` with the ids left out."""
    parts = path.split("/")
    return f"{method} " + "/".join(p if p in ("v3", "conversations", "activities", "members") else "…" for p in parts)


def _wait(retry_after: str | None, attempt: int) -> float:
    try:
        seconds = float(retry_after) if retry_after is not None else _BACKOFF_S[attempt]
    except ValueError:  # an HTTP date, or rubbish: our own backoff
        seconds = _BACKOFF_S[attempt]
    return min(max(seconds, 0.0), _RETRY_AFTER_MAX_S)
