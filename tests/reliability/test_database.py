"""Databases that fail: unreachable at start, gone mid-serve, or black-holed (connections accepted,
nothing answered). The CLI says so in one line and exits 2; ``serve`` keeps running, reports it on
``/readyz`` within a second, tells chat users "temporarily unavailable" within Slack's 3 s, and
recovers by itself when the database answers again.

PostgreSQL sits behind a TCP proxy the test controls (``tcp_proxy.py``): forward, refuse, black-hole.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy.engine import make_url

from callboard.bot.app import Callboard, demo_catalog_path
from callboard.bot.config import Settings
from callboard.bot.server import create_server
from callboard.bot.slack.app import SlackSettings
from callboard.commands.api import CommandSpec, Deps, Invocation, Reply, Status
from callboard.commands.dispatch import CommandRegistry, Dispatcher
from callboard.storage.engine import DatabaseProbe, DatabaseUnavailable

from ..bot.test_slack import SECRET, Rig
from ..conftest import postgres_or_skip
from ..fakes.slack import SlackFake
from .tcp_proxy import TcpProxy

#: Generous for a loaded 2-core CI machine, still far below the 60 s hangs they guard against.
READYZ_WITHIN = 1.5
REPLY_WITHIN = 3.0
RECOVERS_WITHIN = 20.0
UNAVAILABLE = "temporarily unavailable"


# --- the command line ------------------------------------------------------------------------


def _cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CALLBOARD_")}
    environ["CALLBOARD_DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run([sys.executable, "-m", "callboard.bot.cli", *args], capture_output=True, text=True,
                          env=environ, cwd=tmp_path, timeout=60)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _assert_one_line(done: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for word in expected:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("command", [["ask", "owner payment-service"], ["sync"]])
def test_postgres_refusing_at_start_is_one_line_and_exit_2(tmp_path: Path, command: list[str]) -> None:
    port = _closed_port()
    url = f"postgresql://callboard:s3cret-pw@127.0.0.1:{port}/callboard"
    line = _assert_one_line(_cli([command[0], "--database-url", url, *command[1:]], tmp_path), f"127.0.0.1:{port}")
    assert "s3cret-pw" not in line and "***" in line  # the password is masked
    assert "refus" in line.lower() or "nothing accepts" in line.lower()


def test_unknown_database_host_is_one_line_and_exit_2(tmp_path: Path) -> None:
    url = "postgresql://callboard@no-such-host.invalid:5432/callboard"
    _assert_one_line(_cli(["ask", "--database-url", url, "help"], tmp_path), "no-such-host.invalid")


def _pg_url(**changes: Any) -> str:
    return make_url(postgres_or_skip()).set(**changes).render_as_string(hide_password=False)


@pytest.mark.postgres
@pytest.mark.parametrize("command", [["ask", "help"], ["sync"]])
def test_no_such_database_is_one_line_and_exit_2(tmp_path: Path, command: list[str]) -> None:
    url = _pg_url(database="cb_g_no_such_database")
    line = _assert_one_line(_cli([command[0], "--database-url", url, *command[1:]], tmp_path), "cb_g_no_such_database")
    assert "does not exist" in line and "createdb" in line


@pytest.mark.postgres
def test_login_refused_is_one_line_and_exit_2(tmp_path: Path) -> None:
    url = _pg_url(username="cb_g_no_such_role", password="hunter2-pw")
    line = _assert_one_line(_cli(["ask", "--database-url", url, "help"], tmp_path), "cb_g_no_such_role")
    assert "hunter2-pw" not in line and "password" in line


@pytest.mark.parametrize("command", [["ask", "help"], ["sync"]])
def test_sqlite_file_under_a_file_is_one_line_and_exit_2(tmp_path: Path, command: list[str]) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be\n")
    url = f"sqlite:///{blocker / 'cb.db'}"
    line = _assert_one_line(_cli([command[0], "--database-url", url, *command[1:]], tmp_path), str(blocker))
    assert "SQLite" in line


async def test_a_database_that_never_answers_at_start_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """Connections accepted, nothing answered: the connect time limit ends it, not a 60 s hang."""
    proxy = TcpProxy("127.0.0.1", _closed_port())
    port = await proxy.start()
    proxy.black_hole()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CALLBOARD_")}
    environ["CALLBOARD_DATA_DIR"] = str(tmp_path / "data")
    started = time.perf_counter()
    try:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "callboard.bot.cli", "ask", "--database-url",
            f"postgresql://cb:s3cret-pw@127.0.0.1:{port}/cb", "help",
            env=environ, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(child.communicate(), 60)
    finally:
        await proxy.close()
    done = subprocess.CompletedProcess([], child.returncode or 0, out.decode(), err.decode())
    line = _assert_one_line(done, f"127.0.0.1:{port}", "did not answer")
    assert "s3cret-pw" not in line
    assert time.perf_counter() - started < 30


def test_serve_runs_and_reports_503_while_the_database_refuses(tmp_path: Path) -> None:
    """The real ``callboard serve``: it does not exit; /healthz 200, /readyz 503 saying why."""
    db_port, port = _closed_port(), _closed_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CALLBOARD_", "SLACK_"))}
    environ.update(CALLBOARD_DATA_DIR=str(tmp_path / "data"), SLACK_BOT_TOKEN="xoxb-test",
                   SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL="http://127.0.0.1:9/api/")
    url = f"postgresql://callboard:s3cret-pw@127.0.0.1:{db_port}/callboard"
    serve = subprocess.Popen([sys.executable, "-m", "callboard.bot.cli", "serve", "--host", "127.0.0.1", "--port",
                              str(port), "--database-url", url], env=environ, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert serve.poll() is None, serve.communicate()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "serve never answered /healthz"
                time.sleep(0.1)
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert failed.value.code == 503
        problems = json.loads(failed.value.read())["problems"]
        failed.value.close()
        assert any("refused" in p and f"127.0.0.1:{db_port}" in p for p in problems), problems
        assert "s3cret-pw" not in json.dumps(problems)
        assert serve.poll() is None  # still serving
    finally:
        serve.terminate()
        _, err = serve.communicate(timeout=30)
    assert "s3cret-pw" not in err


# --- the server -----------------------------------------------------------------------------


@pytest.fixture
async def proxied_postgres(postgres_url: str) -> AsyncIterator[tuple[TcpProxy, str]]:
    """The test's PostgreSQL database behind a proxy: (proxy, URL through the proxy)."""
    target = make_url(postgres_url)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    port = await proxy.start()
    try:
        yield proxy, target.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    finally:
        await proxy.close()


