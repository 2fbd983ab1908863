"""Teams throughput: activities POSTed to ``/api/messages`` of ``callboard serve``, timed on the client.

Three processes share this machine, as in ``bench_slack.py``: the server (the real ``callboard
serve`` command, botbuilder's CloudAdapter inside, SQLite), a local Bot Connector fake
(``tests/fakes/botconnector.py``) in its own process, receiving the answers posted after a
message's acknowledgement and answering the members lookup, and this load process, which keeps
``--concurrency`` activities in flight for ``--duration`` seconds per workload and times each HTTP
response on the client.

    python bench/bench_teams.py --catalog /tmp/cat/catalog-100000.yaml --duration 20 --concurrency 16

Workloads (``--workload`` runs one; each gets a freshly started server):

- ``message``: personal-chat messages "who owns <name>?" (dev mode). Timed: the HTTP response,
  i.e. the acknowledgement. The answer is posted after it through the connector; the fake notes
  when each arrives, so the run also reports how many answers arrived and the time from the POST
  to the answer's arrival (what the person sees).
- ``card-action``: ``adaptiveCard/action`` invokes (``Action.Execute``, verb ``run``, data
  ``{"cmd": "owner <name>"}``) answered with the card in the HTTP response (dev mode).
- ``search``: ``application/search`` invokes (a picker's typeahead, dataset ``pick:owner``,
  ``queryText`` a prefix of a name) answered in the HTTP response (dev mode).
- ``card-action-jwt``: ``card-action`` with authentication on (``MICROSOFT_APP_ID`` and
  ``MICROSOFT_APP_PASSWORD`` set): every request carries a token the SDK validates (signature,
  issuer, audience, expiry, the key's endorsement of ``msteams``, the ``serviceurl`` claim)
  against a local identity fake (``tests/fakes/botframework_auth.py``, a thread of this process).
  Tokens are minted before the timed run (a pool used round-robin), so minting is not measured.
- ``message-jwt``: ``message`` with authentication on, as production runs: every request's token
  validated, and every answer posted with the token the SDK's credentials give (an answer that
  arrives without it counts as wrong).

Callboard has no setting for the OpenID metadata URL (only ``TeamsSettings`` has, for tests), so
the server is started as ``python bench/bench_teams.py --role serve ...``: that runs the real
``callboard serve`` command in-process, with ``teams_settings`` wrapped to add the identity fake's
metadata URL and issuer when ``--metadata-url`` is given, and the SDK's
``MicrosoftAppCredentials.get_access_token`` answering a fixed token instead of asking Microsoft
Entra (unreachable here; MSAL caches the real one, so a real server asks rarely). Nothing else
differs from ``python -m callboard.bot.cli serve``. ``--profile DIR`` runs that server under cProfile and
writes ``DIR/<workload>.prof`` (and prints its top functions).

``--retry-codes-set`` is an experiment, not the product: botbuilder's CloudAdapter builds a new
connector client and user-token client for every activity, and each builds msrest's
``ClientRetryPolicy``, whose status list is computed with ``i not in <a list of 500>`` for 999
codes (~4 ms of CPU each on this machine). The flag makes that list a frozenset in the server
process, to measure what the SDK's overhead costs; the figures of record are without it.
``--unlisted-people`` is another: the connector fake's members API does not know the load's people,
so Callboard answers without knowing who asks (it does not look their User up by email).

The catalog is synced into a fresh SQLite database before the first server starts, so the
measurement is the answer path only. ``--catalog`` defaults to ``/tmp/cat/catalog-100000.yaml``,
generated there with ``/work/shared/bench/gen_catalog.py --seed 42`` when missing.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORKLOADS = ("message", "card-action", "search", "card-action-jwt", "message-jwt")
JWT_WORKLOADS = ("card-action-jwt", "message-jwt")
#: what the server's credentials give it for its calls to the Bot Connector (see _run_server)
OUTBOUND_TOKEN = "bench-outbound-token"
DEFAULT_CATALOG = Path("/tmp/cat/catalog-100000.yaml")
DEFAULT_GEN = Path("/work/shared/bench/gen_catalog.py")
APP_ID = "00000000-0000-4000-8000-00000000b0b0"  # a GUID, as MICROSOFT_APP_ID must be
BOT = "28:callboard-bench-bot"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
TOKENS = 2000
WARMUP = 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def _figures(latencies: list[float]) -> dict[str, float]:
    if not latencies:
        return {}
    return {"p50_ms": round(statistics.median(latencies), 2), "p90_ms": round(_percentile(latencies, 90), 2),
            "p99_ms": round(_percentile(latencies, 99), 2), "max_ms": round(max(latencies), 2)}


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds so far of process ``pid`` and its children (``serve --workers``)
    (``/proc/<pid>/stat``)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it has just exited
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _machine_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy (all cores), from ``/proc/stat``."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(p) for p in parts]
    busy = sum(ticks) - ticks[3] - ticks[4]  # minus idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


# --- what Teams sends ---------------------------------------------------------------------------


class Users:
    """The people the load speaks as: catalog Users (their emails), as Teams members, spread evenly
    over the catalog's Users (Callboard finds a person's User by email, and where that User is in the
    table changes what finding it costs)."""

    def __init__(self, catalog: Path, count: int) -> None:
        found: list[tuple[str, str]] = []
        name = None
        with catalog.open(encoding="utf-8") as f:
            in_user = False
            for line in f:
                if line.startswith("kind: "):
                    in_user = line.strip() == "kind: User"
                elif in_user and "displayName:" in line:
                    name = json.loads(line.split(":", 1)[1].strip())
                elif in_user and "email:" in line:
                    email = json.loads(line.split(":", 1)[1].strip())
                    found.append((name or email, email))
        if len(found) < count:
            raise SystemExit(f"{catalog}: found {len(found)} User entities with an email, need {count}")
        step = len(found) / count
        self.people: list[dict[str, str]] = [
            {"id": f"29:1bench-user-{i:04d}", "name": found[int(i * step + step / 2)][0],
             "aadObjectId": f"00000000-0000-4000-8000-{i:012d}", "email": found[int(i * step + step / 2)][1]}
            for i in range(count)
        ]


_ids = itertools.count(1)


def activity(kind: str, person: dict[str, str], service_url: str, **more: Any) -> dict[str, Any]:
    """A personal-chat activity as Teams posts it (the same fields as ``tests/bot/teams/rig.py``)."""
    body: dict[str, Any] = {
        "type": kind, "id": f"1700000000{next(_ids):09d}", "timestamp": "2026-11-30T09:00:00.000Z",
        "localTimestamp": "2026-11-30T10:00:00.000+01:00", "localTimezone": "Europe/Berlin",
        "serviceUrl": service_url, "channelId": "msteams",
        "from": {"id": person["id"], "name": person["name"], "aadObjectId": person["aadObjectId"]},
        "conversation": {"id": f"a:1bench-{person['id'][3:]}", "conversationType": "personal", "tenantId": TENANT},
        "recipient": {"id": BOT, "name": "Callboard"},
        "channelData": {"tenant": {"id": TENANT}},
        "entities": [],
    }
    body.update(more)
    return body


def _request(workload: str, name: str, person: dict[str, str], service_url: str,
             rng: random.Random) -> dict[str, Any]:
    if workload in ("message", "message-jwt"):
        return activity("message", person, service_url, text=f"who owns {name}?", textFormat="plain")
    if workload in ("card-action", "card-action-jwt"):
        value = {"action": {"type": "Action.Execute", "verb": "run", "data": {"cmd": f"owner {name}"}},
                 "trigger": "manual"}
        return activity("invoke", person, service_url, name="adaptiveCard/action", value=value,
                        replyToId="1:bench-card")
    prefix = name[: rng.randint(4, len(name))]  # typed so far
    value = {"queryText": prefix, "dataset": "pick:owner", "queryOptions": {"skip": 0, "top": 15}}
    return activity("invoke", person, service_url, name="application/search", value=value)


def _answered(workload: str, name: str, status: int, payload: bytes) -> bool:
    """Whether a 200 response says what this workload's request should get."""
    if workload in ("message", "message-jwt"):
        return not payload  # the acknowledgement: an empty 200
    body = json.loads(payload)
    if workload == "search":
        return body.get("type") == "application/vnd.microsoft.search.searchResponse" and bool(
            body["value"]["results"])
    return body.get("statusCode") == 200 and name in json.dumps(body.get("value"))


