"""The ``callboard`` command line: ``sync``, ``ask``, ``chat``.

Exit codes: 0 answered / synced; 1 nothing matched, the answer is an error, or
(``sync --strict``) the sync reported errors; 2 a usage or configuration error, or a database
that cannot be reached or opened (one line on stderr saying what to do; no traceback).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import signal
import socket
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.text import Text as RichText
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from callboard import __version__
from callboard.catalog.model import SyncSummary
from callboard.catalog.sync import SyncProgress
from callboard.providers.techdocs.service import DocsProgress, DocsSummary
from callboard.commands.api import Status
from callboard.storage.engine import DatabaseURLError, DatabaseUnavailable, async_url, describe_failure, is_unavailable

from .app import Callboard, plan_for
from .config import ConfigError, Settings, load_settings, mask_url
from .shell.render import clean, render_json, render_text
from .teams.package import teams_package

__all__ = ["main"]

log = logging.getLogger("callboard")

#: Socket Mode connections Slack opens to one app at once (each ``serve --workers`` worker holds one)
SOCKET_MODE_CONNECTIONS = 10


def _options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
                        help="callboard.yaml to read (default: $CALLBOARD_CONFIG).")(func)
    func = click.option("--database-url", default=None,
                        help="sqlite:///path/cb.db or postgresql://user@host/db (default: $CALLBOARD_DATABASE_URL, "
                             "else a SQLite file in your data directory).")(func)
    func = click.option("--catalog", "catalog", multiple=True,
                        help="A catalog file, a folder of catalog-info.yaml files, or an http(s) URL. Repeatable.")(func)
    return func


def _settings(config_file: str | None, database_url: str | None, catalog: tuple[str, ...]) -> Settings:
    try:
        settings = load_settings(config_file=config_file, database_url=database_url, catalog=catalog)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_InertFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler])
    return settings


#: control characters a terminal or log viewer could act on (newline and tab are a log's own)
_LOG_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class _InertFormatter(logging.Formatter):
    """Log lines quote what others wrote (repository file names, request contents, exception texts):
    control characters are written escaped (``\\x1b``), visible but inert, in whatever reads the log."""

    def format(self, record: logging.LogRecord) -> str:
        return _LOG_CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}",
                                super().format(record))


def _run(coro: Coroutine[Any, Any, int], database_url: str | None = None) -> int:
    """Run a command; configuration errors and a database that cannot be used are one line on
    stderr and exit 2 (the database's URL, ``database_url``, is shown with its password masked)."""
    try:
        return asyncio.run(coro)
    except (DatabaseURLError, ConfigError, DatabaseUnavailable) as exc:
        click.echo(f"Error: {exc}", err=True)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if database_url is None or not is_unavailable(exc):
            raise
        log.debug("database failed", exc_info=True)
        click.echo(f"Error: {describe_failure(exc, database_url)}", err=True)
        return 2


def _print_summary(summary: SyncSummary, console: Console) -> None:
    console.print(
        f"Synced {summary.locations} location(s): {summary.added} added, {summary.updated} updated, "
        f"{summary.removed} removed, {summary.unchanged} unchanged, {len(summary.errors)} error(s)."
    )
    for err in summary.errors:
        who = f" ({err.entity})" if err.entity else ""
        # file names and messages quote catalog data: no markup, no terminal control sequences
        console.print(f"  [red]error[/red] {escape(clean(err.where()))}{escape(clean(who))}: "
                      f"{escape(clean(err.message))}", highlight=False, soft_wrap=True)


async def _sync(app: Callboard, catalog: tuple[str, ...] | None, console: Console, progress: bool) -> SyncSummary:
    """The catalog, then the TechDocs whose sources changed."""
    if not progress:
        summary = await app.sync(catalog)
        app.last_docs = await app.sync_docs()
        return summary
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[detail]}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("Syncing", total=None, detail="")

        def update(p: SyncProgress) -> None:
            bar.update(task, total=p.locations_seen, completed=p.locations_done, detail=f"{p.entities:,} entities",
                       description=f"Syncing {escape(clean(Path(p.current).name))}")

        summary = await app.sync(catalog, on_progress=update)
        docs_task = bar.add_task("Building TechDocs", total=None, detail="")

        def docs_update(p: DocsProgress) -> None:
            bar.update(docs_task, total=p.total, completed=p.done, detail=escape(clean(p.entity or "")))

        app.last_docs = await app.sync_docs(on_progress=docs_update)
        return summary


