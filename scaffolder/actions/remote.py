"""Skeletons in a GitHub repository, for ``fetch:template``, ``fetch:plain`` and
``fetch:plain:file``: ``https://<host>/<owner>/<repo>/tree/<branch>/<path>`` (a folder) or
``.../blob/<branch>/<path>`` (a file), as Backstage's GitHub URL reader takes them, read through
the project's GitHub client (``providers.github``: the branch, its tree, one blob per file).

The host must be github.com (at the operator's ``GITHUB_API_URL``) or one listed in
``scaffolder.github_hosts``; any other remote URL is refused, saying so. github.com needs a token
(the step's ``token`` input or ``GITHUB_TOKEN``): without one GitHub allows 60 requests an hour,
and a skeleton takes one per file.

What is read is untrusted: every path in the tree is checked to be a plain relative path and is
written only inside a fresh folder of ours; symbolic links (mode ``120000``) and submodules are
left out, never followed (each said in the step's log); a truncated tree, more than
``scaffolder.max_skeleton_files`` files (default 10,000) or ``max_skeleton_bytes`` bytes (default
100 MB) are refused before a blob is read.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urljoin, urlsplit

from callboard.providers.github import GitHub, GitHubError
from callboard.providers.http import Fetcher

from .api import ActionContext, ActionError

__all__ = ["DEFAULT_MAX_FILES", "DEFAULT_MAX_BYTES", "GitHubLocation", "RemoteSkeleton", "github_location",
           "is_remote", "read_github_skeleton"]

DEFAULT_MAX_FILES = 10_000
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
_PARALLEL = 8  # blobs read at once


@dataclass(frozen=True, slots=True)
class GitHubLocation:
    host: str
    owner: str
    repo: str
    kind: Literal["tree", "blob"]
    ref: str
    path: str  # "/"-separated inside the repository, "" for its root


@dataclass(frozen=True, slots=True)
class RemoteSkeleton:
    """What was read: ``path`` (a folder, or one file) inside ``folder``, ours to remove."""

    folder: Path
    path: Path
    files: int


def is_remote(url: Any) -> bool:
    return isinstance(url, str) and url.lower().startswith(("https://", "http://"))


def _hosts(ctx: ActionContext) -> Mapping[str, Any]:
    hosts = ctx.deps.config.get("github_hosts") if isinstance(ctx.deps.config, Mapping) else None
    return hosts if isinstance(hosts, Mapping) else {}


def resolved_url(ctx: ActionContext, url: str) -> str | None:
    """A relative ``url`` of a template read from a repository (``base_url``), made absolute as
    Backstage resolves it; None when the template has no such URL."""
    base = ctx.template.base_url
    if not base or not is_remote(base) or is_remote(url):
        return None
    return urljoin(base, url)


def github_location(ctx: ActionContext, url: str, *, key: str = "url") -> GitHubLocation:
    """``url`` as a place in a GitHub repository, or an ``ActionError`` saying why it cannot be read."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.port:
        host = f"{host}:{parts.port}"
    known = host == "github.com" or host in _hosts(ctx)
    if not known:
        raise ActionError(f"{ctx.step_id}: input {key} {url!r} is a remote location on {host or 'no host'}, not a "
                          "GitHub host Callboard reads skeletons from (github.com, or a host listed in "
                          "scaffolder.github_hosts); give a folder of the template or a GitHub repository URL")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ActionError(f"{ctx.step_id}: input {key} {url!r}: a GitHub skeleton URL has no query, fragment "
                          "or credentials")
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if len(segments) < 4 or segments[2] not in ("tree", "blob"):
        raise ActionError(f"{ctx.step_id}: input {key} {url!r} does not name a branch and a path in a GitHub "
                          f"repository (https://{host}/<owner>/<repo>/tree/<branch>/<folder>)")
    owner, repo, kind, ref, *rest = segments
    for name in (owner, repo, ref, *rest):
        if name in (".", "..") or "\\" in name or "\x00" in name or "/" in name:
            raise ActionError(f"{ctx.step_id}: input {key} {url!r} has the path part {name!r}; refused")
    return GitHubLocation(host=host, owner=owner, repo=repo.removesuffix(".git"),
                          kind="tree" if kind == "tree" else "blob", ref=ref, path="/".join(rest))


