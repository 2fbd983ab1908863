"""Red-team cases against the server, the settings and the database's failure paths that the other
security and reliability tests do not try: secrets in URLs an operator may write in forms that
other tests do not use, database URLs that are wrong rather than unreachable, and chat text that
would forge or colour Callboard's own log lines. Real subprocesses and the real server where a
case goes through them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy.engine import make_url

from callboard.bot.app import Callboard
from callboard.bot.config import ConfigError, Settings, load_settings, mask_url
from callboard.bot.server import create_server
from callboard.catalog.validation import (is_valid_api_version, is_valid_dns_label, is_valid_kind,
                                          is_valid_object_name, is_valid_tag)
from callboard.commands.dispatch import CommandRegistry

from ..fakes.slack import SlackFake
from ..reliability.tcp_proxy import TcpProxy
from ..reliability.test_database import _serving as db_serving
from ..reliability.test_database import _until_ready as until_ready
from ..reliability.test_database import proxied_postgres  # noqa: F401 - a fixture
from .test_slack_requests import SECRET as SLACK_SECRET
from .test_docs_traversal import SECRET as SECRET_FILE
from .test_docs_traversal import SITE, Rig, raw_get, rig  # noqa: F401 - rig is a fixture
from .test_output import OUR_LINKS, assert_inert
from .test_slack_requests import _dm, serving

#: URLs an operator may really write, each holding ``SECRET`` where a password or token goes.
SECRET = "s3cr3t-Zq9"
LEAKY_URLS = [
    # SQLAlchemy reads everything up to the last '@' as the password: '/', '?', '#' included
    f"postgresql://callboard:{SECRET}/x@db.internal:5432/callboard",
    f"postgresql://callboard:x?{SECRET}@db.internal/callboard",
    f"postgresql://callboard:x#{SECRET}@db.internal/callboard",
    # a password given as a query parameter (asyncpg takes it from there)
    f"postgresql://callboard@db.internal/callboard?password={SECRET}",
    # a token as the whole user info, as GitHub and GitLab document it for clones and raw files
    f"https://{SECRET}@raw.githubusercontent.com/org/repo/main/catalog-info.yaml",
]


@pytest.mark.parametrize("url", LEAKY_URLS)
def test_repr_masks_passwords_and_tokens_in_every_url_form(url: str) -> None:
    settings = load_settings(env={"CALLBOARD_DATABASE_URL": url}, catalog=(url,))
    assert SECRET not in repr(settings)
    assert SECRET not in mask_url(url)
    assert settings.database_url == url  # the value itself is intact


def _callboard(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLBOARD_", "SLACK_"))}
    env.update(HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"))
    return subprocess.run([sys.executable, "-m", "callboard.bot.cli", *args], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60, check=False)


@pytest.mark.parametrize("url", [
    f"postgresql//callboard:{SECRET}@127.0.0.1/callboard",  # a missing ':' (SQLAlchemy cannot read it)
    f"postgresql://callboard:{SECRET}@127.0.0.1:notaport/callboard",  # a port that is not a number
    f"postgresql://callboard:{SECRET}@127.0.0.1:99999/callboard",  # a port out of range
])
def test_a_wrong_database_url_is_one_line_without_its_password(url: str, tmp_path: Path) -> None:
    result = _callboard(["ask", "--database-url", url, "help"], tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert SECRET not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "database URL" in lines[0], lines


async def test_chat_text_cannot_forge_or_colour_the_command_log_line(demo_app: Callboard,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """The dispatcher logs the command a user asked for; an unknown one is the user's own text."""
    dispatcher = demo_app.dispatcher
    forged = '"x\n2026-11-30 01:00:00,000 WARNING callboard forged line\x1b]52;c;ZXZpbA==\x07\x1b[2J"'
    with caplog.at_level(logging.INFO, logger="callboard.commands.dispatch"):
        await dispatcher.dispatch(forged)
    logged = [r.getMessage() for r in caplog.records if "command=" in r.getMessage()]
    assert logged, [r.getMessage() for r in caplog.records]
    for line in logged:
        assert "\n" not in line and "\x1b" not in line and "\x07" not in line, repr(line)