_SHOWN_ERRORS = 50
#: What ``ask`` and ``chat`` say when they load the demo into a database never synced.
_FIRST_DEMO = ("This database was never synced: loading the demo catalog into it to answer from "
               "(callboard sync --catalog PATH loads yours instead).")


def _print_docs_summary(docs: DocsSummary | None, console: Console) -> None:
    if docs is None or not (docs.total or docs.removed or docs.nothing):
        return
    console.print(
        f"TechDocs: {docs.built} built, {docs.unchanged} unchanged, {docs.removed} removed, {docs.failed} failed."
        + (f" {docs.nothing} entit{'y has' if docs.nothing == 1 else 'ies have'} a docs annotation but nothing "
           "to build where it points (no mkdocs.yml, docs/ or README.md)." if docs.nothing else "")
    )
    for entity, message in docs.errors[:_SHOWN_ERRORS]:
        console.print(f"  [red]docs error[/red] {escape(clean(entity))}: {escape(clean(message))}", highlight=False,
                      soft_wrap=True)
    if len(docs.errors) > _SHOWN_ERRORS:
        console.print(f"  … and {len(docs.errors) - _SHOWN_ERRORS} more docs errors (`callboard ask \"docs <entity>\"` "
                      "shows one entity's).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="callboard")
def cli() -> None:
    """Callboard: your developer portal, in chat. Try: callboard ask "who owns payment-service?\""""


@cli.command()
@_options
@click.option("--strict", is_flag=True, help="Exit 1 when the sync reports any error.")
def sync(config_file: str | None, database_url: str | None, catalog: tuple[str, ...], strict: bool) -> None:
    """Sync catalog files into the database (incremental: only changes are written).

    Exits 1 when a location could not be read at all (missing, unreachable, not found, not YAML):
    the rest is synced and what could not be read is named. --strict: 1 on any catalog error.
    """
    settings = _settings(config_file, database_url, catalog)
    console = Console(stderr=False)

    async def go() -> int:
        async with await Callboard.open(settings, answering=False) as app:
            plan = await app.settle(plan_for(settings, command="sync"))
            if plan.first:
                console.print("This database was never synced and no catalog was named: syncing the demo catalog "
                              "(callboard sync --catalog PATH syncs yours).", highlight=False, soft_wrap=True)
            summary = await _sync(app, plan.catalog, console, progress=console.is_terminal)
        _print_summary(summary, console)
        _print_docs_summary(app.last_docs, console)
        if summary.unread:
            # the rest was synced; what could not be read at all is named, and the exit says so
            console.print(f"Could not read {len(summary.unread)} location(s) at all; their entities, if any, "
                          "were kept from the last sync:", highlight=False, soft_wrap=True)
            for where in summary.unread:
                console.print(f"  {escape(clean(where))}", highlight=False, soft_wrap=True)
            return 1
        if summary.errors and (strict or (summary.locations == 0)):
            return 1
        if strict and app.last_docs is not None and app.last_docs.failed:
            return 1
        return 0

    sys.exit(_run(go(), settings.effective_database_url))


@cli.command()
@_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.argument("text", nargs=-1, required=True)
def ask(config_file: str | None, database_url: str | None, catalog: tuple[str, ...], fmt: str,
        text: tuple[str, ...]) -> None:
    """Ask one question and print the answer, e.g. callboard ask "who owns payment-service?"."""
    settings = _settings(config_file, database_url, catalog)
    question = " ".join(text)
    err_console = Console(stderr=True)

    async def go() -> int:
        async with await Callboard.open(settings) as app:
            plan = await app.settle(plan_for(settings, command="ask"))
            if plan.first:
                err_console.print(_FIRST_DEMO, highlight=False, soft_wrap=True)
            elif plan.catalog is None and not app.synced_before:
                err_console.print(f"The database {escape(mask_url(settings.effective_database_url))} was never "
                                  "synced: there is nothing to answer from (callboard sync --database-url URL "
                                  "--catalog PATH fills it).", highlight=False, soft_wrap=True)
            if plan.catalog is not None:
                summary = await _sync(app, plan.catalog, err_console, progress=err_console.is_terminal)
                if summary.errors and not plan.demo:
                    err_console.print(f"[yellow]{len(summary.errors)} catalog error(s); "
                                      "run `callboard sync` to see them.[/yellow]")
            reply = await app.ask(question)
        click.echo(render_json(reply) if fmt == "json" else render_text(reply))
        if reply.status is Status.USAGE:
            return 2
        return 0 if reply.status.answered else 1

    sys.exit(_run(go(), settings.effective_database_url))


def _example_question(app: Callboard) -> str:
    """A first question about the catalog being answered from (a name it holds, not the demo's)."""
    keys = sorted(app.catalog.index.keys())
    for kind in ("component:", "api:", "system:", "resource:", "group:"):
        for key in [k for k in keys if k.startswith(kind)][:20]:  # a few lookups, whatever the catalog's size
            name = key.split("/", 1)[-1]
            if app.catalog.search(name).match is not None:
                return f'"who owns {clean(name)[:60]}?"'
    return '"help"' if not keys else f'"who owns {clean(keys[0].split("/", 1)[-1])[:60]}?"'


@cli.command()
@_options
def chat(config_file: str | None, database_url: str | None, catalog: tuple[str, ...]) -> None:
    """Talk to Callboard in your terminal (history, colours; Ctrl-C clears the line, Ctrl-D leaves)."""
    settings = _settings(config_file, database_url, catalog)
    console = Console()

    async def go() -> int:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory

        from .shell.chat import answer_lines, converse

        async with await Callboard.open(settings, resident=True) as app:
            plan = await app.settle(plan_for(settings, command="chat"))
            if plan.first:
                console.print(_FIRST_DEMO, highlight=False, soft_wrap=True)
            if plan.catalog is not None:
                summary = await _sync(app, plan.catalog, console, progress=console.is_terminal)
                if summary.errors:
                    console.print(f"[yellow]{len(summary.errors)} catalog error(s); "
                                  "`callboard sync` lists them.[/yellow]")
            counts = await app.catalog.counts()
            source = ("the demo catalog" if plan.demo else "your catalog" if plan.catalog is not None
                      else f"the database {mask_url(settings.effective_database_url)}")
            console.print(RichText.assemble(
                ("Callboard", "bold"), f" {__version__} — {sum(counts.values())} entities from {source}. "
                f"Ask {_example_question(app)} or type help. Ctrl-C clears the line, Ctrl-D quits."))
            if not sys.stdin.isatty():
                return await answer_lines(app, console, sys.stdin)
            history_dir = Path(settings.data_dir)
            try:
                history_dir.mkdir(parents=True, exist_ok=True)
                history: Any = FileHistory(str(history_dir / "chat_history"))
            except OSError:
                history = InMemoryHistory()
            session: PromptSession[str] = PromptSession(history=history)
            return await converse(app, console, session)

    sys.exit(_run(go(), settings.effective_database_url))


@cli.command()
@_options
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on. Only this machine by default; --host 0.0.0.0 in a container "
                   "or behind a reverse proxy on another host.")