def _limit(ctx: ActionContext, name: str, default: int) -> int:
    value = ctx.deps.config.get(name) if isinstance(ctx.deps.config, Mapping) else None
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else default


def _token(ctx: ActionContext) -> str | None:
    given = ctx.input.get("token")
    if isinstance(given, str) and given:
        return given
    configured = getattr(getattr(ctx.deps.app, "settings", None), "github_token", None)
    return configured if isinstance(configured, str) and configured else None


def _api_url(ctx: ActionContext, host: str) -> str:
    hosts = _hosts(ctx)
    if isinstance(hosts.get(host), str):
        return str(hosts[host]).rstrip("/")
    configured = getattr(getattr(ctx.deps.app, "settings", None), "github_api_url", None)
    return str(configured or "https://api.github.com").rstrip("/")


def _plain(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and all(
        p not in ("", ".", "..") and "\\" not in p and "\x00" not in p for p in parts)


async def read_github_skeleton(ctx: ActionContext, url: str, *, want: Literal["folder", "file"], action: str,
                               key: str = "url") -> RemoteSkeleton:
    """Read the folder or file ``url`` names into a fresh temporary folder (the caller removes
    ``folder``). Raises ``ActionError`` naming the URL and what GitHub said."""
    where = github_location(ctx, url, key=key)
    token = _token(ctx)
    if token is None and where.host == "github.com":
        raise ActionError(f"{ctx.step_id}: input {key} {url!r} is a remote location on github.com; reading a "
                          "repository skeleton needs a GitHub token (GITHUB_TOKEN, or the step's token input): "
                          "without one GitHub allows 60 requests an hour, and a skeleton takes one per file")
    timeout = ctx.deps.config.get("github_timeout", 30.0) if isinstance(ctx.deps.config, Mapping) else 30.0
    app_http = getattr(ctx.deps.app, "http", None)
    http = app_http if isinstance(app_http, Fetcher) else Fetcher()
    what = f"{where.owner}/{where.repo}"
    folder = Path(tempfile.mkdtemp(prefix="callboard-skeleton-"))
    try:
        github = GitHub(http, api_url=_api_url(ctx, where.host), token=token,
                        timeout=float(timeout) if isinstance(timeout, (int, float)) and timeout > 0 else 30.0)
        try:
            branch = await github.branch(where.owner, where.repo, where.ref, f"The branch {where.ref} of {what}")
            tree_sha = str(((branch.get("commit") or {}).get("commit") or {}).get("tree", {}).get("sha") or "")
            if not tree_sha:
                raise ActionError(f"{ctx.step_id}: GitHub gave no tree for the branch {where.ref} of {what}")
            tree = await github.tree(where.owner, where.repo, tree_sha, f"The files of {what} at {where.ref}")
            if tree.get("truncated"):
                raise ActionError(f"{ctx.step_id}: {what} at {where.ref} has too many files for GitHub to list in "
                                  "one answer; refused (keep skeletons in a smaller repository)")
            picked = _pick(ctx, where, tree.get("tree"), url, want, action, key)
            _check_limits(ctx, picked, url)
            await _download(ctx, github, where, picked, folder)
        except GitHubError as exc:
            raise ActionError(f"{ctx.step_id}: could not read {url}: {_scrub(str(exc), token)}") from None
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, folder, True)
        raise
    finally:
        if http is not app_http:
            await http.close()
    path = folder / "skeleton"
    if want == "file":
        path = folder / "skeleton" / picked[0][0]
    else:
        path.mkdir(exist_ok=True)
    ctx.log(f"Read {len(picked)} files from {url}")
    return RemoteSkeleton(folder=folder, path=path, files=len(picked))


def _scrub(message: str, token: str | None) -> str:
    return message.replace(token, "***") if token else message


