"""PagerDuty (REST API v2): an entity's ``pagerduty.com/service-id`` (or ``integration-key``) ->
the service's escalation policy -> who is on call at each level, until when."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..api import Clock, Provider, ProviderContext, SystemClock
from ..http import Fetcher
from .http import OnCallApi, parse_time
from .model import OnCallError, Shift, SourceAnswer

__all__ = ["PROVIDER", "PagerDutyConfig", "PagerDutySource", "SERVICE_ID", "INTEGRATION_KEY"]

SERVICE_ID = "pagerduty.com/service-id"
INTEGRATION_KEY = "pagerduty.com/integration-key"
_PAGE = 100
_MAX_PAGES = 50


class PagerDutySource:
    name = "PagerDuty"

    def __init__(self, http: Fetcher, *, token: str, api_url: str = "https://api.pagerduty.com", timeout: float = 5.0,
                 clock: Clock | None = None) -> None:
        self._client = OnCallApi(
            http, api_url, {"Authorization": f"Token token={token}", "Accept": "application/vnd.pagerduty+json;version=2"},
            timeout=timeout, source=self.name, credential_hint="check PAGERDUTY_TOKEN (a REST API key).",
        )
        self._clock: Clock = clock or SystemClock()
        self._by_integration: dict[str, str] = {}

    def handles(self, annotations: Mapping[str, Any], group: str | None) -> bool:
        return bool(annotations.get(SERVICE_ID) or annotations.get(INTEGRATION_KEY))

    async def _pages(self, path: str, params: list[tuple[str, str]], key: str, what: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        offset = 0
        for _ in range(_MAX_PAGES):
            data = await self._client.get(path, [*params, ("limit", str(_PAGE)), ("offset", str(offset))], what=what)
            items = data.get(key) if isinstance(data, dict) else None
            if not isinstance(items, list):
                raise OnCallError(f"PagerDuty: unexpected answer for {what}")
            out.extend(i for i in items if isinstance(i, dict))
            if not data.get("more"):
                break
            offset += len(items) or _PAGE
        return out

    async def _service(self, annotations: Mapping[str, Any]) -> dict[str, Any]:
        service_id = annotations.get(SERVICE_ID)
        if not service_id:
            key = str(annotations.get(INTEGRATION_KEY))
            service_id = self._by_integration.get(key)
            if service_id is None:
                services = await self._pages("/services", [("include[]", "integrations")], "services",
                                             "the services list")
                for s in services:
                    for integration in s.get("integrations") or []:
                        if isinstance(integration, dict) and integration.get("integration_key"):
                            self._by_integration[str(integration["integration_key"])] = str(s.get("id"))
                service_id = self._by_integration.get(key)
                if service_id is None:
                    raise OnCallError(f"PagerDuty: no service has the integration key {key[:6]}… ({INTEGRATION_KEY}).")
        data = await self._client.get(f"/services/{service_id}", what=f"service {service_id} ({SERVICE_ID})")
        service = data.get("service") if isinstance(data, dict) else None
        if not isinstance(service, dict):
            raise OnCallError(f"PagerDuty: unexpected answer for service {service_id}")
        return service

    async def _oncalls(self, annotations: Mapping[str, Any], since: datetime | None, until: datetime | None) -> tuple[dict[str, Any], list[Shift]]:
        service = await self._service(annotations)
        policy = (service.get("escalation_policy") or {}).get("id")
        if not policy:
            raise OnCallError(f"PagerDuty: service {service.get('id')} has no escalation policy.")
        params = [("escalation_policy_ids[]", str(policy)), ("include[]", "users")]
        if since is not None and until is not None:
            params += [("since", since.isoformat()), ("until", until.isoformat())]
        entries = await self._pages("/oncalls", params, "oncalls", f"on-calls of escalation policy {policy}")
        shifts = []
        for e in entries:
            user = e.get("user") or {}
            schedule = e.get("schedule") or {}
            shifts.append(Shift(
                name=str(user.get("name") or user.get("summary") or user.get("id") or "?"),
                level=int(e.get("escalation_level") or 1),
                email=user.get("email") if isinstance(user.get("email"), str) else None,
                start=parse_time(e.get("start")), end=parse_time(e.get("end")),
                schedule=schedule.get("summary") if isinstance(schedule, dict) else None,
            ))
        return service, shifts

    async def now(self, annotations: Mapping[str, Any], group: str | None) -> SourceAnswer:
        service, shifts = await self._oncalls(annotations, None, None)
        now = self._clock.now()
        return SourceAnswer(self.name, f"service {service.get('summary') or service.get('name') or service.get('id')}",
                            tuple(shifts), link=service.get("html_url"), fetched_at=now)

    async def upcoming(self, annotations: Mapping[str, Any], group: str | None, *, days: int = 14) -> SourceAnswer:
        now = self._clock.now()
        service, shifts = await self._oncalls(annotations, now, now + timedelta(days=days))
        later = tuple(s for s in shifts if s.start is not None and s.start > now)
        return SourceAnswer(self.name, f"service {service.get('summary') or service.get('name') or service.get('id')}",
                            later, link=service.get("html_url"), fetched_at=now)

    async def close(self) -> None:
        """Nothing to release: the HTTP client is the app's."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PagerDutyConfig:
    """``oncall.pagerduty`` in callboard.yaml; the token comes only from the environment
    (bot/config.py puts it here). Without it the source is off."""

    token: str | None = field(default=None, repr=False)
    api_url: str = "https://api.pagerduty.com"
    timeout: float = 5.0  # oncall.timeout


def _create(config: PagerDutyConfig, ctx: ProviderContext) -> PagerDutySource | None:
    if not config.token:
        return None
    return PagerDutySource(ctx.http, token=config.token, api_url=config.api_url, timeout=config.timeout,
                 clock=ctx.clock)


PROVIDER = Provider(config=PagerDutyConfig, create=_create, summary="PagerDuty: who is on call, from its REST API")
