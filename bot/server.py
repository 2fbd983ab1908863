"""The server process: one aiohttp application for every chat surface, plus health checks
and the background catalog sync.

Wiring lives here: routes are an explicit list; the database engine, the Slack
surface and the background tasks are created and torn down in ``cleanup_ctx``.

The database may be down when the server starts, or go away while it serves. The server
still starts: it opens the database in the background, retrying with back-off (1 s doubling
to 30 s), and only then syncs. Until then, and whenever the database stops answering,
``/readyz`` says 503 with the reason (within a second: its probe never waits longer), and
chat users get "temporarily unavailable" instead of silence.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from aiohttp import web

from callboard.catalog.validation import is_valid_dns_label, is_valid_kind, is_valid_object_name

from callboard.storage.engine import DatabaseUnavailable, DatabaseURLError

from .app import Callboard
from .config import ConfigError, Settings, mask_url
from .slack.app import SlackSettings, SlackSurface
from .surface import Mounted, Surface
from .tasks_notify import TaskNotifier

__all__ = ["ServerState", "create_server", "slack_settings"]

log = logging.getLogger(__name__)

STATE: web.AppKey[ServerState] = web.AppKey("callboard_state")


#: Opens the app (database, migrations, index); raises while the database cannot be used.
Opener = Callable[[], Awaitable[Callboard]]
#: Seconds between attempts to open the database: the first, and the most (doubling between).
BACKOFF = (1.0, 30.0)


@dataclass
class ServerState:
    app: Callboard | None  # None until the database has been opened
    catalog: tuple[str, ...] | None
    sync_interval: float
    opener: Opener | None = None
    backoff: tuple[float, float] = BACKOFF
    database_problem: str | None = None  # why the database is not open yet (one line, password masked)
    surfaces: list[Mounted] = field(default_factory=list)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    synced_once: bool = False
    last_sync_error: str | None = None
    worker: int | None = None  # which of ``callboard serve --workers N``; None when it runs alone
    started: float = field(default_factory=time.monotonic)


def slack_settings(settings: Settings) -> SlackSettings | None:
    """Slack's settings from the environment, or None when Slack is not configured."""
    token, secret = settings.slack_bot_token, settings.slack_signing_secret
    if not token and not secret and not settings.slack_app_token:
        return None
    if not token:
        raise ConfigError("SLACK_BOT_TOKEN is not set (the bot token, xoxb-…, from your Slack app's OAuth page)")
    if not secret and not settings.slack_app_token:
        raise ConfigError("SLACK_SIGNING_SECRET is not set (from your Slack app's Basic Information page)")
    return SlackSettings(bot_token=token, signing_secret=secret or "", app_token=settings.slack_app_token,
                         api_url=settings.slack_api_url)


