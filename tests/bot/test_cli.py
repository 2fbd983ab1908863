"""The ``callboard`` CLI as a user runs it: real process, real exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from callboard.bot.config import ConfigError, load_settings
from tests.conftest import postgres_or_skip


_COMPONENT = ("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n"
              "spec:\n  type: service\n  lifecycle: production\n  owner: widget-team\n")


def _environ(tmp_path: Path, env: dict[str, str]) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("CALLBOARD_", "PAGERDUTY_", "OPSGENIE_"))}
    environ.update({"CALLBOARD_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "80", **env})
    return environ


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callboard.bot.cli", *args],
        capture_output=True, text=True, env=_environ(tmp_path, env), cwd=tmp_path, timeout=120,
    )


def _run_input(args: list[str], tmp_path: Path, stdin: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callboard.bot.cli", *args], input=stdin,
        capture_output=True, text=True, env=_environ(tmp_path, env), cwd=tmp_path, timeout=120,
    )


async def _run_async(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``_run`` while this test's event loop keeps serving (a local HTTP server the CLI reads)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callboard.bot.cli", *args, env=_environ(tmp_path, {}), cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return subprocess.CompletedProcess(args, proc.returncode, out.decode(), err.decode())


def test_ask_demo_catalog_from_anywhere(tmp_path: Path) -> None:
    done = _run(["ask", "who owns paymnet-servce?"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "payments-team" in done.stdout
    assert (tmp_path / "data" / "callboard.db").exists()  # the user's data dir, not the cwd
    assert not list(tmp_path.glob("*.db"))


def test_ask_exit_codes_and_json(tmp_path: Path) -> None:
    nothing = _run(["ask", "owner qqqq-zzzz-xxxx"], tmp_path)
    assert nothing.returncode == 1
    usage = _run(["ask", "frobnicate it"], tmp_path)
    assert usage.returncode == 2
    as_json = _run(["ask", "--format", "json", "owner checkout-api"], tmp_path)
    assert as_json.returncode == 0
    payload = json.loads(as_json.stdout)
    assert payload["status"] == "ok" and payload["owners"][0]["ref"] == "group:default/checkout-team"
    bad_option = _run(["ask", "--format", "xml", "owner x"], tmp_path)
    assert bad_option.returncode == 2


def test_sync_then_answer_from_database_as_is(tmp_path: Path) -> None:
    catalog = tmp_path / "cat"
    catalog.mkdir()
    (catalog / "catalog-info.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: widget\n"
        "spec:\n  type: service\n  lifecycle: production\n  owner: widget-team\n"
        "---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: [bad\n"
    )
    db = f"sqlite:///{tmp_path / 'mine.db'}"
    synced = _run(["sync", "--catalog", str(catalog), "--database-url", db], tmp_path)
    assert synced.returncode == 0, synced.stderr
    assert "1 added" in synced.stdout and "1 error" in synced.stdout
    assert "catalog-info.yaml:" in synced.stdout  # file and line of the error
    strict = _run(["sync", "--catalog", str(catalog), "--database-url", db, "--strict"], tmp_path)
    assert strict.returncode == 1
    answered = _run(["ask", "--database-url", db, "who owns widget"], tmp_path)
    assert answered.returncode == 0 and "widget-team" in answered.stdout
    # the database as it is: the demo catalog was not added
    demo = _run(["ask", "--database-url", db, "owner payment-service"], tmp_path)
    assert demo.returncode == 1


def test_bad_database_url_and_config(tmp_path: Path) -> None:
    bad = _run(["ask", "--database-url", "mysql://x/y", "help"], tmp_path)
    assert bad.returncode == 2 and "Unsupported database" in bad.stderr
    cfg = tmp_path / "callboard.yaml"
    cfg.write_text("catalog:\n  max_file_bytes: lots\n")
    broken = _run(["ask", "--config", str(cfg), "help"], tmp_path)
    assert broken.returncode == 2 and "catalog.max_file_bytes" in broken.stderr


def test_config_file_env_substitution_and_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "callboard.yaml"
    cfg.write_text("database:\n  url: ${DB_URL}\ncatalog:\n  locations: [./cat]\n  sync_interval: 60\n")
    settings = load_settings(config_file=str(cfg), env={"DB_URL": "sqlite:///x.db"})
    assert settings.database_url == "sqlite:///x.db"
    assert settings.catalog == (str((tmp_path / "cat").resolve()),)
    assert settings.sync_interval == 60
    with pytest.raises(ConfigError, match="database.url: environment variable DB_URL is not set"):
        load_settings(config_file=str(cfg), env={})
    cfg.write_text("catalog:\n  locaitons: []\n")
    with pytest.raises(ConfigError, match="catalog.locaitons"):
        load_settings(config_file=str(cfg), env={})
    cfg.write_text("databse: {}\n")
    with pytest.raises(ConfigError, match="unknown key 'databse'"):
        load_settings(config_file=str(cfg), env={})
    env = {"CALLBOARD_CONFIG": str(cfg), "CALLBOARD_DATABASE_URL": "postgresql://u@h/db"}
    cfg.write_text("log:\n  level: info\n")
    assert load_settings(env=env).database_url == "postgresql://u@h/db"


def test_chat_reads_questions_from_a_pipe(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CALLBOARD_")}
    environ["CALLBOARD_DATA_DIR"] = str(tmp_path / "data")
    done = subprocess.run(
        [sys.executable, "-m", "callboard.bot.cli", "chat"], input="who owns checkout-api\nteam sre-team\n",
        capture_output=True, text=True, env=environ, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "checkout-team" in done.stdout.lower() and "entities from the demo catalog" in done.stdout


def test_chat_suggests_a_first_question_about_the_catalog_it_answers_from(tmp_path: Path) -> None:
    """Not the demo's payment-service: a name the user's own catalog holds, which then answers."""
    catalog = tmp_path / "catalog-info.yaml"
    catalog.write_text("apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: ledger-team}\n"
                       "spec: {type: team, children: []}\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\n"
                       "metadata: {name: ledger-service}\nspec: {type: service, lifecycle: production, owner: ledger-team}\n")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CALLBOARD_")}
    environ["CALLBOARD_DATA_DIR"] = str(tmp_path / "data")
    done = subprocess.run(
        [sys.executable, "-m", "callboard.bot.cli", "chat", "--catalog", str(catalog)], input="who owns ledger-service?\n",
        capture_output=True, text=True, env=environ, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    banner = " ".join(done.stdout.split())  # rich wraps the line at the pipe's 80 columns
    assert 'Ask "who owns ledger-service?"' in banner and "payment-service" not in banner
    assert "is owned by ledger-team" in banner


def test_mine_in_the_terminal_uses_the_configured_email(tmp_path: Path) -> None:
    done = _run(["ask", "mine"], tmp_path, CALLBOARD_USER_EMAIL="priya.raman@acme.example.com")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "teams own" in done.stdout
    anonymous = _run(["ask", "mine"], tmp_path)
    assert anonymous.returncode == 1 and "CALLBOARD_USER_EMAIL" not in anonymous.stderr


def test_docs_settings_and_their_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "callboard.yaml"
    cfg.write_text("docs:\n  store: ./site-store\n  build_timeout: 30\n  workers: 3\n  allow_hooks: true\n"
                   "backstage:\n  base_url: https://backstage.example.com/\nserver:\n  public_url: http://cb.example.com\n")
    s = load_settings(config_file=str(cfg), env={"GITHUB_TOKEN": "ghp_x", "GITHUB_API_URL": "https://ghe.example.com/api/v3"})
    assert s.effective_docs_store == str((tmp_path / "site-store").resolve())
    assert (s.docs_build_timeout, s.docs_workers, s.docs_allow_hooks) == (30.0, 3, True)
    assert s.backstage_base_url == "https://backstage.example.com" and s.public_url == "http://cb.example.com"
    assert s.github_token == "ghp_x" and "ghp_x" not in repr(s)  # secrets never in reprs or logs
    assert s.github_api_url == "https://ghe.example.com/api/v3"
    for text, message in (
        ("docs:\n  build_timeout: soon\n", "docs.build_timeout"),
        ("docs:\n  workers: -1\n", "docs.workers"),
        ("docs:\n  allow_hooks: maybe\n", "docs.allow_hooks"),
        ("docs:\n  store: ''\n", "docs.store"),
        ("docs:\n  stor: x\n", "docs.stor"),
        ("backstage:\n  base_url: backstage.example.com\n", "backstage.base_url"),
        ("server:\n  public_url: 3000\n", "server.public_url"),
    ):
        cfg.write_text(text)
        with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
            load_settings(config_file=str(cfg), env={})
    with pytest.raises(ConfigError, match="GITHUB_API_URL"):
        load_settings(env={"GITHUB_API_URL": "ghe.example.com"})


# --- honest errors and exit codes -------------------------------------------------------------

def _free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _database_failures(tmp_path: Path) -> list[tuple[str, str, str]]:
    """(database URL, what the one line must say, what it must not show) for databases that cannot be used."""
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a folder")
    return [
        (f"postgresql://postgres:s3cret-pw@127.0.0.1:{_free_port()}/callboard", "refused", "s3cret-pw"),
        (f"sqlite:///{in_the_way}/cb.db", "a file is in the way", "Traceback"),
    ]


def _assert_one_line(done: subprocess.CompletedProcess[str], says: str, hidden: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    assert says in lines[0] and hidden not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", [["ask", "owner payment-service"], ["sync"], ["chat"]], ids=lambda c: c[0])
def test_a_database_that_cannot_be_used_is_one_line_and_exit_2(tmp_path: Path, command: list[str]) -> None:
    for url, says, hidden in _database_failures(tmp_path):
        done = _run([command[0], "--database-url", url, *command[1:]], tmp_path)
        _assert_one_line(done, says, hidden)
        if "s3cret" in hidden:
            assert "postgres:***@127.0.0.1" in done.stderr  # named, password masked


@pytest.mark.postgres
@pytest.mark.parametrize("command", [["ask", "owner payment-service"], ["sync"], ["chat"]], ids=lambda c: c[0])
def test_a_missing_postgresql_database_is_named_in_one_line(tmp_path: Path, command: list[str]) -> None:
    from sqlalchemy.engine import make_url

    server = make_url(postgres_or_skip())
    missing = server.set(database="no_such_db_xyz", password="pw-not-shown")
    done = _run([command[0], "--database-url", missing.render_as_string(hide_password=False), *command[1:]],
                tmp_path)
    _assert_one_line(done, "'no_such_db_xyz' does not exist", "pw-not-shown")


async def test_sync_exits_1_naming_each_location_it_could_not_read(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.mkdir()
    (good / "catalog-info.yaml").write_text(_COMPONENT.format(name="widget"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: [oops\n")
    async def served(_request: web.Request) -> web.Response:
        return web.Response(text=_COMPONENT.format(name="from-url"))

    app = web.Application()
    app.router.add_get("/ok.yaml", served)  # anything else: 404
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        base = f"http://127.0.0.1:{server.port}"
        closed = f"http://127.0.0.1:{_free_port()}/catalog-info.yaml"
        cfg = tmp_path / "callboard.yaml"
        cfg.write_text("reading:\n  allow: ['127.0.0.1']\n")
        db = f"sqlite:///{tmp_path / 'cb.db'}"
        args = ["sync", "--config", str(cfg), "--database-url", db, "--catalog", str(good), "--catalog", str(broken),
                "--catalog", f"{base}/ok.yaml", "--catalog", f"{base}/missing.yaml", "--catalog", closed]
        done = await _run_async(args, tmp_path)
        assert done.returncode == 1, done.stdout + done.stderr
        unread = done.stdout.split("at all", 1)[1]
        assert str(broken) in unread and f"{base}/missing.yaml" in unread and closed in unread
        assert str(good) not in unread and f"{base}/ok.yaml" not in unread
        assert "HTTP 404" in done.stdout and "Invalid YAML" in done.stdout
        # the rest was synced all the same
        for name in ("widget", "from-url"):
            answered = await _run_async(["ask", "--config", str(cfg), "--database-url", db, f"owner {name}"], tmp_path)
            assert answered.returncode == 0 and "widget-team" in answered.stdout, answered.stdout
        # with everything readable, it is 0 again; a catalog error inside a readable file is not "unread"
        broken.write_text(_COMPONENT.format(name="fixed") + "---\nkind: Component\nmetadata: {name: bad name}\n")
        again = await _run_async(["sync", "--config", str(cfg), "--database-url", db, "--catalog", str(good),
                                  "--catalog", str(broken), "--catalog", f"{base}/ok.yaml"], tmp_path)
        assert again.returncode == 0 and "1 error" in again.stdout and "at all" not in again.stdout, again.stdout
        strict = await _run_async(["sync", "--strict", "--config", str(cfg), "--database-url", db, "--catalog",
                                   str(good), "--catalog", str(broken), "--catalog", f"{base}/ok.yaml"], tmp_path)
        assert strict.returncode == 1
    finally:
        await server.close()


def test_a_catalog_path_that_does_not_exist_is_named_and_exit_1(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.mkdir()
    (good / "catalog-info.yaml").write_text(_COMPONENT.format(name="widget"))
    db = f"sqlite:///{tmp_path / 'cb.db'}"
    done = _run(["sync", "--database-url", db, "--catalog", str(good), "--catalog", str(tmp_path / "typo")], tmp_path)
    assert done.returncode == 1 and str(tmp_path / "typo") in done.stdout.split("at all", 1)[1]
    assert "1 added" in done.stdout


def test_help_is_a_command() -> None:
    from click.testing import CliRunner

    from callboard.bot.cli import cli

    runner = CliRunner()
    overall = runner.invoke(cli, ["help"], prog_name="callboard")
    assert overall.exit_code == 0 and overall.output == runner.invoke(cli, ["--help"], prog_name="callboard").output
    assert "help" in overall.output and "sync" in overall.output
    for command in ("sync", "ask", "chat", "serve", "help"):
        one = runner.invoke(cli, ["help", command], prog_name="callboard")
        assert one.exit_code == 0, one.output
        assert one.output == runner.invoke(cli, [command, "--help"], prog_name="callboard").output, command
    assert "--strict" in runner.invoke(cli, ["help", "sync"]).output
    unknown = runner.invoke(cli, ["help", "snyc"])
    assert unknown.exit_code == 2 and "'snyc'" in unknown.output and "sync" in unknown.output


# --- which catalog answers --------------------------------------------------------------------

def test_without_options_ask_and_chat_answer_from_the_default_database_as_it_is(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "catalog-info.yaml").write_text(_COMPONENT.format(name="widget"))
    synced = _run(["sync", "--catalog", str(mine)], tmp_path)
    assert synced.returncode == 0, synced.stderr
    asked = _run(["ask", "owner widget"], tmp_path)
    assert asked.returncode == 0 and "widget-team" in asked.stdout
    assert "demo" not in asked.stderr
    demo = _run(["ask", "owner payment-service"], tmp_path)
    assert demo.returncode == 1, "the demo catalog replaced the user's"
    chat = _run_input(["chat"], tmp_path, "owner widget\nowner payment-service\n")
    assert chat.returncode == 0 and "widget-team" in chat.stdout and "No entity matches" in chat.stdout
    assert "demo" not in chat.stdout
    # a sync with no options re-syncs the database's own catalog, not the demo
    (mine / "catalog-info.yaml").write_text(_COMPONENT.format(name="gadget"))
    resynced = _run(["sync"], tmp_path)
    assert resynced.returncode == 0 and "demo" not in resynced.stdout
    assert _run(["ask", "owner gadget"], tmp_path).returncode == 0
    assert _run(["ask", "owner payment-service"], tmp_path).returncode == 1


def test_the_demo_goes_only_into_a_database_never_synced_and_says_so(tmp_path: Path) -> None:
    first = _run(["ask", "owner payment-service"], tmp_path)
    assert first.returncode == 0 and "payments-team" in first.stdout
    assert "never synced" in first.stderr and "demo catalog" in first.stderr
    second = _run(["ask", "owner payment-service"], tmp_path)
    assert second.returncode == 0 and "never synced" not in second.stderr
    fresh = tmp_path / "other"
    fresh.mkdir()
    chat = _run_input(["chat"], fresh, "owner payment-service\n")
    assert chat.returncode == 0 and "never synced" in chat.stdout and "payments-team" in chat.stdout
    # a database named on the command line gets no demo: it is answered from as it is, and said to be empty
    named = _run(["ask", "--database-url", f"sqlite:///{tmp_path / 'empty.db'}", "owner payment-service"], tmp_path)
    assert named.returncode == 1 and "was never synced" in named.stderr


# --- on-call settings remembered with the database ---------------------------------------------

_SCHEDULE = """rotations:
  - name: widget-primary
    group: widget-team
    time_zone: UTC
    start: 2020-01-06T09:00
    shift: 1w
    members: [ada]