# --- the load -----------------------------------------------------------------------------------


async def _load(url: str, connector: str, workload: str, names: list[str], users: list[dict[str, str]],
                duration: float, concurrency: int, tokens: list[str] | None) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    sent: dict[str, tuple[float, str]] = {}  # message activity id -> (monotonic when POSTed, name)
    errors: dict[str, int] = {}
    wrong = 0
    rng = random.Random(1)
    pool = itertools.cycle(tokens) if tokens else None

    def headers() -> dict[str, str]:
        out = {"Content-Type": "application/json"}
        if pool is not None:
            out["Authorization"] = f"Bearer {next(pool)}"
        return out

    async def one(session: aiohttp.ClientSession, person: dict[str, str], timed: bool) -> None:
        nonlocal wrong
        name = rng.choice(names)
        body = _request(workload, name, person, connector, rng)
        data = json.dumps(body)
        started_mono = time.monotonic()
        started = time.perf_counter()
        try:
            async with session.post(url, data=data, headers=headers()) as resp:
                payload = await resp.read()
                status = resp.status
        except aiohttp.ClientError as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            return
        took = (time.perf_counter() - started) * 1000
        if not timed:
            return
        if status != 200:
            errors[str(status)] = errors.get(str(status), 0) + 1
            return
        latencies.append(took)
        if workload in ("message", "message-jwt"):
            sent[body["id"]] = (started_mono, name)
        if not _answered(workload, name, status, payload):
            wrong += 1

    connector_limit = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector_limit) as session:
        # warm-up: every person once (Callboard asks the members API who they are, once an hour),
        # then a few more; none of it is timed
        for person in users:
            await one(session, person, False)
        for i in range(WARMUP):
            await one(session, users[i % len(users)], False)
        if workload in ("message", "message-jwt"):
            await _drain(connector, expected=len(users) + WARMUP, quiet=2.0, limit=30.0)
            await _arrivals(connector, clear=True)
        deadline = time.perf_counter() + duration

        async def worker(wid: int) -> None:
            person = users[wid % len(users)]
            while time.perf_counter() < deadline:
                await one(session, person, True)

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    result: dict[str, Any] = {
        "requests": len(latencies), "errors": sum(errors.values()), "errors_by_kind": errors, "wrong_answers": wrong,
        "seconds": round(elapsed, 2), "activities_per_s": round(len(latencies) / elapsed, 1),
        **_figures(latencies), "concurrency": concurrency,
    }
    if workload in ("message", "message-jwt"):
        result.update(await _end_to_end(connector, sent, elapsed, signed=workload == "message-jwt"))
    return result


