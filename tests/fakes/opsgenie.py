"""A local fake of the parts of the Opsgenie REST API v2 that Callboard calls, served by a real aiohttp
server on 127.0.0.1 and answering in the shapes of ``shared/reference/apis/opsgenie/rest-api.json``::

    from tests.fakes.opsgenie import OpsgenieFake

    async with OpsgenieFake() as fake:           # or: url = await fake.start() ... await fake.stop()
        fake.add_team("payments", [("alice@example.com", "admin"), "bob@example.com"])
        fake.add_schedule("payments_schedule", "payments", timezone="Europe/Dublin")
        fake.add_period("payments_schedule", "primary", 0, monday, next_monday, "alice@example.com")
        fake.add_period("payments_schedule", "primary", 0, tue_9, tue_17, "bob@example.com", type="override")
        headers = {"Authorization": f"GenieKey {fake.key}"}
        await session.get(f"{fake.url}/v2/schedules/payments_schedule/timeline",
                          params={"identifierType": "name", "interval": 1, "intervalUnit": "weeks"}, ...)

What it serves (``GET`` only; every body carries ``took`` and ``requestId``, echoed in ``X-Request-ID``):

* ``/v2/schedules`` (``expand=rotation``) -> ``{"data": [Schedule], "expandable": [...]}``, sorted by
  name. Without ``expand=rotation`` the ``rotations`` are ``[]`` and ``expandable`` is ``["rotation"]``,
  as on Opsgenie; with it each rotation is described from its ``default`` periods (``startDate``,
  ``endDate``, a ``type``/``length`` guessed from the first period, ``participants``).
* ``/v2/schedules/{identifier}/timeline`` (``identifierType=id|name``, default ``id``; ``interval``,
  default 1; ``intervalUnit=days|weeks|months``, default ``weeks``; ``date``, default now; ``expand``)
  -> ``{"data": ScheduleTimeline}`` for the window ``[date, date + interval)``. ``baseTimeline`` holds the
  ``default`` periods, ``overrideTimeline`` the ``override`` ones, ``finalTimeline`` the defaults with
  each rotation's overrides cut in; every period is clipped to the window. ``forwardingTimeline`` (empty)
  appears with ``expand=forwarding``; ``expandable`` lists the expansions not asked for.
* ``/v2/schedules/{identifier}/on-calls`` (``scheduleIdentifierType``, ``flat``, ``date``) ->
  ``{"data": {"_parent", "onCallParticipants": [{"id", "name", "type": "user"}]}}``: who the final
  timeline has on call at ``date``, by rotation order; ``flat=true`` answers ``onCallRecipients``
  (usernames) instead.
* ``/v2/teams/{identifier}`` (``identifierType``, default ``id``) -> ``{"data": Team}``.
* Unknown schedule/team -> 404 ``{"message": "No schedule exists with name [x]", ...}``; bad
  parameters -> 422. Auth: ``Authorization: GenieKey <fake.key>``, else 401 ``{"message": "Could not
  authenticate", "took": 0.0, "requestId": ...}``.

IDs are stable UUIDs derived from names (``fake.schedule_id(name)``, ``team_id``, ``user_id``); users
come into being when a team or period names them. "now" is :attr:`OpsgenieFake.clock`.

Recording and failure injection work as in :mod:`tests.fakes.pagerduty`: ``fake.calls`` /
``calls_to(path_prefix)``; ``fail_next(path_prefix, status, times=, retry_after=, body=)`` (429 sends
``Retry-After: 1`` and ``X-RateLimit-State: THROTTLED``); ``hang_next(path_prefix, seconds, times=)``,
cut short when the fake stops.
"""

from __future__ import annotations

import calendar
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from aiohttp import web

from ._base import Call, Fault, RestFake, reason

__all__ = ["Call", "OpsgenieFake"]

JSONDict = dict[str, Any]

