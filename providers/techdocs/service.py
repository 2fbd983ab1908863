"""TechDocs: build every entity's docs when their sources change, keep the sites and their
section index, and answer what commands ask of them.

The store (``docs.store``, default ``<data dir>/docs``) holds ``sites/<namespace>/<kind>/<name>/``,
the tantivy index in ``index/``, and theme assets shared between sites in ``assets/``. The
database keeps, per entity, what its docs were built from and how the last build went
(``docs_sites``). A build that fails leaves the previous site and its index in place and
records MkDocs' message, which every answer about those docs shows.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncEngine

from callboard.catalog.model import parse_ref as parse_entity_ref
from callboard.catalog.urls import strip_userinfo
from callboard.storage import repo

from .build import BuildJob, BuildResult, source_files
from .content import Part, section_parts, sections_from_site
from .errors import DocsError
from .index import SCHEMA_VERSION, DocHit, DocsIndex, Section
from .remote import GitHubDocs, GitHubTree, parse_github_url, relative_tree
from .worker import BuildPool

__all__ = ["DocsError", "DocsProgress", "DocsSummary", "SiteState", "TechDocs", "TechDocsRef", "parse_ref"]

log = logging.getLogger(__name__)

_INDEX_BATCH = 200
#: the entities with a techdocs-ref, as last read from the catalog (see ``TechDocs._groups``)
_REFS_FILE = "refs.json"
_REFS_FORMAT = 1


@dataclass(frozen=True, slots=True)
class DocsGroup:
    """Entities whose docs are found the same way: one reference, read from one file (and, for
    a location that is a URL, that URL), so resolved once."""

    ref: str
    file: str | None
    url_location: str  # the location key when it is a URL (relative references resolve against it), else ""
    entities: Sequence[Sequence[str]]  # (key, name) pairs


def _group(rows: Sequence[repo.DocsRefRow]) -> list[DocsGroup]:
    groups: dict[tuple[str, str | None, str], list[tuple[str, str]]] = {}
    for row in rows:
        url_location = row.location_key if row.location_key.startswith("url:") else ""
        groups.setdefault((row.ref, row.file, url_location), []).append((row.key, row.name))
    return [DocsGroup(ref, file, url, entities) for (ref, file, url), entities in groups.items()]


def _read_groups(path: Path, version: str) -> list[DocsGroup] | None:
    """The groups kept at ``path`` if they were read from catalog ``version``; else None."""
    try:
        kept = json.loads(path.read_bytes())
        if kept.get("format") != _REFS_FORMAT or kept.get("catalog") != version:
            return None
        groups = [DocsGroup(ref, file, url, entities) for ref, file, url, entities in kept["groups"]]
        if not all(isinstance(g.ref, str) and isinstance(g.entities, list) for g in groups):
            return None
        return groups
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None  # missing, or not ours: read the catalog again


def _write_groups(path: Path, version: str, groups: Sequence[DocsGroup]) -> None:
    """Keep ``groups`` (atomically: a reader sees the old file or the new one)."""
    data = {"format": _REFS_FORMAT, "catalog": version,
            "groups": [[g.ref, g.file, g.url_location, g.entities] for g in groups]}
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, separators=(",", ":")))
        os.replace(tmp, path)
    except OSError as exc:  # a store that cannot be written: the next pass reads the catalog again
        log.warning("could not keep the list of entities with docs in %s: %s", path, exc)
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class TechDocsRef:
    type: str  # dir | url
    target: str


def parse_ref(value: str) -> TechDocsRef | DocsError:
    """``dir:<path>`` or ``url:<url>``; an error for anything else."""
    kind, sep, target = value.strip().partition(":")
    if not sep or not target.strip():
        return DocsError(message=f'"{value}" is not a TechDocs reference: write dir:<path> or url:<repository URL>.')
    kind = kind.strip().lower()
    if kind not in ("dir", "url"):
        return DocsError(message=f'"{value}": Callboard builds TechDocs from dir: and url: references, not {kind}:.')
    return TechDocsRef(kind, target.strip())


@dataclass(frozen=True, slots=True)
class DocsProgress:
    done: int
    total: int
    entity: str | None = None


@dataclass(slots=True)
class DocsSummary:
    built: int = 0
    unchanged: int = 0
    failed: int = 0
    removed: int = 0
    #: entities whose docs annotation points at a folder with nothing to build: "no docs", not a
    #: failure (a catalog file listing many components with ``dir:.`` beside no docs is common)
    nothing: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (entity, message)

    @property
    def total(self) -> int:
        return self.built + self.unchanged + self.failed


@dataclass(frozen=True, slots=True)
class SiteState:
    entity: str
    ref: str
    status: str  # ok | failed
    error: str | None
    built: bool  # a site is in the store (the last good one, when the latest build failed)
    pages: int
    sections: int


@functools.lru_cache(maxsize=1)
def _builder_version() -> str:
    parts = []
    for dist in ("mkdocs", "mkdocs-techdocs-core", "callboard"):
        try:
            parts.append(f"{dist}={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{dist}=?")
    parts.append(f"index={SCHEMA_VERSION}")  # a new index format: every site is indexed again
    return ";".join(parts)


def _files_digest(source: Path) -> str:
    """A digest of every file a build of ``source`` reads (names and contents); "" when there
    is nothing to build."""
    digest = hashlib.blake2b(digest_size=20)
    files = source_files(source)
    if not files:
        return ""
    for path in files:
        try:
            digest.update(str(path.relative_to(source)).encode() + b"\0")
            digest.update(path.read_bytes())
        except (OSError, ValueError):
            digest.update(b"?")
    return digest.hexdigest()


def _hash_sources(source: Path, name: str, policy: object, files_digest: str | None = None) -> str:
    """What decides a build's output: the builder, the site's name, the build policy, the files."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(f"{_builder_version()}\0{name}\0{policy}\n".encode())
    digest.update((files_digest or _files_digest(source)).encode())
    return digest.hexdigest()


