"""Guarded fetching: the one place URLs that come from catalog data are fetched.

Trust (docs/security.md): the URLs the operator gives (``--catalog``, ``catalog.locations``,
``GITHUB_API_URL``) are trusted; URLs found in catalog data (``url`` Location targets,
``$text``/``$json``/``$yaml`` placeholders, ``url:`` docs references) are not. A data URL may not
reach a loopback, link-local, private (RFC 1918, ``fc00::/7``), shared (CGNAT ``100.64.0.0/10``),
unspecified, multicast or reserved address unless ``reading.allow`` in ``callboard.yaml`` lists
its host (glob, optional ``:port``) or a CIDR range holding the address. How that holds:

- the address actually connected to is checked: the guarded session's connector filters what DNS
  answered (a name that resolves to ``127.0.0.1`` is refused) and its socket factory checks the
  socket address once more just before ``connect`` — so a second, different DNS answer
  (rebinding) cannot slip past, and literal addresses (which skip DNS) are checked too;
- every spelling of an address counts: IPv4-mapped IPv6 (``::ffff:127.0.0.1``), 6to4 and NAT64
  addresses that embed an IPv4 address, and the legacy numeric forms ``inet_aton`` accepts
  (``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``) are judged by the address they mean;
- redirects are followed here, hop by hop (at most ``max_redirects``), each target checked as the
  first URL was; a redirect keeps the operator's trust only while it stays on the same origin;
- environment proxies are never used (a proxy would connect for us, past the check);
- every fetch has a connect and a total time limit (a server that drips one byte at a time is
  cut off) and stops reading at ``max_bytes + 1`` bytes whatever ``Content-Length`` says;
- answers that say "not now" are asked again: 429 (for any method, after ``Retry-After`` when it
  is short enough) and, for idempotent methods, 500/502/503/504 and connections that failed,
  with growing pauses in between; a request that ran out of time is not repeated;
- a data URL that cannot be reached gets one message whether the port is closed, the connection
  was reset or nothing answered in time, so catalog errors cannot be used to scan ports; the
  operator's own URLs keep the detailed reason. Servers that answer keep helpful errors (status).

A host allowed by name is reached without the address check (the operator said so); a host
allowed only by range is reached through the guarded session, whose check admits the range.

This is the one HTTP client of the providers: URL catalogs, GitHub (``providers.github``) and the
on-call services (``providers.oncall``) all use it, with ``trusted=True`` for the API base URLs the
operator configured and ``trusted=False`` for every URL that came from data.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import fnmatch
import json as jsonlib
import ipaddress
import re
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Literal

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from callboard.catalog.urls import strip_userinfo

from .api import Clock, SystemClock

__all__ = [
    "AddressRefused",
    "Answer",
    "FetchLimits",
    "FetchProblem",
    "Fetcher",
    "ReadingPolicy",
    "address_of",
    "guarded_socket",
    "refused_message",
    "retry_after",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_RETRY_STATUS = frozenset({500, 502, 503, 504})
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
#: what ``inet_aton`` may read as an address: numbers in decimal, octal or hex, 1 to 4 parts
_LEGACY_IPV4 = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}\.?", re.IGNORECASE)


# --- the address rule (pure) --------------------------------------------------------------


def address_of(host: str) -> IPAddress | None:
    """The address a URL host names when it is written as an address in any form (``[::1]``,
    ``::ffff:127.0.0.1``, ``2130706433``, ``0x7f.1``, ``127.1``); None for a name."""
    bare = host.strip().removeprefix("[").removesuffix("]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(bare):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare.rstrip(".")))
        except OSError:
            return None
    return None


def _embedded(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo client, NAT64, compatible)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if int(address) >> 32 == 0 and int(address) > 1:  # ::a.b.c.d (IPv4-compatible, deprecated)
        return ipaddress.IPv4Address(int(address))
    return None


def _public(address: IPAddress) -> bool:
    return address.is_global and not (
        address.is_multicast or address.is_private or address.is_loopback or address.is_link_local
        or address.is_reserved or address.is_unspecified
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
    )


@dataclass(frozen=True, slots=True)
class ReadingPolicy:
    """``reading.allow``: host globs (optionally with a port) and CIDR ranges data URLs may reach."""

    hosts: tuple[tuple[str, int | None], ...] = ()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, allow: Iterable[str]) -> ReadingPolicy:
        """From ``Settings.reading_allow`` (already validated there): ``10.0.0.0/8`` and bare
        addresses are ranges; ``host``, ``*.corp.example`` and ``host:8080`` are host globs. A bare
        address is also a host, so ``127.0.0.1`` admits the URL host ``127.0.0.1``."""
        hosts: list[tuple[str, int | None]] = []
        networks: list[Network] = []
        for item in allow:
            entry = item.strip().lower()
            try:
                network = ipaddress.ip_network(entry, strict=False)
                if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED) and network.prefixlen >= 96:
                    network = ipaddress.IPv4Network((int(network.network_address) & 0xFFFFFFFF, network.prefixlen - 96))
                networks.append(network)
                if "/" in entry:
                    continue
            except ValueError:
                pass
            host, port = entry, None
            match = re.fullmatch(r"(\[[^\]]+\]|[^:]+):(\d+)", entry)
            if match:
                host, port = match[1], int(match[2])
            hosts.append((host.removeprefix("[").removesuffix("]"), port))
        return cls(hosts=tuple(hosts), networks=tuple(networks))

    def allows_host(self, host: str, port: int | None) -> bool:
        """True when ``reading.allow`` names this host (and port, when the entry has one)."""
        name = host.lower().rstrip(".").removeprefix("[").removesuffix("]")
        return any(fnmatch.fnmatchcase(name, glob) and (want is None or want == port) for glob, want in self.hosts)

    def allows_address(self, address: IPAddress) -> bool:
        """True for a public address, or one inside an allowed range. An IPv6 address that
        carries an IPv4 address is judged by both; IPv4-mapped ones by the IPv4 address alone."""
        inner = _embedded(address)
        candidates: list[IPAddress] = [inner] if inner and isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped else [address]
        if inner is not None and inner not in candidates:
            candidates.append(inner)
        return all(_public(a) or any(a in net for net in self.networks if net.version == a.version)
                   for a in candidates)


def refused_message(url: str, host: str, address: IPAddress | None = None) -> str:
    """Why a data URL was not read, and how the operator allows it."""
    if address is None:
        what = f"{host} resolves only to internal addresses"
    elif str(address) != host.strip("[]"):
        what = f"{host} is the internal address {address}"
    else:
        what = f"{host} is an internal address"
    return (f"{strip_userinfo(url)} was not read: {what} (loopback, link-local, private or reserved), which URLs "
            "from catalog data may not reach; to allow it, list the host or its range under reading.allow in "
            "callboard.yaml")


class AddressRefused(OSError):
    """A connection to an address the reading policy refuses (raised before connecting)."""

    def __init__(self, host: str) -> None:
        super().__init__(f"{host}: an internal address; not allowed by reading.allow")
        self.host = host


def guarded_socket(policy: ReadingPolicy) -> aiohttp.connector.SocketFactoryType:
    """A socket factory that refuses, at connect time, any address ``policy`` does not allow:
    the last check, on the very address the socket is about to connect to."""

    def factory(addr_info: tuple[int, int, int, str, tuple[object, ...]]) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        try:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        except ValueError:
            raise AddressRefused(str(sockaddr[0])) from None
        if not policy.allows_address(address):
            raise AddressRefused(str(address))
        return socket.socket(family=family, type=type_, proto=proto)

    return factory


class _GuardedResolver(AbstractResolver):
    """DNS through ``inner``, keeping only the addresses the policy allows; refuses a name none
    of whose addresses is allowed."""

    def __init__(self, inner: AbstractResolver, policy: ReadingPolicy) -> None:
        self._inner = inner
        self.policy = policy

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        kept = []
        for result in found:
            try:
                address = ipaddress.ip_address(str(result["host"]).split("%", 1)[0])
            except ValueError:
                continue
            if self.policy.allows_address(address):
                kept.append(result)
        if not kept:
            raise AddressRefused(host)
        return kept

    async def close(self) -> None:  # the inner resolver belongs to the Fetcher
        return None


# --- fetching -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchLimits:
    """Time limits (seconds), the redirect hop limit and the retry rule. ``total`` covers one
    attempt's whole redirect chain; ``retries`` more attempts follow a 429, a 5xx or a failed
    connection, after ``backoff`` seconds, growing ``backoff_factor`` times each time. A
    ``Retry-After`` longer than ``max_retry_wait`` is not waited for: the 429 is the answer."""

    connect: float = 10.0
    total: float = 30.0
    max_redirects: int = 5
    retries: int = 2
    backoff: float = 0.2
    backoff_factor: float = 2.5
    max_retry_wait: float = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """What a server answered (any status): the body is complete and within the size limit."""

    url: str  # the final URL, after redirects
    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes


    def json(self) -> Any:
        """The body as JSON; None when it is not JSON."""
        try:
            return jsonlib.loads(self.body)
        except ValueError:
            return None


ProblemKind = Literal["refused", "unreachable", "timeout", "too_big", "redirects", "invalid"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchProblem:
    """Why nothing (complete) was read. ``message`` is safe to show: no credentials, and for
    data URLs no hint whether a port is open (so only trusted URLs ever report ``timeout``;
    a data URL that did not answer in time is ``unreachable`` like any other)."""

    kind: ProblemKind
    url: str  # without credentials
    message: str
    timed_out: bool = False  # ran out of time (also for data URLs, whose kind does not say so): not asked again


@dataclass
class _Sessions:
    open: aiohttp.ClientSession
    guarded: aiohttp.ClientSession
    resolver: AbstractResolver
    owns_resolver: bool


class Fetcher:
    """The shared HTTP client: requests with the reading policy, time and size limits and retries
    applied. One per app (it keeps a connection pool per trust level); ``resolver`` is injectable
    (tests map names to addresses), and so is ``clock`` (the pauses between retries)."""

    def __init__(self, *, allow: Iterable[str] = (), limits: FetchLimits | None = None,
                 resolver: AbstractResolver | None = None, clock: Clock | None = None) -> None:
        self.policy = ReadingPolicy.parse(allow)
        self.limits = limits or FetchLimits()
        self.clock: Clock = clock or SystemClock()
        self._resolver = resolver
        self._sessions: _Sessions | None = None

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._sessions is not None:
            sessions, self._sessions = self._sessions, None
            await sessions.open.close()
            await sessions.guarded.close()
            if sessions.owns_resolver:
                await sessions.resolver.close()

    def _open_sessions(self) -> _Sessions:
        if self._sessions is None:
            owns = self._resolver is None
            resolver = self._resolver or aiohttp.ThreadedResolver()
            # no total here: the whole chain has one deadline (see request); trust_env=False: no proxies
            timeout = aiohttp.ClientTimeout(total=None, connect=self.limits.connect, sock_connect=self.limits.connect)
            self._sessions = _Sessions(
                open=aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver), timeout=timeout,
                                           trust_env=False),
                guarded=aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(resolver=_GuardedResolver(resolver, self.policy),
                                                   socket_factory=guarded_socket(self.policy)),
                    timeout=timeout, trust_env=False),
                resolver=resolver,
                owns_resolver=owns,
            )
        return self._sessions

    async def get(self, url: str, *, trusted: bool, max_bytes: int, headers: Mapping[str, str] | None = None,
                  params: Sequence[tuple[str, str]] = (), timeout: float | None = None) -> Answer | FetchProblem:
        """GET ``url``; ``trusted`` when the operator gave it. Redirects are followed here."""
        return await self.request("GET", url, trusted=trusted, max_bytes=max_bytes, headers=headers, params=params,
                                  timeout=timeout)

    async def request(self, method: str, url: str, *, trusted: bool, max_bytes: int,
                      headers: Mapping[str, str] | None = None, params: Sequence[tuple[str, str]] = (),
                      json: Any = None, timeout: float | None = None) -> Answer | FetchProblem:
        """One request (``json``: a body sent as JSON), asked again as ``FetchLimits`` says; the
        last answer, whatever its status, or why there was none. ``timeout`` replaces the
        limits' ``total`` for this request (each attempt)."""
        shown = strip_userinfo(url)
        try:
            first = URL(url)
            if params:
                first = first.update_query(list(params))
        except (ValueError, TypeError):
            return FetchProblem(kind="invalid", url=shown, message=f"{shown} is not a valid URL; not read")
        method = method.upper()
        body = None if json is None else jsonlib.dumps(json).encode()
        sent = dict(headers or {})
        if body is not None:
            sent.setdefault("Content-Type", "application/json")
        total = self.limits.total if timeout is None else timeout
        delay = self.limits.backoff
        for attempt in range(self.limits.retries + 1):
            got = await self._attempt(method, first, trusted=trusted, max_bytes=max_bytes, headers=dict(sent),
                                      body=body, total=total)
            if attempt == self.limits.retries:
                return got
            wait = self._retry_wait(method, got, delay)
            if wait is None:
                return got
            await self.clock.sleep(wait)
            delay *= self.limits.backoff_factor
        raise AssertionError("unreachable: the last attempt returns")  # pragma: no cover

    def _retry_wait(self, method: str, got: Answer | FetchProblem, delay: float) -> float | None:
        """How long to pause before asking again; None when the answer stands."""
        if isinstance(got, FetchProblem):
            return delay if got.kind == "unreachable" and not got.timed_out and method in _IDEMPOTENT else None
        if got.status == 429:
            asked = retry_after(got.headers.get("Retry-After"), self.clock.now())
            wait = delay if asked is None else asked
            return wait if wait <= self.limits.max_retry_wait else None
        if got.status in _RETRY_STATUS and method in _IDEMPOTENT:
            return delay
        return None

    async def _attempt(self, method: str, first: URL, *, trusted: bool, max_bytes: int, headers: dict[str, str],
                       body: bytes | None, total: float) -> Answer | FetchProblem:
        shown = strip_userinfo(str(first))
        try:
            async with asyncio.timeout(total):
                return await self._follow(method, first, trusted=trusted, max_bytes=max_bytes, headers=headers,
                                          body=body, total=total)
        except TimeoutError:
            if trusted:
                return FetchProblem(kind="timeout", url=shown, timed_out=True, message=(
                    f"could not read {shown}: no complete answer within {total:g} s (the time limit)"))
            return dataclasses.replace(_unreachable(shown, total), timed_out=True)

    async def _follow(self, method: str, first: URL, *, trusted: bool, max_bytes: int, headers: dict[str, str],
                      body: bytes | None, total: float) -> Answer | FetchProblem:
        current = first
        trust = trusted
        for _hop in range(self.limits.max_redirects + 1):
            shown = strip_userinfo(str(current))
            if current.scheme not in ("http", "https") or not current.host:
                return FetchProblem(kind="invalid", url=shown, message=f"{shown} is not an http(s) URL; not read")
            trust = trust and current.origin() == first.origin()
            if not trust:
                headers.pop("Authorization", None)  # credentials the operator configured go to their host only
            session, refusal = self._session_for(current, trust)
            if refusal is not None:
                return refusal
            try:
                async with session.request(method, current, allow_redirects=False, headers=headers,
                                           data=body) as resp:
                    location = resp.headers.get("Location")
                    if resp.status in _REDIRECTS and location:
                        current = current.join(URL(location))
                        if resp.status not in (307, 308) and method != "HEAD":  # as browsers do: GET, no body
                            method, body = "GET", None
                            headers.pop("Content-Type", None)
                        continue
                    content = await _read_limited(resp, max_bytes)
                    if content is None:
                        return FetchProblem(kind="too_big", url=shown, message=(
                            f"{shown} is over the {max_bytes:,}-byte limit; not read"))
                    return Answer(url=str(current), status=resp.status, reason=resp.reason or "",
                                  headers=dict(resp.headers), body=content)
            except (aiohttp.ClientError, OSError, ValueError) as exc:
                if _refused(exc):
                    host = current.host or ""
                    return FetchProblem(kind="refused", url=shown,
                                        message=refused_message(shown, host, address_of(host)))
                if trust:
                    detail = strip_userinfo(str(exc) or type(exc).__name__)
                    return FetchProblem(kind="unreachable", url=shown, message=f"could not read {shown}: {detail}")
                return _unreachable(shown, total)
        shown = strip_userinfo(str(current))
        return FetchProblem(kind="redirects", url=shown, message=(
            f"{strip_userinfo(str(first))}: more than {self.limits.max_redirects} redirects (the last to {shown}); not read"))

    def _session_for(self, url: URL, trusted: bool) -> tuple[aiohttp.ClientSession, FetchProblem | None]:
        sessions = self._open_sessions()
        host = url.host or ""
        if trusted or self.policy.allows_host(host, url.port):
            return sessions.open, None
        address = address_of(host)
        if address is not None and not self.policy.allows_address(address):
            shown = strip_userinfo(str(url))
            return sessions.guarded, FetchProblem(kind="refused", url=shown,
                                                  message=refused_message(shown, host, address))
        return sessions.guarded, None


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (a number, or an HTTP date after ``now``);
    None when absent or unreadable."""
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max((when - now).total_seconds(), 0.0)


def _unreachable(shown: str, total: float) -> FetchProblem:
    """The one message for a data URL that gave no answer: closed, reset, unresolvable or silent."""
    return FetchProblem(kind="unreachable", url=shown, message=(
        f"could not read {shown}: no answer (the host could not be reached, or did not answer within {total:g} s)"))


def _refused(exc: BaseException) -> bool:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, AddressRefused):
            return True
        todo.extend([current.__cause__, current.__context__, getattr(current, "os_error", None)])
    return False


async def _read_limited(resp: aiohttp.ClientResponse, max_bytes: int) -> bytes | None:
    """The body, or None once it is over ``max_bytes`` (never reads more than one chunk past it)."""
    if resp.content_length is not None and resp.content_length > max_bytes:
        return None
    data = bytearray()
    async for chunk in resp.content.iter_chunked(65536):
        data.extend(chunk)
        if len(data) > max_bytes:
            return None
    return bytes(data)