_NAMESPACE = uuid.UUID("6f0c5d3e-1c2b-4e5a-9d7f-3a1b2c4d5e6f")
_PERIOD_TYPES = ("default", "override")
_TIMELINE_EXPANSIONS = ("base", "forwarding", "override")


@dataclass
class _Team:
    id: str
    name: str
    description: str
    members: list[tuple[str, str]]  # (username, role)


@dataclass
class _Period:
    start: datetime
    end: datetime
    username: str
    type: str


@dataclass
class _Rotation:
    id: str
    name: str
    order: float
    periods: list[_Period] = field(default_factory=list)


@dataclass
class _Schedule:
    id: str
    name: str
    team: str
    timezone: str
    description: str
    enabled: bool
    rotations: dict[str, _Rotation] = field(default_factory=dict)


class _Problem(Exception):
    """Answer ``status`` with Opsgenie's error body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class OpsgenieFake(RestFake):
    """An Opsgenie REST API v2 double on a random local port. See the module docstring for usage."""

    def __init__(
        self,
        key: str = "og-test-key",
        *,
        clock: Callable[[], datetime] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(host)
        self.key = key
        #: "now" when ``date`` is not given; tests may replace it to freeze time.
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.users: dict[str, str] = {}  # username -> id
        self.teams: dict[str, _Team] = {}
        self.schedules: dict[str, _Schedule] = {}

    # ------------------------------------------------------------------ seeding

    @staticmethod
    def _stable_id(kind: str, name: str) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"{kind}:{name}"))

    def user_id(self, username: str) -> str:
        return self.users.get(username) or self._stable_id("user", username)

    def team_id(self, name: str) -> str:
        return self.teams[name].id if name in self.teams else self._stable_id("team", name)

    def schedule_id(self, name: str) -> str:
        return self.schedules[name].id if name in self.schedules else self._stable_id("schedule", name)

    def add_user(self, username: str, id: str | None = None) -> JSONDict:  # noqa: A002
        """Add a user (usually implicit: teams and periods add the users they name)."""
        self.users[username] = id or self.users.get(username) or self._stable_id("user", username)
        return {"id": self.users[username], "username": username}

    def add_team(self, name: str, members: Iterable[str | tuple[str, str]] = (), *, description: str = "") -> JSONDict:
        """Add (or replace) a team; a member is a username or ``(username, role)`` (role ``"user"`` by default)."""
        pairs = [(m, "user") if isinstance(m, str) else (m[0], m[1]) for m in members]
        for username, _ in pairs:
            self.add_user(username)
        self.teams[name] = _Team(self.team_id(name), name, description, pairs)
        return self._team_json(self.teams[name])

    def add_schedule(
        self,
        name: str,
        team: str,
        timezone: str = "UTC",
        rotations: Iterable[Sequence[Any]] = (),
        *,
        description: str = "",
        enabled: bool = True,
    ) -> JSONDict:
        """Add (or replace) a schedule owned by ``team`` (created empty if unknown).

        ``rotations`` is shorthand for :meth:`add_period` calls: each item is its arguments after
        ``schedule``, i.e. ``(rotation_name, order, start, end, username[, type])``.
        """
        if team not in self.teams:
            self.add_team(team)
        self.schedules[name] = _Schedule(self.schedule_id(name), name, team, timezone, description, enabled)
        for args in rotations:
            self.add_period(name, *args)
        return self._schedule_json(self.schedules[name], expand_rotations=True)

    def add_period(
        self,
        schedule: str,
        rotation_name: str,
        order: float,
        start: datetime,
        end: datetime,
        username: str,
        type: str = "default",  # noqa: A002
    ) -> JSONDict:
        """Put ``username`` on rotation ``rotation_name`` (created with ``order`` if new) for ``[start, end)``.

        ``type="override"`` replaces whoever the rotation's default periods have on call meanwhile.
        """
        if schedule not in self.schedules:
            raise KeyError(f"unknown schedule {schedule!r}: add_schedule() it first")
        if type not in _PERIOD_TYPES:
            raise ValueError(f"type must be one of {_PERIOD_TYPES}")
        if start.utcoffset() is None or end.utcoffset() is None:
            raise ValueError("start/end must be timezone-aware datetimes")
        if end <= start:
            raise ValueError("end must be after start")
        sched = self.schedules[schedule]
        rotation = sched.rotations.get(rotation_name)
        if rotation is None:
            rotation_id = self._stable_id("rotation", f"{schedule}/{rotation_name}")
            rotation = sched.rotations[rotation_name] = _Rotation(rotation_id, rotation_name, order)
        rotation.order = order
        self.add_user(username)
        period = _Period(start, end, username, type)
        rotation.periods.append(period)
        rotation.periods.sort(key=lambda p: (p.start, p.end))
        return self._period_json(period)

    def remove_schedule(self, name: str) -> None:
        """Forget a schedule; its endpoints answer 404 afterwards."""
        del self.schedules[name]

    # ------------------------------------------------------------------ behaviour control

    def _routes(self) -> list[web.RouteDef]:
        return [
            _get("/v2/schedules", self._list_schedules),
            _get("/v2/schedules/{identifier}/timeline", self._timeline),
            _get("/v2/schedules/{identifier}/on-calls", self._on_calls),
            _get("/v2/teams/{identifier}", self._get_team),
        ]

    async def _dispatch(self, request: web.Request, handler: Any) -> web.StreamResponse:
        began = time.perf_counter()
        fault = await self._injected(request)
        if fault is not None:
            return self._fault_response(fault, began)
        scheme, _, key = request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() != "geniekey" or key.strip() != self.key:
            return _reply({"message": "Could not authenticate"}, 0.0, status=401)
        try:
            body: JSONDict = await handler(request)
        except _Problem as problem:
            return _reply({"message": problem.message}, began, status=problem.status)
        except web.HTTPNotFound:
            return _reply({"message": "Not Found"}, began, status=404)
        except web.HTTPMethodNotAllowed:
            return _reply({"message": "Method Not Allowed"}, began, status=405)
        return _reply(body, began)

    @staticmethod
    def _fault_response(fault: Fault, began: float) -> web.Response:
        headers = fault.headers()
        if fault.status == 429:
            headers.update(
                {"X-RateLimit-State": "THROTTLED", "X-RateLimit-Reason": "ACCOUNT", "X-RateLimit-Period-In-Sec": "60"}
            )
        if isinstance(fault.body, str):
            return web.Response(status=fault.status, text=fault.body, headers=headers)
        if fault.body is not None:
            return web.json_response(fault.body, status=fault.status, headers=headers)
        message = "Request throttled" if fault.status == 429 else reason(fault.status)
        return _reply({"message": message}, began, status=fault.status, headers=headers)

    # ------------------------------------------------------------------ handlers

    def _find_schedule(self, identifier: str, kind: str) -> _Schedule:
        if kind not in ("id", "name"):
            raise _Problem(422, f"Invalid identifierType [{kind}]; must be one of [id, name]")
        if kind == "name":
            found = self.schedules.get(identifier)
        else:
            found = next((s for s in self.schedules.values() if s.id == identifier), None)
        if found is None:
            raise _Problem(404, f"No schedule exists with {kind} [{identifier}]")
        return found

    async def _list_schedules(self, request: web.Request) -> JSONDict:
        expand = "rotation" in _csv(request, "expand")
        schedules = sorted(self.schedules.values(), key=lambda s: s.name.lower())
        return {
            "data": [self._schedule_json(s, expand_rotations=expand) for s in schedules],
            "expandable": [] if expand else ["rotation"],
        }

    async def _timeline(self, request: web.Request) -> JSONDict:
        schedule = self._find_schedule(request.match_info["identifier"], request.query.get("identifierType", "id"))
        interval = _int_param(request, "interval", 1)
        unit = request.query.get("intervalUnit", "weeks")
        start = _date_param(request, "date") or self.clock()
        if unit == "days":
            end = start + timedelta(days=interval)
        elif unit == "weeks":
            end = start + timedelta(weeks=interval)
        elif unit == "months":
            end = _add_months(start, interval)
        else:
            raise _Problem(422, f"Invalid intervalUnit [{unit}]; must be one of [days, weeks, months]")
        expand = set(_csv(request, "expand"))
        rotations = sorted(schedule.rotations.values(), key=lambda r: (r.order, r.name))
        data: JSONDict = {
            "_parent": self._schedule_meta(schedule),
            "startDate": _iso(start),
            "endDate": _iso(end),
            "finalTimeline": {"rotations": [self._timeline_rotation(r, _final(r), start, end) for r in rotations]},
            "baseTimeline": {"rotations": [
                self._timeline_rotation(r, _of_type(r, "default"), start, end) for r in rotations
                if _of_type(r, "default")
            ]},
            "overrideTimeline": {"rotations": [
                self._timeline_rotation(r, _of_type(r, "override"), start, end) for r in rotations
                if _of_type(r, "override")
            ]},
        }
        if "forwarding" in expand:
            data["forwardingTimeline"] = {"rotations": []}
        return {"data": data, "expandable": [e for e in _TIMELINE_EXPANSIONS if e not in expand]}

    async def _on_calls(self, request: web.Request) -> JSONDict:
        kind = request.query.get("scheduleIdentifierType", "id")
        schedule = self._find_schedule(request.match_info["identifier"], kind)
        at = _date_param(request, "date") or self.clock()
        usernames: list[str] = []
        for rotation in sorted(schedule.rotations.values(), key=lambda r: (r.order, r.name)):
            for period in _final(rotation):
                if period.start <= at < period.end and period.username not in usernames:
                    usernames.append(period.username)
        data: JSONDict = {"_parent": self._schedule_meta(schedule)}
        if request.query.get("flat", "false").lower() == "true":
            data["onCallRecipients"] = usernames
        else:
            data["onCallParticipants"] = [{"id": self.user_id(u), "name": u, "type": "user"} for u in usernames]
        return {"data": data}

    async def _get_team(self, request: web.Request) -> JSONDict:
        identifier = request.match_info["identifier"]
        kind = request.query.get("identifierType", "id")
        if kind not in ("id", "name"):
            raise _Problem(422, f"Invalid identifierType [{kind}]; must be one of [id, name]")
        if kind == "name":
            team = self.teams.get(identifier)
        else:
            team = next((t for t in self.teams.values() if t.id == identifier), None)
        if team is None:
            raise _Problem(404, f"No team exists with {kind} [{identifier}]")
        return {"data": self._team_json(team)}

    # ------------------------------------------------------------------ JSON shapes

    def _team_json(self, team: _Team) -> JSONDict:
        return {
            "id": team.id,
            "name": team.name,
            "description": team.description,
            "members": [{"user": {"id": self.user_id(u), "username": u}, "role": role} for u, role in team.members],
        }

    @staticmethod
    def _schedule_meta(schedule: _Schedule) -> JSONDict:
        return {"id": schedule.id, "name": schedule.name, "enabled": schedule.enabled}

    def _schedule_json(self, schedule: _Schedule, *, expand_rotations: bool) -> JSONDict:
        rotations = sorted(schedule.rotations.values(), key=lambda r: (r.order, r.name))
        return {
            "id": schedule.id,
            "name": schedule.name,
            "description": schedule.description,
            "timezone": schedule.timezone,
            "enabled": schedule.enabled,
            "ownerTeam": {"id": self.team_id(schedule.team), "name": schedule.team},
            "rotations": [self._rotation_json(r) for r in rotations] if expand_rotations else [],
        }

    def _rotation_json(self, rotation: _Rotation) -> JSONDict:
        defaults = _of_type(rotation, "default")
        participants: list[str] = []
        for period in defaults:
            if period.username not in participants:
                participants.append(period.username)
        out: JSONDict = {"id": rotation.id, "name": rotation.name}
        if defaults:
            first = defaults[0].end - defaults[0].start
            if first % timedelta(days=7) == timedelta(0):
                kind, length = "weekly", first // timedelta(days=7)
            elif first % timedelta(days=1) == timedelta(0):
                kind, length = "daily", first // timedelta(days=1)
            else:
                kind, length = "hourly", max(1, round(first / timedelta(hours=1)))
            out.update({
                "startDate": _iso(defaults[0].start),
                "endDate": _iso(max(p.end for p in defaults)),
                "type": kind,
                "length": length,
            })
        out["participants"] = [{"type": "user", "id": self.user_id(u), "username": u} for u in participants]
        return out

    def _period_json(self, period: _Period) -> JSONDict:
        return {
            "startDate": _iso(period.start),
            "endDate": _iso(period.end),
            "type": period.type,
            "recipient": {"id": self.user_id(period.username), "type": "user", "name": period.username},
        }

    def _timeline_rotation(
        self, rotation: _Rotation, periods: list[_Period], start: datetime, end: datetime
    ) -> JSONDict:
        clipped = [
            _Period(max(p.start, start), min(p.end, end), p.username, p.type)
            for p in periods
            if p.start < end and p.end > start
        ]
        return {
            "id": rotation.id,
            "name": rotation.name,
            "order": float(rotation.order),
            "periods": [self._period_json(p) for p in clipped],
        }


# ---------------------------------------------------------------------- helpers


def _of_type(rotation: _Rotation, kind: str) -> list[_Period]:
    return [p for p in rotation.periods if p.type == kind]


def _final(rotation: _Rotation) -> list[_Period]:
    """The rotation's default periods with its override periods cut in, in time order."""
    overrides = _of_type(rotation, "override")
    pieces: list[_Period] = []
    for period in _of_type(rotation, "default"):
        remaining = [(period.start, period.end)]
        for override in overrides:
            remaining = [
                part
                for lo, hi in remaining
                for part in ((lo, min(hi, override.start)), (max(lo, override.end), hi))
                if part[0] < part[1]
            ]
        pieces += [_Period(lo, hi, period.username, "default") for lo, hi in remaining]
    return sorted(pieces + overrides, key=lambda p: (p.start, p.end))


