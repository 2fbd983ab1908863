"""The file source: catalog files on disk.

A path to a file registers that file as a location; a path to a directory
registers every ``catalog-info.yaml`` under it. Location targets and
``$text``/``$json``/``$yaml`` placeholders are read relative to the file that
names them, and never outside the registered catalog roots.

Big files are split at document boundaries and parsed on every core
(``ProcessPoolExecutor``); small ones are parsed in a thread, off the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from callboard.catalog.model import CatalogError, LocationTarget, ProcessedEntity, UnchangedDocument
from callboard.catalog.process import Document, PlaceholderError, decode, process_documents, split_documents
from callboard.catalog.sync import LocationSpec, ReadOutcome, digest, fingerprint

__all__ = ["DEFAULT_MAX_BYTES", "FilePlaceholders", "FileSource", "discover"]

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
_PARALLEL_FROM = 4 * 1024 * 1024
_CHUNK_TARGET = 1024 * 1024
_SKIP_DIRS = {".git", "node_modules", ".venv", "venv", "__pycache__", "site", ".tox"}


def discover(path: str | os.PathLike[str]) -> list[LocationSpec] | CatalogError:
    """Root locations for one ``--catalog`` path."""
    p = Path(path).expanduser()
    try:
        p = p.resolve(strict=True)
    except (FileNotFoundError, RuntimeError):
        return CatalogError(
            file=str(path),
            name="NotFoundError",
            message=f"Catalog path {path} does not exist; pass a catalog-info.yaml file or a folder that holds some",
        )
    if p.is_file():
        return [LocationSpec(type="file", target=str(p))]
    found: list[LocationSpec] = []
    for dirpath, dirnames, filenames in os.walk(p):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name in ("catalog-info.yaml", "catalog-info.yml"):
                found.append(LocationSpec(type="file", target=str(Path(dirpath) / name)))
    if not found:
        return CatalogError(
            file=str(p),
            name="NotFoundError",
            message=f"No catalog-info.yaml found under {p}; pass the file itself if it has another name",
        )
    return found


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


@dataclass
class FilePlaceholders:
    """Reads placeholder targets for one file; remembers what it read (for change detection)."""

    roots: tuple[str, ...]
    max_bytes: int = DEFAULT_MAX_BYTES
    read_paths: list[str] = field(default_factory=list)

    def read(self, target: str, base: str) -> str:
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", target):
            raise PlaceholderError(
                f"Placeholder points at {target}; a file catalog only reads placeholders from files "
                "inside the catalog (register the catalog by URL to read remote ones)"
            )
        path = (Path(base).parent / target).resolve()
        roots = [Path(r) for r in self.roots]
        if not _inside(path, roots):
            raise PlaceholderError(
                f"Placeholder target {target} resolves to {path}, outside the catalog root "
                f"({', '.join(self.roots)}); refused"
            )
        try:
            size = path.stat().st_size
        except OSError:
            raise PlaceholderError(f"Placeholder target {target} does not exist (looked for {path})") from None
        if size > self.max_bytes:
            raise PlaceholderError(
                f"Placeholder target {target} is {size:,} bytes, over the {self.max_bytes:,}-byte limit"
            )
        data = path.read_bytes()
        self.read_paths.append(str(path))
        text = decode(data, str(path))
        if isinstance(text, CatalogError):
            raise PlaceholderError(f"Placeholder target {target}: {text.message} (line {text.line})")
        return text


def _work(
    docs: list[Document], file: str, location: str, origin: str | None, roots: tuple[str, ...], max_bytes: int
) -> tuple[list[ProcessedEntity | CatalogError | UnchangedDocument], list[str]]:
    """Worker entry point (runs in a thread or a process): parse and process documents."""
    reader = FilePlaceholders(roots=roots, max_bytes=max_bytes)
    items = process_documents(docs, file=file, location=location, origin=origin, reader=reader)
    return items, reader.read_paths


def _batches(docs: list[Document], size: int) -> list[list[Document]]:
    out: list[list[Document]] = []
    current: list[Document] = []
    weight = 0
    for doc in docs:
        current.append(doc)
        weight += len(doc.text)
        if weight >= size:
            out.append(current)
            current, weight = [], 0
    if current:
        out.append(current)
    return out


class FileSource:
    """Reads ``file`` locations. One instance per app; owns the parse worker pool."""

    type = "file"

    def __init__(self, roots: Sequence[str | os.PathLike[str]], *, max_bytes: int = DEFAULT_MAX_BYTES,
                 workers: int | None = None) -> None:
        resolved = []
        for r in roots:
            p = Path(r).expanduser().resolve()
            resolved.append(str(p if p.is_dir() else p.parent))
        self.roots = tuple(resolved)
        self.max_bytes = max_bytes
        self._workers = workers if workers is not None else (os.cpu_count() or 1)
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._deps: dict[str, tuple[str, ...]] = {}

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    async def read(self, spec: LocationSpec, deps: Sequence[str]) -> ReadOutcome:
        path = Path(spec.target)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return ReadOutcome(
                missing=True,
                error=CatalogError(
                    file=spec.target,
                    name="NotFoundError",
                    location=spec.key,
                    message=f"file {spec.target} does not exist",
                ),
            )
        except OSError as exc:
            return ReadOutcome(error=CatalogError(file=spec.target, location=spec.key, message=f"cannot read: {exc.strerror}"))
        if size > self.max_bytes:
            return ReadOutcome(
                error=CatalogError(
                    file=spec.target,
                    location=spec.key,
                    message=f"File is {size / 1e6:,.1f} MB, over the {self.max_bytes / 1e6:,.0f} MB limit "
                    "(catalog.max_file_bytes); refused. Split it into several files or raise the limit.",
                )
            )
        try:
            content = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            return ReadOutcome(error=CatalogError(file=spec.target, location=spec.key, message=f"cannot read: {exc.strerror}"))
        content_digest = digest(content)
        return ReadOutcome(content=content, digest=content_digest,
                           fingerprint=fingerprint(content_digest, await self.dep_contents(deps)), deps=tuple(deps))

    async def dep_contents(self, deps: Sequence[str]) -> list[bytes]:
        out = []
        for dep in deps:
            try:
                out.append(Path(dep).read_bytes())
            except OSError:
                out.append(b"\0missing")
        return out

    def deps_read(self, spec: LocationSpec) -> tuple[str, ...]:
        return self._deps.get(spec.key, ())

    async def process(
        self, spec: LocationSpec, content: bytes, known: Mapping[str, str]
    ) -> AsyncIterator[list[ProcessedEntity | CatalogError | UnchangedDocument]]:
        text = decode(content, spec.target)
        del content
        if isinstance(text, CatalogError):
            yield [CatalogError(file=text.file, line=text.line, message=text.message, location=spec.key)]
            return
        docs = split_documents(text, origin=spec.origin or spec.key)
        del text
        unchanged: list[ProcessedEntity | CatalogError | UnchangedDocument] = []
        todo: list[Document] = []
        for doc in docs:
            key = known.get(doc.source_hash)
            if key is not None:
                unchanged.append(UnchangedDocument(key=key, line=doc.content_line))
            else:
                todo.append(doc)
        del docs
        if unchanged:
            yield unchanged
        deps: list[str] = []
        args = (spec.target, spec.key, spec.origin, self.roots, self.max_bytes)
        size = sum(len(d.text) for d in todo)
        if size < _PARALLEL_FROM or self._workers < 2:
            if todo:
                items, read = await asyncio.to_thread(_work, todo, *args)
                deps.extend(read)
                yield items
        else:
            loop = asyncio.get_running_loop()
            pool = self._get_pool()
            pending: list[asyncio.Future[tuple[list[ProcessedEntity | CatalogError | UnchangedDocument], list[str]]]] = []
            batches = _batches(todo, _CHUNK_TARGET)
            del todo
            window = self._workers + 1
            next_batch = 0
            while next_batch < len(batches) or pending:
                while next_batch < len(batches) and len(pending) < window:
                    pending.append(loop.run_in_executor(pool, _work, batches[next_batch], *args))
                    batches[next_batch] = []
                    next_batch += 1
                items, read = await pending.pop(0)
                deps.extend(read)
                yield items
        self._deps[spec.key] = tuple(dict.fromkeys(deps))

    def _get_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            ctx = multiprocessing.get_context("forkserver")
            self._pool = concurrent.futures.ProcessPoolExecutor(max_workers=self._workers, mp_context=ctx)
        return self._pool

    def resolve(self, parent: LocationSpec, target: LocationTarget) -> LocationSpec | CatalogError:
        raw = target.target
        if re.match(r"^https?://", raw) or target.type == "url":
            return LocationSpec(type="url", target=raw, presence=target.presence)
        if target.type not in ("", "file"):
            return CatalogError(
                file=parent.target,
                location=parent.key,
                message=f'Location target type "{target.type}" is not supported (file and url are)',
            )
        path = (Path(parent.target).parent / raw).resolve()
        if not _inside(path, [Path(r) for r in self.roots]):
            return CatalogError(
                file=parent.target,
                location=parent.key,
                message=f"Location target {raw} resolves to {path}, outside the catalog root "
                f"({', '.join(self.roots)}); register a folder that holds both",
            )
        return LocationSpec(type="file", target=str(path), presence=target.presence)
