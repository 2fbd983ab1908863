"""On-call values every source returns, and the protocol a source implements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

__all__ = ["OnCallError", "Shift", "SourceAnswer", "OnCallSource"]


class OnCallError(Exception):
    """A source could not answer (unreachable, refused, unknown id): the message says which and why."""


@dataclass(frozen=True, slots=True)
class Shift:
    """One person on call at one escalation level, from ``start`` until ``end`` (None: open-ended)."""

    name: str
    level: int = 1
    email: str | None = None
    user_ref: str | None = None  # the catalog User, when known
    start: datetime | None = None
    end: datetime | None = None
    schedule: str | None = None  # the schedule or rotation it comes from


@dataclass(frozen=True, slots=True)
class SourceAnswer:
    source: str  # "PagerDuty", "Opsgenie", "schedule file"
    target: str  # what was asked, e.g. "service PXYZ123 (Payments API)"
    shifts: tuple[Shift, ...]
    link: str | None = None
    fetched_at: datetime | None = None


class OnCallSource(Protocol):
    """A place on-call comes from. ``annotations`` are an entity's (or a group's) annotations;
    ``group`` is a Group's key, for sources that keep rotations per group."""

    name: str

    def handles(self, annotations: Mapping[str, Any], group: str | None) -> bool:
        """True when this source knows something about this entity or group."""
        ...

    async def now(self, annotations: Mapping[str, Any], group: str | None) -> SourceAnswer: ...

    async def upcoming(self, annotations: Mapping[str, Any], group: str | None, *, days: int = 14) -> SourceAnswer: ...

    async def close(self) -> None: ...


def by_level(shifts: Sequence[Shift]) -> dict[int, list[Shift]]:
    out: dict[int, list[Shift]] = {}
    for s in sorted(shifts, key=lambda s: (s.level, s.start.timestamp() if s.start else float("-inf"))):
        out.setdefault(s.level, []).append(s)
    return out