async def _arrivals(connector: str, *, clear: bool = False) -> dict[str, Any]:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(f"{connector}/bench/arrivals", params={"clear": "1"} if clear else {}) as resp:
            return dict(await resp.json())


async def _drain(connector: str, *, expected: int, quiet: float, limit: float) -> dict[str, Any]:
    """Wait until ``expected`` answers arrived at the fake, or none arrived for ``quiet`` seconds."""
    started = time.monotonic()
    seen, last_change = -1, time.monotonic()
    while True:
        state = await _arrivals(connector)
        count = len(state["arrived"])
        if count != seen:
            seen, last_change = count, time.monotonic()
        if count >= expected or time.monotonic() - last_change > quiet or time.monotonic() - started > limit:
            return state
        await asyncio.sleep(0.2)


async def _end_to_end(connector: str, sent: dict[str, tuple[float, str]], elapsed: float, *,
                      signed: bool) -> dict[str, Any]:
    """The answers posted after the acknowledgements: how many arrived during the run and after it,
    and the time from each POST to its answer reaching the connector fake. ``signed``: an answer
    without the server's token (``Authorization: Bearer OUTBOUND_TOKEN``) is wrong."""
    load_ended = time.monotonic()
    at_end = await _arrivals(connector)
    in_run = sum(1 for a in at_end["arrived"] if a in sent)
    state = await _drain(connector, expected=len(sent), quiet=5.0, limit=120.0)
    drained_s = time.monotonic() - load_ended
    arrived = state["arrived"]
    e2e, wrong = [], 0
    for activity_id, (posted, name) in sent.items():
        got = arrived.get(activity_id)
        if got is None:
            continue
        when, status, summary, authorization = got
        e2e.append((when - posted) * 1000)
        if status != 200 or name not in summary or (signed and authorization != f"Bearer {OUTBOUND_TOKEN}"):
            wrong += 1
    return {
        "answers_sent": len(sent), "answers_arrived_during_run": in_run, "answers_arrived": len(e2e),
        "answers_missing": len(sent) - len(e2e), "answers_wrong": wrong, "answers_refused_by_fake": state["invalid"],
        "seconds_to_drain_after_run": round(drained_s, 2),
        "answers_per_s_during_run": round(in_run / elapsed, 1),
        "end_to_end": _figures(e2e),
    }


