"""On-call from a schedule file (``oncall.yaml``): rotations per group, with hand-offs in the
rotation's own time zone and overrides. The embedded default, so on-call works with no SaaS.

.. code-block:: yaml

    rotations:
      - name: payments-primary
        group: payments-team          # a catalog Group (name or ref)
        level: 1                      # 1 = primary, 2 = secondary, ...
        time_zone: Europe/Berlin
        start: 2026-01-05T09:00       # the first hand-off, wall-clock time in time_zone
        shift: 1w                     # 12h, 1d, 1w, 2w ...
        members: [priya.raman, jonas.weber, alex.kim]   # catalog users (name or ref)
        overrides:
          - member: sam.lee
            start: 2026-11-24T09:00
            end: 2026-11-26T09:00

Hand-offs stay at the same wall-clock time across daylight-saving changes (a weekly shift that
starts Monday 09:00 in Berlin starts Monday 09:00 in summer and in winter). Every error names
the file, the line and the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from ..api import Provider, ProviderContext
from .model import OnCallError, Shift, SourceAnswer

__all__ = ["PROVIDER", "Override", "ScheduleConfig", "ScheduleFileSource", "Rotation", "ScheduleFile", "ScheduleFileError", "load_schedule_file"]

_DURATION = re.compile(r"^\s*(\d+)\s*([hdw])\s*$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}
_KEYS = {"name", "group", "level", "time_zone", "start", "shift", "members", "overrides"}


class ScheduleFileError(Exception):
    """An invalid schedule file: the message names file, line and key."""


@dataclass(frozen=True, slots=True)
class Override:
    member: str
    start: datetime  # aware
    end: datetime


@dataclass(frozen=True, slots=True)
class Rotation:
    name: str
    group: str  # group key, e.g. group:default/payments-team
    level: int
    zone: ZoneInfo
    start: datetime  # naive wall-clock time in ``zone``
    shift: timedelta
    members: tuple[str, ...]
    overrides: tuple[Override, ...] = ()

    def _boundary(self, k: int) -> datetime:
        """Shift ``k``'s start, as an aware UTC time (wall-clock arithmetic in the zone)."""
        local = self.start + k * self.shift
        return local.replace(tzinfo=self.zone).astimezone(timezone.utc)

    def _index(self, at: datetime) -> int:
        local = at.astimezone(self.zone).replace(tzinfo=None)
        k = (local - self.start) // self.shift
        while self._boundary(k) > at:
            k -= 1
        while self._boundary(k + 1) <= at:
            k += 1
        return k

    def shift_at(self, at: datetime) -> Shift | None:
        """Who is on call at ``at`` (None before the rotation starts)."""
        for o in self.overrides:
            if o.start <= at < o.end:
                return Shift(name=o.member, level=self.level, start=o.start, end=o.end, schedule=f"{self.name} (override)")
        if at < self._boundary(0) or not self.members:
            return None
        k = self._index(at)
        start, end = self._boundary(k), self._boundary(k + 1)
        # overrides inside this shift split it: it resumes after one that ended, stops at the next
        for o in self.overrides:
            if start < o.end <= at:
                start = max(start, o.end)
            if at < o.start < end:
                end = o.start
        return Shift(name=self.members[k % len(self.members)], level=self.level, start=start, end=end, schedule=self.name)

    def shifts_between(self, since: datetime, until: datetime) -> list[Shift]:
        out: list[Shift] = []
        at = since
        while at < until and len(out) < 200:
            shift = self.shift_at(at)
            if shift is None:
                at = self._boundary(0)
                if at >= until:
                    break
                continue
            out.append(shift)
            if shift.end is None or shift.end <= at:
                break
            at = shift.end
        return out


@dataclass(frozen=True, slots=True)
class ScheduleFile:
    path: str
    rotations: tuple[Rotation, ...]


def _where(path: str, node: yaml.Node | None, key: str) -> str:
    line = f":{node.start_mark.line + 1}" if node is not None else ""
    return f"{path}{line}: {key}"


