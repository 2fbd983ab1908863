"""The labelled phrasings in Slack, as Slack really sends them (slash command text form-encoded and
escaped, a DM with the bot's mention, "hey @Callboard, ..." in a channel), through the real server:
a sample of ``tests/commands/phrasings.yaml`` answered as the dispatcher answers them in the shell."""

from __future__ import annotations

import json

import pytest

from ..commands.test_phrasings import Recorder, check_shown, surface_sample
from .test_slack_real_shapes import BOT, Rig, fake, rig  # noqa: F401  (fixtures)

PRIYA = "U0PRIYA01"  # priya.raman in the catalog, by her Slack profile's email


def _escaped(text: str) -> str:
    """Text as Slack sends what a person typed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@pytest.mark.parametrize("shape", ["slash", "dm", "mention"])
async def test_labelled_phrasings_in_slack(rig: Rig, shape: str) -> None:  # noqa: F811
    recorder = Recorder(rig.app)
    rig.app.dispatcher = recorder.dispatcher
    misses = []
    sample = surface_sample()
    for i, case in enumerate(sample):
        if shape == "slash":
            body = await rig.slash("/callboard", _escaped(case.q), user=PRIYA)
            shown = json.dumps(body)
        else:
            typed = f"<@{BOT}> {_escaped(case.q)}" if shape == "dm" else f"hey <@{BOT}>, {_escaped(case.q)}"
            event = {"type": "message", "channel_type": "im", "channel": "D0PRIYA001"} if shape == "dm" else \
                {"type": "app_mention", "channel": "C0GENERAL1"}
            ts = f"1700000300.{i:06d}"
            await rig.event({**event, "user": PRIYA, "text": typed, "ts": ts, "event_ts": ts},
                            event_id=f"Ev0PHRASE{shape}{i}")
            calls = await rig.fake.wait_for("chat.postMessage", count=i + 1)
            shown = json.dumps(calls[-1].params)
        reply, inv = recorder.answers[-1]
        problem = check_shown(case, reply, inv, rig.app, shown, "Slack")
        if problem:
            misses.append(f"{case.q!r}: {problem}")
    assert len(recorder.answers) == len(sample)
    assert not misses, f"{len(misses)}/{len(sample)} wrong in Slack ({shape}):\n" + "\n".join(misses)
