"""The labelled phrasings in Teams, as Teams sends them (a personal chat; a channel message with the
bot's ``<at>`` mention at the start, mid-sentence or after a greeting; HTML entities), through the
real server: a sample of ``tests/commands/phrasings.yaml`` answered as the dispatcher answers them
in the shell, and shown in the card Teams receives."""

from __future__ import annotations

import html
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ...commands.test_phrasings import Recorder, check_shown, surface_sample
from .rig import BOT, Rig, serving


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with serving(tmp_path) as r:
        yield r


@pytest.mark.parametrize("shape", ["personal", "channel"])
async def test_labelled_phrasings_in_teams(rig: Rig, shape: str) -> None:
    recorder = Recorder(rig.app)
    rig.app.dispatcher = recorder.dispatcher
    misses = []
    sample = surface_sample()
    conversation = "a:1personal-chat" if shape == "personal" else "19:general@thread.tacv2"
    for i, case in enumerate(sample):
        typed = html.escape(case.q, quote=False)  # Teams sends & < > as entities
        if shape == "personal":
            await rig.message(typed)
        else:
            where = i % 3  # the mention first, after a greeting, or last
            said = [f"<at>Callboard</at> {typed}", f"hey <at>Callboard</at>, {typed}", f"{typed} <at>Callboard</at>"][where]
            await rig.message(said, conversation=conversation, conversation_type="channel",
                              mentions=((BOT, "Callboard"),))
        shown = json.dumps((await rig.posted(conversation, count=i + 1))[-1], ensure_ascii=False)
        reply, inv = recorder.answers[-1]
        problem = check_shown(case, reply, inv, rig.app, shown, "Teams")
        if problem:
            misses.append(f"{case.q!r}: {problem}")
    assert len(recorder.answers) == len(sample)
    assert not misses, f"{len(misses)} of {len(sample)} missed in Teams ({shape}):\n" + "\n".join(misses)