def _mapping_nodes(node: yaml.MappingNode) -> dict[str, yaml.Node]:
    return {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def _local_time(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):  # YAML reads 2026-01-05T09:00 itself; the zone is the rotation's
        return value.replace(tzinfo=None)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            return parsed.replace(tzinfo=None)
    raise ScheduleFileError(f"{where}: expected a date and time like 2026-01-05T09:00, got {value!r}")


def load_schedule_file(path: Path, *, group_key: Any = None) -> ScheduleFile:
    """Parse and check ``path``. ``group_key(name) -> key`` turns a group's name into its ref."""
    text_path = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScheduleFileError(f"{text_path}: cannot be read ({exc})") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ScheduleFileError(f"{text_path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict) or not isinstance(root, yaml.MappingNode):
        raise ScheduleFileError(f"{text_path}: expected a mapping with a 'rotations' list")
    top = _mapping_nodes(root)
    unknown = set(data) - {"rotations"}
    if unknown:
        key = sorted(unknown)[0]
        raise ScheduleFileError(f"{_where(text_path, top.get(key), key)}: unknown key; the file has 'rotations'")
    items = data.get("rotations")
    if not isinstance(items, list):
        raise ScheduleFileError(f"{_where(text_path, top.get('rotations'), 'rotations')}: expected a list of rotations")
    seq = top["rotations"]
    nodes = seq.value if isinstance(seq, yaml.SequenceNode) else []
    rotations = []
    names: set[str] = set()
    for i, item in enumerate(items):
        node = nodes[i] if i < len(nodes) else None
        fields = _mapping_nodes(node) if isinstance(node, yaml.MappingNode) else {}

        def where(key: str) -> str:
            return _where(text_path, fields.get(key, node), f"rotations[{i}].{key}")

        if not isinstance(item, dict):
            raise ScheduleFileError(f"{_where(text_path, node, f'rotations[{i}]')}: expected a mapping")
        for key in item:
            if key not in _KEYS:
                raise ScheduleFileError(f"{where(str(key))}: unknown key; known: {', '.join(sorted(_KEYS))}")
        for key in ("name", "group", "time_zone", "start", "shift", "members"):
            if key not in item:
                raise ScheduleFileError(f"{_where(text_path, node, f'rotations[{i}]')}: '{key}' is missing")
        name = item["name"]
        if not isinstance(name, str) or not name.strip():
            raise ScheduleFileError(f"{where('name')}: expected a name")
        if name in names:
            raise ScheduleFileError(f"{where('name')}: a second rotation named {name!r}")
        names.add(name)
        group = item["group"]
        if not isinstance(group, str) or not group.strip():
            raise ScheduleFileError(f"{where('group')}: expected a catalog group name")
        level = item.get("level", 1)
        if not isinstance(level, int) or isinstance(level, bool) or level < 1:
            raise ScheduleFileError(f"{where('level')}: expected a whole number from 1 (primary), got {level!r}")
        try:
            zone = ZoneInfo(str(item["time_zone"]))
        except (ZoneInfoNotFoundError, ValueError):
            raise ScheduleFileError(f"{where('time_zone')}: unknown time zone {item['time_zone']!r} "
                                    "(use an IANA name such as Europe/Berlin)") from None
        start = _local_time(item["start"], where("start"))
        match = _DURATION.match(str(item["shift"]))
        if not match or int(match.group(1)) == 0:
            raise ScheduleFileError(f"{where('shift')}: expected a duration like 12h, 1d or 1w, got {item['shift']!r}")
        shift = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        members = item["members"]
        if not isinstance(members, list) or not members or not all(isinstance(m, str) and m.strip() for m in members):
            raise ScheduleFileError(f"{where('members')}: expected a non-empty list of people")
        overrides = []
        raw_overrides = item.get("overrides") or []
        if not isinstance(raw_overrides, list):
            raise ScheduleFileError(f"{where('overrides')}: expected a list")
        for j, o in enumerate(raw_overrides):
            w = f"{where('overrides')}[{j}]"
            if not isinstance(o, dict) or not {"member", "start", "end"} <= set(o):
                raise ScheduleFileError(f"{w}: expected member, start and end")
            o_start = _local_time(o["start"], f"{w}.start").replace(tzinfo=zone).astimezone(timezone.utc)
            o_end = _local_time(o["end"], f"{w}.end").replace(tzinfo=zone).astimezone(timezone.utc)
            if o_end <= o_start:
                raise ScheduleFileError(f"{w}.end: must be after start")
            overrides.append(Override(str(o["member"]), o_start, o_end))
        rotations.append(Rotation(
            name=name, group=group_key(group) if group_key else group, level=level, zone=zone, start=start,
            shift=shift, members=tuple(members), overrides=tuple(overrides),
        ))
    return ScheduleFile(text_path, tuple(rotations))


class ScheduleFileSource:
    """The schedule file as an on-call source: it answers for groups that have rotations."""

    name = "schedule file"

    def __init__(self, schedule: ScheduleFile, clock: Any = None) -> None:
        self.schedule = schedule
        self._clock = clock or (lambda: datetime.now(timezone.utc))

    def _rotations(self, group: str | None) -> list[Rotation]:
        if group is None:
            return []
        g = group.lower()
        return [r for r in self.schedule.rotations if r.group.lower() in (g, g.rpartition("/")[2])]

    def handles(self, annotations: Mapping[str, Any], group: str | None) -> bool:
        return bool(self._rotations(group))

    async def now(self, annotations: Mapping[str, Any], group: str | None) -> SourceAnswer:
        at = self._clock()
        shifts = [s for r in self._rotations(group) if (s := r.shift_at(at)) is not None]
        return SourceAnswer(self.name, f"rotations of {group}", tuple(shifts), fetched_at=at)

    async def upcoming(self, annotations: Mapping[str, Any], group: str | None, *, days: int = 14) -> SourceAnswer:
        at = self._clock()
        shifts: list[Shift] = []
        for r in self._rotations(group):
            shifts.extend(s for s in r.shifts_between(at, at + timedelta(days=days)) if s.start and s.start > at)
        if not self._rotations(group):
            raise OnCallError(f"no rotation in {self.schedule.path} is for {group}")
        return SourceAnswer(self.name, f"rotations of {group}", tuple(shifts), fetched_at=at)

    async def close(self) -> None:
        return None


def group_key(name: str) -> str:
    """``payments-team`` -> ``group:default/payments-team``; refs are kept (lower-cased)."""
    name = name.strip().lower()
    if ":" in name:
        return name
    return f"group:{name}" if "/" in name else f"group:default/{name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleConfig:
    """``oncall.schedule_file`` in callboard.yaml (None: an ``oncall.yaml`` beside a catalog folder)."""

    file: str | None = None


def _create(config: ScheduleConfig, ctx: ProviderContext) -> ScheduleFileSource | None:
    """The schedule file named by ``oncall.schedule_file``, else an ``oncall.yaml`` beside a catalog
    folder; None when there is none. An invalid file raises ``ScheduleFileError``."""
    candidates = [Path(config.file)] if config.file else [
        (Path(c) if Path(c).is_dir() else Path(c).parent) / "oncall.yaml"
        for c in ctx.catalog_roots if "://" not in c
    ]
    for candidate in candidates:
        if candidate.is_file() or config.file:
            return ScheduleFileSource(load_schedule_file(candidate, group_key=group_key), clock=ctx.clock.now)
    return None


PROVIDER = Provider(config=ScheduleConfig, create=_create, summary="the schedule file: rotations per group")