# --- the Bot Connector fake's process -------------------------------------------------------------


def _run_connector(url_file: Path, users_file: Path) -> None:
    """The fake's process: serve until SIGINT. ``GET /bench/arrivals`` says when each reply arrived."""
    from aiohttp import web

    from tests.fakes.botconnector import BotConnectorFake

    class TimedConnector(BotConnectorFake):
        def __init__(self) -> None:
            super().__init__()
            # replied-to id -> (monotonic, status, summary, Authorization)
            self.arrived: dict[str, tuple[float, int, str, str | None]] = {}
            self.refused = 0

        async def _handle(self, request: web.Request) -> web.StreamResponse:
            if request.path == "/bench/arrivals":
                if request.query.get("clear"):
                    self.arrived.clear()
                    self.refused = 0
                return web.json_response({"arrived": self.arrived, "invalid": self.refused})
            request["arrived"] = time.monotonic()
            return await super()._handle(request)

        async def _answer(self, request: web.Request, call: Any, raw: bytes, not_json: bool) -> web.StreamResponse:
            response = await super()._answer(request, call, raw, not_json)
            if call.operation == "reply" and call.activity_id:
                body = call.body if isinstance(call.body, dict) else {}
                self.arrived[call.activity_id] = (request["arrived"], call.status or 0, str(body.get("summary") or ""),
                                                  call.authorization)
            if call.errors:
                self.refused += 1
            # what the fake records for tests would grow without end over a run; the bench keeps its own
            self.calls.clear()
            self.invalid.clear()
            self.activities.clear()
            return response

    async def serve() -> None:
        fake = TimedConnector()
        url = await fake.start()
        for person in json.loads(users_file.read_text()):
            fake.add_member(person["id"], person["name"], email=person["email"], upn=person["email"],
                            aad_object_id=person["aadObjectId"])
        url_file.write_text(url)
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


# --- the server's process -----------------------------------------------------------------------


def _run_server(args: argparse.Namespace) -> None:
    """``callboard serve``, in this process; with ``--metadata-url`` the SDK validates tokens
    against that identity service instead of Microsoft's (the one thing the CLI cannot be told),
    and the SDK's credentials answer ``OUTBOUND_TOKEN`` instead of asking Microsoft Entra for one
    (MSAL's trip there; there is no internet here). Callboard still asks the SDK's credentials for
    the token on its calls to the Bot Connector, as in production."""
    import dataclasses

    from callboard.bot import cli
    from callboard.bot.teams import settings as teams_module

    if args.metadata_url:
        real = teams_module.teams_settings

        def with_identity(settings: Any) -> Any:
            found = real(settings)
            return found and dataclasses.replace(found, openid_metadata_url=args.metadata_url,
                                                 token_issuer=args.issuer)

        teams_module.teams_settings = with_identity  # type: ignore[assignment]
        from botframework.connector.auth import MicrosoftAppCredentials

        MicrosoftAppCredentials.get_access_token = lambda self, force_refresh=False: OUTBOUND_TOKEN  # type: ignore[method-assign]
    if args.retry_codes_set:
        # the experiment of --retry-codes-set (see the module docstring): msrest builds its retry
        # policy's status list with a membership test against a list, ~4 ms per client built
        from msrest.universal_http.requests import ClientRetryPolicy

        ClientRetryPolicy.safe_codes = frozenset(ClientRetryPolicy.safe_codes)  # type: ignore[assignment]
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        cli.cli.main(["serve", "--host", "127.0.0.1", "--port", str(args.port), "--workers", str(args.workers)],
                     standalone_mode=False)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)


