"""Wiring in one place: settings -> database, sources, sync engine, catalog, commands.

``Callboard`` is the app instance every surface (terminal, Slack, Teams) drives.
Registries belong to it; there are no module globals.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import inspect
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from callboard.catalog.model import CatalogError, SyncSummary
from callboard.catalog.service import Catalog
from callboard.catalog.urls import redact_error, strip_userinfo
from callboard.catalog.sync import LocationSpec, SyncEngine, SyncProgress
from callboard.commands.api import Deps, Reply
from callboard.commands.dispatch import CommandRegistry, Dispatcher
from callboard.providers.api import (
    ENTITY_PROVIDERS,
    ONCALL_PROVIDERS,
    EntitySource,
    LoadedProvider,
    ProviderConfigError,
    ProviderContext,
    SystemClock,
    load_providers,
)
from callboard.providers.files import FileSource, discover
from callboard.providers.http import Fetcher
from callboard.providers.oncall.schedule import ScheduleFileError
from callboard.providers.oncall.service import OnCall
from callboard.providers.techdocs.service import DocsProgress, DocsSummary, TechDocs
from callboard.scaffolder.actions.api import ActionDeps
from callboard.scaffolder.catalog import find_template
from callboard.scaffolder.model import TemplateDef, TemplateError
from callboard.scaffolder.permissions import Permissions
from callboard.scaffolder.tasks import TaskRunner
from callboard.storage import repo
from callboard.storage.sync_settings import ever_synced, load_sync_settings, save_sync_settings
from callboard.storage.engine import (
    DatabaseProbe,
    DatabaseUnavailable,
    describe_failure,
    is_unavailable,
    open_database,
)

from .config import ConfigError, Settings, mask_url, remembered, with_remembered

__all__ = ["Callboard", "demo_catalog_path"]

log = logging.getLogger(__name__)

#: The order on-call sources are asked in: the paging systems first, the schedule file last.
_ONCALL_ORDER = {"pagerduty": 0, "opsgenie": 1, "schedule": 2}


def demo_catalog_path() -> Path:
    """The bundled demo catalog (inside the installed package)."""
    return Path(str(resources.files("callboard.examples").joinpath("demo-catalog")))


@dataclass(frozen=True, slots=True)
class Plan:
    """What to sync before answering: the root paths/URLs, or None for 'answer as is' (``sync``:
    re-sync what the database has registered)."""

    catalog: tuple[str, ...] | None
    #: the catalog is the bundled demo
    demo: bool = False
    #: the run named no catalog and no database: the default database's own catalog, and the demo
    #: only into a database that was never synced (``Callboard.settle`` decides)
    unnamed: bool = False
    #: the demo is being loaded into a database that was never synced (say so)
    first: bool = False


def plan_for(settings: Settings, *, command: str) -> Plan:
    """Which catalog a command works on (see README, "Where answers come from")."""
    if settings.catalog_from_option:
        return Plan(settings.catalog)
    if command == "sync":
        if settings.catalog:
            return Plan(settings.catalog)
        if settings.database_url:
            return Plan(None)  # re-sync what that database has registered
        return Plan((str(demo_catalog_path()),), demo=True, unnamed=True)
    if settings.database_url:
        return Plan(None)
    if settings.catalog:
        return Plan(settings.catalog)
    return Plan((str(demo_catalog_path()),), demo=True, unnamed=True)


#: ``github:owner/repo``: a location another entity provider reads (``Callboard.sync``)
_PROVIDER_ITEM = re.compile(r"[a-z][a-z0-9_-]+:(?!//)")


def _given(catalog: tuple[str, ...]) -> list[str]:
    """A catalog as a sync records it: paths absolute, URLs without credentials, in order."""
    out = []
    for item in catalog:
        if "://" in item:
            out.append(mask_url(item))
        elif _PROVIDER_ITEM.match(item) and not Path(item).expanduser().exists():
            out.append(item)
        else:
            out.append(str(Path(item).expanduser().resolve()))
    return out


def _is_demo(roots: list[str]) -> bool:
    demo = demo_catalog_path().resolve()
    return bool(roots) and all(Path(r) == demo or demo in Path(r).parents for r in roots)


def _settled(settings: Settings, record: Mapping[str, Any]) -> Settings:
    """``settings`` with the on-call settings the database recorded filled in where this run sets
    none itself, unless this run names another catalog than the sync that recorded them (that
    catalog's own settings are this run's)."""
    oncall = record.get("oncall")
    if not isinstance(oncall, dict):
        return settings
    if settings.catalog and _given(settings.catalog) != (record.get("catalog") or {}).get("given"):
        return settings
    return with_remembered(settings, oncall)


def _providers(group: str, sections: Mapping[str, Any], key: str) -> dict[str, LoadedProvider[Any, Any]]:
    try:
        return load_providers(group, sections, key=key)
    except ProviderConfigError as exc:
        raise ConfigError(str(exc)) from None


def _oncall_sections(settings: Settings) -> dict[str, Any]:
    """The on-call providers' sections: the built-in ones from the settings bot/config.py checked
    (credentials come from the environment), any other from ``oncall.<name>`` as written."""
    return {
        **settings.oncall_providers,
        "pagerduty": {"token": settings.pagerduty_token, "api_url": settings.pagerduty_api_url,
                      "timeout": settings.oncall_timeout},
        "opsgenie": {"api_key": settings.opsgenie_api_key, "api_url": settings.opsgenie_api_url,
                     "timeout": settings.oncall_timeout},
        "schedule": {"file": settings.oncall_schedule_file},
    }


def _set_aside() -> None:
    """The index and relation graph just loaded are ~1M long-lived objects: move them out of the
    cyclic collector's generations, so that a full collection does not walk them mid-request. What
    was set aside before (an index since replaced) is let back in first, so that it can be freed."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class Callboard:
    """One running Callboard: open it, sync, dispatch, close."""

    def __init__(self, settings: Settings, engine: AsyncEngine, registry: CommandRegistry) -> None:
        self.settings = settings
        self.engine = engine
        self.catalog = Catalog(engine)
        self.registry = registry
        # the one HTTP client every provider uses (its connection pools open on first use);
        # URLs from catalog data are checked against reading.allow
        self.http = Fetcher(allow=settings.reading_allow)
        self.clock = SystemClock()
        # the installed providers (entry points), each with its section of callboard.yaml parsed:
        # an unknown name or a bad section stops the start here, naming the key
        self.entity_providers = _providers(ENTITY_PROVIDERS, settings.providers, "providers")
        self.oncall_providers = _providers(ONCALL_PROVIDERS, _oncall_sections(settings), "oncall")
        self._sources: dict[str, EntitySource] = {}  # the entity sources of the last sync
        # what the in-memory index was loaded from; set only in long-lived (resident) processes,
        # which follow other processes' writes
        self._catalog_version: str | None = None
        self._file_roots: list[str] | None = None  # the folders the last sync read files under
        self.last_docs: DocsSummary | None = None  # what the last TechDocs pass did
        self._shell: Any = None  # the terminal surface ``ask`` answers through
        self._record: dict[str, Any] = {}  # what the syncs that filled the database recorded (storage/sync_settings.py)
        self._synced = False  # had the database ever been synced when it was opened
        self.docs = TechDocs(
            engine,
            Path(settings.effective_docs_store),
            build_timeout=settings.docs_build_timeout,
            workers=settings.docs_workers,
            allow_hooks=settings.docs_allow_hooks,
            allow_env=settings.docs_allow_env,
            plugins=settings.docs_plugins,
            backstage_base_url=settings.backstage_base_url,
            public_url=settings.public_url,
            github_api_url=settings.github_api_url,
            github_token=settings.github_token,
            reading_allow=settings.reading_allow,
        )
        self.oncall = OnCall(loader=self._oncall_sources, cache_seconds=settings.oncall_cache_seconds,
                             timeout=settings.oncall_timeout + 1.0)
        #: is the database answering? (``/readyz``, and answers that wait too long on it)
        self.probe = DatabaseProbe(engine)
        #: who may run which Software Template (``scaffolder.permissions``)
        self.permissions = Permissions(settings.scaffolder_permissions, self.catalog)
        #: runs of templates, as tasks in the database (a surface sets ``tasks.notifier`` for runs
        #: started by other replicas; the worker starts with the first run, or ``tasks.open()``)
        self.tasks = TaskRunner(engine, data_dir=settings.data_dir, deps=ActionDeps(app=self, config=settings.scaffolder_actions), resolve=self.template,
                                allowed=self.permissions.may_run)
        self.dispatcher = Dispatcher(
            registry, Deps(catalog=self.catalog, commands=registry.specs, docs=self.docs, oncall=self.oncall,
                           permissions=self.permissions, tasks=self.tasks),
            self.probe,
        )

    @classmethod
    async def open(
        cls,
        settings: Settings,
        registry: CommandRegistry | None = None,
        *,
        resident: bool = False,
        answering: bool = True,
    ) -> Callboard:
        """Open the database and load the search index.

        ``resident`` (servers, chat sessions): also keep the relation graph in memory,
        so answers need one point read instead of a query per relation direction.
        ``answering=False`` (``callboard sync``): skip the search index, nothing will be asked.
        A database that cannot be reached or opened raises ``DatabaseUnavailable`` (one line).
        """
        url = settings.effective_database_url
        engine = await open_database(url)
        try:
            async with engine.connect() as conn:
                record = await load_sync_settings(conn)
                synced = bool(record) or await ever_synced(conn)
            app = cls(_settled(settings, record), engine, registry or CommandRegistry.from_entry_points())
            app._record, app._synced = record, synced
        except BaseException as exc:
            await asyncio.shield(engine.dispose())
            if isinstance(exc, Exception) and is_unavailable(exc) and not isinstance(exc, DatabaseUnavailable):
                raise DatabaseUnavailable(describe_failure(exc, url)) from exc
            raise
        try:
            await app._load(resident=resident, answering=answering)
        except BaseException as exc:  # the database went away while loading: nothing half-open is left
            await asyncio.shield(app.close())
            if isinstance(exc, Exception) and is_unavailable(exc) and not isinstance(exc, DatabaseUnavailable):
                raise DatabaseUnavailable(describe_failure(exc, url)) from exc
            raise
        return app

    @property
    def synced_before(self) -> bool:
        """Had a sync ever registered a catalog in this database when it was opened?"""
        return self._synced

    async def settle(self, plan: Plan) -> Plan:
        """``plan`` for this database: a run that named no catalog works on the database's own
        catalog (``Plan(None)``), refreshes the demo when that is what the database holds, and
        loads the demo only into a database that was never synced (``first``: say so)."""
        if not plan.unnamed:
            return plan
        if not self._synced:
            return dataclasses.replace(plan, first=True)
        given = (self._record.get("catalog") or {}).get("given")
        if not isinstance(given, list):  # synced before the database kept its record: its registered files
            async with self.engine.connect() as conn:
                given = [str(r["target"]) for r in await repo.root_locations(conn) if r["type"] == "file"]
        return plan if _is_demo([str(g) for g in given]) else Plan(None)

    async def _load(self, *, resident: bool, answering: bool) -> None:
        app, engine = self, self.engine
        if answering:
            if resident:  # long-lived: later syncs compare against what this index was loaded from
                async with engine.connect() as conn:
                    app._catalog_version = await repo.catalog_version(conn)
            await app.catalog.load_index(graph=resident)
            if resident:
                _set_aside()
        else:
            app.catalog.following = False

    async def template(self, ref: str) -> TemplateDef | None:
        """The template ``ref`` names (a catalog Template entity, else a built-in); None when there
        is none, or it cannot be run."""
        try:
            return await find_template(ref, self.catalog) if ref.lower().startswith("template:") else None
        except TemplateError:
            return None

    async def close(self) -> None:
        await self.tasks.close()
        if self.catalog.graph is not None:
            gc.unfreeze()  # what open() froze may be collected again
        await self.probe.close()
        await self.catalog.close()
        await self.oncall.close()
        await self._close_sources()
        await self.http.close()
        await self.engine.dispose()

    async def __aenter__(self) -> Callboard:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def sync(
        self, catalog: tuple[str, ...] | None, on_progress: Callable[[SyncProgress], None] | None = None
    ) -> SyncSummary:
        """Sync ``catalog`` (paths and URLs); ``None`` re-syncs the registered locations."""
        async with repo.sync_lease(self.engine):
            if self._catalog_version is not None:  # a long-lived process (serve, chat)
                await self._follow_other_writers()
            # under the lease: what another process registered or unregistered (a worker of
            # ``serve --workers``, a replica) is part of this sync, not undone by it
            await self._reload_record()
            roots, file_roots, errors, unreadable = await self._roots(catalog)
            if catalog is not None and errors and not roots:
                return SyncSummary(errors=tuple(errors), unread=tuple(e.file for e in errors))
            self._file_roots = file_roots
            await self.oncall.reload()
            engine = SyncEngine(
                self.engine,
                await self._entity_sources(file_roots),
                on_change=self.catalog.apply,
                on_progress=on_progress,
                feed_relations=self.catalog.graph is not None,
            )
            summary = await engine.sync(roots, keep_under=unreadable)
            await self._remember(catalog, file_roots)
            if self._catalog_version is not None:
                async with self.engine.connect() as conn:
                    self._catalog_version = await repo.catalog_version(conn)
        if errors:
            summary = dataclasses.replace(summary, errors=tuple(errors) + summary.errors,
                                          unread=tuple(e.file for e in errors) + summary.unread)
        # what is shown: URLs without their credentials (the sync engine quotes location keys)
        return dataclasses.replace(summary, errors=tuple(redact_error(e) for e in summary.errors),
                                   unread=tuple(strip_userinfo(u) for u in summary.unread))

    async def _roots(
        self, catalog: tuple[str, ...] | None
    ) -> tuple[list[LocationSpec] | None, list[str], list[CatalogError], list[str]]:
        """What a sync of ``catalog`` reads: its root locations (None: the registered ones), the
        folders files may be read under, the errors of what could not be read, and those paths."""
        roots: list[LocationSpec] | None = None
        errors: list[CatalogError] = []
        unreadable: list[str] = []
        file_roots: list[str] = []
        if catalog is None:
            # re-sync what the database has registered, under the folders its sync was given
            return None, await self._database_roots(), errors, unreadable
        roots = []
        for item in catalog:
            if item.startswith(("http://", "https://")):
                roots.append(LocationSpec(type="url", target=item))
                continue
            kind, sep, target = item.partition(":")
            if sep and kind in self.entity_providers and kind not in ("file", "url"):  # memo:target
                roots.append(LocationSpec(type=kind, target=target))
                continue
            found = await asyncio.to_thread(discover, item)  # walks a folder tree: not on the event loop
            if isinstance(found, CatalogError):
                errors.append(found)
                unreadable.append(str(Path(item).expanduser().resolve()))
                continue
            file_roots.append(item)
            roots.extend(found)
        if errors and not roots:
            return roots, file_roots, errors, unreadable
        # locations registered at run time (``register``) are part of every catalog
        for spec, folder in self._registered():
            roots.append(spec)
            if folder is not None:
                file_roots.append(folder)
        return roots, file_roots, errors, unreadable

    async def _remember(self, catalog: tuple[str, ...] | None, file_roots: list[str]) -> None:
        """Record with the database what this sync was given: its catalog (or, re-syncing, the one
        recorded before) and the on-call settings it ran with, never a credential."""
        record: dict[str, Any] = {"oncall": remembered(self.settings)}
        async with self.engine.connect() as conn:  # registered by another process meanwhile: kept
            registered = (await load_sync_settings(conn)).get("registered")
        if registered:
            record["registered"] = registered
        if catalog is not None:
            record["catalog"] = {"given": _given(catalog),
                                 "roots": [str(Path(r).expanduser().resolve()) for r in file_roots]}
        elif isinstance(self._record.get("catalog"), dict):
            record["catalog"] = self._record["catalog"]
        if record != self._record:
            async with self.engine.begin() as conn:
                await save_sync_settings(conn, record)
            self._record = record

    async def _database_roots(self) -> list[str]:
        """The folders a run that names no catalog reads under (files, schedule file, docs): those
        the sync that filled the database was given, else its registered files' folders."""
        roots = (self._record.get("catalog") or {}).get("roots")
        if isinstance(roots, list) and roots and all(isinstance(r, str) for r in roots):
            return list(roots) + [f for _, f in self._registered() if f is not None and f not in roots]
        async with self.engine.connect() as conn:
            registered = await repo.root_locations(conn)
        return [str(Path(r["target"]).parent) for r in registered if r["type"] == "file"]

    def _registered(self) -> list[tuple[LocationSpec, str | None]]:
        """The locations ``register`` added (a later sync of the configured catalog keeps them),
        each with the folder its files may be read under (None for a URL)."""
        out = []
        for item in self._record.get("registered") or []:
            if isinstance(item, dict) and isinstance(item.get("type"), str) and isinstance(item.get("target"), str):
                folder = item.get("folder")
                out.append((LocationSpec(type=item["type"], target=item["target"]),
                            folder if isinstance(folder, str) else None))
        return out

    async def register(self, target: str, *, folder: str | None = None) -> tuple[str, SyncSummary]:
        """Add one catalog file (a path) or an http(s) URL to the catalog at once, as Backstage's
        catalog:register does: read now (only it; the rest of the catalog is not read again),
        answerable as soon as this returns, and kept by later syncs, including those of the
        configured catalog, until ``unregister``. ``folder``: the folder a file's references may
        be read under (default: the file's own folder). Returns the location key and what the
        sync did (its errors name what was wrong with the file).

        A URL is fetched as the operator's own (trusted): the caller checks it first."""
        if target.startswith(("http://", "https://")):
            spec, root = LocationSpec(type="url", target=target), None
        else:
            path = Path(target).expanduser().resolve()
            spec = LocationSpec(type="file", target=str(path))
            root = str(Path(folder).expanduser().resolve()) if folder is not None else str(path.parent)
        async with repo.sync_lease(self.engine):
            if self._catalog_version is not None:
                await self._follow_other_writers()
            file_roots = list(self._file_roots if self._file_roots is not None else await self._database_roots())
            if root is not None and root not in file_roots:
                file_roots.append(root)
            await self._reload_record()
            registered = [r for r in self._record.get("registered") or [] if r.get("target") != spec.target]
            record = {**self._record, "registered": [*registered, {"type": spec.type, "target": spec.target,
                                                                   "folder": root}]}
            async with self.engine.begin() as conn:  # first, so a sync of the catalog meanwhile keeps it
                await save_sync_settings(conn, record)
            self._record = record
            self._file_roots = file_roots
            engine = SyncEngine(self.engine, await self._entity_sources(file_roots), on_change=self.catalog.apply,
                                feed_relations=self.catalog.graph is not None)
            summary = await engine.sync([spec], add=True)
            if self._catalog_version is not None:
                async with self.engine.connect() as conn:
                    self._catalog_version = await repo.catalog_version(conn)
        return spec.key, dataclasses.replace(summary, errors=tuple(redact_error(e) for e in summary.errors))

    async def _reload_record(self) -> None:
        """The record as the database has it now (another replica may have registered since)."""
        async with self.engine.connect() as conn:
            self._record = await load_sync_settings(conn)

    async def unregister(self, key: str) -> int:
        """Forget a location ``register`` added, with its entities (answers stop at once);
        returns how many entities went. A key that is not registered is left alone (0)."""
        async with repo.sync_lease(self.engine):
            if self._catalog_version is not None:
                await self._follow_other_writers()
            await self._reload_record()
            kept = [r for r in self._record.get("registered") or [] if f"{r.get('type')}:{r.get('target')}" != key]
            if len(kept) == len(self._record.get("registered") or []):
                return 0
            record = {**self._record, "registered": kept}
            async with self.engine.begin() as conn:
                await save_sync_settings(conn, record)
            self._record = record
            engine = SyncEngine(self.engine, {}, on_change=self.catalog.apply,
                                feed_relations=self.catalog.graph is not None)
            removed = await engine.forget([key])
            if self._catalog_version is not None:
                async with self.engine.connect() as conn:
                    self._catalog_version = await repo.catalog_version(conn)
        return removed

    async def follow(self) -> bool:
        """What a long-lived process does between its syncs, or instead of them (a worker of
        ``callboard serve --workers N`` other than worker 0): take up what another process wrote, the index
        and relation graph reloaded when the catalog changed. True when they were; always False
        in a process not opened ``resident`` (it reads relations from the database each time)."""
        if self._catalog_version is None:
            return False
        before = self._catalog_version
        await self._follow_other_writers()
        return self._catalog_version != before

    async def _follow_other_writers(self) -> None:
        """Reload the in-memory index when another process (a replica, a ``callboard sync``)
        changed the catalog since this one last synced: its change feed never reached us."""
        async with self.engine.connect() as conn:
            version = await repo.catalog_version(conn)
        if version != self._catalog_version:
            log.info("catalog changed by another process; reloading the index")
            await self.catalog.load_index(graph=self.catalog.graph is not None)
            if self.catalog.graph is not None:
                _set_aside()  # ~0.2 s at 100k entities, once per change
        self._catalog_version = version

    def _context(self, roots: list[str]) -> ProviderContext:
        return ProviderContext(http=self.http, clock=self.clock, max_file_bytes=self.settings.max_file_bytes,
                               catalog_roots=tuple(roots), location_types=tuple(sorted(self.entity_providers)))

    async def _oncall_sources(self) -> tuple[list[Any], list[str]]:
        """The on-call sources registered under ``callboard.oncall_providers`` that are set up here
        (credentials present, a schedule file found), in the order they are asked."""
        roots = self._file_roots
        if roots is None:
            roots = await self._database_roots()
        ctx = self._context(roots)
        sources: list[Any] = []
        problems: list[str] = []
        for name in sorted(self.oncall_providers, key=lambda n: (_ONCALL_ORDER.get(n, 9), n)):
            try:
                source = self.oncall_providers[name].build(ctx)
            except ScheduleFileError as exc:
                problems.append(f"The schedule file is not valid: {exc}")
                continue
            if source is not None:
                sources.append(source)
        return sources, problems

    async def sync_docs(self, on_progress: Callable[[DocsProgress], None] | None = None) -> DocsSummary:
        """Build the TechDocs of every entity whose docs sources changed since the last build."""
        roots = self._file_roots
        if roots is None:
            roots = await self._database_roots()
        async with repo.sync_lease(self.engine):
            self.last_docs = await self.docs.sync(roots, on_progress=on_progress)
        return self.last_docs

    @property
    def _files(self) -> FileSource | None:
        """The file source of the last sync (it owns the parse workers)."""
        files = self._sources.get("file")
        return files if isinstance(files, FileSource) else None

    async def _entity_sources(self, file_roots: list[str]) -> dict[str, EntitySource]:
        """A source from every entity provider for this sync (the file source reads under
        ``file_roots``); the last sync's sources are closed."""
        await self._close_sources()
        ctx = self._context(file_roots)
        for name, loaded in self.entity_providers.items():
            source = loaded.build(ctx)
            if source is None:
                continue
            if getattr(source, "type", None) != name:
                raise ConfigError(f"{loaded.key}: the provider's source reads locations of type "
                                  f"{getattr(source, 'type', None)!r}, not {name!r} (its entry point name)")
            self._sources[name] = source
        return dict(self._sources)

    async def _close_sources(self) -> None:
        sources, self._sources = self._sources, {}
        for source in sources.values():
            close = getattr(source, "close", None)
            if close is not None:
                done = close()
                if inspect.isawaitable(done):
                    await done

    async def ask(self, text: str) -> Reply:
        """Answer one line of text as the terminal's user (``CALLBOARD_USER_EMAIL`` says who that is),
        through the terminal surface and the conversation policy every surface shares."""
        from .shell import ShellSurface  # the surface sits above the app

        if self._shell is None:
            self._shell = ShellSurface(self, email=self.settings.user_email)
        return await self._shell.ask(text)
