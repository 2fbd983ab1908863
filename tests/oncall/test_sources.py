"""On-call end to end: PagerDuty and Opsgenie (local fakes over HTTP), the schedule file, the
resolution chain, caching, time limits, and the fallback when every source fails."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from callboard.bot.app import Callboard
from callboard.bot.config import ConfigError, Settings, load_settings
from callboard.bot.shell.render import render_text
from callboard.commands.api import Status
from callboard.commands.dispatch import CommandRegistry

from ..fakes.opsgenie import OpsgenieFake
from ..fakes.pagerduty import PagerDutyFake

UTC = timezone.utc

CATALOG = """apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: platform
spec:
  type: department
  profile:
    email: platform@example.com
  children: [payments]
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: payments
spec:
  type: team
  parent: platform
  profile:
    email: payments@example.com
  children: []
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: ana
spec:
  profile:
    email: ana@example.com
    displayName: Ana Lima
  memberOf: [payments]
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: ben
  annotations:
    opsgenie.com/team: reporting
spec:
  profile:
    email: ben@example.com
  memberOf: []
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: cleo
spec:
  profile:
    email: cleo@example.com
  memberOf: []
---
apiVersion: backstage.io/v1alpha1
kind: System
metadata:
  name: ledger
spec:
  owner: payments
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: ledger-cron
spec:
  type: service
  lifecycle: production
  owner: user:cleo
  system: ledger
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: ana-tool
spec:
  type: tool
  lifecycle: experimental
  owner: user:ana
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: ben-job
spec:
  type: service
  lifecycle: production
  owner: user:ben
  system: billing
---
apiVersion: backstage.io/v1alpha1
kind: System
metadata:
  name: billing
  annotations:
    pagerduty.com/integration-key: key-billing-123
spec:
  owner: payments
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: charges
  annotations:
    pagerduty.com/service-id: PCHARGE
spec:
  type: service
  lifecycle: production
  owner: payments
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: invoices
spec:
  type: service
  lifecycle: production
  owner: payments
  system: billing
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: ghost
  annotations:
    pagerduty.com/service-id: PDELETED
spec:
  type: service
  lifecycle: production
  owner: payments
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: reports
  annotations:
    opsgenie.com/team: reporting
spec:
  type: service
  lifecycle: production
  owner: payments
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: archive
  annotations:
    opsgenie.com/schedule: archive-schedule
spec:
  type: service
  lifecycle: production
  owner: payments
"""

SCHEDULE = """rotations:
  - name: platform-primary
    group: platform
    time_zone: Europe/Berlin
    start: 2026-01-05T09:00
    shift: 1w
    members: [ana]
