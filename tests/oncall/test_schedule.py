"""The schedule file: rotations across time zones, a daylight-saving change, overrides, and
errors that name the file, line and key."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from callboard.providers.oncall.schedule import ScheduleFileError, ScheduleFileSource, group_key, load_schedule_file

UTC = timezone.utc


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "oncall.yaml"
    path.write_text(text)
    return path


BERLIN_WEEKLY = """rotations:
  - name: payments-primary
    group: payments-team
    time_zone: Europe/Berlin
    start: 2026-10-19T09:00
    shift: 1w
    members: [ana, ben, cem]
"""


def test_weekly_handoff_keeps_local_time_across_dst(tmp_path: Path) -> None:
    (rotation,) = load_schedule_file(_file(tmp_path, BERLIN_WEEKLY), group_key=group_key).rotations
    assert rotation.group == "group:default/payments-team"
    # Mon 19 Oct 09:00 CEST = 07:00 UTC; Europe leaves summer time on Sun 25 Oct 2026;
    # Mon 26 Oct 09:00 CET = 08:00 UTC: the hand-off stays at 09:00 local.
    first = rotation.shift_at(datetime(2026, 10, 20, 12, tzinfo=UTC))
    assert first is not None and first.name == "ana"
    assert first.start == datetime(2026, 10, 19, 7, tzinfo=UTC) and first.end == datetime(2026, 10, 26, 8, tzinfo=UTC)
    assert rotation.shift_at(datetime(2026, 10, 26, 7, 59, tzinfo=UTC)).name == "ana"  # type: ignore[union-attr]
    second = rotation.shift_at(datetime(2026, 10, 26, 8, 0, tzinfo=UTC))
    assert second is not None and second.name == "ben" and second.end == datetime(2026, 11, 2, 8, tzinfo=UTC)
    assert rotation.shift_at(datetime(2026, 10, 19, 6, 59, tzinfo=UTC)) is None  # before the rotation starts
    # round and round: week 3 is ana again
    assert rotation.shift_at(datetime(2026, 11, 9, 9, tzinfo=UTC)).name == "ana"  # type: ignore[union-attr]


def test_spring_forward_and_other_zones(tmp_path: Path) -> None:
    text = """rotations:
  - name: ny
    group: checkout-team
    time_zone: America/New_York
    start: 2026-03-02T10:00
    shift: 1w
    members: [a, b]
  - name: tokyo
    group: identity-team
    level: 2
    time_zone: Asia/Tokyo
    start: 2026-03-02T09:00
    shift: 12h
    members: [k, h]
"""
    ny, tokyo = load_schedule_file(_file(tmp_path, text), group_key=group_key).rotations
    # New York springs forward on Sun 8 Mar 2026: 10:00 EST = 15:00 UTC, then 10:00 EDT = 14:00 UTC
    assert ny.shift_at(datetime(2026, 3, 3, tzinfo=UTC)).end == datetime(2026, 3, 9, 14, tzinfo=UTC)  # type: ignore[union-attr]
    assert ny.shift_at(datetime(2026, 3, 9, 14, tzinfo=UTC)).name == "b"  # type: ignore[union-attr]
    shift = tokyo.shift_at(datetime(2026, 3, 2, 12, tzinfo=UTC))  # 21:00 in Tokyo: the night half
    assert shift is not None and shift.name == "h" and shift.level == 2
    assert shift.start == datetime(2026, 3, 2, 12, tzinfo=UTC) and shift.end == datetime(2026, 3, 3, 0, tzinfo=UTC)


def test_overrides_win_and_cut_the_shift_short(tmp_path: Path) -> None:
    text = BERLIN_WEEKLY + """    overrides:
      - member: zoe
        start: 2026-10-21T18:00
        end: 2026-10-22T09:00
"""
    (rotation,) = load_schedule_file(_file(tmp_path, text)).rotations
    before = rotation.shift_at(datetime(2026, 10, 20, tzinfo=UTC))
    assert before is not None and before.name == "ana" and before.end == datetime(2026, 10, 21, 16, tzinfo=UTC)
    during = rotation.shift_at(datetime(2026, 10, 21, 20, tzinfo=UTC))
    assert during is not None and during.name == "zoe" and during.end == datetime(2026, 10, 22, 7, tzinfo=UTC)
    names = [s.name for s in rotation.shifts_between(datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 10, 27, tzinfo=UTC))]
    assert names[:3] == ["ana", "zoe", "ana"] and names[-1] == "ben"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rotations:\n\t- name: a\n", "oncall.yaml:2: not valid YAML"),
        ("rotation: []\n", "oncall.yaml:1: rotation: unknown key"),
        ("rotations:\n  - name: a\n    group: g\n    time_zone: Mars/Olympus\n    start: 2026-01-01T09:00\n"
         "    shift: 1w\n    members: [x]\n", "oncall.yaml:4: rotations[0].time_zone: unknown time zone 'Mars/Olympus'"),
        ("rotations:\n  - name: a\n    group: g\n    time_zone: UTC\n    start: 2026-01-01T09:00\n"
         "    shift: weekly\n    members: [x]\n", "oncall.yaml:6: rotations[0].shift: expected a duration like 12h, 1d or 1w"),
        ("rotations:\n  - name: a\n    group: g\n    time_zone: UTC\n    start: someday\n"
         "    shift: 1w\n    members: [x]\n", "oncall.yaml:5: rotations[0].start"),
        ("rotations:\n  - name: a\n    group: g\n    time_zone: UTC\n    start: 2026-01-01T09:00\n"
         "    shift: 1w\n    members: []\n", "oncall.yaml:7: rotations[0].members"),
        ("rotations:\n  - name: a\n    group: g\n    time_zone: UTC\n    start: 2026-01-01T09:00\n"
         "    shift: 1w\n    members: [x]\n    level: primary\n", "oncall.yaml:8: rotations[0].level"),
        ("rotations:\n  - name: a\n    group: g\n    time_zone: UTC\n    start: 2026-01-01T09:00\n"
         "    shift: 1w\n    membres: [x]\n", "oncall.yaml:7: rotations[0].membres: unknown key"),
        ("rotations:\n  - name: a\n    group: g\n    time_zone: UTC\n    start: 2026-01-01T09:00\n    shift: 1w\n",
         "oncall.yaml:2: rotations[0]: 'members' is missing"),
    ],
)
def test_invalid_files_name_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ScheduleFileError) as err:
        load_schedule_file(_file(tmp_path, text))
    assert message in str(err.value), str(err.value)


async def test_source_answers_for_its_groups(tmp_path: Path) -> None:
    schedule = load_schedule_file(_file(tmp_path, BERLIN_WEEKLY), group_key=group_key)
    source = ScheduleFileSource(schedule, clock=lambda: datetime(2026, 10, 20, 12, tzinfo=UTC))
    assert source.handles({}, "group:default/payments-team") and not source.handles({}, "group:default/other")
    now = await source.now({}, "group:default/payments-team")
    assert [s.name for s in now.shifts] == ["ana"]
    nxt = await source.upcoming({}, "group:default/payments-team", days=14)
    assert [s.name for s in nxt.shifts] == ["ben", "cem"]