def _opener(url: str, data_dir: Path) -> Callable[[], Awaitable[Callboard]]:
    def open_app() -> Awaitable[Callboard]:
        return Callboard.open(Settings(database_url=url, data_dir=str(data_dir)), CommandRegistry.from_entry_points(),
                              resident=True)

    return open_app


@contextlib.asynccontextmanager
async def _serving(url: str, tmp_path: Path, proxy: TcpProxy) -> AsyncIterator[Rig]:
    """``callboard serve`` as the CLI wires it: the server opens the database itself (retrying)."""
    fake = SlackFake()
    await fake.start()
    web_app = create_server(_opener(url, tmp_path / "data"), catalog=(str(demo_catalog_path()),), sync_interval=3600,
                            slack=SlackSettings(bot_token="xoxb-test", signing_secret=SECRET, api_url=fake.url),
                            backoff=(0.2, 1.0))
    server = TestServer(web_app, host="127.0.0.1")
    await server.start_server()
    http = aiohttp.ClientSession()
    try:
        yield Rig(fake, server, http, None)  # type: ignore[arg-type]
    finally:
        await http.close()
        await proxy.refuse()  # connections still frozen are reset, so shutting down does not wait on them
        await server.close()
        await fake.stop()


async def _readyz(rig: Rig) -> tuple[int, dict, float]:
    started = time.perf_counter()
    async with rig.http.get(rig.server.make_url("/readyz")) as resp:
        return resp.status, await resp.json(), time.perf_counter() - started


async def _until_ready(rig: Rig, within: float = RECOVERS_WITHIN) -> dict:
    deadline = time.monotonic() + within
    while True:
        status, body, _ = await _readyz(rig)
        if status == 200:
            return body
        assert time.monotonic() < deadline, f"not ready after {within} s: {body}"
        await asyncio.sleep(0.1)


_slashes = iter(range(1_000_000))