"""


def _nested_catalog(root: Path) -> None:
    """A catalog folder whose files sit in subfolders, with its schedule file at the top."""
    (root / "services" / "widget").mkdir(parents=True)
    (root / "services" / "widget" / "catalog-info.yaml").write_text(_COMPONENT.format(name="widget"))
    (root / "org.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: widget-team\n"
        "spec:\n  type: team\n  children: []\n  members: [ada]\n---\n"
        "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: ada\n"
        "spec:\n  profile:\n    email: ada@example.com\n  memberOf: [widget-team]\n")
    (root / "catalog-info.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: root\n"
        "spec:\n  targets: [./org.yaml]\n")


def test_oncall_from_the_database_alone_answers_as_the_sync_did(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    _nested_catalog(catalog)
    (catalog / "oncall.yaml").write_text(_SCHEDULE)
    db = f"sqlite:///{tmp_path / 'cb.db'}"
    synced = _run(["sync", "--catalog", str(catalog), "--database-url", db], tmp_path,
                  PAGERDUTY_TOKEN="pd-secret-token", PAGERDUTY_API_URL="https://api.eu.pagerduty.com")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    with_catalog = _run(["ask", "--catalog", str(catalog), "--database-url", db, "oncall widget"], tmp_path)
    alone = _run(["ask", "--database-url", db, "oncall widget"], tmp_path)
    assert with_catalog.returncode == alone.returncode == 0, alone.stdout
    assert "widget-primary" in alone.stdout and alone.stdout == with_catalog.stdout
    # the database holds the settings, never the credential
    raw = (tmp_path / "cb.db").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("cb.db*"))
    assert b"pd-secret-token" not in raw and b"api.eu.pagerduty.com" in raw


def test_a_configured_schedule_file_is_remembered_and_explicit_settings_win(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    _nested_catalog(catalog)
    elsewhere = tmp_path / "ops" / "rota.yaml"
    elsewhere.parent.mkdir()
    elsewhere.write_text(_SCHEDULE)
    cfg = tmp_path / "callboard.yaml"
    db = f"sqlite:///{tmp_path / 'cb.db'}"
    cfg.write_text(f"database:\n  url: {db}\ncatalog:\n  locations: [./catalog]\noncall:\n  schedule_file: ops/rota.yaml\n")
    assert _run(["sync", "--config", str(cfg)], tmp_path).returncode == 0
    alone = _run(["ask", "--database-url", db, "oncall widget"], tmp_path)
    assert alone.returncode == 0 and "widget-primary" in alone.stdout, alone.stdout
    # a config naming another schedule file wins over the remembered one
    other = tmp_path / "ops" / "other.yaml"
    other.write_text(_SCHEDULE.replace("widget-primary", "zed-rota"))
    cfg2 = tmp_path / "other.yaml"
    cfg2.write_text("oncall:\n  schedule_file: ops/other.yaml\n")
    explicit = _run(["ask", "--config", str(cfg2), "--database-url", db, "oncall widget"], tmp_path)
    assert "zed-rota" in explicit.stdout and "widget-primary" not in explicit.stdout, explicit.stdout
    # ... and the remembered one still answers a run that sets none
    assert "widget-primary" in _run(["ask", "--database-url", db, "oncall widget"], tmp_path).stdout


def test_serve_without_options_keeps_the_users_catalog(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "catalog-info.yaml").write_text(_COMPONENT.format(name="widget"))
    assert _run(["sync", "--catalog", str(mine)], tmp_path).returncode == 0
    port = _free_port()
    env = _environ(tmp_path, {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": "s" * 32,
                              "SLACK_API_URL": "http://127.0.0.1:9/api/"})
    serve = subprocess.Popen([sys.executable, "-m", "callboard.bot.cli", "serve", "--port", str(port)],
                             env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert serve.poll() is None, serve.communicate()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
                    ready = json.loads(resp.read())
                    break
            except OSError:
                assert time.monotonic() < deadline, "serve never got ready"
                time.sleep(0.2)
        assert ready["entities"] == 1, ready  # the user's widget, not the demo's 62
    finally:
        serve.terminate()
        serve.communicate(timeout=30)
