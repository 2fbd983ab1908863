"""Opsgenie (REST API v2): an entity's ``opsgenie.com/team`` (or a ``opsgenie.com/schedule``) ->
the team's schedules -> who is on call in each rotation now and next, from the schedule timeline.
``opsgenie.com/component-selector`` selects alerts, not people: it is not used for on-call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from ..api import Clock, Provider, ProviderContext, SystemClock
from ..http import Fetcher
from .http import OnCallApi, parse_time
from .model import OnCallError, Shift, SourceAnswer

__all__ = ["PROVIDER", "OpsgenieConfig", "OpsgenieSource", "TEAM", "SCHEDULE"]

TEAM = "opsgenie.com/team"
SCHEDULE = "opsgenie.com/schedule"


class OpsgenieSource:
    name = "Opsgenie"

    def __init__(self, http: Fetcher, *, api_key: str, api_url: str = "https://api.opsgenie.com", timeout: float = 5.0,
                 clock: Clock | None = None) -> None:
        self._client = OnCallApi(
            http, api_url, {"Authorization": f"GenieKey {api_key}"},
            timeout=timeout, source=self.name, credential_hint="check OPSGENIE_API_KEY (an API integration key).",
        )
        self._clock: Clock = clock or SystemClock()

    def handles(self, annotations: Mapping[str, Any], group: str | None) -> bool:
        return bool(annotations.get(TEAM) or annotations.get(SCHEDULE))

    async def _schedules(self, annotations: Mapping[str, Any]) -> list[str]:
        named = annotations.get(SCHEDULE)
        if named:
            return [str(named)]
        team = str(annotations.get(TEAM))
        data = await self._client.get("/v2/schedules", {"expand": "rotation"}, what="the schedules list")
        schedules = [s for s in (data.get("data") or []) if isinstance(s, dict)]
        mine = [str(s.get("name")) for s in schedules
                if str((s.get("ownerTeam") or {}).get("name", "")).lower() == team.lower() and s.get("enabled", True)]
        if not mine:
            raise OnCallError(f"Opsgenie: the team {team!r} ({TEAM}) owns no enabled schedule.")
        return mine

    async def _periods(self, schedule: str, since: datetime, days: int) -> list[Shift]:
        data = await self._client.get(
            f"/v2/schedules/{quote(schedule, safe='')}/timeline",
            {"identifierType": "name", "interval": str(days), "intervalUnit": "days", "date": since.isoformat()},
            what=f"schedule {schedule!r}",
        )
        timeline = ((data.get("data") or {}).get("finalTimeline") or {}).get("rotations") or []
        shifts = []
        for order, rotation in enumerate(sorted(timeline, key=lambda r: r.get("order", 0)), 1):
            for period in rotation.get("periods") or []:
                recipient = period.get("recipient") or {}
                name = str(recipient.get("name") or recipient.get("id") or "?")
                shifts.append(Shift(
                    name=name, level=order, email=name if "@" in name else None,
                    start=parse_time(period.get("startDate")), end=parse_time(period.get("endDate")),
                    schedule=f"{schedule} / {rotation.get('name')}" + (" (override)" if period.get("type") == "override" else ""),
                ))
        return shifts

    async def now(self, annotations: Mapping[str, Any], group: str | None) -> SourceAnswer:
        now = self._clock.now()
        shifts: list[Shift] = []
        schedules = await self._schedules(annotations)
        for schedule in schedules:
            shifts.extend(s for s in await self._periods(schedule, now, 1)
                          if (s.start is None or s.start <= now) and (s.end is None or now < s.end))
        return SourceAnswer(self.name, ", ".join(f"schedule {s}" for s in schedules), tuple(shifts), fetched_at=now)

    async def upcoming(self, annotations: Mapping[str, Any], group: str | None, *, days: int = 14) -> SourceAnswer:
        now = self._clock.now()
        shifts: list[Shift] = []
        schedules = await self._schedules(annotations)
        for schedule in schedules:
            shifts.extend(s for s in await self._periods(schedule, now, days) if s.start is not None and s.start > now)
        return SourceAnswer(self.name, ", ".join(f"schedule {s}" for s in schedules), tuple(shifts), fetched_at=now)

    async def close(self) -> None:
        """Nothing to release: the HTTP client is the app's."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OpsgenieConfig:
    """``oncall.opsgenie`` in callboard.yaml; the api key comes only from the environment
    (bot/config.py puts it here). Without it the source is off."""

    api_key: str | None = field(default=None, repr=False)
    api_url: str = "https://api.opsgenie.com"
    timeout: float = 5.0  # oncall.timeout


def _create(config: OpsgenieConfig, ctx: ProviderContext) -> OpsgenieSource | None:
    if not config.api_key:
        return None
    return OpsgenieSource(ctx.http, api_key=config.api_key, api_url=config.api_url, timeout=config.timeout,
                 clock=ctx.clock)


PROVIDER = Provider(config=OpsgenieConfig, create=_create, summary="Opsgenie: who is on call, from its REST API")
