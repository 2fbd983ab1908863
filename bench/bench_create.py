"""The golden path's speed: from the person confirming a template's review in Slack to ``/owner``
answering for the new service, through the real server, the real Slack stack against the Slack fake
and ``publish:github`` against the GitHub fake (both local HTTP fakes in ``tests/fakes``), with
``catalog:register`` into Callboard's catalog.

    python bench/bench_create.py --runs 20 --out bench/results/create.json

Each run creates a new service (``bench-svc-<i>``): the final ``view_submission`` POST starts the
clock; "done" is the DM saying the task finished; "owner" is the first ``/owner bench-svc-<i>``
that names the owner (asked every 20 ms from the moment of the submit). Medians and p99 over runs.
Backstage's catalog shows a registered entity only after its processing cycle (35–198 s measured
on this machine, ``shared/bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/ (the fakes and the Slack rig) from the checkout

def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def main(runs: int, out: Path | None) -> None:
    from callboard.bot.app import Callboard
    from callboard.bot.config import Settings
    from callboard.bot.slack.app import SlackSettings, SlackSurface
    from callboard.commands.dispatch import CommandRegistry
    from tests.bot.test_slack_real_shapes import ASKER, SECRET, Rig
    from tests.bot.test_golden_path import GITHUB_TEMPLATE, OWNER, _catalog
    from tests.bot.test_slack_template_forms import _submit, _text
    from tests.fakes.github import GitHubFake
    from tests.fakes.slack import SlackFake
    from tests.serving import count_dispatches, served

    slack, github = SlackFake(), GitHubFake()
    await slack.start()
    await github.start()
    slack.add_user(ASKER, "asker@example.com", "asker")
    work = Path(tempfile.mkdtemp(prefix="cb-bench-create-"))
    # the fake stands for github.com (the API) and, by its own address, for the repository pages
    # catalog:register reads the new catalog-info.yaml from (a GitHub Enterprise host, to Callboard)
    fake_host = github.url.split("://", 1)[1]
    settings = Settings(database_url=f"sqlite:///{work / 'cb.db'}", data_dir=str(work / "data"),
                        github_api_url=github.url, github_token=github.token,
                        scaffolder_actions={"github_hosts": {fake_host: github.url}})
    app = await Callboard.open(settings, CommandRegistry.from_entry_points(), resident=True)
    surface = SlackSettings(bot_token="xoxb-test", signing_secret=SECRET, api_url=slack.url)
    done_s: list[float] = []
    owner_s: list[float] = []
    try:
        catalog = _catalog(work / "catalog")  # the golden-path test's org and template, publishing to GitHub
        (work / "catalog" / "template.yaml").write_text(GITHUB_TEMPLATE)
        async with served(app, catalog=catalog,
                          surfaces=[lambda opened, tasks: SlackSurface(surface, opened, tasks)]) as (server, http):
            rig = Rig(slack, server, http, app, count_dispatches(app))
            owner = OWNER
            for i in range(runs):
                name = f"bench-svc-{i}"
                opened_before = len(slack.calls_to("views.open"))
                listed = await rig.slash("/create", "tiny")
                await rig.settled()
                blocks = [b for a in [listed] + [c.params for c in slack.calls if c.method == "response_url"]
                          for b in a.get("blocks") or []]
                button = next(e for b in blocks if b.get("type") == "actions" for e in b["elements"]
                              if "tiny-service" in str(e.get("value")))
                await rig.click(button["value"], action_id=button["action_id"], name=f"open-{i}")
                view = (await slack.wait_for("views.open", opened_before + 1))[-1].params["view"]
                review = await _submit(rig, view, {"name": _text(name), "owner": owner})
                posted_before = len(slack.calls_to("chat.postMessage"))
                started = time.perf_counter()
                await _submit(rig, review["view"], {})
                done_at = owner_at = None
                while done_at is None or owner_at is None:
                    now = time.perf_counter()
                    if now - started > 60:
                        raise SystemExit(f"run {i}: not done within 60 s")
                    if done_at is None and any("Tiny service: done" in str(c.params.get("text"))
                                               for c in slack.calls_to("chat.postMessage")[posted_before:]):
                        done_at = now
                    if done_at is None and any("Tiny service failed" in str(c.params.get("text"))
                                               for c in slack.calls_to("chat.postMessage")[posted_before:]):
                        raise SystemExit(f"run {i} failed: " + "; ".join(
                            str(c.params.get("text")) for c in slack.calls_to("chat.postMessage")[posted_before:]))
                    if owner_at is None:
                        reply = await app.ask(f"owner {name}")
                        if reply.status.answered and "web-team" in json.dumps(reply.data):
                            owner_at = time.perf_counter()
                    await asyncio.sleep(0.02)
                done_s.append(done_at - started)
                owner_s.append(owner_at - started)
                print(f"run {i}: done {done_s[-1] * 1000:.0f} ms, /owner answers {owner_s[-1] * 1000:.0f} ms", flush=True)
    finally:
        await app.close()
        await slack.stop()
        await github.stop()
    result = {
        "runs": runs, "machine": {"nproc": os.cpu_count(), "python": platform.python_version(),
                                  "platform": platform.platform(), "load_1min": os.getloadavg()[0]},
        "submit_to_done_ms": {"median": statistics.median(done_s) * 1000, "p99": _pct(done_s, 0.99) * 1000,
                              "max": max(done_s) * 1000},
        "submit_to_owner_ms": {"median": statistics.median(owner_s) * 1000, "p99": _pct(owner_s, 0.99) * 1000,
                               "max": max(owner_s) * 1000},
    }
    print(json.dumps(result, indent=1))
    if out is not None:
        out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.out))