@click.option("--port", default=3000, show_default=True, type=int, help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), envvar="CALLBOARD_WORKERS",
              help="Server processes sharing the port (Linux, macOS), each a whole replica: one answers on one "
                   "CPU core. Worker 0 syncs the catalog, the others follow it. Also CALLBOARD_WORKERS.")
def serve(config_file: str | None, database_url: str | None, catalog: tuple[str, ...], host: str, port: int,
          workers: int) -> None:
    """Run the bot: Slack at /slack/events (or Socket Mode), Teams at /api/messages, /healthz, /readyz,
    background sync. Each platform is on when its credentials are in the environment."""
    from aiohttp import web

    from .server import create_server, slack_settings
    from .teams.settings import teams_settings

    settings = _settings(config_file, database_url, catalog)
    try:
        slack = slack_settings(settings)
        teams = teams_settings(settings)
        async_url(settings.effective_database_url)  # a URL that cannot be read is not retried: it stays wrong
    except (ConfigError, DatabaseURLError) as exc:
        raise click.UsageError(str(exc)) from None
    if slack is None and teams is None:
        raise click.UsageError(
            "No chat platform is configured: for Slack set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (and "
            "SLACK_APP_TOKEN for Socket Mode); for Microsoft Teams set MICROSOFT_APP_ID and MICROSOFT_APP_PASSWORD "
            "(CALLBOARD_TEAMS_DEV=1 tries Teams locally without them). See README, 'Slack' and 'Microsoft Teams'."
        )

    if settings.public_url is None and settings.backstage_base_url is None:
        # docs links then open this server; behind a proxy or another host, set server.public_url
        local = "localhost" if host in ("0.0.0.0", "::", "") else host
        settings = dataclasses.replace(settings, public_url=f"http://{local}:{port}")

    plan = plan_for(settings, command="sync")

    async def follow_app() -> Callboard:  # a worker besides worker 0: worker 0 syncs
        return await Callboard.open(settings, resident=True)

    async def open_app() -> Callboard:
        app = await Callboard.open(settings, resident=True)
        if plan.unnamed:  # the default database's own catalog; the demo only into one never synced
            settled = await app.settle(plan)
            if settled.catalog is not None:
                try:
                    await app.sync(settled.catalog)
                except BaseException:
                    await app.close()
                    raise
        return app

    async def go(worker: int | None = None, listening: Sequence[socket.socket] = ()) -> int:
        # the server opens the database itself, retrying until it answers: it serves /readyz meanwhile;
        # with no catalog named it re-syncs what the database has registered
        surfaces = []
        if teams is not None:
            from .teams.app import TeamsSurface

            on_teams = dataclasses.replace(teams, public_url=settings.public_url)
            surfaces.append(lambda opened, tasks: TeamsSurface(on_teams, opened, tasks))
        web_app = create_server(follow_app if worker else open_app, catalog=None if plan.unnamed else plan.catalog,
                                sync_interval=settings.sync_interval, slack=slack, surfaces=surfaces, worker=worker)
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        sites: list[web.BaseSite] = [web.SockSite(runner, sock) for sock in listening] or [web.TCPSite(runner, host, port)]
        for site in sites:
            await site.start()
        if not worker:
            on = []
            if slack is not None:
                on.append("Slack (" + ("Socket Mode" if slack.app_token else f"http://{host}:{port}/slack/events") + ")")
            if teams is not None:
                on.append(f"Microsoft Teams (http://{host}:{port}/api/messages"
                          + (")" if teams.authenticated else ", DEVELOPMENT MODE: requests not authenticated)"))
            many = f" with {workers} worker processes" if workers > 1 else ""
            click.echo(f"Callboard is serving {' and '.join(on)}{many}; health at http://{host}:{port}/healthz; "
                       f"docs at {settings.public_url or settings.backstage_base_url}/docs/. Ctrl-C stops.")
        stopped = asyncio.Event()
        if worker is not None:  # the parent asks with SIGINT; a service manager may signal every process
            for signum in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().add_signal_handler(signum, stopped.set)
        try:
            await stopped.wait()
        finally:
            await runner.cleanup()
        return 0

    if workers == 1:
        sys.exit(_run(go()))
    if slack is not None and slack.app_token and workers > SOCKET_MODE_CONNECTIONS:
        # every worker opens its own Socket Mode connection, and Slack takes this many per app
        raise click.UsageError(f"--workers {workers}: Slack's Socket Mode takes at most {SOCKET_MODE_CONNECTIONS} "
                               "connections per app, one a worker; use fewer workers, or Slack's HTTP endpoint "
                               "(unset SLACK_APP_TOKEN)")
    from .workers import bind, run_workers

    try:
        listening = bind(host, port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sys.exit(run_workers(workers, listening, lambda index: _run(go(index, listening))))
    except OSError as exc:
        raise click.ClickException(str(exc)) from None


@cli.command()
@_options
@click.option("--value", "value_pairs", multiple=True, metavar="KEY=VALUE",
              help="A parameter's value (a.b=c for a nested one). Repeatable; overrides --values.")
@click.option("--values", "values_file", type=click.Path(dir_okay=False), default=None,
              help="A YAML or JSON file of parameter values (nested values allowed).")
@click.option("--secret", "secret_pairs", multiple=True, metavar="KEY=VALUE",
              help="A secret (${{ secrets.KEY }}), never printed. Repeatable.")
@click.option("--as", "user_ref", default=None, metavar="USER_REF", help="Run as this catalog user (user:default/ana).")
@click.option("--dry-run", is_flag=True, help="Run every step that does not publish; write nothing anywhere else.")
@click.option("--workspace", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Leave the resulting files in this (empty or new) folder.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.argument("template")
def create(config_file: str | None, database_url: str | None, catalog: tuple[str, ...], value_pairs: tuple[str, ...],
           values_file: str | None, secret_pairs: tuple[str, ...], user_ref: str | None, dry_run: bool,
           workspace: Path | None, fmt: str, template: str) -> None:
    """Run a Software Template: a Template's name or ref, or a path to a template.yaml.

    A real run is a task in the database, run here; each step is printed as it ends, then the
    output's links. Missing or invalid values are asked for at a terminal.

    Exit codes: 0 done; 1 the task failed, or you may not run the template
    (scaffolder.permissions); 2 invalid values (each field error listed) or usage."""
    from .create import CreateRequest, UsageProblem, parse_assignments, read_values_file, run_create

    settings = _settings(config_file, database_url, catalog)
    try:
        values = read_values_file(values_file) if values_file else {}
        secrets = {k: str(v) for k, v in parse_assignments(secret_pairs, None, what="--secret").items()}
    except UsageProblem as exc:
        raise click.UsageError(str(exc)) from None
    request = CreateRequest(template=template, values=values, value_pairs=value_pairs, secrets=secrets,
                            user_ref=user_ref, dry_run=dry_run, workspace=workspace, fmt=fmt)

    async def open_app() -> Callboard:
        app = await Callboard.open(settings)
        if catalog:
            await app.sync(catalog)
        await app.catalog.load_index()
        return app

    sys.exit(_run(run_create(request, open_app=open_app), settings.effective_database_url))


@cli.command("help")
@click.argument("command", nargs=-1)
@click.pass_context
def help_command(ctx: click.Context, command: tuple[str, ...]) -> None:
    """Show this help, or one command's: callboard help sync."""
    parent = ctx.parent
    assert parent is not None and isinstance(parent.command, click.Group)
    group = parent.command
    if not command:
        click.echo(group.get_help(parent))
        return
    sub = group.get_command(parent, command[0])
    if sub is None or len(command) > 1:
        raise click.UsageError(f"No such command {' '.join(command)!r}; the commands are: "
                               f"{', '.join(group.list_commands(parent))}.")
    with sub.make_context(command[0], [], parent=parent, resilient_parsing=True) as sub_ctx:
        click.echo(sub.get_help(sub_ctx))


cli.add_command(teams_package)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
