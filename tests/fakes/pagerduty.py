"""A local fake of the parts of PagerDuty's REST API v2 that Callboard calls, served by a real aiohttp
server on 127.0.0.1 and answering in the shapes of ``shared/reference/apis/pagerduty/rest-api.json``::

    from tests.fakes.pagerduty import PagerDutyFake

    async with PagerDutyFake() as fake:          # or: url = await fake.start() ... await fake.stop()
        fake.add_user("PUALICE", "Alice Liddell", "alice@example.com", time_zone="Europe/Dublin")
        fake.add_policy("PPAY", "Payments")
        fake.add_service("PSVC1", "payments-api", "PPAY", integration_keys=["key-1"])
        fake.add_oncall("PPAY", 1, "PUALICE", start=monday, end=next_monday, schedule_id="PSCHED1")
        headers = {"Authorization": f"Token token={fake.token}"}
        await session.get(f"{fake.url}/oncalls", params=..., headers=headers)

What it serves (``GET`` only):

* ``/services/{id}`` -> ``{"service": Service}``; ``include[]=integrations`` makes the integration
  entries full objects (with ``integration_key``). Unknown id -> 404 ``{"error": {"message":
  "Not Found", "code": 2100}}``.
* ``/services`` (``include[]``, ``query``, ``limit``, ``offset``, ``total``) -> ``{"services": [...],
  "limit", "offset", "more", "total"}``, sorted by name as PagerDuty does by default.
* ``/oncalls`` (``escalation_policy_ids[]``, ``user_ids[]``, ``schedule_ids[]``, ``include[]=users``,
  ``since``, ``until``, ``earliest``, ``time_zone``, ``limit``, ``offset``, ``total``) ->
  ``{"oncalls": [...], ...pagination}``. An entry is returned when its ``[start, end)`` overlaps the
  window ``[since, until]`` (both default to "now", i.e. :attr:`PagerDutyFake.clock`); ``start``/``end``
  ``None`` means always on call (a user put directly on a level). Sorted by ``escalation_level``, then
  ``start`` (permanent entries first), then insertion order. ``earliest=true`` keeps only the earliest
  entry per (policy, level, user).
* Pagination is PagerDuty's classic offset kind: ``limit`` defaults to 25 and is capped at 100 (the
  capped value is echoed), ``more`` says whether another page exists, ``total`` is ``null`` unless
  ``total=true``. Bad ``limit``/``offset``/dates -> 400 ``{"error": {"message": "Invalid Input
  Provided", "code": 2001, "errors": [...]}}``.
* Auth: every request needs ``Authorization: Token token=<fake.token>``, else 401 ``{"error":
  {"message": "Unauthorized", "code": 2006}}``. Unknown paths answer PagerDuty's JSON 404.
* Times are rendered in UTC as ``2024-01-01T09:00:00Z``, or in ``time_zone=`` when given.
* ``self`` links point at the fake itself, ``html_url`` at ``https://<subdomain>.pagerduty.com/...``.

Where the fake knowingly leaves the description's schema (the brief asks for these shapes, and real
PagerDuty answers them): with ``include[]=users`` an on-call's ``user`` is a full user (``"type":
"user"``) while the ``Oncall`` schema only allows a ``user_reference``; and permanent on-calls carry
``"schedule": null, "start": null, "end": null`` although the schema marks none of them nullable.
Full integration objects keep the ``..._reference`` type the schema's enum demands.

Recording: ``fake.calls`` lists every request as :class:`Call` (``status`` filled in once answered);
``calls_to(path_prefix)`` filters them.

Failure injection (matched by path prefix, consumed in the order queued, checked before auth):
``fail_next("/oncalls", 429)`` answers with ``Retry-After: 1`` and a PagerDuty error body (``retry_after=``
and ``body=`` override; a ``str`` body is sent as-is); ``hang_next("/services", 5)`` sleeps before
answering. A hang is cut short when the fake stops, so ``stop()`` never waits for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from ._base import Call, Fault, RestFake, reason

__all__ = ["Call", "PagerDutyFake"]

JSONDict = dict[str, Any]

DEFAULT_LIMIT = 25
MAX_LIMIT = 100

_ERROR_CODES = {400: 2001, 401: 2006, 403: 2010, 404: 2100, 429: 2020}
_ERROR_MESSAGES = {
    400: "Invalid Input Provided",
    401: "Unauthorized",
    403: "Access Denied",
    404: "Not Found",
    429: "Rate Limit Exceeded",
}


@dataclass
class _User:
    id: str
    name: str
    email: str
    time_zone: str


@dataclass
class _Policy:
    id: str
    name: str


@dataclass
class _Service:
    id: str
    name: str
    policy_id: str
    integration_keys: tuple[str, ...]
    description: str = ""


@dataclass
class _Oncall:
    policy_id: str
    level: int
    user_id: str
    start: datetime | None
    end: datetime | None
    schedule_id: str | None
    schedule_name: str | None


@dataclass
class _Query:
    """Parsed pagination + time parameters of one request."""

    limit: int = DEFAULT_LIMIT
    offset: int = 0
    total: bool = False
    tz: tzinfo = UTC
    errors: list[str] = field(default_factory=list)


class _BadRequest(Exception):
    def __init__(self, *errors: str) -> None:
        super().__init__("; ".join(errors))
        self.errors = list(errors)


class PagerDutyFake(RestFake):
    """A PagerDuty REST API v2 double on a random local port. See the module docstring for usage."""

    def __init__(
        self,
        token: str = "pd-test-token",
        *,
        subdomain: str = "callboard-test",
        clock: Callable[[], datetime] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(host)
        self.token = token
        self.subdomain = subdomain
        #: "now" for ``/oncalls`` without ``since``/``until``; tests may replace it to freeze time.
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.users: dict[str, _User] = {}
        self.policies: dict[str, _Policy] = {}
        self.services: dict[str, _Service] = {}
        self.oncalls: list[_Oncall] = []

    # ------------------------------------------------------------------ seeding

    def add_user(self, id: str, name: str, email: str, time_zone: str = "UTC") -> JSONDict:  # noqa: A002
        """Add (or replace) a user; returns the full user object as ``include[]=users`` shows it."""
        self.users[id] = _User(id, name, email, time_zone)
        return self._user_json(self.users[id], "https://api.pagerduty.com")

    def add_policy(self, id: str, name: str) -> JSONDict:  # noqa: A002
        """Add (or replace) an escalation policy; returns its reference."""
        self.policies[id] = _Policy(id, name)
        return self._policy_ref(id, "https://api.pagerduty.com")

    def add_service(
        self, id: str, name: str, policy_id: str, integration_keys: Iterable[str] = ()  # noqa: A002
    ) -> JSONDict:
        """Add (or replace) a service on an existing policy, with one Events API integration per key."""
        if policy_id not in self.policies:
            raise KeyError(f"unknown escalation policy {policy_id!r}: add_policy() it first")
        self.services[id] = _Service(id, name, policy_id, tuple(integration_keys))
        return self._service_json(self.services[id], "https://api.pagerduty.com", full_integrations=False)

    def remove_service(self, id: str) -> None:  # noqa: A002
        """Forget a service; ``GET /services/{id}`` answers 404 afterwards."""
        del self.services[id]

    def add_oncall(
        self,
        policy_id: str,
        level: int,
        user_id: str,
        start: datetime | None = None,
        end: datetime | None = None,
        schedule_id: str | None = None,
        schedule_name: str | None = None,
    ) -> JSONDict:
        """Put a user on call for ``[start, end)`` on level ``level`` of a policy.

        ``start``/``end`` are aware datetimes, or ``None`` for "always" (how PagerDuty reports a user
        targeted directly by an escalation rule). Give ``schedule_id`` (and optionally
        ``schedule_name`` for its ``summary``) when the shift comes from a schedule.
        """
        if policy_id not in self.policies:
            raise KeyError(f"unknown escalation policy {policy_id!r}: add_policy() it first")
        if user_id not in self.users:
            raise KeyError(f"unknown user {user_id!r}: add_user() it first")
        for when in (start, end):
            if when is not None and when.utcoffset() is None:
                raise ValueError("start/end must be timezone-aware datetimes")
        if start is not None and end is not None and end <= start:
            raise ValueError("end must be after start")
        entry = _Oncall(policy_id, level, user_id, start, end, schedule_id, schedule_name)
        self.oncalls.append(entry)
        return self._oncall_json(entry, "https://api.pagerduty.com", full_users=False, tz=UTC)

    # ------------------------------------------------------------------ behaviour control

    def _routes(self) -> list[web.RouteDef]:
        return [
            web.get("/services", self._list_services),
            web.get("/services/{id}", self._get_service),
            web.get("/oncalls", self._list_oncalls),
        ]

    async def _dispatch(self, request: web.Request, handler: Any) -> web.StreamResponse:
        fault = await self._injected(request)
        if fault is not None:
            return self._fault_response(fault)
        if request.headers.get("Authorization", "").strip() != f"Token token={self.token}":
            return _error(401)
        try:
            response: web.StreamResponse = await handler(request)
        except _BadRequest as err:
            return _error(400, errors=err.errors)
        except web.HTTPNotFound:
            return _error(404)
        except web.HTTPMethodNotAllowed:
            return _error(405, "Method Not Allowed", 2000)
        return response

    @staticmethod
    def _fault_response(fault: Fault) -> web.Response:
        headers = fault.headers()
        if isinstance(fault.body, str):
            return web.Response(status=fault.status, text=fault.body, headers=headers)
        if fault.body is not None:
            return web.json_response(fault.body, status=fault.status, headers=headers)
        message = _ERROR_MESSAGES.get(fault.status) or reason(fault.status)
        code = _ERROR_CODES.get(fault.status, 2000)
        return web.json_response({"error": {"message": message, "code": code}}, status=fault.status, headers=headers)

    # ------------------------------------------------------------------ handlers

    async def _get_service(self, request: web.Request) -> web.Response:
        service = self.services.get(request.match_info["id"])
        if service is None:
            return _error(404)
        full = "integrations" in _multi(request, "include")
        return web.json_response({"service": self._service_json(service, _base(request), full_integrations=full)})

    async def _list_services(self, request: web.Request) -> web.Response:
        q = _paging(request)
        full = "integrations" in _multi(request, "include")
        wanted = request.query.get("query", "").lower()
        services = sorted(
            (s for s in self.services.values() if wanted in s.name.lower()), key=lambda s: (s.name.lower(), s.id)
        )
        page, more = _page(services, q)
        return web.json_response({
            "services": [self._service_json(s, _base(request), full_integrations=full) for s in page],
            **_pagination(q, more, len(services)),
        })

    async def _list_oncalls(self, request: web.Request) -> web.Response:
        q = _paging(request)
        now = self.clock()
        since = _parse_time(request, "since", q.tz) or now
        until = _parse_time(request, "until", q.tz) or now
        if until < since:
            raise _BadRequest("Until cannot be before since")
        policies = set(_multi(request, "escalation_policy_ids"))
        users = set(_multi(request, "user_ids"))
        schedules = set(_multi(request, "schedule_ids"))
        entries = [
            e
            for e in self.oncalls
            if (not policies or e.policy_id in policies)
            and (not users or e.user_id in users)
            and (not schedules or e.schedule_id in schedules)
            and _overlaps(e, since, until)
        ]
        entries.sort(key=lambda e: (e.level, e.start or datetime.min.replace(tzinfo=UTC)))
        if _truthy(request.query.get("earliest")):
            seen: set[tuple[str, int, str]] = set()
            firsts = []
            for e in entries:
                if (e.policy_id, e.level, e.user_id) not in seen:
                    seen.add((e.policy_id, e.level, e.user_id))
                    firsts.append(e)
            entries = firsts
        page, more = _page(entries, q)
        full = "users" in _multi(request, "include")
        return web.json_response({
            "oncalls": [self._oncall_json(e, _base(request), full_users=full, tz=q.tz) for e in page],
            **_pagination(q, more, len(entries)),
        })

    # ------------------------------------------------------------------ JSON shapes

    def _html(self, path: str) -> str:
        return f"https://{self.subdomain}.pagerduty.com/{path}"

    def _policy_ref(self, policy_id: str, base: str) -> JSONDict:
        policy = self.policies[policy_id]
        return {
            "id": policy.id,
            "type": "escalation_policy_reference",
            "summary": policy.name,
            "self": f"{base}/escalation_policies/{policy.id}",
            "html_url": self._html(f"escalation_policies/{policy.id}"),
        }

    def _service_ref(self, service: _Service, base: str) -> JSONDict:
        return {
            "id": service.id,
            "type": "service_reference",
            "summary": service.name,
            "self": f"{base}/services/{service.id}",
            "html_url": self._html(f"service-directory/{service.id}"),
        }

    def _integration_json(self, service: _Service, index: int, key: str, base: str, *, full: bool) -> JSONDict:
        integration_id = f"PI{service.id}{index}"
        ref: JSONDict = {
            "id": integration_id,
            # The schema's IntegrationReference enum only has ``..._reference`` types, full objects included.
            "type": "generic_events_api_inbound_integration_reference",
            "summary": "Events API v2",
            "self": f"{base}/services/{service.id}/integrations/{integration_id}",
            "html_url": self._html(f"services/{service.id}/integrations/{integration_id}"),
        }
        if full:
            ref.update({
                "name": "Events API v2",
                "service": self._service_ref(service, base),
                "created_at": "2024-01-01T00:00:00Z",
                "vendor": None,
                "integration_key": key,
            })
        return ref

    def _service_json(self, service: _Service, base: str, *, full_integrations: bool) -> JSONDict:
        return {
            "id": service.id,
            "type": "service",
            "summary": service.name,
            "self": f"{base}/services/{service.id}",
            "html_url": self._html(f"service-directory/{service.id}"),
            "name": service.name,
            "description": service.description,
            "auto_resolve_timeout": 14400,
            "acknowledgement_timeout": 1800,
            "created_at": "2024-01-01T00:00:00Z",
            "status": "active",
            "alert_creation": "create_alerts_and_incidents",
            "escalation_policy": self._policy_ref(service.policy_id, base),
            "teams": [],
            "integrations": [
                self._integration_json(service, i, key, base, full=full_integrations)
                for i, key in enumerate(service.integration_keys, 1)
            ],
            "incident_urgency_rule": {"type": "constant", "urgency": "high"},
        }

    def _user_ref(self, user: _User, base: str) -> JSONDict:
        return {
            "id": user.id,
            "type": "user_reference",
            "summary": user.name,
            "self": f"{base}/users/{user.id}",
            "html_url": self._html(f"users/{user.id}"),
        }

    def _user_json(self, user: _User, base: str) -> JSONDict:
        return {
            **self._user_ref(user, base),
            "type": "user",
            "name": user.name,
            "email": user.email,
            "time_zone": user.time_zone,
            "color": "green",
            "role": "user",
            "avatar_url": "https://secure.gravatar.com/avatar/0?d=mm",
            "description": None,
            "invitation_sent": False,
            "job_title": "",
            "teams": [],
            "contact_methods": [],
            "notification_rules": [],
        }

    def _oncall_json(self, entry: _Oncall, base: str, *, full_users: bool, tz: tzinfo) -> JSONDict:
        user = self.users[entry.user_id]
        schedule = None
        if entry.schedule_id is not None:
            schedule = {
                "id": entry.schedule_id,
                "type": "schedule_reference",
                "summary": entry.schedule_name or entry.schedule_id,
                "self": f"{base}/schedules/{entry.schedule_id}",
                "html_url": self._html(f"schedules/{entry.schedule_id}"),
            }
        return {
            "escalation_policy": self._policy_ref(entry.policy_id, base),
            "escalation_level": entry.level,
            "schedule": schedule,
            "user": self._user_json(user, base) if full_users else self._user_ref(user, base),
            "start": _iso(entry.start, tz),
            "end": _iso(entry.end, tz),
        }


# ---------------------------------------------------------------------- helpers


def _error(
    status: int, message: str | None = None, code: int | None = None, errors: list[str] | None = None
) -> web.Response:
    err: JSONDict = {
        "message": message or _ERROR_MESSAGES.get(status, reason(status)),
        "code": code if code is not None else _ERROR_CODES.get(status, 2000),
    }
    if errors:
        err["errors"] = errors
    return web.json_response({"error": err}, status=status)


def _base(request: web.Request) -> str:
    return str(request.url.origin())


def _multi(request: web.Request, name: str) -> list[str]:
    """Values of an array parameter, sent PagerDuty-style (``name[]=a&name[]=b``) or plainly."""
    values = request.query.getall(f"{name}[]", []) + request.query.getall(name, [])
    return [v for raw in values for v in raw.split(",") if v]


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1", "yes")


def _int_param(request: web.Request, name: str, default: int, minimum: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _BadRequest(f"{name.capitalize()} must be an integer") from None
    if value < minimum:
        raise _BadRequest(f"{name.capitalize()} must be at least {minimum}")
    return value


def _paging(request: web.Request) -> _Query:
    q = _Query(
        limit=min(_int_param(request, "limit", DEFAULT_LIMIT, 1), MAX_LIMIT),
        offset=_int_param(request, "offset", 0, 0),
        total=_truthy(request.query.get("total")),
    )
    zone = request.query.get("time_zone")
    if zone:
        try:
            q.tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise _BadRequest("Time zone is invalid") from None
    return q


def _page(items: list[Any], q: _Query) -> tuple[list[Any], bool]:
    return items[q.offset : q.offset + q.limit], q.offset + q.limit < len(items)


def _pagination(q: _Query, more: bool, total: int) -> JSONDict:
    return {"limit": q.limit, "offset": q.offset, "more": more, "total": total if q.total else None}


def _parse_time(request: web.Request, name: str, tz: tzinfo) -> datetime | None:
    raw = request.query.get(name)
    if not raw:
        return None
    text = raw.strip().replace(" ", "+")  # an unencoded "+00:00" arrives as " 00:00"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise _BadRequest(f"{name.capitalize()} is not a valid date") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


def _overlaps(entry: _Oncall, since: datetime, until: datetime) -> bool:
    """Does ``[start, end)`` overlap the window? An instant window (``since == until``) is a point."""
    if entry.end is not None and entry.end <= since:
        return False
    if entry.start is None:
        return True
    return entry.start <= until if since == until else entry.start < until


def _iso(value: datetime | None, tz: tzinfo) -> str | None:
    if value is None:
        return None
    text = value.astimezone(tz).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