"""


class Rig:
    def __init__(self, app: Callboard, pd: PagerDutyFake, og: OpsgenieFake) -> None:
        self.app, self.pd, self.og = app, pd, og


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    root = tmp_path / "catalog"
    root.mkdir()
    (root / "catalog-info.yaml").write_text(CATALOG)
    (root / "oncall.yaml").write_text(SCHEDULE)
    now = datetime.now(UTC)
    pd = PagerDutyFake()
    await pd.start()
    pd.add_user("PU1", "Ana Lima", "ana@example.com", "Europe/Lisbon")
    pd.add_user("PU2", "Ben Okoro", "ben@example.com")
    pd.add_policy("PEP1", "Payments")
    pd.add_policy("PEP2", "Billing")
    pd.add_service("PCHARGE", "Charges", "PEP1")
    pd.add_service("PBILL", "Billing", "PEP2", integration_keys=["key-billing-123"])
    pd.add_oncall("PEP1", 1, "PU1", now - timedelta(hours=3), now + timedelta(hours=5), "PS1", "payments-primary")
    pd.add_oncall("PEP1", 2, "PU2", now - timedelta(days=1), now + timedelta(days=6), "PS2", "payments-secondary")
    pd.add_oncall("PEP1", 1, "PU2", now + timedelta(hours=5), now + timedelta(hours=29), "PS1", "payments-primary")
    pd.add_oncall("PEP2", 1, "PU2")  # directly on the policy: always on call
    og = OpsgenieFake()
    await og.start()
    og.add_team("reporting", ["ana@example.com"])
    og.add_schedule("reporting_schedule", "reporting", "Europe/Berlin", [
        ("night", 1, now - timedelta(hours=1), now + timedelta(hours=11), "ana@example.com"),
        ("night", 1, now + timedelta(hours=11), now + timedelta(hours=23), "ben@example.com"),
    ])
    app = await Callboard.open(
        Settings(database_url=f"sqlite:///{tmp_path / 'cb.db'}", data_dir=str(tmp_path / "data"),
                 pagerduty_token=pd.token, pagerduty_api_url=pd.url, opsgenie_api_key=og.key,
                 opsgenie_api_url=og.url, oncall_timeout=2.0),
        CommandRegistry.from_entry_points(),
        resident=True,
    )
    try:
        summary = await app.sync((str(root),))
        assert not summary.errors, summary.errors
        yield Rig(app, pd, og)
    finally:
        await app.close()
        await pd.stop()
        await og.stop()


async def test_pagerduty_service_annotation(rig: Rig) -> None:
    reply = await rig.app.ask("oncall charges")
    assert reply.status is Status.OK, render_text(reply)
    assert reply.data["via"] == "its own on-call annotation" and reply.data["source"] == "PagerDuty"
    levels = {(s["level"], s["name"]) for s in reply.data["shifts"]}
    assert levels == {(1, "Ana Lima"), (2, "Ben Okoro")}
    text = render_text(reply)
    assert "Primary" in text and "Secondary" in text and "until" in text
    # cached: a second question within the minute asks PagerDuty nothing, and says how old it is
    before = len(rig.pd.calls)
    again = await rig.app.ask("oncall charges")
    assert len(rig.pd.calls) == before and again.data["cached_age_s"] is not None
    assert "s ago" in render_text(again)
    nxt = await rig.app.ask("oncall charges next")
    assert [s["name"] for s in nxt.data["shifts"] if s["level"] == 1] == ["Ben Okoro"]


async def test_chain_system_integration_key_and_parent_group(rig: Rig) -> None:
    reply = await rig.app.ask("oncall invoices")
    assert reply.data["via"] == "its system billing" and reply.data["shifts"][0]["name"] == "Ben Okoro"
    assert rig.pd.calls_to("/services")  # found by integration key through the services list
    group = await rig.app.ask("oncall payments")  # a group without rotations: its parent's
    assert group.status is Status.OK and group.data["via"] == "its parent group platform"
    assert group.data["source"] == "schedule file"


async def test_an_entity_owned_by_a_user_is_answered_through_that_user_then_its_system_then_groups(rig: Rig) -> None:
    # the owner's own annotation answers first, before the system's (billing's would answer too)
    ben = await rig.app.ask("oncall ben-job")
    assert ben.data["via"] == "its owner user ben" and ben.data["via_entity"] == "user:default/ben"
    assert ben.data["source"] == "Opsgenie"
    assert ben.data["checked"] == ["its own on-call annotation", "its owner user ben"]
    # a person without annotations or teams: their system (no annotation), then the system's
    # owner, then its parent — each named as what it is to the component, not "its owner"
    cleo = await rig.app.ask("oncall ledger-cron")
    assert cleo.status is Status.OK
    assert cleo.data["via"] == "platform, parent of payments, owner of its system ledger"
    assert cleo.data["checked"] == ["its own on-call annotation", "its owner user cleo", "its system ledger",
                                    "payments, owner of its system ledger", cleo.data["via"]]
    assert "its owner payments" not in render_text(cleo)
    # a person's teams stand in for the owner groups an entity owned by a group would have
    ana = await rig.app.ask("oncall ana-tool")
    assert ana.data["via"] == "platform, parent of payments, team of its owner user ana"
    assert ana.data["checked"][:3] == ["its own on-call annotation", "its owner user ana",
                                       "payments, team of its owner user ana"]
    # a user asked about directly: their own annotation, then their teams
    person = await rig.app.ask("oncall ana")
    assert person.data["via"] == "platform, parent of their team payments"
    # nobody at all: the owner user is the contact given
    rig.app.oncall.sources = []
    alone = await rig.app.ask("oncall ledger-cron")
    assert alone.status is Status.ERROR and alone.data["fallback"] == ["user:default/cleo"]
    assert alone.data["contacts"][0]["email"] == "cleo@example.com" and "cleo@example.com" in render_text(alone)


async def test_the_json_carries_every_field_the_text_shows(rig: Rig) -> None:
    reply = await rig.app.ask("oncall reports")  # Opsgenie names people by email; the catalog has the rest
    text = render_text(reply)
    for shift in reply.data["shifts"]:
        if shift["display_name"] in text:
            assert shift["email"] and shift["email"] in text
    first = reply.data["shifts"][0]
    assert first["display_name"] == "Ana Lima" and first["user"] == "user:default/ana"
    assert first["email"] == "ana@example.com" and first["role"] == "Primary"
    assert "Ana Lima" in reply.summary  # the one-line fallback names them as the text does
    charges = await rig.app.ask("oncall charges")  # PagerDuty gives emails; schedules and levels too
    text = render_text(charges)
    for shift in charges.data["shifts"][:2]:
        assert shift["display_name"] in text and shift["email"] in text and shift["schedule"] in text
    assert charges.data["target"] in text and charges.data["source"] in text
    schedule = await rig.app.ask("oncall payments")  # the schedule file names catalog users: email from the catalog
    assert schedule.data["shifts"][0]["email"] == "ana@example.com"
    assert "ana@example.com" in render_text(schedule)


async def test_opsgenie_team_and_deleted_schedule(rig: Rig) -> None:
    reply = await rig.app.ask("oncall reports")
    assert reply.data["source"] == "Opsgenie" and reply.data["shifts"][0]["name"] == "ana@example.com"
    assert "Ana Lima" in render_text(reply)  # shown as the catalog user with that email
    archived = await rig.app.ask("oncall archive")  # opsgenie.com/schedule names a deleted schedule
    assert archived.data["source"] == "schedule file"  # answered further up the chain
    assert any("archive-schedule" in f and "not found" in f for f in archived.data["failures"])


async def test_unknown_service_id_falls_back_along_the_chain(rig: Rig) -> None:
    reply = await rig.app.ask("oncall ghost")
    assert reply.status is Status.OK and reply.data["via"] == "platform, parent of its owner payments"
    assert any("PDELETED" in f and "not found" in f for f in reply.data["failures"])
    assert "Not answered by" in render_text(reply)


async def test_rate_limits_and_server_errors_are_retried(rig: Rig) -> None:
    rig.pd.fail_next("/services", 429, retry_after=1)
    rig.pd.fail_next("/oncalls", 503)
    reply = await rig.app.ask("oncall charges")
    assert reply.data["source"] == "PagerDuty" and reply.data["shifts"]


async def test_every_source_failing_is_said_plainly_with_the_owner_contacts(rig: Rig) -> None:
    rig.app.oncall.sources = [s for s in await rig.app.oncall.ensure_sources() if s.name != "schedule file"]
    rig.pd.fail_next("/services", 401, times=5)
    reply = await rig.app.ask("oncall charges")
    assert reply.status is Status.ERROR
    text = render_text(reply)
    assert "Nobody could be found on call" in text and "PAGERDUTY_TOKEN" in text
    assert "payments@example.com" in text  # the owner's contacts instead


async def test_a_hanging_source_answers_within_the_timeout(rig: Rig) -> None:
    rig.og.hang_next("/v2/schedules", 30, times=5)
    started = time.monotonic()
    reply = await rig.app.ask("oncall reports")
    assert time.monotonic() - started < 6
    assert reply.data["source"] == "schedule file"  # the owner's parent group answered instead
    assert any("Opsgenie" in f and "did not answer" in f for f in reply.data["failures"])


async def test_mine_lists_my_shifts(rig: Rig) -> None:
    reply = await rig.app.dispatcher.dispatch("oncall mine", platform="shell", user=None, user_ref="user:default/ana")
    assert reply.status is Status.OK and reply.data["shifts"]


def test_configured_source_without_credentials_fails_at_start(tmp_path: Path) -> None:
    cfg = tmp_path / "callboard.yaml"
    cfg.write_text("oncall:\n  pagerduty:\n    api_url: https://api.eu.pagerduty.com\n")
    with pytest.raises(ConfigError, match="PAGERDUTY_TOKEN is not set"):
        load_settings(config_file=str(cfg), env={})
    cfg.write_text("oncall:\n  opsgenie: {}\n")
    with pytest.raises(ConfigError, match="OPSGENIE_API_KEY is not set"):
        load_settings(config_file=str(cfg), env={})
    settings = load_settings(config_file=str(cfg), env={"OPSGENIE_API_KEY": "og-secret"})
    assert settings.opsgenie_api_key == "og-secret" and "og-secret" not in repr(settings)
    cfg.write_text("oncall:\n  pagerduty:\n    token: abc\n")
    with pytest.raises(ConfigError, match="oncall.pagerduty.token"):
        load_settings(config_file=str(cfg), env={"PAGERDUTY_TOKEN": "x"})
    # credentials alone enable a source, with no configuration
    assert load_settings(env={"PAGERDUTY_TOKEN": "x"}).pagerduty_token == "x"


async def test_invalid_schedule_file_is_named_in_answers(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    root.mkdir()
    (root / "catalog-info.yaml").write_text(CATALOG)
    (root / "oncall.yaml").write_text(SCHEDULE.replace("shift: 1w", "shift: weekly"))
    app = await Callboard.open(Settings(database_url=f"sqlite:///{tmp_path / 'cb.db'}", data_dir=str(tmp_path / "d")),
                               CommandRegistry.from_entry_points())
    try:
        await app.sync((str(root),))
        reply = await app.ask("oncall payments")
        text = render_text(reply)
        assert reply.status is Status.ERROR
        assert "oncall.yaml:6: rotations[0].shift" in text and "payments@example.com" in text
    finally:
        await app.close()


async def test_pagerduty_pages_through_long_answers() -> None:
    from callboard.providers.http import Fetcher
    from callboard.providers.oncall.pagerduty import PagerDutySource

    pd = PagerDutyFake()
    await pd.start()
    now = datetime.now(UTC)
    pd.add_policy("PBIG", "Big")
    pd.add_service("PSVC", "Big service", "PBIG")
    for i in range(130):
        pd.add_user(f"PU{i}", f"Person {i}", f"p{i}@example.com")
        pd.add_oncall("PBIG", 1 + i % 3, f"PU{i}", now - timedelta(hours=1), now + timedelta(hours=1))
    http = Fetcher()
    source = PagerDutySource(http, token=pd.token, api_url=pd.url, timeout=2.0)
    try:
        answer = await source.now({"pagerduty.com/service-id": "PSVC"}, None)
        assert len(answer.shifts) == 130 and {s.level for s in answer.shifts} == {1, 2, 3}
        assert len(pd.calls_to("/oncalls")) == 2  # 100 + 30
    finally:
        await http.close()
        await pd.stop()
