"""The URL source: catalog files served over http(s), fetched with aiohttp.

Placeholders and Location targets are resolved relative to the file's URL.
Parsing runs in a thread; placeholder fetches hop back onto the event loop.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin

import aiohttp

from callboard.catalog.model import CatalogError, LocationTarget, ProcessedEntity, UnchangedDocument
from callboard.catalog.process import PlaceholderError, decode, process_documents, split_documents
from callboard.catalog.sync import LocationSpec, ReadOutcome, digest, fingerprint

__all__ = ["UrlSource"]


class _TooBig(Exception):
    pass


async def _fetch(session: aiohttp.ClientSession, url: str, max_bytes: int) -> bytes:
    async with session.get(url) as resp:
        if resp.status == 404:
            raise FileNotFoundError(url)
        if resp.status >= 400:
            raise OSError(f"HTTP {resp.status} {resp.reason}")
        if resp.content_length is not None and resp.content_length > max_bytes:
            raise _TooBig()
        data = bytearray()
        async for chunk in resp.content.iter_chunked(65536):
            data.extend(chunk)
            if len(data) > max_bytes:
                raise _TooBig()
        return bytes(data)


@dataclass
class _UrlPlaceholders:
    session: aiohttp.ClientSession
    loop: asyncio.AbstractEventLoop
    max_bytes: int
    read_urls: list[str] = field(default_factory=list)

    def read(self, target: str, base: str) -> str:
        url = urljoin(base, target)
        if not re.match(r"^https?://", url):
            raise PlaceholderError(f"Placeholder target {target} is not an http(s) URL")
        future = asyncio.run_coroutine_threadsafe(_fetch(self.session, url, self.max_bytes), self.loop)
        try:
            data = future.result(timeout=60)
        except FileNotFoundError:
            raise PlaceholderError(f"Placeholder $text could not read location {url}: not found (404)") from None
        except _TooBig:
            raise PlaceholderError(f"Placeholder target {url} is over the {self.max_bytes:,}-byte limit") from None
        except (OSError, aiohttp.ClientError, asyncio.TimeoutError, TimeoutError) as exc:
            raise PlaceholderError(f"Placeholder could not read location {url}: {exc}") from None
        self.read_urls.append(url)
        text = decode(data, url)
        if isinstance(text, CatalogError):
            raise PlaceholderError(f"Placeholder target {url}: {text.message}")
        return text


class UrlSource:
    """Reads ``url`` locations with an injected aiohttp session."""

    type = "url"

    def __init__(self, session: aiohttp.ClientSession, *, max_bytes: int) -> None:
        self._session = session
        self.max_bytes = max_bytes
        self._deps: dict[str, tuple[str, ...]] = {}

    async def read(self, spec: LocationSpec, deps: Sequence[str]) -> ReadOutcome:
        try:
            content = await _fetch(self._session, spec.target, self.max_bytes)
        except FileNotFoundError:
            return ReadOutcome(
                missing=True,
                error=CatalogError(file=spec.target, name="NotFoundError", location=spec.key,
                                   message=f"{spec.target} does not exist (HTTP 404)"),
            )
        except _TooBig:
            return ReadOutcome(error=CatalogError(
                file=spec.target, location=spec.key,
                message=f"{spec.target} is over the {self.max_bytes / 1e6:,.0f} MB limit (catalog.max_file_bytes); refused"))
        except (OSError, aiohttp.ClientError, asyncio.TimeoutError, TimeoutError) as exc:
            return ReadOutcome(error=CatalogError(file=spec.target, location=spec.key,
                                                  message=f"could not fetch {spec.target}: {exc or type(exc).__name__}"))
        content_digest = digest(content)
        return ReadOutcome(content=content, digest=content_digest,
                           fingerprint=fingerprint(content_digest, await self.dep_contents(deps)), deps=tuple(deps))

    async def dep_contents(self, deps: Sequence[str]) -> list[bytes]:
        out = []
        for dep in deps:
            try:
                out.append(await _fetch(self._session, dep, self.max_bytes))
            except Exception:  # noqa: BLE001 - any failure just means "changed"
                out.append(b"\0missing")
        return out

    def deps_read(self, spec: LocationSpec) -> tuple[str, ...]:
        return self._deps.get(spec.key, ())

    async def process(
        self, spec: LocationSpec, content: bytes, known: Mapping[str, str]
    ) -> AsyncIterator[list[ProcessedEntity | CatalogError | UnchangedDocument]]:
        text = decode(content, spec.target)
        if isinstance(text, CatalogError):
            yield [text]
            return
        reader = _UrlPlaceholders(self._session, asyncio.get_running_loop(), self.max_bytes)
        docs = split_documents(text, origin=spec.origin or spec.key)
        items = await asyncio.to_thread(
            process_documents, docs, file=spec.target, location=spec.key, origin=spec.origin, reader=reader,
            known=known,
        )
        self._deps[spec.key] = tuple(dict.fromkeys(reader.read_urls))
        yield items

    def resolve(self, parent: LocationSpec, target: LocationTarget) -> LocationSpec | CatalogError:
        url = urljoin(parent.target, target.target)
        if not re.match(r"^https?://", url):
            return CatalogError(file=parent.target, location=parent.key,
                                message=f"Location target {target.target} is not an http(s) URL")
        return LocationSpec(type="url", target=url, presence=target.presence)