def _reply(
    body: JSONDict, began: float, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """Add Opsgenie's ``took`` (seconds, as a float) and ``requestId`` to a body and send it."""
    request_id = str(uuid.uuid4())
    took = round(time.perf_counter() - began, 3) if began else 0.0
    full = {**body, "took": took, "requestId": request_id}
    all_headers = {"X-Request-ID": request_id, "X-Response-Time": f"{took:.3f}", **(headers or {})}
    return web.json_response(full, status=status, headers=all_headers)


def _csv(request: web.Request, name: str) -> list[str]:
    return [v.strip() for raw in request.query.getall(name, []) for v in raw.split(",") if v.strip()]


def _int_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _Problem(422, f"Invalid {name} [{raw}]") from None
    if value < 1:
        raise _Problem(422, f"Invalid {name} [{raw}]; must be positive")
    return value


def _date_param(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if not raw:
        return None
    text = raw.strip().replace(" ", "+")  # an unencoded "+00:00" arrives as " 00:00"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise _Problem(422, f"Invalid {name} [{raw}]") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _add_months(value: datetime, months: int) -> datetime:
    index = value.month - 1 + months
    year, month = value.year + index // 12, index % 12 + 1
    return value.replace(year=year, month=month, day=min(value.day, calendar.monthrange(year, month)[1]))


def _iso(value: datetime) -> str:
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _get(path: str, handler: Callable[[web.Request], Awaitable[JSONDict]]) -> web.RouteDef:
    """A GET route whose handler returns the JSON body; ``_dispatch`` (the middleware) makes it the response."""
    return web.get(path, cast(Callable[[web.Request], Awaitable[web.StreamResponse]], handler))
