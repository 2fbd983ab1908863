"""Docs in a GitHub repository (``url:https://github.com/<owner>/<repo>/tree/<branch>/<path>``):
fetched through GitHub's REST API into a local folder the builder reads like any ``dir:``.

A fetch asks for the branch's commit; when it is the commit fetched last time, nothing else
is asked. Otherwise the commit's tree is listed and the files under the docs path are
downloaded as blobs, each kept in a cache by its git hash, so a change to one page
downloads one page. GitHub Enterprise: ``GITHUB_API_URL``; private repositories:
``GITHUB_TOKEN``.

The API URL is the operator's (trusted); the ``url:`` reference is catalog data. Its host is never
connected to — owner, repository and branch are asked of the configured API — but an address
written there is still judged by the reading rule (``providers.http``): a reference to a loopback,
link-local or private address is refused unless ``reading.allow`` lists it, rather than quietly
answered from GitHub. Every API call goes through ``providers.github`` (the one GitHub client) and
the shared HTTP client's time limits and retries.

What cannot be fetched is a ``DocsError`` (the TechDocs layer's error value): the GitHub client's
``GitHubError`` becomes one here, with its message.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from callboard.catalog.urls import strip_userinfo

from ..github import GitHub, GitHubError
from ..http import Fetcher, ReadingPolicy, address_of, refused_message
from .errors import DocsError

__all__ = ["GitHubDocs", "GitHubTree", "parse_github_url"]

MAX_FILES = 2000
MAX_BYTES = 64 * 1024 * 1024
_STATE = ".callboard-remote.json"


@dataclass(frozen=True, slots=True)
class GitHubTree:
    owner: str
    repo: str
    ref: str
    path: str  # inside the repository, no leading or trailing slash; "" for the root
    url: str = ""  # the reference as written, without credentials ("" when made by hand)

    @property
    def display(self) -> str:
        return f"{self.owner}/{self.repo}@{self.ref}" + (f":{self.path}" if self.path else "")


def _dot_segment(*names: str) -> bool:
    """True when a name from the reference is a dot segment (also percent-encoded, or empty once
    ``.git`` is taken off): it goes into the API path, where ``..`` would take the request, and
    GITHUB_TOKEN with it, to other paths of the API host."""
    return any(unquote(name) in ("", ".", "..") for name in names)


def parse_github_url(url: str) -> GitHubTree | DocsError:
    """``https://<host>/<owner>/<repo>/tree|blob/<ref>[/<path>]``; why not for anything else.
    A ``blob`` URL names a file: its folder is meant."""
    try:
        parsed = urlparse(url)
    except ValueError as exc:  # an unclosed [ in the host, for one
        return DocsError(message=f"{strip_userinfo(url)} is not a valid URL ({exc}).")
    parts = [p for p in parsed.path.split("/") if p]
    url = strip_userinfo(url)
    if parsed.scheme not in ("http", "https") or len(parts) < 2:
        return DocsError(
            message=f"{url} is not a repository URL (https://github.com/<owner>/<repo>/tree/<branch>/<path>)."
        )
    owner, repo = parts[0], parts[1].removesuffix(".git")
    if len(parts) == 2 and _dot_segment(owner, repo):
        return DocsError(message=f"{url}: owner and repository may not be '.' or '..'.")
    if len(parts) == 2:
        return GitHubTree(owner, repo, "HEAD", "", url)
    if len(parts) < 4 or parts[2] not in ("tree", "blob"):
        return DocsError(message=f"{url}: expected /tree/<branch>/<path> after the repository name.")
    ref, rest = parts[3], parts[4:]
    if _dot_segment(owner, repo, ref):
        return DocsError(message=f"{url}: owner, repository and branch may not be '.' or '..'.")
    if parts[2] == "blob":
        rest = rest[:-1]
    path = str(PurePosixPath(*rest)) if rest else ""
    if ".." in PurePosixPath(path).parts:
        return DocsError(message=f"{url}: the path may not contain '..'.")
    return GitHubTree(owner, repo, ref, "" if path == "." else path, url)


def relative_tree(location_url: str, target: str) -> GitHubTree | DocsError:
    """The folder ``target`` (a ``dir:`` path) names relative to a catalog file at a GitHub URL."""
    base = parse_github_url(location_url)
    if isinstance(base, DocsError):
        return base
    joined = PurePosixPath(base.path) / target
    parts: list[str] = []
    for part in joined.parts:
        if part == "..":
            if not parts:
                return DocsError(message=f"dir:{target} leaves the repository {base.owner}/{base.repo}: refused.")
            parts.pop()
        elif part != ".":
            parts.append(part)
    return GitHubTree(base.owner, base.repo, base.ref, "/".join(parts), base.url)


class GitHubDocs:
    def __init__(self, cache: Path, api_url: str = "https://api.github.com", token: str | None = None,
                 timeout: float = 30.0, reading_allow: Iterable[str] = (), http: Fetcher | None = None) -> None:
        """``http``: the app's shared client; without it each fetch opens (and closes) its own."""
        self.cache = cache
        self._http = http
        self.api_url = api_url.rstrip("/")
        self._token = token
        self.timeout = timeout
        self._allow = tuple(reading_allow)
        self._policy = ReadingPolicy.parse(self._allow)

    @property
    def web_hosts(self) -> frozenset[str]:
        """The hosts whose repository URLs this GitHub serves: github.com, and the host of a GitHub
        Enterprise API (``https://ghe.corp/api/v3`` serves ``https://ghe.corp/...``)."""
        api_host = (urlparse(self.api_url).hostname or "").lower()
        return frozenset({"github.com", "www.github.com", api_host, api_host.removeprefix("api.")})

    def refused(self, tree: GitHubTree) -> DocsError | None:
        """Why a reference is not fetched (another host than this GitHub's, or an internal address);
        None when it may be."""
        if not tree.url:
            return None
        parsed = urlparse(tree.url)
        host = parsed.hostname or ""
        try:
            port = parsed.port
        except ValueError:
            port = None
        address = address_of(host)
        if address is not None and not (self._policy.allows_address(address) or self._policy.allows_host(host, port)):
            return DocsError(message=refused_message(tree.url, host, address))
        if host.lower().rstrip(".") not in self.web_hosts:
            # never read another host's owner/repo names from GitHub with the server's token
            return DocsError(message=f"{tree.url} is not on GitHub ({', '.join(sorted(h for h in self.web_hosts if h))}): "
                             "Callboard reads url: docs only from the GitHub it is configured for (GITHUB_API_URL).")
        return None

    async def fetch(self, tree: GitHubTree, dest: Path) -> DocsError | None:
        """Make ``dest`` hold the docs folder of ``tree``; why not when it cannot."""
        refused = self.refused(tree)
        if refused is not None:
            return refused
        if self._http is not None:
            return await self._fetch(self._github(self._http), tree, dest)
        async with Fetcher(allow=self._allow) as http:
            return await self._fetch(self._github(http), tree, dest)

    def _github(self, http: Fetcher) -> GitHub:
        return GitHub(http, api_url=self.api_url, token=self._token, timeout=self.timeout)

    async def _fetch(self, github: GitHub, tree: GitHubTree, dest: Path) -> DocsError | None:
        no_branch: GitHubError | None = None
        try:
            branch = await github.branch(tree.owner, tree.repo, tree.ref, f"Branch {tree.display}")
            commit_sha = str((branch.get("commit") or {}).get("sha") or tree.ref)
        except GitHubError as exc:
            no_branch = exc
            commit_sha = tree.ref  # maybe a commit or tag; the tree call says whether it exists
        state_file = dest / _STATE
        if state_file.is_file():
            try:
                state = json.loads(state_file.read_text())
            except ValueError:
                state = {}
            if state.get("commit") == commit_sha and state.get("path") == tree.path:
                return None
        try:
            listing = await github.tree(tree.owner, tree.repo, commit_sha, f"The tree of {tree.display}")
        except GitHubError as exc:
            return DocsError(message=str(exc if no_branch is None else no_branch))
        prefix = f"{tree.path}/" if tree.path else ""
        files = [e for e in listing.get("tree", []) if e.get("type") == "blob" and str(e.get("path", "")).startswith(prefix)]
        if not files:
            return DocsError(message=f"{tree.display}: there is no such folder in the repository.")
        if listing.get("truncated"):
            return DocsError(
                message=f"{tree.display}: the repository is too large to list in one request; point at a smaller repository."
            )
        if len(files) > MAX_FILES or sum(int(e.get("size") or 0) for e in files) > MAX_BYTES:
            return DocsError(
                message=f"{tree.display}: the docs folder has more than {MAX_FILES} files or {MAX_BYTES >> 20} MiB."
            )
        staging = dest.parent / f".{dest.name}.{uuid.uuid4().hex}"
        try:
            for entry in files:
                rel = PurePosixPath(entry["path"][len(prefix):])
                if rel.is_absolute() or ".." in rel.parts:
                    continue
                content = await self._blob(github, tree, str(entry["sha"]), f"{tree.display}/{rel}")
                if isinstance(content, DocsError):
                    return content
                target = staging / Path(*rel.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
            (staging / _STATE).write_text(json.dumps({"commit": commit_sha, "path": tree.path}))
            old = dest.parent / f".{dest.name}.old.{uuid.uuid4().hex}"
            if dest.exists():
                os.replace(dest, old)
            os.replace(staging, dest)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return None

    async def _blob(self, github: GitHub, tree: GitHubTree, sha: str, what: str) -> bytes | DocsError:
        cached = self.cache / sha[:2] / sha
        if cached.is_file():
            return cached.read_bytes()
        try:
            content = await github.blob(tree.owner, tree.repo, sha, what)
        except GitHubError as exc:
            return DocsError(message=str(exc))
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f"{sha}.{uuid.uuid4().hex}")
        tmp.write_bytes(content)
        os.replace(tmp, cached)
        return content

