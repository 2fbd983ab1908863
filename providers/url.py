"""The URL source: catalog files served over http(s), fetched with aiohttp.

Placeholders and Location targets are resolved relative to the file's URL.
Parsing runs in a thread; placeholder fetches hop back onto the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin

from callboard.catalog.globs import url_glob_problem
from callboard.catalog.model import CatalogError, LocationTarget, ProcessedEntity, UnchangedDocument
from callboard.catalog.process import PlaceholderError, decode, process_documents, split_documents
from callboard.catalog.sync import LocationSpec, ReadOutcome, digest, fingerprint
from callboard.catalog.urls import redact_error, strip_userinfo

from .api import Provider, ProviderContext
from .http import Answer, Fetcher, FetchProblem

__all__ = ["PROVIDER", "UrlConfig", "UrlSource"]


def _trusted(spec: LocationSpec) -> bool:
    """A root location is one the operator gave (``--catalog``, ``catalog.locations``): the sync
    engine gives roots no parent, and every location found in catalog data gets its parent's key."""
    return spec.parent is None


@dataclass
class _UrlPlaceholders:
    """Placeholder targets are catalog data: always fetched as untrusted URLs."""

    http: Fetcher
    loop: asyncio.AbstractEventLoop
    max_bytes: int
    timeout: float
    read_urls: list[str] = field(default_factory=list)

    def read(self, target: str, base: str) -> str:
        try:
            url = urljoin(base, target)
        except ValueError as exc:  # an unclosed [ in the host, for one
            raise PlaceholderError(f"Placeholder target {_printable(strip_userinfo(target))} is not a valid URL ({exc})") from None
        shown = _printable(strip_userinfo(url))
        if not re.match(r"^https?://", url):
            raise PlaceholderError(f"Placeholder target {strip_userinfo(target)} is not an http(s) URL")
        future = asyncio.run_coroutine_threadsafe(
            self.http.get(url, trusted=False, max_bytes=self.max_bytes, timeout=self.timeout), self.loop)
        try:  # the fetcher's own limits end it first; this only guards against a stuck loop
            limits = self.http.limits
            got = future.result(timeout=(self.timeout + limits.max_retry_wait) * (limits.retries + 1) + 5)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise PlaceholderError(f"Placeholder could not read {shown}: no answer in time") from None
        if isinstance(got, FetchProblem):
            raise PlaceholderError(f"Placeholder target {got.message}" if got.kind == "refused"
                                   else f"Placeholder {got.message}")
        if got.status == 404:
            raise PlaceholderError(f"Placeholder $text could not read location {shown}: not found (404)")
        if got.status >= 400:
            raise PlaceholderError(f"Placeholder could not read location {shown}: HTTP {got.status} {got.reason}")
        self.read_urls.append(url)
        text = decode(got.body, shown)
        if isinstance(text, CatalogError):
            raise PlaceholderError(f"Placeholder target {shown}: {text.message}")
        return text