class TechDocs:
    def __init__(
        self,
        engine: AsyncEngine,
        store: Path,
        *,
        build_timeout: float = 120.0,
        workers: int | None = None,
        allow_hooks: bool = False,
        allow_env: bool = False,
        plugins: Sequence[str] | None = None,
        backstage_base_url: str | None = None,
        public_url: str | None = None,
        github_api_url: str = "https://api.github.com",
        github_token: str | None = None,
        reading_allow: Sequence[str] = (),
    ) -> None:
        self.engine = engine
        self.store = store
        self._sites = str(store / "sites")
        self.build_timeout = build_timeout
        self.workers = workers
        self.allow_hooks = allow_hooks
        self.allow_env = allow_env  # docs.allow_env: `!ENV` in mkdocs.yml (read from the scrubbed worker)
        self.plugins = tuple(plugins) if plugins is not None else None  # docs.plugins; None: the default
        self.backstage_base_url = backstage_base_url
        self.public_url = public_url
        self._index: DocsIndex | None = None
        self._index_lock = threading.Lock()
        self.github = GitHubDocs(store / "remote-cache", github_api_url, github_token, reading_allow=reading_allow)

    @property
    def build_policy(self) -> str:
        """What the operator allows builds (and the checks' version): a change rebuilds every site."""
        return f"hooks={self.allow_hooks};env={self.allow_env};plugins={self.plugins};checks=2"

    # --- locations in the store -------------------------------------------------------------

    @property
    def sites(self) -> Path:
        return self.store / "sites"

    def site_dir(self, key: str) -> Path:
        return self.sites / _entity_path(key)

    def has_site(self, key: str) -> bool:
        """True when ``key`` (an entity ref key) has a built site: one stat, no database read, so
        every answer about an entity may ask it."""
        kind, _, rest = key.lower().partition(":")
        namespace, _, name = rest.partition("/")
        if not (kind and namespace and name) or "/" in name or ".." in (kind, namespace, name):
            return False
        return os.path.isfile(os.path.join(self._sites, namespace, kind, name, "search", "search_index.json"))

    def remote_dir(self, key: str) -> Path:
        """Where the docs folder of a remote (url:) source is kept between builds."""
        return self.store / "remote" / _entity_path(key)

    @property
    def index(self) -> DocsIndex:
        """The section index, opened on first use (blocking: it reads the disk)."""
        with self._index_lock:  # answers open it from worker threads: one index, one writer lock
            if self._index is None:
                self._index = DocsIndex(self.store / "index")
            return self._index

    def link(self, key: str, location: str = "") -> str:
        """Where a person opens this page: Backstage's TechDocs when configured, else our server,
        else the built file."""
        ref = parse_entity_ref(key)
        path = f"{quote(ref.namespace)}/{quote(ref.kind.lower())}/{quote(ref.name)}/"
        if self.backstage_base_url:
            return f"{self.backstage_base_url}/docs/{path}{location}"
        if self.public_url:
            return f"{self.public_url}/docs/{path}{location}"
        page, _, anchor = location.partition("#")
        file = self.site_dir(key) / page / "index.html" if not page or page.endswith("/") else self.site_dir(key) / page
        return file.as_uri() + (f"#{anchor}" if anchor else "")

    # --- reading ----------------------------------------------------------------------------

    async def state(self, key: str) -> SiteState | None:
        async with self.engine.connect() as conn:
            row = await repo.docs_site(conn, key)
        if row is None:
            return None
        return SiteState(
            entity=key, ref=row["ref"], status=row["status"], error=row["error"],
            built=row["built_hash"] is not None and (self.site_dir(key) / "search" / "search_index.json").is_file(),
            pages=row["pages"], sections=row["sections"],
        )

    # The index and the built pages are on disk, and a search of a large index, or the parse of
    # a long page, takes milliseconds to hundreds of them: answers run them in a worker thread
    # so the event loop (Slack's acks, other answers) never waits for them.

    async def has_index(self) -> bool:
        """True once any docs have been indexed."""
        return await asyncio.to_thread(self._has_index)

    async def search(self, query: str, *, entity: str | None = None, limit: int = 5) -> list[DocHit]:
        return await asyncio.to_thread(self._search, query, entity, limit)

    async def sections(self, key: str) -> list[Section]:
        return await asyncio.to_thread(self._sections, key)

    async def parts(self, key: str, location: str, *, own: bool = False) -> list[Part]:
        """A section's content (``own``: without the sections under it)."""
        return await asyncio.to_thread(functools.partial(section_parts, self.site_dir(key), location, own=own))

    def _has_index(self) -> bool:
        return (self.store / "index").exists() and self.index.count() > 0

    def _search(self, query: str, entity: str | None, limit: int) -> list[DocHit]:
        if not (self.store / "index").exists():
            return []
        return self.index.search(query, entity=entity, limit=limit)

    def _sections(self, key: str) -> list[Section]:
        if not (self.store / "index").exists():
            return []
        return self.index.sections(key)

    # --- building ---------------------------------------------------------------------------

    def _resolve(
        self, row: dict[str, Any], roots: Sequence[Path], repositories: dict[Path, Path] | None = None
    ) -> Path | GitHubTree | DocsError:
        """Where an entity's docs are: a local folder, a folder of a GitHub repository, or why
        there is none."""
        parsed = parse_ref(row["ref"])
        if isinstance(parsed, DocsError):
            return DocsError(message=strip_userinfo(parsed.message))
        location = str(row.get("location_key") or "")
        if parsed.type == "url":
            tree = parse_github_url(parsed.target)
            if isinstance(tree, GitHubTree):
                return tree
            return DocsError(message=strip_userinfo(f"{row['ref']}: {tree.message}"))
        if location.startswith("url:"):
            tree = relative_tree(location[len("url:"):], parsed.target)
            if isinstance(tree, GitHubTree):
                return tree
            return DocsError(message=strip_userinfo(f"{row['ref']} (from {location[4:]}): {tree.message}"))
        if not row.get("file"):
            return DocsError(message=f"{row['ref']}: the entity has no source file to resolve the folder against.")
        entity_dir = Path(row["file"]).parent
        try:  # the folder is catalog data: a NUL or a name too long for the file system is its error
            target = (entity_dir / parsed.target).resolve()
            repositories = {} if repositories is None else repositories
            if entity_dir not in repositories:
                repositories[entity_dir] = _repository_root(entity_dir, roots)
            repository = repositories[entity_dir]
            try:
                target.relative_to(repository)
            except ValueError:
                return DocsError(message=f"{row['ref']} (from {row['file']}) leaves the repository {repository}: refused.")
            if not target.is_dir():
                return DocsError(message=f"{row['ref']} (from {row['file']}): the folder {target} does not exist.")
        except (OSError, ValueError) as exc:
            return DocsError(
                message=f"{row['ref'][:200]} (from {row['file']}): not a folder that can be read ({type(exc).__name__})."
            )
        return target

    def _locate_all(
        self, groups: Sequence[DocsGroup], roots: Sequence[Path]
    ) -> tuple[int, list[tuple[dict[str, Any], Path | GitHubTree | DocsError, str | None]]]:
        """Resolve and hash every entity's docs in one pass: each group (entities read from one
        file with one reference, as a catalog file listing many components with ``dir:.``) is
        resolved once, and groups whose docs share a folder share one read of it.

        Returns how many entities have a folder with nothing to build (no docs, which is not an
        error), and every other entity, in key order, with where its docs are and the hash of the
        local ones."""
        nothing = 0
        out: list[tuple[dict[str, Any], Path | GitHubTree | DocsError, str | None]] = []
        digests: dict[Path, str] = {}
        repositories: dict[Path, Path] = {}
        for group in groups:
            resolved = self._resolve({"ref": group.ref, "file": group.file, "location_key": group.url_location},
                                     roots, repositories)
            if isinstance(resolved, Path):
                if resolved not in digests:
                    digests[resolved] = _files_digest(resolved)
                if not digests[resolved]:  # no worker needed to say so
                    nothing += len(group.entities)
                    continue
            for key, name in group.entities:
                row = {"key": key, "name": name, "file": group.file, "location_key": group.url_location,
                       "ref": group.ref}
                digest = None
                if isinstance(resolved, Path):
                    digest = _hash_sources(resolved, name, self.build_policy, digests[resolved])
                out.append((row, resolved, digest))
        out.sort(key=lambda located: str(located[0]["key"]))
        return nothing, out

    async def _groups(self) -> list[DocsGroup]:
        """Every entity with a techdocs-ref, grouped by where its docs are read from.

        Finding them reads every entity's JSON, so what was found is kept in the store
        (``refs.json``) with the version of the catalog it was read from
        (``repo.catalog_version``, which changes with every write of a sync); while the catalog
        is unchanged, the next pass reads that file instead of the database."""
        cache = self.store / _REFS_FILE
        async with self.engine.connect() as conn:
            version = await repo.catalog_version(conn)
            kept = await asyncio.to_thread(_read_groups, cache, version)
            if kept is not None:
                return kept
            rows = await repo.entities_with_docs(conn)
            again = await repo.catalog_version(conn)
        groups = _group(rows)
        if again == version:  # a sync in between: the rows may be of either version; not kept
            await asyncio.to_thread(_write_groups, cache, version, groups)
        return groups

    async def sync(
        self, roots: Sequence[str], on_progress: Callable[[DocsProgress], None] | None = None
    ) -> DocsSummary:
        """Build what changed, drop what is gone, keep the index in step."""
        summary = DocsSummary()
        root_paths = [Path(r).expanduser().resolve() for r in roots]
        root_paths = [p if p.is_dir() else p.parent for p in root_paths]
        groups = await self._groups()
        async with self.engine.connect() as conn:
            states = await repo.docs_sites_all(conn)
        wanted_keys = {key for group in groups for key, _ in group.entities} if states else set()
        gone = [key for key in states if key not in wanted_keys]
        if gone:
            await asyncio.to_thread(self._remove_sites, gone)
            async with self.engine.begin() as conn:
                await repo.delete_docs_sites(conn, gone)
            summary.removed = len(gone)
        todo: list[tuple[dict[str, Any], Path, str]] = []
        now = datetime.now(timezone.utc)
        failures: list[dict[str, Any]] = []
        # where every entity's docs are, and the hash of the local ones: one pass in a thread
        summary.nothing, located = await asyncio.to_thread(self._locate_all, groups, root_paths)
        # entities that had docs (or a failure) stored and now have nothing to build
        nothing = sorted(wanted_keys.intersection(states).difference(row["key"] for row, _, _ in located))
        for row, resolved, source_hash in located:
            state = states.get(row["key"])
            if isinstance(resolved, GitHubTree):
                fetched = self.remote_dir(row["key"])
                fetched.parent.mkdir(parents=True, exist_ok=True)
                problem = await self.github.fetch(resolved, fetched)
                if problem is None:
                    resolved = fetched
                    source_hash = await asyncio.to_thread(_hash_sources, fetched, row["name"], self.build_policy)
                else:
                    resolved = problem
            if isinstance(resolved, DocsError):
                message = str(resolved)
                summary.failed += 1
                summary.errors.append((row["key"], message))
                if not (state and state["status"] == "failed" and state["error"] == message and state["ref"] == row["ref"]):
                    failures.append(self._state_row(row, state, None, None, message, now))
                continue
            source = resolved
            assert source_hash is not None
            if state and state["ref"] == row["ref"]:
                built_ok = state["status"] == "ok" and state["built_hash"] == source_hash
                failed_same = state["status"] == "failed" and state["source_hash"] == source_hash
                if failed_same:  # not retried until the sources change; still reported
                    summary.failed += 1
                    summary.errors.append((row["key"], state["error"] or "the last build failed"))
                    continue
                if built_ok and (self.site_dir(row["key"]) / "search").is_dir():
                    summary.unchanged += 1
                    continue
            todo.append((row, source, source_hash))
        if nothing:  # what was stored for them (an old site, an old failure) is gone with their docs
            await asyncio.to_thread(self._remove_sites, nothing)
            async with self.engine.begin() as conn:
                await repo.delete_docs_sites(conn, nothing)
        if failures:
            async with self.engine.begin() as conn:
                for f in failures:
                    await repo.save_docs_site(conn, f)
        total = len(todo)
        if on_progress:
            on_progress(DocsProgress(0, total))
        if not todo:
            return summary
        pool = BuildPool(self.workers, timeout=self.build_timeout)
        pending_index: list[tuple[str, list[Section]]] = []
        done = 0
        try:
            async def one(item: tuple[dict[str, Any], Path, str]) -> None:
                nonlocal done
                row, source, source_hash = item
                key = row["key"]
                out = self.store / "tmp" / uuid.uuid4().hex
                out.parent.mkdir(parents=True, exist_ok=True)
                # what the build may read: the repository of a local folder, the fetched folder itself
                remote = self.remote_dir(key)
                repository = source if source == remote or remote in source.parents else _repository_root(source, root_paths)
                job = BuildJob(
                    source=str(source), out=str(out), site_name=row["name"], allow_hooks=self.allow_hooks,
                    shared_assets=str(self.store / "assets"), root=str(repository), allow_env=self.allow_env,
                    plugins=self.plugins,
                )
                result = await pool.build(job)
                sections: list[Section] = []
                if result.ok:
                    try:
                        sections = await asyncio.to_thread(sections_from_site, out)
                    except (OSError, ValueError) as exc:
                        result = BuildResult(False, f"The built site has no readable search index: {exc}")
                state = states.get(key)
                if result.ok:
                    await asyncio.to_thread(self._install, key, out)
                    pending_index.append((key, sections))
                    summary.built += 1
                    saved = self._state_row(row, state, source_hash, source_hash, None, datetime.now(timezone.utc),
                                            warnings=result.warnings, pages=result.pages, sections=len(sections))
                else:
                    await asyncio.to_thread(shutil.rmtree, out, ignore_errors=True)
                    summary.failed += 1
                    summary.errors.append((key, result.error or "the build failed"))
                    saved = self._state_row(row, state, source_hash, None, result.error or "the build failed",
                                            datetime.now(timezone.utc), warnings=result.warnings)
                async with self.engine.begin() as conn:
                    await repo.save_docs_site(conn, saved)
                if len(pending_index) >= _INDEX_BATCH:
                    batch = pending_index[:]
                    pending_index.clear()
                    await asyncio.to_thread(self.index.replace_many, batch)
                done += 1
                if on_progress:
                    on_progress(DocsProgress(done, total, key))

            # the pool runs ``size`` at a time; a TaskGroup waits for every build to stop even when
            # the sync is cancelled (a server shutting down), so no worker outlives it
            async with asyncio.TaskGroup() as group:
                for item in todo:
                    group.create_task(one(item))
            if pending_index:
                await asyncio.to_thread(self.index.replace_many, pending_index)
        finally:
            await pool.close()
        return summary

    def _state_row(
        self,
        row: dict[str, Any],
        state: dict[str, Any] | None,
        source_hash: str | None,
        built_hash: str | None,
        error: str | None,
        now: datetime,
        *,
        warnings: Sequence[str] = (),
        pages: int = 0,
        sections: int = 0,
    ) -> dict[str, Any]:
        ok = error is None
        return {
            "entity_key": row["key"],
            "ref": row["ref"],
            "source": str(row.get("file") or ""),
            "source_hash": source_hash,
            # a failed build keeps what the stored site was built from
            "built_hash": built_hash if ok else (state or {}).get("built_hash"),
            "status": "ok" if ok else "failed",
            "error": error,
            "warnings": json.dumps(list(warnings)) if warnings else None,
            "pages": pages if ok else (state or {}).get("pages", 0),
            "sections": sections if ok else (state or {}).get("sections", 0),
            "built_at": now if ok else (state or {}).get("built_at"),
            "checked_at": now,
        }

    def _install(self, key: str, built: Path) -> None:
        """Move a fresh build into place; the old site is swapped out in one rename."""
        target = self.site_dir(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        old = None
        if target.exists():
            old = self.store / "tmp" / f"old-{uuid.uuid4().hex}"
            os.replace(target, old)
        os.replace(built, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def _remove_sites(self, keys: Sequence[str]) -> None:
        if (self.store / "index").exists():
            self.index.remove(keys)
        for key in keys:
            shutil.rmtree(self.site_dir(key), ignore_errors=True)
            shutil.rmtree(self.remote_dir(key), ignore_errors=True)


def _entity_path(key: str) -> Path:
    """``<namespace>/<kind>/<name>``, as Backstage lays out TechDocs sites."""
    ref = parse_entity_ref(key)
    return Path(ref.namespace.lower(), ref.kind.lower(), ref.name.lower())


def _repository_root(start: Path, roots: Sequence[Path]) -> Path:
    """The repository a catalog file belongs to: the nearest folder with ``.git`` inside the
    catalog root, else the catalog root itself, else the file's own folder."""
    start = start.resolve()
    root = next((r for r in roots if start == r or r in start.parents), None)
    current = start
    while True:
        if (current / ".git").exists():
            return current
        if root is not None and current == root:
            return root
        if current.parent == current:
            return root or start
        current = current.parent