async def _slash_reply(rig: Rig, command: str, text: str) -> tuple[str, float]:
    """The answer a user sees to a slash command (in the ack, or posted to response_url after
    "Working on…"), and how long after sending it arrived."""
    name = f"slash{next(_slashes)}"
    started = time.perf_counter()
    resp = await rig.slash(command, text, response_url=rig.fake.response_url(name))
    assert resp.status == 200
    body = await resp.json()
    if not body["text"].startswith("Working on"):
        return body["text"] + json.dumps(body.get("blocks")), time.perf_counter() - started
    (call,) = await rig.fake.wait_for(f"response_url:{name}", timeout=10)
    return call.params["text"] + json.dumps(call.params.get("blocks")), time.perf_counter() - started


@pytest.mark.postgres
async def test_serve_starts_while_the_database_refuses_then_comes_up(
    proxied_postgres: tuple[TcpProxy, str], tmp_path: Path
) -> None:
    proxy, url = proxied_postgres
    await proxy.refuse()
    async with _serving(url, tmp_path, proxy) as rig:
        async with rig.http.get(rig.server.make_url("/healthz")) as resp:
            assert resp.status == 200
        for _ in range(2):  # still not ready after a retry or two
            status, body, took = await _readyz(rig)
            assert status == 503 and took < READYZ_WITHIN
            assert any("database" in p for p in body["problems"]), body
        reply, took = await _slash_reply(rig, "/owner", "payment-service")
        assert UNAVAILABLE in reply and took < REPLY_WITHIN, (reply, took)
        await proxy.forward()
        body = await _until_ready(rig)
        assert body["entities"] > 50
        reply, took = await _slash_reply(rig, "/owner", "payment-service")
        assert "payments-team" in reply and took < REPLY_WITHIN


@pytest.mark.postgres
async def test_black_holed_database_is_reported_fast_and_recovers(
    proxied_postgres: tuple[TcpProxy, str], tmp_path: Path
) -> None:
    proxy, url = proxied_postgres
    async with _serving(url, tmp_path, proxy) as rig:
        await _until_ready(rig)
        reply, _ = await _slash_reply(rig, "/owner", "payment-service")
        assert "payments-team" in reply

        proxy.black_hole()
        status, body, took = await _readyz(rig)
        assert status == 503 and took < READYZ_WITHIN, (status, body, took)
        assert any("not answering" in p for p in body["problems"]), body
        reply, took = await _slash_reply(rig, "/owner", "payment-service")
        assert UNAVAILABLE in reply and took < REPLY_WITHIN, (reply, took)
        assert "Traceback" not in reply and "postgresql" not in reply.lower()
        mention = {"type": "app_mention", "user": "U0ASKER01", "text": "<@U0FAKEBOT> who owns checkout-api?",
                   "ts": "1700000001.000100", "channel": "C0GENERAL1", "event_ts": "1700000001.000100"}
        started = time.perf_counter()
        assert (await rig.event(mention, event_id="Ev0BLACK1")).status == 200
        (posted,) = await rig.fake.wait_for("chat.postMessage", timeout=10)
        assert UNAVAILABLE in posted.params["text"] and time.perf_counter() - started < REPLY_WITHIN
        status, _, took = await _readyz(rig)  # asked again while the first probe may still hang
        assert status == 503 and took < READYZ_WITHIN

        await proxy.forward()
        await _until_ready(rig)
        reply, took = await _slash_reply(rig, "/owner", "payment-service")
        assert "payments-team" in reply and took < REPLY_WITHIN, (reply, took)
        assert (await rig.event({**mention, "ts": "1700000002.000100"}, event_id="Ev0BLACK2")).status == 200
        calls = await rig.fake.wait_for("chat.postMessage", count=2, timeout=10)
        assert "checkout-team" in calls[1].params["text"] + json.dumps(calls[1].params.get("blocks"))


@pytest.mark.postgres
async def test_database_going_away_mid_serve_then_coming_back(
    proxied_postgres: tuple[TcpProxy, str], tmp_path: Path
) -> None:
    proxy, url = proxied_postgres
    async with _serving(url, tmp_path, proxy) as rig:
        await _until_ready(rig)
        await proxy.refuse()
        status, body, took = await _readyz(rig)
        assert status == 503 and took < READYZ_WITHIN
        assert any("database" in p for p in body["problems"]), body
        reply, took = await _slash_reply(rig, "/owner", "payment-service")
        assert UNAVAILABLE in reply and took < REPLY_WITHIN, (reply, took)
        await proxy.forward()
        await _until_ready(rig)
        reply, took = await _slash_reply(rig, "/owner", "payment-service")
        assert "payments-team" in reply and took < REPLY_WITHIN, (reply, took)


