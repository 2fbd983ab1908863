"""``catalog:register``: add the new repository's ``catalog-info.yaml`` to Callboard's catalog at
once — the entity answers ``owner <name>`` as soon as the step is done, not after a processing
cycle as in Backstage.

Inputs (as Backstage's): ``repoContentsUrl`` + ``catalogInfoPath`` (default
``/catalog-info.yaml``), or ``catalogInfoUrl``; ``optional`` (a file that cannot be registered is
then a warning in the log, not a failed step). Outputs ``entityRef`` (the file's first Component,
else its first entity, as Backstage picks it) and ``catalogInfoUrl``.

Where the file may come from (the URL is template data, so untrusted):
- ``file://`` — only inside the folder ``publish:file`` writes to (``scaffolder.publish_dir``);
  the file is read, with anything it refers to, inside its repository's folder;
- a GitHub file URL (``https://<host>/<owner>/<repo>/blob/<ref>/<path>``) on github.com or a host
  in ``scaffolder.github_hosts`` — read through the GitHub client with the operator's token and
  kept as a local copy under ``<data_dir>/registered/<host>/<owner>/<repo>/`` (the copy is what
  the catalog reads; the entity is read again from GitHub when the file is registered again);
- another http(s) URL — only on a host ``reading.allow`` names (it is then fetched as the
  operator's own URL).

Undo: a run that fails after this step calls ``Action.undo``, which forgets the location and its
entities (``Callboard.unregister``), so no half-registered entity stays. The location is found
again from the step's ``catalogInfoUrl`` output alone (``location_of``), so the undo needs
nothing but that output.

The app (``ActionDeps.app``) is the running ``Callboard``; what this module needs of it is
``CatalogRegistry`` below.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from callboard.catalog.model import CatalogError, Entity, SyncSummary
from callboard.providers.github import GitHub, GitHubError
from callboard.providers.http import Fetcher
from callboard.storage import repo

from .api import Action, ActionContext, ActionDeps, ActionError
from .publish import github_api_url, publish_dir

__all__ = ["CATALOG_REGISTER", "CatalogRegistry", "Location", "location_of", "unregister"]

ACTION = "catalog:register"
_NAME = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,99}")
_MAX_FILE = 4 * 1024 * 1024


class CatalogRegistry(Protocol):
    """What catalog:register needs of the app (``bot.app.Callboard``)."""

    engine: Any
    catalog: Any

    async def register(self, target: str, *, folder: str | None = None) -> tuple[str, SyncSummary]: ...

    async def unregister(self, key: str) -> int: ...


@dataclass(frozen=True, slots=True)
class Location:
    """Where a catalog file URL is registered from: a local file (``folder``: what it may read
    under) and, for a GitHub URL, what to copy there first."""

    target: str  # a path, or an http(s) URL
    folder: str | None = None
    github: tuple[str, str, str, str, str] | None = None  # (api_url, owner, repo, ref, path)

    @property
    def key(self) -> str:
        kind = "url" if self.target.startswith(("http://", "https://")) else "file"
        return f"{kind}:{self.target}"


def _app(deps: ActionDeps) -> CatalogRegistry:
    app = deps.app
    if app is None or not callable(getattr(app, "register", None)):
        raise ActionError(f"{ACTION}: no catalog to register into (the run has no Callboard app)")
    return app


def _registered_dir(deps: ActionDeps) -> Path:
    configured = deps.config.get("registered_dir")
    if isinstance(configured, str) and configured:
        return Path(configured).expanduser().resolve()
    data_dir = getattr(getattr(deps.app, "settings", None), "data_dir", None)
    if not isinstance(data_dir, str) or not data_dir:
        raise ActionError(f"{ACTION}: no folder to keep GitHub catalog files in (set scaffolder.registered_dir)")
    return (Path(data_dir).expanduser() / "registered").resolve()


def _github_host(ctx: ActionContext, host: str) -> str | None:
    try:
        return github_api_url(ctx, host, ACTION)
    except ActionError:
        return None


def location_of(url: str, ctx: ActionContext) -> Location:
    """Where ``url`` (a catalog file URL from the template) is registered from; ``ActionError``
    when Callboard may not read it."""
    shown = url if len(url) <= 300 else url[:300] + "..."
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ActionError(f"{ACTION}: {shown} is on another machine; refused")
        root = publish_dir(ctx)
        path = Path(url2pathname(parts.path)).resolve()
        if root not in path.parents:
            raise ActionError(f"{ACTION}: {shown} is outside the folder publish:file writes to ({root}); refused")
        folder = path.parent
        while folder != root and not (folder / ".git").exists():
            folder = folder.parent
        return Location(target=str(path), folder=str(folder if folder != root else path.parent))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ActionError(f"{ACTION}: {shown} is not a file:// or http(s) URL")
    host = parts.netloc.rsplit("@", 1)[-1].lower()
    api_url = _github_host(ctx, host)
    if api_url is not None:
        segments = [unquote(s) for s in parts.path.split("/") if s]
        if len(segments) < 5 or segments[2] not in ("blob", "raw") or parts.query or parts.fragment:
            raise ActionError(f"{ACTION}: {shown} is not a GitHub file URL (https://{host}/<owner>/<repo>/blob/<branch>/<path>)")
        owner, name, ref, names = segments[0], segments[1], segments[3], segments[4:]
        for part in (owner, name, *names):
            if not _NAME.fullmatch(part) or part in (".", ".."):
                raise ActionError(f"{ACTION}: {shown}: {part!r} is not a plain name; refused")
        folder = _registered_dir(ctx.deps) / host.replace(":", "_") / owner / name
        return Location(target=str(folder.joinpath(*names)), folder=str(folder),
                        github=(api_url, owner, name, ref, "/".join(names)))
    http = getattr(ctx.deps.app, "http", None)
    policy = getattr(http, "policy", None)
    if policy is None or not policy.allows_host(parts.hostname, parts.port):
        raise ActionError(f"{ACTION}: {shown}: {parts.hostname} is neither a GitHub host Callboard knows nor "
                          "listed in reading.allow; refused")
    return Location(target=url)


def _catalog_info_url(ctx: ActionContext) -> str:
    given = ctx.input.get("catalogInfoUrl")
    if given is not None:
        if not isinstance(given, str) or not given:
            raise ActionError(f"{ACTION}: input catalogInfoUrl must be a URL")
        return given
    contents = ctx.input.get("repoContentsUrl")
    if not isinstance(contents, str) or not contents:
        raise ActionError(f"{ACTION}: give input repoContentsUrl (with catalogInfoPath) or catalogInfoUrl")
    path = ctx.input.get("catalogInfoPath", "/catalog-info.yaml")
    if not isinstance(path, str) or not path.strip("/"):
        raise ActionError(f"{ACTION}: input catalogInfoPath must be a path such as /catalog-info.yaml")
    return f"{contents.rstrip('/')}/{path.lstrip('/')}"


async def _copy_from_github(ctx: ActionContext, where: Location) -> None:
    assert where.github is not None
    api_url, owner, name, ref, path = where.github
    token = getattr(getattr(ctx.deps.app, "settings", None), "github_token", None)
    app_http = getattr(ctx.deps.app, "http", None)
    http = app_http if isinstance(app_http, Fetcher) else Fetcher()
    timeout = ctx.deps.config.get("github_timeout", 30.0)
    try:
        github = GitHub(http, api_url=api_url, token=token if isinstance(token, str) else None,
                        timeout=float(timeout) if isinstance(timeout, (int, float)) and timeout > 0 else 30.0)
        content = await github.file(owner, name, path, ref, f"{owner}/{name}: {path}")
    except GitHubError as exc:
        raise ActionError(f"{ACTION}: {exc}") from None
    finally:
        if http is not app_http:
            await http.close()
    if len(content) > _MAX_FILE:
        raise ActionError(f"{ACTION}: {owner}/{name}: {path} is over {_MAX_FILE // (1024 * 1024)} MB; refused")
    target = Path(where.target)

    def write() -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)

    await asyncio.to_thread(write)


def _first(entities: Sequence[Entity]) -> Entity:
    """Backstage's pick: the first Component not generated, else the first not generated, else
    the first."""
    def generated(e: Entity) -> bool:
        return e.name.startswith("generated-")

    return (next((e for e in entities if not generated(e) and e.kind == "Component"), None)
            or next((e for e in entities if not generated(e)), None) or entities[0])


def _describe(errors: Sequence[CatalogError]) -> str:
    shown = "; ".join(f"{e.message}" + (f" (line {e.line})" if e.line else "") for e in errors[:3])
    more = f"; and {len(errors) - 3} more" if len(errors) > 3 else ""
    return shown + more


async def _register(ctx: ActionContext) -> None:
    app = _app(ctx.deps)
    url = _catalog_info_url(ctx)
    optional = bool(ctx.input.get("optional", False))
    try:
        where = location_of(url, ctx)
        if where.github is not None:
            await _copy_from_github(ctx, where)
        elif where.folder is not None and not Path(where.target).is_file():
            raise ActionError(f"{ACTION}: {url} does not exist")
        key, summary = await app.register(where.target, folder=where.folder)
        errors = list(summary.errors)  # only this location was read
        async with app.engine.connect() as conn:
            keys = sorted(await repo.entity_hashes(conn, key))
        entities = sorted((await app.catalog.get_many(keys)).values(), key=lambda e: (e.line or 0, str(e.ref)))
        if errors or not entities:
            await app.unregister(key)
            why = _describe(errors) if errors else "it holds no entity"
            raise ActionError(f"{ACTION}: {url} could not be registered: {why}")
    except ActionError as exc:
        if not optional:
            raise
        ctx.log(f"warning: {exc} (optional: the step goes on)")
        return
    entity = _first(entities)
    ref = str(entity.ref)
    ctx.log(f"Registered {url}: {', '.join(str(e.ref) for e in entities)}")
    ctx.output("entityRef", ref)
    ctx.output("catalogInfoUrl", url)


async def unregister(ctx: ActionContext) -> None:
    """Take a registration back (the undo of a catalog:register step): forget the location its
    ``catalogInfoUrl`` output names, with its entities; a GitHub file's local copy goes too."""
    url = ctx.outputs.get("catalogInfoUrl")
    if not isinstance(url, str):
        return  # nothing was registered (an optional step that warned)
    app = _app(ctx.deps)
    where = location_of(url, ctx)
    removed = await app.unregister(where.key)
    if where.github is not None:
        await asyncio.to_thread(Path(where.target).unlink, missing_ok=True)
    ctx.log(f"Unregistered {url} ({removed} entities) because a later step failed")


CATALOG_REGISTER = Action(
    id=ACTION,
    run=_register,
    description="Register a catalog-info.yaml in Callboard's catalog; its entities answer at once",
    supports_dry_run=False,
    example_outputs={},  # Backstage's dry-run shows no entityRef (its "Open in catalog" link has no URL)
    undo=unregister,
)