class UrlSource:
    """Reads ``url`` locations through the guarded :class:`Fetcher`: a root location (the
    operator's URL) is trusted; every other location and every placeholder came from catalog
    data and is checked against ``reading.allow``. What it reports names URLs without their
    credentials (those stay in the location key, which the fetch needs)."""

    type = "url"

    def __init__(self, http: Fetcher, *, max_bytes: int, timeout: float | None = None) -> None:
        self._http = http
        self.max_bytes = max_bytes
        self.timeout = http.limits.total if timeout is None else timeout
        self._deps: dict[str, tuple[str, ...]] = {}

    async def read(self, spec: LocationSpec, deps: Sequence[str]) -> ReadOutcome:
        shown = strip_userinfo(spec.target)
        got = await self._http.get(spec.target, trusted=_trusted(spec), max_bytes=self.max_bytes,
                                   timeout=self.timeout)
        if isinstance(got, FetchProblem):
            message = got.message
            if got.kind == "too_big":
                message = f"{shown} is over the {self.max_bytes / 1e6:,.0f} MB limit (catalog.max_file_bytes); refused"
            elif got.kind == "unreachable" and _trusted(spec):
                message = message.replace("could not read", "could not fetch", 1)
            return ReadOutcome(error=CatalogError(file=shown, location=spec.key, message=message))
        if got.status == 404:
            return ReadOutcome(
                missing=True,
                error=CatalogError(file=shown, name="NotFoundError", location=spec.key,
                                   message=f"{shown} does not exist (HTTP 404)"),
            )
        if got.status >= 400:
            return ReadOutcome(error=CatalogError(file=shown, location=spec.key,
                                                  message=f"could not fetch {shown}: HTTP {got.status} {got.reason}"))
        content_digest = digest(got.body)
        return ReadOutcome(content=got.body, digest=content_digest,
                           fingerprint=fingerprint(content_digest, await self.dep_contents(deps)), deps=tuple(deps))

    async def dep_contents(self, deps: Sequence[str]) -> list[bytes]:
        """Placeholder targets, read again for the fingerprint: catalog data, so untrusted."""
        out = []
        for dep in deps:
            got = await self._http.get(dep, trusted=False, max_bytes=self.max_bytes, timeout=self.timeout)
            ok = isinstance(got, Answer) and got.status < 400
            out.append(got.body if isinstance(got, Answer) and ok else b"\0missing")  # a failure means "changed"
        return out

    def deps_read(self, spec: LocationSpec) -> tuple[str, ...]:
        return self._deps.get(spec.key, ())

    async def process(
        self, spec: LocationSpec, content: bytes, known: Mapping[str, str]
    ) -> AsyncIterator[list[ProcessedEntity | CatalogError | UnchangedDocument]]:
        shown = strip_userinfo(spec.target)
        text = decode(content, shown)
        if isinstance(text, CatalogError):
            yield [text]
            return
        reader = _UrlPlaceholders(self._http, asyncio.get_running_loop(), self.max_bytes, self.timeout)
        docs = split_documents(text, origin=spec.origin or spec.key)
        # ``file`` is also the base placeholders resolve against, so it keeps its credentials here;
        # what comes out is shown, so it loses them
        items = await asyncio.to_thread(
            process_documents, docs, file=spec.target, location=spec.key, origin=spec.origin, reader=reader,
            known=known,
        )
        self._deps[spec.key] = tuple(dict.fromkeys(reader.read_urls))
        yield [_shown(item, shown) for item in items]

    def resolve(self, parent: LocationSpec, target: LocationTarget) -> LocationSpec | CatalogError:
        try:
            url = urljoin(parent.target, target.target)
        except ValueError as exc:  # an unclosed [ in the host, for one
            return CatalogError(file=strip_userinfo(parent.target), location=parent.key,
                                message=f"Location target {_printable(strip_userinfo(target.target))} is not a valid URL ({exc})")
        if not re.match(r"^https?://", url):
            return CatalogError(file=strip_userinfo(parent.target), location=parent.key,
                                message=f"Location target {strip_userinfo(target.target)} is not an http(s) URL")
        listed = url_glob_problem(url, _printable(strip_userinfo(url)))
        if listed is not None:
            return CatalogError(file=strip_userinfo(parent.target), location=parent.key, message=listed)
        return LocationSpec(type="url", target=url, presence=target.presence)


@dataclass(frozen=True, slots=True, kw_only=True)
class UrlConfig:
    """``providers.url`` in callboard.yaml (which hosts data URLs may reach: ``reading.allow``)."""

    timeout: float = 30.0  # seconds one catalog file may take, redirects included

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {self.timeout}")


def _create(config: UrlConfig, ctx: ProviderContext) -> UrlSource:
    return UrlSource(ctx.http, max_bytes=ctx.max_file_bytes, timeout=config.timeout)


PROVIDER = Provider(config=UrlConfig, create=_create, summary="catalog files over http(s)")


def _printable(url: str) -> str:
    """A URL as messages show it: control characters (a NUL cannot even be stored) escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in url)


def _shown(item: ProcessedEntity | CatalogError | UnchangedDocument, file: str
           ) -> ProcessedEntity | CatalogError | UnchangedDocument:
    """An item as it is stored and shown: its file without credentials."""
    if isinstance(item, CatalogError):
        return redact_error(item)
    if isinstance(item, ProcessedEntity) and item.file != file:
        return dataclasses.replace(item, file=file)
    return item