def _pick(ctx: ActionContext, where: GitHubLocation, entries: Any, url: str, want: str, action: str,
          key: str) -> list[tuple[str, str, str, int]]:
    """The blobs under ``where.path`` as (relative path, sha, mode, size); links and submodules left out."""
    if not isinstance(entries, list):
        raise ActionError(f"{ctx.step_id}: GitHub's listing of {where.owner}/{where.repo} has no tree")
    prefix = f"{where.path}/" if where.path else ""
    out: list[tuple[str, str, str, int]] = []
    is_folder = not where.path
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        path = str(entry.get("path") or "")
        kind, mode = entry.get("type"), str(entry.get("mode") or "")
        if where.path and path == where.path:
            if kind == "tree":
                is_folder = True
                continue
            if want == "folder":
                raise ActionError(f"{ctx.step_id}: input {key} {url!r} is a file; {action} reads a folder "
                                  "(use fetch:plain:file)")
            if mode == "120000" or kind != "blob":
                raise ActionError(f"{ctx.step_id}: input {key} {url!r} is a symbolic link or a submodule; "
                                  "not followed")
            return [(path.rsplit("/", 1)[-1], str(entry.get("sha")), mode, int(entry.get("size") or 0))]
        if not path.startswith(prefix):
            continue
        is_folder = True
        rel = path[len(prefix):]
        if not _plain(rel):
            raise ActionError(f"{ctx.step_id}: {url} holds the path {path!r}, which is not a plain relative "
                              "path; refused")
        if kind == "tree":
            continue
        if mode == "120000":
            ctx.log(f"Left out {rel}: a symbolic link in the repository (links are not followed)")
            continue
        if kind != "blob":
            ctx.log(f"Left out {rel}: a {kind or 'entry'} in the repository, not a file")
            continue
        out.append((rel, str(entry.get("sha") or ""), mode, int(entry.get("size") or 0)))
    if not is_folder:
        raise ActionError(f"{ctx.step_id}: input {key} {url!r}: there is no {where.path!r} in "
                          f"{where.owner}/{where.repo} at {where.ref}")
    if want == "file":
        raise ActionError(f"{ctx.step_id}: input {key} {url!r} is a folder; {action} reads a file (use fetch:plain)")
    return sorted(out)


def _check_limits(ctx: ActionContext, picked: list[tuple[str, str, str, int]], url: str) -> None:
    max_files = _limit(ctx, "max_skeleton_files", DEFAULT_MAX_FILES)
    max_bytes = _limit(ctx, "max_skeleton_bytes", DEFAULT_MAX_BYTES)
    if len(picked) > max_files:
        raise ActionError(f"{ctx.step_id}: {url} holds {len(picked):,} files, over the {max_files:,} a skeleton "
                          "may have (scaffolder.max_skeleton_files); refused")
    total = sum(size for *_, size in picked)
    if total > max_bytes:
        raise ActionError(f"{ctx.step_id}: {url} holds {total:,} bytes, over the {max_bytes:,} a skeleton may "
                          "have (scaffolder.max_skeleton_bytes); refused")


async def _download(ctx: ActionContext, github: GitHub, where: GitHubLocation,
                    picked: list[tuple[str, str, str, int]], folder: Path) -> None:
    root = folder / "skeleton"
    root.mkdir()
    max_bytes = _limit(ctx, "max_skeleton_bytes", DEFAULT_MAX_BYTES)
    gate = asyncio.Semaphore(_PARALLEL)
    read: dict[str, bytes] = {}
    total = 0

    async def one(sha: str, rel: str) -> None:
        nonlocal total
        async with gate:
            if sha in read:
                return
            data = await github.blob(where.owner, where.repo, sha, f"The file {rel} of {where.owner}/{where.repo}")
            total += len(data)
            if total > max_bytes:  # the sizes listed were wrong
                raise ActionError(f"{ctx.step_id}: the skeleton's files are over {max_bytes:,} bytes "
                                  "(scaffolder.max_skeleton_bytes); refused")
            read[sha] = data

    jobs = {sha: rel for rel, sha, _, _ in picked}
    outcomes = await asyncio.gather(*(one(sha, rel) for sha, rel in jobs.items()), return_exceptions=True)
    for outcome in outcomes:  # every read has ended: none is left running against the client
        if isinstance(outcome, BaseException):
            raise outcome

    def write() -> None:
        for rel, sha, mode, _ in picked:
            out = root.joinpath(*rel.split("/"))
            assert out.resolve().is_relative_to(root.resolve())  # _plain checked every part
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "xb") as f:  # a fresh folder: nothing is there, and no link is followed
                f.write(read[sha])
            os.chmod(out, 0o755 if mode == "100755" else 0o644)

    await asyncio.to_thread(write)