def test_serve_with_a_wrong_database_url_stops_at_once_with_one_line(tmp_path: Path) -> None:
    """An unreachable database is retried (it may come back); a URL that cannot be read never will:
    ``serve`` says so at start instead of logging the same traceback every 30 s."""
    env_serve = ["serve", "--port", "0", "--database-url", f"postgresql//callboard:{SECRET}@127.0.0.1/callboard"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLBOARD_", "SLACK_"))}
    env.update(HOME=str(tmp_path), SLACK_BOT_TOKEN="xoxb-red-team", SLACK_SIGNING_SECRET="red-team-signing")
    result = subprocess.run([sys.executable, "-m", "callboard.bot.cli", *env_serve], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=30, check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    assert SECRET not in result.stdout + result.stderr and "Traceback" not in result.stderr
    assert "database URL" in result.stderr


async def test_debug_logs_of_a_serving_slack_app_hold_no_token_or_secret(tmp_path: Path,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    """At DEBUG every library logs what it sends (slack_sdk its requests, aiohttp its connections):
    the bot token and the signing secret must not be among it."""
    fake = SlackFake()
    await fake.start()
    try:
        with caplog.at_level(logging.DEBUG):
            async with serving(fake, tmp_path) as rig:
                await rig.slash("/owner", "payment-service")
                await rig.event(_dm("who owns payment-service?", "1700000000.000100"), event_id="Ev0REDTEAM1")
                await rig.settled()
                assert "chat.postMessage" in rig.web_api_calls()
        logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    finally:
        await fake.stop()
    assert "slack_sdk" in {r.name.split(".")[0] for r in caplog.records}  # the Web API calls were logged
    for secret in ("xoxb-test", SLACK_SECRET):
        assert secret not in logged, [r.getMessage()[:300] for r in caplog.records if secret in r.getMessage()][:3]


async def test_a_page_button_with_an_impossible_page_is_not_a_500(tmp_path: Path) -> None:
    """Pager values are JSON; JSON numbers may be 1e999 (infinite), which ``int()`` cannot take."""
    fake = SlackFake()
    await fake.start()
    try:
        async with serving(fake, tmp_path) as rig:
            for value in ('{"t": "help", "p": 1e999}', '{"t": "help", "p": NaN}', "not json"):
                payload = {"type": "block_actions", "user": {"id": "U0ASKER01"}, "team": {"id": "T0FAKE001"},
                           "channel": {"id": "C0GENERAL1"}, "response_url": fake.response_url("page"),
                           "trigger_id": "1.2", "container": {"type": "message"},
                           "actions": [{"action_id": "page:next", "block_id": "nav", "type": "button",
                                        "value": value, "action_ts": "1"}]}
                status, _ = await rig.interactive(payload)
                assert status == 200, value
            await rig.settled()
            assert rig.dispatched == []
    finally:
        await fake.stop()


async def test_docs_served_while_a_rebuild_swaps_the_site_are_never_a_500(rig: Rig) -> None:
    """A rebuild moves the old site out and the new one in (two renames): a request arriving between
    them finds no site. That is a 404 (or the page), never a 500."""
    site = rig.app.docs.site_dir("component:default/svc")
    aside = site.with_name("svc.old")
    stop = threading.Event()
    # the server's startup sync runs in the background (the catalog, then the docs): its docs pass
    # would install the site anew if it looked while the site is swapped out here
    for _ in range(400):
        if rig.app.last_docs is not None and rig.app.last_docs.unchanged == 1:
            break
        await asyncio.sleep(0.025)

    def rebuilds() -> None:
        while not stop.is_set():
            os.replace(site, aside)
            os.replace(aside, site)

    swapper = threading.Thread(target=rebuilds)
    swapper.start()
    try:
        statuses = [(await raw_get(rig.port, f"{SITE}/runbook/")).status for _ in range(400)]
    finally:
        stop.set()
        swapper.join()
    assert set(statuses) <= {200, 404}, sorted(set(statuses))
    assert (await raw_get(rig.port, f"{SITE}/runbook/")).status == 200


@pytest.mark.postgres
async def test_a_black_holed_database_holds_up_no_other_endpoint(
    proxied_postgres: tuple[TcpProxy, str], tmp_path: Path
) -> None:
    """``/readyz`` and chat answers are covered in tests/reliability; the rest of what a client can ask
    (health, docs, the picker's type-ahead, a button) must not wait on a database that never answers."""
    proxy, url = proxied_postgres
    async with db_serving(url, tmp_path, proxy) as rig:
        await until_ready(rig)
        proxy.black_hole()
        asked = {
            "healthz": lambda: rig.http.get(rig.server.make_url("/healthz")),
            "docs": lambda: rig.http.get(rig.server.make_url("/docs/default/component/payment-service/")),
            "options": lambda: rig.interactive({
                "type": "block_suggestion", "user": {"id": "U0ASKER01"}, "team": {"id": "T0FAKE001"},
                "action_id": "entity_pick", "block_id": "pick:info", "value": "pay", "api_app_id": "A0FAKEAPP1",
                "container": {"type": "message"}}),
            "button": lambda: rig.interactive({
                "type": "block_actions", "user": {"id": "U0ASKER01"}, "team": {"id": "T0FAKE001"},
                "channel": {"id": "C0GENERAL1"}, "response_url": rig.fake.response_url("btn"),
                "trigger_id": "1.2", "container": {"type": "message"},
                "actions": [{"action_id": "run:0", "block_id": "nav", "type": "button",
                             "value": "deps payment-service", "action_ts": "1"}]}),
        }
        slow = {}
        for name, ask in asked.items():
            started = time.perf_counter()
            resp = await asyncio.wait_for(ask(), timeout=10)
            took = time.perf_counter() - started
            if took > 1.0 or resp.status >= 500:
                slow[name] = (resp.status, round(took, 2))
            resp.release()
        (reply,) = await rig.fake.wait_for("response_url:btn", timeout=10)
        assert not slow, slow
        assert "temporarily unavailable" in reply.params["text"]


async def test_a_failed_slack_reply_logs_the_asked_command_inert(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """When a reply cannot be posted, the log names the command asked: the asker's first word."""
    fake = SlackFake()
    await fake.start()
    try:
        async with serving(fake, tmp_path) as rig:
            fake.fail_next("chat.postMessage", "channel_not_found")
            with caplog.at_level(logging.INFO, logger="callboard"):
                await rig.event(_dm("\x1b]52;c;ZXZpbA==\x07\x1b[2Jowner payment-service", "1700000000.000200"),
                                event_id="Ev0REDTEAM2")
                await rig.settled()
    finally:
        await fake.stop()
    failed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("reply failed")]
    assert failed, [r.getMessage() for r in caplog.records]
    assert not any("\x1b" in line or "\x07" in line for line in failed), failed


@pytest.mark.parametrize("env", [
    {"GITHUB_API_URL": f"ftp://bot:{SECRET}@github.corp.example/api/v3"},
    {"BACKSTAGE_BASE_URL": f"ftp://bot:{SECRET}@backstage.corp.example"},
    {"PAGERDUTY_TOKEN": "pd", "PAGERDUTY_API_URL": f"ftp://bot:{SECRET}@pd.corp.example"},
])
def test_a_settings_error_quoting_a_url_masks_its_password(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(env=env)
    assert "http(s) URL" in str(refused.value) and SECRET not in str(refused.value)


#: /docs paths the traversal corpus does not try: overlong UTF-8 dots and slashes, IIS-style %u,
#: path parameters, trailing dots and newlines in the ref, bidi controls, fullwidth letters
MORE_HOSTILE = [
    f"{SITE}/%c0%ae%c0%ae/%c0%ae%c0%ae/%c0%ae%c0%ae/%c0%ae%c0%ae/%c0%ae%c0%ae/secret.txt",
    f"{SITE}/%c0%ae%c0%ae%c0%af%c0%ae%c0%ae%c0%afsecret.txt",
    f"{SITE}/%e0%80%ae%e0%80%ae/secret.txt",
    f"{SITE}/%u002e%u002e/%u002e%u002e/secret.txt",
    f"{SITE}/..;/..;/..;/..;/..;/secret.txt",
    f"{SITE};/../../../../../secret.txt",
    "/docs/default/component/svc./",
    "/docs/default/component/svc%0a/",
    "/docs/default%0a/component/svc/index.html",
    "/docs/default/component/svc%0d%0aSet-Cookie:%20x=1/",
    f"{SITE}/%e2%80%ae/",
    "/docs/default/component/%ef%bd%93vc/",
    f"{SITE}/%ff%fe/",
    f"{SITE}/.../.../secret.txt",
    f"{SITE}/" + "./" * 400,
    "/docs/%2E%2E/%2E%2E/%2E%2E/secret.txt",
]


async def test_more_traversal_spellings_read_nothing_and_are_never_a_500(rig: Rig) -> None:
    site = rig.app.docs.site_dir("component:default/svc")
    (site.parent.parent.parent / "secret.txt").write_text(SECRET_FILE)  # the docs store itself
    wrong = []
    for path in MORE_HOSTILE:
        for method in ("GET", "HEAD"):
            head, body = await raw_request(rig.port, f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n"
                                                     "Connection: close\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            if status not in (400, 404) or SECRET_FILE.encode() in body or b"Set-Cookie" in head:
                wrong.append(f"{method} {path[:100]} -> {status}")
    assert not wrong, "\n".join(wrong)


async def test_ranges_and_conditional_headers_on_docs_are_never_a_500(rig: Rig) -> None:
    statuses = {}
    for header in ("Range: bytes=0-10,20-30", "Range: bytes=99999999999999999999999-",
                   "Range: bytes=-99999999999999999999999", "Range: bytes=5-2", "If-Modified-Since: garbage",
                   "If-Range: garbage\r\nRange: bytes=0-1", "If-None-Match: *"):
        head, _ = await raw_request(rig.port, f"GET {SITE}/runbook/ HTTP/1.1\r\nHost: localhost\r\n{header}\r\n"
                                              "Connection: close\r\n\r\n")
        statuses[header] = int(head.split(b" ", 2)[1])
    assert all(s in (200, 206, 304, 416) for s in statuses.values()), statuses


async def raw_request(port: int, request: str) -> tuple[bytes, bytes]:
    """One request sent byte for byte; (head, body) of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request.encode("latin-1"))
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


@pytest.mark.postgres
def test_postgres_url_query_parameters_are_read_or_refused_in_one_line(postgres_url: str, tmp_path: Path) -> None:
    """``sslmode=`` is how libpq URLs (and most hosting providers' instructions) ask for TLS; asyncpg
    calls it ``ssl``. A parameter the driver does not take at all is a wrong URL: one line, exit 2."""
    catalog = tmp_path / "catalog-info.yaml"
    catalog.write_text("apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: red-team}\n"
                       "spec: {type: team, children: []}\n---\n"
                       "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: red-svc}\n"
                       "spec: {type: service, lifecycle: production, owner: red-team}\n")
    for query in ("sslmode=disable", "ssl=disable"):  # the point reads' own pool takes the URL too
        ok = _callboard(["ask", "--database-url", f"{postgres_url}?{query}", "--catalog", str(catalog),
                         "owner red-svc"], tmp_path)
        assert ok.returncode == 0 and "red-team" in ok.stdout, (query, ok.stdout[-500:], ok.stderr[-2000:])
    wrong = _callboard(["ask", "--database-url", f"{postgres_url}?nosuchparameter=1", "help"], tmp_path)
    assert wrong.returncode == 2, wrong.stderr[-2000:]
    lines = wrong.stderr.strip().splitlines()
    assert len(lines) == 1 and "nosuchparameter" in lines[0], lines


@pytest.mark.postgres
async def test_serve_says_on_readyz_what_is_wrong_with_a_database_url_the_driver_refuses(
    postgres_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Such a URL is only found wrong when the driver connects, after ``serve`` has started: /readyz
    names it (password masked) and the log says it in one line per attempt, not a traceback."""
    url = make_url(postgres_url).set(password=SECRET).render_as_string(hide_password=False) + "?nosuchparameter=1"
    settings = Settings(database_url=url, data_dir=str(tmp_path / "data"))
    web_app = create_server(lambda: Callboard.open(settings, CommandRegistry.from_entry_points(), resident=True),
                            catalog=None, sync_interval=3600, slack=None, backoff=(0.05, 0.05))
    server = TestServer(web_app, host="127.0.0.1")
    with caplog.at_level(logging.WARNING, logger="callboard"):
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(100):
                    async with http.get(server.make_url("/readyz")) as resp:
                        body = await resp.json()
                    if "nosuchparameter" in json.dumps(body):
                        break
                    await asyncio.sleep(0.05)
        finally:
            await server.close()
    assert resp.status == 503 and "nosuchparameter" in json.dumps(body), body
    assert SECRET not in json.dumps(body)
    warnings = [r for r in caplog.records if "database not available" in r.getMessage()]
    assert warnings and not any(r.exc_info for r in warnings)
    assert not any(SECRET in r.getMessage() for r in caplog.records)


#: what an asker may type: Slack's own control syntax, already escaped text (must not be decoded
#: twice), lookalikes, a mention of someone else, date and mailto tokens, a newline before a mention
ASKED = ["<!channel>", "&lt;!channel&gt;", "&amp;lt;!here&amp;gt;", "<!date^1392734382^{date}|<!here>>",
         "<mailto:a@b.example|click>", "\uff1c!channel\uff1e", "find <!subteam^S0123|@team>", "owner <@U0ASKER01>",
         "owner pay", "info payment*", "deps\n<!channel>", "`<!here>`", "<https://evil.example|ok>",
         "owner <#C0GENERAL1|general>"]


async def test_what_an_asker_types_comes_back_inert_everywhere(tmp_path: Path) -> None:
    """Slash answers, DM replies, the "did you mean" picker's follow-up and its type-ahead."""
    fake = SlackFake()
    await fake.start()
    try:
        async with serving(fake, tmp_path) as rig:
            for i, text in enumerate(ASKED):
                assert_inert(await rig.slash("/callboard", text), where=f"slash {text!r}", links=OUR_LINKS)
                await rig.event(_dm(text, f"1700000100.{i:06d}"), event_id=f"Ev0ASKED{i:03d}")
                status, body = await rig.interactive({
                    "type": "block_suggestion", "user": {"id": "U0ASKER01"}, "team": {"id": "T0FAKE001"},
                    "action_id": "entity_pick", "block_id": "pick:info", "value": text,
                    "api_app_id": "A0FAKEAPP1", "container": {"type": "message"}})
                assert status == 200 and "&lt;" not in body, body  # plain_text labels: shown as they are
            status, _ = await rig.interactive({
                "type": "block_actions", "user": {"id": "U0ASKER01"}, "team": {"id": "T0FAKE001"},
                "channel": {"id": "C0GENERAL1"}, "response_url": fake.response_url("pick"), "trigger_id": "1.2",
                "container": {"type": "message"},
                "actions": [{"action_id": "entity_pick", "block_id": "pick:<!channel>", "type": "external_select",
                             "selected_option": {"value": "<!here>", "text": {"type": "plain_text", "text": "x"}},
                             "action_ts": "1"}]})
            assert status == 200
            await rig.settled()
            posted = fake.calls_to("chat.postMessage") + fake.calls_to("response_url:pick")
            assert len(posted) == len(ASKED) + 1
            for call in posted:
                assert_inert(call.params, where=call.method, links=OUR_LINKS)
    finally:
        await fake.stop()


def test_log_lines_reach_the_terminal_without_control_sequences(tmp_path: Path) -> None:
    """Log lines quote what others wrote (file names from repositories, what a library saw in a request,
    exception texts): whatever a line holds, the log Callboard writes shows control characters escaped,
    so none acts on the terminal (or the log viewer) reading it. Tracebacks keep their lines."""
    script = ("import logging; from callboard.bot.cli import _settings; _settings(None, None, ()); "
              "log = logging.getLogger('callboard.red_team'); "
              "log.warning('path=%s', 'team\\x1b]52;c;ZXZpbA==\\x07/\\x1b[2J\\x9b31m\\u202ecatalog-info.yaml'); "
              "exec('try:\\n raise KeyError(\"\\x1b[2J\")\\nexcept KeyError:\\n log.exception(\"failed\")')")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLBOARD_", "SLACK_"))}
    env.update(HOME=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert "path=team" in done.stderr and "Traceback" in done.stderr
    assert not [c for c in done.stderr if (ord(c) < 32 and c != "\n") or 0x7f <= ord(c) <= 0x9f or c == "\u202e"], \
        repr(done.stderr)
    assert "\\x1b]52" in done.stderr  # escaped, still visible to whoever reads the log


async def test_a_name_with_a_trailing_newline_is_not_a_valid_ref(tmp_path: Path, make_app: Any) -> None:
    """Python's ``$`` also matches before a final newline: ``payment-service\\n`` passed as a valid name
    (Backstage's JavaScript patterns refuse it), a second entity that looks like the first in every
    answer. The same checks guard ``/docs``."""
    catalog = tmp_path / "catalog-info.yaml"
    catalog.write_text("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: \"red-svc\\n\"}\n"
                       "spec: {type: service, lifecycle: production, owner: red-team}\n")
    app = await make_app(f"sqlite:///{tmp_path / 'cb.db'}")
    try:
        summary = await app.sync((str(catalog),))
        assert summary.added == 0 and summary.errors, summary
        assert "name" in summary.errors[0].message
    finally:
        await app.close()
    assert not any(check(value) for check, value in (
        (is_valid_object_name, "svc\n"), (is_valid_dns_label, "default\n"), (is_valid_kind, "Component\n"),
        (is_valid_api_version, "backstage.io/v1alpha1\n"), (is_valid_tag, "java\n")))


async def test_a_question_padded_with_whitespace_does_not_stall_the_server(tmp_path: Path) -> None:
    """Question patterns like ``what does <q> own`` backtracked cubically over runs of whitespace: one
    DM of "what does" + 1,000 spaces + "x" held the event loop for about 6 s (2,000 spaces: 50 s),
    and with it every answer, /healthz and /readyz of the process."""
    fake = SlackFake()
    await fake.start()
    try:
        async with serving(fake, tmp_path) as rig:
            for i, padded in enumerate(("what does" + " " * 1000 + "x", "what does x" + "\n" * 1000 + "depend onx",
                                        "who is" + "\t" * 1000 + "on team" + " " * 1000 + "x")):
                await rig.event(_dm(padded, f"1700000200.{i:06d}"), event_id=f"Ev0PADDED{i}")
                started = time.perf_counter()
                async with rig.http.get(rig.server.make_url("/healthz")) as resp:
                    assert resp.status == 200
                await rig.settled()
                assert time.perf_counter() - started < 1.0, (i, time.perf_counter() - started)
    finally:
        await fake.stop()