@pytest.mark.postgres
async def test_app_ask_says_temporarily_unavailable_when_the_database_hangs(
    proxied_postgres: tuple[TcpProxy, str], tmp_path: Path
) -> None:
    proxy, url = proxied_postgres
    # with the terminal's user set, ask looks them up in the database before answering
    app = await Callboard.open(Settings(database_url=url, data_dir=str(tmp_path / "data"),
                                        user_email="priya.raman@acme.example.com"),
                               CommandRegistry.from_entry_points(), resident=True)
    try:
        await app.sync((str(demo_catalog_path()),))
        assert (await app.ask("owner payment-service")).status.answered
        proxy.black_hole()
        started = time.perf_counter()
        reply = await asyncio.wait_for(app.ask("owner payment-service"), 10)  # fail, never hang
        took = time.perf_counter() - started
        shown = json.dumps(reply.data) + repr(reply.blocks)
        assert UNAVAILABLE in shown and took < REPLY_WITHIN, (shown, took)
        assert "postgresql" not in shown.lower() and "127.0.0.1" not in shown
        await proxy.forward()
        deadline = time.monotonic() + RECOVERS_WITHIN
        while not (await asyncio.wait_for(app.ask("owner payment-service"), 10)).status.answered:
            assert time.monotonic() < deadline, "answers did not come back"
            await asyncio.sleep(0.1)
    finally:
        await proxy.refuse()
        await app.close()


# --- the dispatcher: the one error boundary -----------------------------------------------------


def _dispatcher_with(run: Callable[..., Awaitable[Reply]], deps: Deps, availability: object) -> Dispatcher:
    spec = CommandSpec(name="probe-me", summary="x", usage="probe-me", examples=("probe-me",), run=run)
    return Dispatcher(CommandRegistry([spec]), deps, availability)  # type: ignore[arg-type]


async def test_slow_answers_are_waited_for_while_the_database_answers(database_url: str, make_app) -> None:
    """Past its patience the dispatcher asks the database; it answers, so the slow command (an
    on-call service, say) is waited for rather than cut off."""
    app = await make_app(database_url)
    try:
        async def slow(inv: Invocation, deps: Deps) -> Reply:
            await asyncio.sleep(0.4)  # the slowness under test, not synchronisation
            return Reply.notice(Status.OK, "slow but fine")

        probe = DatabaseProbe(app.engine, patience=0.05)
        reply = await _dispatcher_with(slow, app.dispatcher.deps, probe).dispatch("probe-me")
        assert reply.status is Status.OK and reply.summary == "slow but fine"
    finally:
        await app.close()


@pytest.mark.parametrize("failure", [
    ConnectionRefusedError(111, "Connect call failed ('10.0.0.5', 5432)"),
    DatabaseUnavailable("Cannot reach the database at postgresql://cb:***@10.0.0.5:5432/cb"),
])
async def test_a_database_failure_in_a_command_is_temporarily_unavailable(failure: Exception, demo_app, caplog) -> None:
    async def fails(inv: Invocation, deps: Deps) -> Reply:
        raise failure

    reply = await _dispatcher_with(fails, demo_app.dispatcher.deps, demo_app.probe).dispatch("probe-me")
    assert reply.status is Status.ERROR
    assert UNAVAILABLE in reply.summary and "ref " in reply.summary
    assert "10.0.0.5" not in reply.summary and "postgresql" not in reply.summary
    assert "command unavailable" in caplog.text


async def test_an_answer_hanging_on_a_database_that_does_not_answer_is_given_up() -> None:
    class NotAnswering:
        patience = 0.05

        def failed(self, exc: BaseException) -> bool:
            return False

        async def problem(self) -> str | None:
            return "database not answering (no reply within 0.8 s)"

    hung = asyncio.Event()

    async def hangs(inv: Invocation, deps: Deps) -> Reply:
        hung.set()
        await asyncio.Event().wait()
        raise AssertionError("never answers")

    reply = await asyncio.wait_for(_dispatcher_with(hangs, None, NotAnswering()).dispatch("probe-me"), 5)  # type: ignore[arg-type]
    assert hung.is_set() and reply.status is Status.ERROR and UNAVAILABLE in reply.summary
