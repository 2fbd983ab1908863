"""Slack slash-command throughput: signed ``/owner`` requests over HTTP against ``callboard serve``.

Three processes on this machine: ``callboard serve`` (the real server, real slack-bolt
stack, answering ``/owner`` inside the acknowledgement), a local fake of Slack's Web API
(``tests/fakes/slack.py``, for ``auth.test`` and ``users.info``), and this load process,
which keeps ``--concurrency`` requests in flight for ``--duration`` seconds and times
each acknowledgement on the client.

    python bench/bench_slack.py --catalog /tmp/cat/catalog-100000.yaml --duration 20 --concurrency 16

The catalog is synced into a fresh SQLite database before the server starts, so the
measurement is the answer path only.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECRET = "bench-signing-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _signed(body: str) -> dict[str, str]:
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": sig}


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


async def _load(url: str, names: list[str], duration: float, concurrency: int) -> dict[str, object]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    wrong = 0
    deadline = time.perf_counter() + duration
    rng = random.Random(1)

    async def worker(session: aiohttp.ClientSession, wid: int) -> None:
        nonlocal errors, wrong
        while time.perf_counter() < deadline:
            name = rng.choice(names)
            body = urllib.parse.urlencode({
                "command": "/owner", "text": name, "user_id": f"U0LOAD{wid:04d}", "channel_id": "C0BENCH001",
                "team_id": "T0FAKE001", "response_url": "http://127.0.0.1:9/unused", "trigger_id": "1.2.3",
            })
            started = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=_signed(body)) as resp:
                    payload = await resp.read()
                    if resp.status != 200:
                        errors += 1
                        continue
            except aiohttp.ClientError:
                errors += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)
            if name.encode() not in payload:
                wrong += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        # warm-up
        for name in names[:20]:
            body = urllib.parse.urlencode({"command": "/owner", "text": name, "user_id": "U0WARM0001",
                                           "channel_id": "C0BENCH001", "team_id": "T0FAKE001",
                                           "response_url": "http://127.0.0.1:9/unused"})
            async with session.post(url, data=body, headers=_signed(body)) as resp:
                await resp.read()
        started = time.perf_counter()
        await asyncio.gather(*(worker(session, i) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies), "errors": errors, "wrong_answers": wrong, "seconds": round(elapsed, 2),
        "throughput_rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 2), "p99_ms": round(_percentile(latencies, 99), 2),
        "max_ms": round(max(latencies), 2), "concurrency": concurrency,
    }


async def _fake_slack(port_file: Path) -> None:
    from tests.fakes.slack import SlackFake

    fake = SlackFake()
    url = await fake.start()
    port_file.write_text(url)
    await asyncio.Event().wait()


def _run_fake_slack(port_file: Path) -> None:
    """The fake's process: serve until SIGINT, then exit quietly."""
    try:
        asyncio.run(_fake_slack(port_file))
    except KeyboardInterrupt:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "slack.json"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cb-slack-bench-"))
    db = f"sqlite:///{work / 'cb.db'}"
    env = {**os.environ, "CALLBOARD_DATA_DIR": str(work / "data")}
    sidecar = json.loads(Path(args.catalog + ".json").read_text())
    names = sidecar["components"]
    print("syncing", args.catalog, flush=True)
    subprocess.run([sys.executable, "-m", "callboard.bot.cli", "sync", "--catalog", args.catalog,
                    "--database-url", db], check=True, env=env, stdout=subprocess.DEVNULL)
    fake_url_file = work / "fake-url"
    fake = subprocess.Popen([sys.executable, "-c",
                             f"import asyncio, sys; sys.path.insert(0, {str(ROOT)!r}); "
                             f"from bench.bench_slack import _run_fake_slack; from pathlib import Path; "
                             f"_run_fake_slack(Path({str(fake_url_file)!r}))"], env=env)
    server = None
    try:
        for _ in range(100):
            if fake_url_file.exists() and fake_url_file.read_text():
                break
            time.sleep(0.1)
        port = _free_port()
        server_env = {**env, "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": SECRET,
                      "SLACK_API_URL": fake_url_file.read_text(), "CALLBOARD_DATABASE_URL": db}
        server = subprocess.Popen([sys.executable, "-m", "callboard.bot.cli", "serve", "--host", "127.0.0.1",
                                   "--port", str(port)], env=server_env, stdout=subprocess.DEVNULL)
        import urllib.request

        for _ in range(300):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.2)
        result = asyncio.run(_load(f"http://127.0.0.1:{port}/slack/events", names, args.duration, args.concurrency))
        result.update({"catalog": Path(args.catalog).name, "entities": sidecar["total"], "cpus": os.cpu_count(),
                       "python": sys.version.split()[0]})
        print(json.dumps(result, indent=2))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    finally:
        for proc in (server, fake):
            if proc is not None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