def _start_server(work: Path, env: dict[str, str], port: int, *, metadata_url: str | None = None,
                  issuer: str | None = None, profile: Path | None = None,
                  retry_codes_set: bool = False, workers: int = 1) -> subprocess.Popen[bytes]:
    command = [sys.executable, str(Path(__file__).resolve()), "--role", "serve", "--port", str(port),
               "--workers", str(workers)]
    if retry_codes_set:
        command.append("--retry-codes-set")
    if metadata_url:
        command += ["--metadata-url", metadata_url, "--issuer", issuer or ""]
    if profile:
        command += ["--profile", str(profile)]
    log = (work / f"server-{port}.log").open("wb")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    ready: set[Any] = set()  # the workers that said so (a new connection each time: any may answer)
    for _ in range(600):
        if server.poll() is not None:
            raise SystemExit(f"the server exited ({server.returncode}); its log:\n"
                             + (work / f"server-{port}.log").read_text()[-3000:])
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:
                if resp.status == 200:
                    ready.add(json.loads(resp.read()).get("worker"))
                    if len(ready) >= workers:
                        return server
                    continue
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not become ready in 120 s")


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _print_profile(path: Path) -> None:
    import pstats

    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)


# --- the run --------------------------------------------------------------------------------------


def _catalog(path: Path, gen: Path) -> Path:
    if not (path.exists() and Path(str(path) + ".json").exists()):
        n = re.search(r"(\d+)", path.name)
        if n is None:
            raise SystemExit(f"{path} does not exist, and its name says no size to generate it with")
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"generating {path}", flush=True)
        subprocess.run([sys.executable, str(gen), "-n", n.group(1), "-o", str(path), "--seed", "42"], check=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", default=str(DEFAULT_CATALOG))
    parser.add_argument("--gen", default=str(DEFAULT_GEN), help="gen_catalog.py, for a missing catalog")
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workload", choices=WORKLOADS, action="append",
                        help="run only this one (repeatable); default: all five")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "teams.json"))
    parser.add_argument("--profile", help="a folder: run each server under cProfile, write <workload>.prof there")
    parser.add_argument("--logs", help="a folder: keep each server's log there (server-<workload>.log)")
    parser.add_argument("--unlisted-people", action="store_true",
                        help="an experiment: the connector fake does not know the load's people, so Callboard "
                             "answers without knowing who asks (no catalog lookup by email)")
    parser.add_argument("--retry-codes-set", action="store_true",
                        help="an experiment, not the product: in the server, make msrest's ClientRetryPolicy.safe_codes "
                             "a frozenset (see the module docstring)")
    # internal: the processes this script starts
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes (callboard serve --workers): 1, the default, is one event loop")
    parser.add_argument("--role", choices=("serve", "connector"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--metadata-url", help=argparse.SUPPRESS)
    parser.add_argument("--issuer", help=argparse.SUPPRESS)
    parser.add_argument("--url-file", help=argparse.SUPPRESS)
    parser.add_argument("--users-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "serve":
        _run_server(args)
        return
    if args.role == "connector":
        _run_connector(Path(args.url_file), Path(args.users_file))
        return

    catalog = _catalog(Path(args.catalog), Path(args.gen))
    workloads = args.workload or list(WORKLOADS)
    profile_dir = Path(args.profile).resolve() if args.profile else None
    if profile_dir:
        profile_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="cb-teams-bench-"))
    db = f"sqlite:///{work / 'cb.db'}"
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("MICROSOFT_APP_", "SLACK_", "CALLBOARD_TEAMS_DEV"))}
    env = {**base_env, "CALLBOARD_DATA_DIR": str(work / "data"), "CALLBOARD_DATABASE_URL": db}
    sidecar = json.loads(Path(str(catalog) + ".json").read_text())
    names = sidecar["components"]
    users = Users(catalog, args.concurrency).people
    users_file = work / "users.json"
    users_file.write_text(json.dumps([] if args.unlisted_people else users))
    print("syncing", catalog, flush=True)
    subprocess.run([sys.executable, "-m", "callboard.bot.cli", "sync", "--catalog", str(catalog),
                    "--database-url", db], check=True, env=env, stdout=subprocess.DEVNULL)
    url_file = work / "connector-url"
    fake = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--role", "connector",
                             "--url-file", str(url_file), "--users-file", str(users_file)], env=env)
    identity = None
    results: dict[str, Any] = {}
    out = Path(args.out)
    try:
        for _ in range(150):
            if url_file.exists() and url_file.read_text():
                break
            time.sleep(0.1)
        connector = url_file.read_text()
        for workload in workloads:
            tokens = None
            port = _free_port()
            profile = profile_dir / f"{workload}.prof" if profile_dir else None
            if workload in JWT_WORKLOADS:
                from tests.fakes.botframework_auth import BotFrameworkIdentityFake

                identity = identity or BotFrameworkIdentityFake()
                identity.start()
                tokens = [identity.token(APP_ID, service_url=connector, extra_claims={"jti": secrets.token_hex(8)})
                          for _ in range(TOKENS)]
                server_env = {**env, "MICROSOFT_APP_ID": APP_ID, "MICROSOFT_APP_PASSWORD": "bench-app-password"}
                server = _start_server(work, server_env, port, metadata_url=identity.metadata_url,
                                       issuer=identity.issuer, profile=profile, retry_codes_set=args.retry_codes_set,
                                       workers=args.workers)
            else:
                server = _start_server(work, {**env, "CALLBOARD_TEAMS_DEV": "1"}, port, profile=profile,
                                       retry_codes_set=args.retry_codes_set, workers=args.workers)
            try:
                load_before = os.getloadavg()
                cpu_before, machine_before = _cpu_s(server.pid), _machine_cpu_s()
                print(f"{workload}: load average {load_before[0]:.2f}", flush=True)
                result = asyncio.run(_load(f"http://127.0.0.1:{port}/api/messages", connector, workload, names,
                                           users, args.duration, args.concurrency, tokens))
                server_cpu = _cpu_s(server.pid) - cpu_before
                machine_cpu = _machine_cpu_s() - machine_before
            finally:
                _stop(server)
                if args.logs:
                    Path(args.logs).mkdir(parents=True, exist_ok=True)
                    shutil.copy(work / f"server-{port}.log", Path(args.logs) / f"server-{workload}.log")
            result.update({
                "server_cpu_s": round(server_cpu, 2),
                "server_cpu_ms_per_activity": round(server_cpu * 1000 / max(1, result["requests"]), 2),
                "machine_busy_cpu_s": round(machine_cpu, 2),
                "loadavg_1m_before": round(load_before[0], 2),
            })
            if workload in JWT_WORKLOADS and identity is not None:
                result["identity_fetches"] = {"metadata": identity.metadata_requests, "jwks": identity.jwks_requests}
            results[workload] = result
            print(json.dumps({workload: result}, indent=2), flush=True)
            if profile:
                _print_profile(profile)
        report = {"workloads": results, "catalog": catalog.name, "entities": sidecar["total"],
                  "duration_s": args.duration, "concurrency": args.concurrency, "cpus": os.cpu_count(),
                  "python": sys.version.split()[0], "retry_codes_set": args.retry_codes_set, "workers": args.workers,
                  "unlisted_people": args.unlisted_people, "loadavg_after": round(os.getloadavg()[0], 2),
                  "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        print("written", out)
    finally:
        _stop(fake)
        if identity is not None:
            identity.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
