"""``callboard serve`` with Teams, as an admin runs it: Teams alone or beside Slack in one process,
saying at start which are on; development mode says loudly that requests are not authenticated;
credentials that cannot work stop it with one line naming the variable."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

APP_ID = "11111111-2222-3333-4444-555555555555"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CALLBOARD_", "SLACK_", "MICROSOFT_"))}
    env.update(CALLBOARD_DATA_DIR=str(tmp_path / "data"), **more)
    return env


def _serve(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    port = _port()
    proc = subprocess.Popen([sys.executable, "-m", "callboard.bot.cli", "serve", "--port", str(port)], env=env,
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, proc.communicate()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return proc, port
        except OSError:
            pass
        assert time.monotonic() < deadline, "serve never got ready"
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.terminate()
    out, err = proc.communicate(timeout=30)
    return out, err


def _post(port: int, path: str, body: dict[str, object]) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)


def test_teams_alone_in_development_mode_says_so_loudly(tmp_path: Path) -> None:
    proc, port = _serve(tmp_path, _env(tmp_path, CALLBOARD_TEAMS_DEV="1"))
    try:
        # the endpoint is there (an activity naming no connector is refused, not 404); Slack's is not
        assert _post(port, "/api/messages", {"type": "message", "text": "hi"}) == 400
        assert _post(port, "/slack/events", {}) == 404
    finally:
        out, err = _stop(proc)
    assert "Microsoft Teams (http://127.0.0.1:" in out and "DEVELOPMENT MODE" in out and "Slack" not in out, out
    assert "TEAMS DEVELOPMENT MODE" in err and "NOT authenticated" in err, err


def test_slack_and_teams_in_one_process(tmp_path: Path) -> None:
    env = _env(tmp_path, SLACK_BOT_TOKEN="xoxb-test", SLACK_SIGNING_SECRET="secret", SLACK_API_URL="http://127.0.0.1:9/api/",
               MICROSOFT_APP_ID=APP_ID, MICROSOFT_APP_PASSWORD="s3cret-client-value")
    proc, port = _serve(tmp_path, env)
    try:
        assert _post(port, "/api/messages", {"type": "message", "serviceUrl": "https://smba.trafficmanager.net/amer/",
                                             "text": "hi"}) == 401  # no token
        assert _post(port, "/slack/events", {}) == 401  # unsigned
    finally:
        out, err = _stop(proc)
    assert "Slack (" in out and "Microsoft Teams (" in out and "DEVELOPMENT" not in out + err, out
    assert "s3cret-client-value" not in out + err


@pytest.mark.parametrize(("env", "named"), [
    ({"MICROSOFT_APP_ID": APP_ID}, "MICROSOFT_APP_PASSWORD"),  # each other case: test_teams_settings.py
    ({}, "MICROSOFT_APP_ID"),  # nothing configured: the message says how to turn Teams on
])
def test_credentials_that_cannot_work_stop_serve_with_one_line(tmp_path: Path, env: dict[str, str], named: str) -> None:
    done = subprocess.run([sys.executable, "-m", "callboard.bot.cli", "serve", "--port", str(_port())],
                          env=_env(tmp_path, **env), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done
    assert named in done.stderr and "Traceback" not in done.stderr, done.stderr
