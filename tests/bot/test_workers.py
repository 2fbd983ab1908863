"""``callboard serve --workers N`` as an operator runs it: N processes answer on one port, worker 0
syncs and the others follow its changes, a stop request stops them all, and a worker that dies
takes the service down with a line naming it (so that the service manager restarts the whole)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: where there is no os.fork (Windows) --workers says so instead: test_without_fork_workers_say_so_in_one_line
forks = pytest.mark.skipif(not hasattr(os, "fork"), reason="--workers forks its workers (Linux, macOS)")

_COMPONENT = """---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {{name: {name}}}
spec: {{type: service, lifecycle: production, owner: group:default/team-{name}}}
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    """A GET on a connection of its own (each may land on another worker)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return int(resp.status), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return int(exc.code), json.loads(exc.read())


def _search(port: int, text: str) -> list[str]:
    """A Teams picker's typeahead (``application/search``), answered in the HTTP response."""
    activity = {"type": "invoke", "name": "application/search", "channelId": "msteams",
                "serviceUrl": "http://127.0.0.1:9/", "from": {"id": "29:ana"}, "recipient": {"id": "28:callboard"},
                "conversation": {"id": "a:ana", "conversationType": "personal"},
                "value": {"queryText": text, "dataset": "pick:component", "queryOptions": {"skip": 0, "top": 10}}}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/messages", data=json.dumps(activity).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        body = json.loads(resp.read())
    return [item["value"] for item in body["value"]["results"]]


def _seen(port: int, workers: int, entities: int, limit: float = 60) -> None:
    """Wait until every worker has said (on /readyz) that it is ready with ``entities`` entities."""
    ready: set[int] = set()
    deadline = time.monotonic() + limit
    while len(ready) < workers:
        assert time.monotonic() < deadline, f"only workers {sorted(ready)} were ready with {entities} entities"
        try:
            status, body = _get(port, "/readyz")
        except OSError:
            time.sleep(0.2)
            continue
        if status == 200 and body["entities"] == entities:
            ready.add(body["worker"])
        else:
            time.sleep(0.1)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return sorted(found)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by a parent that is gone too) is not alive
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _env(tmp_path: Path, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLBOARD_", "SLACK_", "MICROSOFT_"))}
    return {**env, "CALLBOARD_DATA_DIR": str(tmp_path / "data"), **more}


def _run_serve(tmp_path: Path, port: str, workers: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``callboard serve --workers`` that is expected to stop at once."""
    return subprocess.run([sys.executable, "-m", "callboard.bot.cli", "serve", "--port", port, "--workers", workers],
                          env=_env(tmp_path, **env), cwd=tmp_path, capture_output=True, text=True, timeout=60)


@contextlib.contextmanager
def _serving(tmp_path: Path, workers: int, names: tuple[str, ...] = ("billing-api",)
             ) -> Iterator[tuple[subprocess.Popen[str], int, list[int]]]:
    """``callboard serve --workers`` on a catalog of components ``names`` (``catalog-info.yaml``,
    synced every second), once every worker is ready with it: the parent, the port and the
    workers' pids. Whatever the test did, nothing of it is left running afterwards."""
    catalog = tmp_path / "catalog-info.yaml"
    catalog.write_text("".join(_COMPONENT.format(name=name) for name in names))
    (tmp_path / "callboard.yaml").write_text("catalog:\n  sync_interval: 1\n")
    env = _env(tmp_path, CALLBOARD_TEAMS_DEV="1")
    port = _port()
    proc = subprocess.Popen([sys.executable, "-m", "callboard.bot.cli", "serve", "--port", str(port),
                             "--workers", str(workers), "--config", str(tmp_path / "callboard.yaml"),
                             "--catalog", str(catalog)],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _seen(port, workers, entities=len(names))
        pids = _children(proc.pid)
        assert len(pids) == workers, pids
        yield proc, port, pids
    finally:
        for pid in _children(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@forks
def test_workers_answer_on_one_port_and_follow_what_worker_0_syncs(tmp_path: Path) -> None:
    with _serving(tmp_path, 2, ("billing-api", "ledger-service")) as (proc, port, workers):
        assert all(_search(port, "ledg") == ["component:default/ledger-service"] for _ in range(6))
        # worker 0 syncs the edit; worker 1 never reads the file, it reloads what worker 0 wrote
        catalog = tmp_path / "catalog-info.yaml"
        catalog.write_text(catalog.read_text() + _COMPONENT.format(name="payments-gateway"))
        _seen(port, 2, entities=3)
        assert all(_search(port, "paym") == ["component:default/payments-gateway"] for _ in range(6))
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "with 2 worker processes" in out and out.count("Callboard is serving") == 1, out
    assert "Traceback" not in err and "ERROR" not in err, err
    assert not any(_alive(pid) for pid in workers)


@forks
def test_a_worker_that_dies_stops_the_others_and_says_which(tmp_path: Path) -> None:
    with _serving(tmp_path, 3) as (proc, _, workers):
        os.kill(workers[1], signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert f"(pid {workers[1]}) was killed by signal 9; stopping the other workers" in err, err
    assert not any(_alive(pid) for pid in workers)


@forks
def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run_serve(tmp_path, str(port), "2", CALLBOARD_TEAMS_DEV="1")
    assert done.returncode == 1, done
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize("count", ["0", "-2", "many"])
def test_a_worker_count_that_is_not_one_or_more_is_refused(tmp_path: Path, count: str) -> None:
    done = _run_serve(tmp_path, str(_port()), count, CALLBOARD_TEAMS_DEV="1")
    assert done.returncode == 2, done
    assert "--workers" in done.stderr and "Traceback" not in done.stderr, done.stderr


@forks
def test_ctrl_c_stops_every_worker_with_130(tmp_path: Path) -> None:
    with _serving(tmp_path, 2) as (proc, port, workers):
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "ERROR" not in err, err
    assert not any(_alive(pid) for pid in workers)
    with pytest.raises(OSError):  # the port is closed: refused at once, not left hanging in a backlog
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


@forks
def test_workers_whose_parent_is_killed_stop(tmp_path: Path) -> None:
    with _serving(tmp_path, 2) as (proc, _, workers):
        proc.kill()  # SIGKILL: no chance to stop them
        proc.communicate(timeout=30)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in workers):
            assert time.monotonic() < deadline, "the workers outlived their parent"
            time.sleep(0.2)


def test_more_workers_than_socket_mode_connections_is_refused(tmp_path: Path) -> None:
    done = _run_serve(tmp_path, str(_port()), "11", SLACK_BOT_TOKEN="xoxb-test", SLACK_APP_TOKEN="xapp-test")
    assert done.returncode == 2, done
    assert "Socket Mode takes at most 10" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert "xapp-test" not in done.stdout + done.stderr


def test_without_fork_workers_say_so_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows has no os.fork: the service refuses to start rather than run one worker quietly."""
    from callboard.bot import workers

    monkeypatch.delattr(workers.os, "fork", raising=False)
    started: list[int] = []

    def serve(index: int) -> int:
        started.append(index)
        return 0

    with pytest.raises(OSError, match="--workers needs os.fork"):
        workers.run_workers(2, [], serve)
    assert started == []