async def _no_slack(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotFound(text="Slack is not configured on this Callboard (set SLACK_BOT_TOKEN)")


async def _no_teams(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotFound(text="Microsoft Teams is not configured on this Callboard (set MICROSOFT_APP_ID)")


async def _healthz(request: web.Request) -> web.Response:
    worker = request.app[STATE].worker
    return web.json_response({"status": "ok"} if worker is None else {"status": "ok", "worker": worker})


async def _readyz(request: web.Request) -> web.Response:
    """200 when the database answers and the catalog is loaded; otherwise 503 with the problems.
    Answers within about a second whatever the database does (the probe has a time limit)."""
    state = request.app[STATE]
    problems = []
    app = state.app
    if app is None:
        problems.append(f"database unavailable, retrying: {state.database_problem or 'opening it'}")
    else:
        problem = await app.probe.problem()
        if problem is not None:
            problems.append(problem)
        if state.catalog is not None and not state.synced_once and state.worker is None:
            # (with --workers, every worker answers from the catalog it holds, as the followers
            # do, so that the one port does not say ready and not ready by turns)
            problems.append("first catalog sync still running")
        elif len(app.catalog.index) == 0:
            problems.append("the catalog is empty")
    body = {
        "status": "ok" if not problems else "unavailable",
        "entities": len(app.catalog.index) if app is not None else 0,
        "problems": problems,
        "last_sync_error": state.last_sync_error,
    }
    if state.worker is not None:
        body["worker"] = state.worker
    return web.json_response(body, status=200 if not problems else 503)


async def _open_database(state: ServerState) -> Callboard:
    """Open the app, retrying with back-off (capped) until the database can be used; the reason it
    cannot is kept for ``/readyz`` and logged (exception type and masked URL, never a password)."""
    assert state.opener is not None
    delay, most = state.backoff
    while True:
        try:
            return await state.opener()
        except Exception as exc:  # noqa: BLE001 - whatever it is, /readyz says so and we try again
            said = isinstance(exc, (DatabaseUnavailable, DatabaseURLError))  # one line, password masked, what to do
            state.database_problem = mask_url(str(exc)) if said else type(exc).__name__
            log.warning("database not available, retrying in %.1f s: %s", delay, state.database_problem,
                        exc_info=not said)
        await asyncio.sleep(delay)
        delay = min(delay * 2, most)


async def _serve_database(state: ServerState) -> None:
    """Open the database when it is not open yet, then keep the catalog synced."""
    if state.app is None:
        app = await _open_database(state)
        state.app, state.database_problem = app, None
        for surface in state.surfaces:
            surface.attach(app)
        log.info("database open")
    # beside the sync, not before it: reaping needs the database, and waiting on it must not hold the catalog
    starting = asyncio.ensure_future(_start_tasks(state, state.app))
    state.tasks.add(starting)
    starting.add_done_callback(state.tasks.discard)
    # worker 0 syncs (or the one server); the other workers follow what it syncs
    await (_follow_loop if state.worker else _sync_loop)(state, state.app)


async def _start_tasks(state: ServerState, app: Callboard) -> None:
    """Template runs: tasks a stopped process left unfinished are failed now, and runs other
    replicas started are reported through this server's surfaces when this one claims them."""
    app.tasks.notifier = TaskNotifier({s.name: cast(Surface, s) for s in state.surfaces
                                       if callable(getattr(s, "send", None))})
    try:
        failed = await app.tasks.open()
    except Exception as exc:  # noqa: BLE001 - runs still start with the first template run (tasks.start opens)
        log.warning("template runs: unfinished tasks of a stopped process not checked yet (%s)", type(exc).__name__)
        return
    if failed:
        log.warning("%d template run(s) were interrupted by a restart and are marked failed", len(failed))


async def _sync_loop(state: ServerState, app: Callboard) -> None:
    while True:
        try:
            summary = await app.sync(state.catalog)
            state.last_sync_error = None
            log.info("sync added=%d updated=%d removed=%d errors=%d", summary.added, summary.updated,
                     summary.removed, len(summary.errors))
        except Exception as exc:  # noqa: BLE001 - the loop must survive and retry
            state.last_sync_error = type(exc).__name__
            _log_failure("background sync failed", exc, app)
        state.synced_once = True
        try:  # TechDocs after the catalog: answers about entities never wait for docs builds
            docs = await app.sync_docs()
            log.info("docs built=%d unchanged=%d removed=%d failed=%d", docs.built, docs.unchanged, docs.removed,
                     docs.failed)
        except Exception as exc:  # noqa: BLE001
            _log_failure("background docs build failed", exc, app)
        _stop_if_cancelled()
        await _following(state, app, state.sync_interval)


#: seconds between a server's looks at the catalog's version, for what other processes changed
FOLLOW_INTERVAL = 5.0


async def _follow_loop(state: ServerState, app: Callboard) -> None:
    """A worker that does not sync: take up what worker 0 (or any other writer) changed; read the
    on-call sources again as often as a sync would (a schedule file may change on its own)."""
    while True:
        await _follow(state, app)
        state.synced_once = True
        await _following(state, app, state.sync_interval)
        try:
            await app.oncall.reload()
        except Exception as exc:  # noqa: BLE001 - the loop must survive and retry
            _log_failure("reading the on-call sources again failed", exc, app)


async def _following(state: ServerState, app: Callboard, seconds: float) -> None:
    """Wait ``seconds``, taking up every ``FOLLOW_INTERVAL`` meanwhile what other processes changed
    (the other workers' ``register``, a replica's or a ``callboard sync``'s sync). Not at the end:
    what comes next (a sync, a follower's look) takes it up itself."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > FOLLOW_INTERVAL:
        await asyncio.sleep(FOLLOW_INTERVAL)
        await _follow(state, app)
    await asyncio.sleep(max(left, 0))


async def _follow(state: ServerState, app: Callboard) -> None:
    try:
        if await app.follow():
            log.info("%scatalog reloaded (%d entities)", "" if state.worker is None else f"worker {state.worker}: ",
                     len(app.catalog.index))
    except Exception as exc:  # noqa: BLE001 - the loop must survive and retry
        _log_failure("following the catalog failed", exc, app)
    _stop_if_cancelled()


def _log_failure(what: str, exc: Exception, app: Callboard) -> None:
    """An outage is one warning line (type and gist); anything else is a bug: its traceback."""
    _stop_if_cancelled()
    if app.probe.failed(exc):
        log.warning("%s: database unavailable (%s)", what, type(exc).__name__)
    else:
        log.error(what, exc_info=exc)


def _stop_if_cancelled() -> None:
    """Re-raise a cancellation that a failure during clean-up replaced (a lease released on a
    connection the database closed raises its own error over the CancelledError): without this,
    a server shutting down while its database is gone would sleep on instead of stopping."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


#: a /docs request path longer than this is refused before anything is looked up
MAX_DOCS_PATH = 1024
_DOCS_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def _docs_site(state: ServerState, namespace: str, kind: str, name: str) -> Path:
    """The built site of the entity ``kind:namespace/name``, resolved; 404 unless the three parts are
    a valid entity ref of an entity in the catalog whose site is built.

    The parts arrive percent-decoded, so they are checked as Backstage checks them: a namespace
    is a DNS label, a kind letters and digits, a name an object name. None of them can then hold a
    separator or be a dot segment.
    """
    if not (is_valid_dns_label(namespace) and is_valid_kind(kind) and is_valid_object_name(name)):
        raise web.HTTPNotFound(text="No such entity: /docs/<namespace>/<kind>/<name>/ takes a valid entity ref.")
    key = f"{kind}:{namespace}/{name}".lower()
    if state.app is None:
        raise web.HTTPServiceUnavailable(text="The database is not available yet; try again in a minute.")
    if key not in state.app.catalog.index:
        raise web.HTTPNotFound(text=f"No entity {key} in the catalog.")
    site = state.app.docs.site_dir(key)
    try:  # a rebuild swaps the site in two renames: between them there is none
        if (site / "search" / "search_index.json").is_file():
            return site.resolve(strict=True)
    except (OSError, RuntimeError):
        pass
    raise web.HTTPNotFound(text="These docs are not built (yet). `callboard sync` builds them.")


def _docs_file(site: Path, tail: str) -> Path:
    """The file ``tail`` names inside ``site``: no dot segments, no backslashes, no NUL, and after
    resolving symlinks still inside the site."""
    parts = tail.split("/")
    if "\\" in tail or "\0" in tail or any(part in (".", "..") for part in parts):
        raise web.HTTPNotFound(text="No such page in these docs.")
    try:
        target = site.joinpath(*[p for p in parts if p]).resolve(strict=True)
        if target.is_dir():
            target = (target / "index.html").resolve(strict=True)
        target.relative_to(site)
        if not target.is_file():
            raise FileNotFoundError(target)
    except (OSError, ValueError, RuntimeError):  # missing, too long, a symlink loop or one leaving the site
        raise web.HTTPNotFound(text="No such page in these docs.") from None
    return target


async def _docs(request: web.Request) -> web.StreamResponse:
    """A built TechDocs site: /docs/<namespace>/<kind>/<name>/<path>. Nothing outside the site."""
    raw = request.raw_path.partition("?")[0]
    if len(raw) > MAX_DOCS_PATH:
        raise web.HTTPBadRequest(text=f"That docs path is longer than {MAX_DOCS_PATH} characters.")
    lowered = raw.lower()
    if any(seq in lowered for seq in ("%2f", "%5c", "%00", "\\")):
        raise web.HTTPBadRequest(text="Encoded separators and NUL are not allowed in docs paths.")
    info = request.match_info
    site = _docs_site(request.app[STATE], info["namespace"], info["kind"], info["name"])
    if "tail" not in info:
        raise web.HTTPFound(request.path + "/")
    target = _docs_file(site, info["tail"])
    return web.FileResponse(target, headers=_DOCS_HEADERS)


async def _lifecycle(web_app: web.Application) -> AsyncIterator[None]:
    state = web_app[STATE]
    sync_task = asyncio.ensure_future(_serve_database(state))
    state.tasks.add(sync_task)
    for surface in state.surfaces:
        await surface.start()
    yield
    for surface in state.surfaces:
        await surface.stop()
    for task in list(state.tasks):
        task.cancel()
    await asyncio.gather(*state.tasks, return_exceptions=True)
    if state.app is not None:
        await state.app.close()


def create_server(
    app: Callboard | Opener, *, catalog: tuple[str, ...] | None, sync_interval: float,
    slack: SlackSettings | None = None, surfaces: Sequence[Callable[[Callboard | None, set[asyncio.Task[Any]]], Mounted]] = (),
    backoff: tuple[float, float] = BACKOFF, worker: int | None = None,
) -> web.Application:
    """The server for an open ``app``, or for an ``Opener`` (``callboard serve``): then the server
    starts at once and opens the database itself, retrying with ``backoff`` until it can.

    ``surfaces`` are factories of the chat surfaces to mount (each gets the app, None until the
    database is open, and the server's set of tracked tasks); ``slack`` is the Slack one, built here.
    ``worker``: which worker of ``callboard serve --workers N`` this is; all but worker 0 do not
    sync the catalog or build TechDocs, they reload their index when another process changed it."""
    web_app = web.Application(client_max_size=2 * 1024 * 1024)
    if isinstance(app, Callboard):
        state = ServerState(app=app, catalog=catalog, sync_interval=sync_interval)
    else:
        state = ServerState(app=None, catalog=catalog, sync_interval=sync_interval, opener=app, backoff=backoff)
    state.worker = worker
    factories = list(surfaces)
    if slack is not None:
        factories.insert(0, lambda opened, tasks: SlackSurface(slack, opened, tasks))
    state.surfaces = [make(state.app, state.tasks) for make in factories]
    web_app[STATE] = state
    routes = [route for surface in state.surfaces for route in surface.routes()]
    if not any(surface.name == "slack" for surface in state.surfaces):
        routes.append(web.post("/slack/events", _no_slack))
    if not any(surface.name == "teams" for surface in state.surfaces):
        routes.append(web.post("/api/messages", _no_teams))
    web_app.add_routes(
        [
            *routes,
            web.get("/healthz", _healthz),
            web.get("/readyz", _readyz),
            web.get("/docs/{namespace}/{kind}/{name}", _docs),
            web.get("/docs/{namespace}/{kind}/{name}/{tail:.*}", _docs),
        ]
    )
    web_app.cleanup_ctx.append(_lifecycle)
    return web_app
