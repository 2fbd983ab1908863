"""GitHub's REST API, the one place Callboard calls it: reading (branches, trees, blobs, file
contents; TechDocs' ``url:`` references use it) and writing (create a repository with its
description, visibility, default branch, topics and collaborators; push files in one commit).

Every call goes through the app's shared HTTP client (``providers.http.Fetcher``): time limits,
retries with back-off and ``Retry-After``. The API base URL is the operator's (``GITHUB_API_URL``,
``https://<host>/api/v3`` for GitHub Enterprise), so calls are ``trusted``; owner, repository and
path names may come from data and are always percent-encoded into the path, never joined raw.

Why not PyGithub for the write side: it is synchronous and brings its own HTTP stack (requests,
urllib3 retries, its own time limits), so its calls would bypass the shared client's limits,
retries and connection pool and need a thread each; the six write endpoints below are a few
lines each on the shared client and are checked against GitHub's own description in the tests.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from .http import Answer, Fetcher, FetchProblem

__all__ = ["Collaborator", "CreatedRepository", "FileToPush", "GitHub", "GitHubError", "NewRepository"]

#: one API answer (a tree listing, a base64 blob of a 64 MiB file)
MAX_ANSWER = 128 * 1024 * 1024
API_VERSION = "2022-11-28"

Visibility = Literal["public", "private"]  # as api.github.com describes POST /orgs/{org}/repos
Permission = Literal["pull", "triage", "push", "maintain", "admin"]


class GitHubError(Exception):
    """GitHub could not do what was asked, reading or writing: the one error of this client. The
    message says what and why in words fit to show a person (no credentials); ``status`` is
    GitHub's HTTP status when it answered, None when it could not be reached or nothing was asked."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True, kw_only=True)
class Collaborator:
    username: str
    permission: Permission = "push"


@dataclass(frozen=True, slots=True, kw_only=True)
class NewRepository:
    """A repository to create under ``owner``: an organization, or the token's own user
    (``organization=False``)."""

    owner: str
    name: str
    organization: bool = True
    description: str = ""
    visibility: Visibility = "private"
    default_branch: str = "main"
    topics: tuple[str, ...] = ()
    collaborators: tuple[Collaborator, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CreatedRepository:
    owner: str
    name: str
    html_url: str
    default_branch: str
    commit: str | None = None  # the commit pushed, when files were
    clone_url: str = ""  # https clone URL, as GitHub answered it


@dataclass(frozen=True, slots=True, kw_only=True)
class FileToPush:
    path: str  # inside the repository, "/"-separated
    content: bytes
    executable: bool = False


def _path(*names: str) -> str:
    return "/".join(quote(n, safe="") for n in names)


class GitHub:
    """One GitHub (github.com or an Enterprise server) with one token."""

    def __init__(self, http: Fetcher, *, api_url: str = "https://api.github.com", token: str | None = None,
                 timeout: float = 30.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.has_token = bool(token)
        self._http = http
        self._timeout = timeout
        self._headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION,
                         "User-Agent": "callboard"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    async def _call(self, method: str, path: str, body: Any = None) -> Answer | FetchProblem:
        return await self._http.request(method, f"{self.api_url}{path}", trusted=True, max_bytes=MAX_ANSWER,
                                        headers=self._headers, json=body, timeout=self._timeout)

    # --- reading --------------------------------------------------------------------------------

    async def get_json(self, path: str, what: str) -> dict[str, Any]:
        """GET ``path`` (already encoded) as a JSON object. Raises ``GitHubError`` saying why not,
        ``what`` first (``status`` set when GitHub answered)."""
        got = await self._call("GET", path)
        if isinstance(got, FetchProblem):
            raise GitHubError(f"{what}: GitHub could not be reached ({got.message}).")
        if got.status == 200:
            data = got.json()
            if isinstance(data, dict):
                return data
            raise GitHubError(f"{what}: unexpected answer from GitHub", got.status)
        body = _said(got)
        if got.status == 404:
            hint = "" if self.has_token else " (a private repository needs GITHUB_TOKEN)"
            raise GitHubError(f"{what} was not found on GitHub{hint}.", got.status)
        if got.status in (401, 403, 429):
            limited = got.headers.get("X-RateLimit-Remaining") == "0" or got.status == 429
            raise GitHubError(f"{what}: GitHub refused ({got.status}{', rate limit reached' if limited else ''}): {body}",
                              got.status)
        raise GitHubError(f"{what}: GitHub answered {got.status}: {body}", got.status)

    async def branch(self, owner: str, repo: str, branch: str, what: str) -> dict[str, Any]:
        return await self.get_json(f"/repos/{_path(owner, repo)}/branches/{_path(branch)}", what)

    async def tree(self, owner: str, repo: str, sha: str, what: str, *, recursive: bool = True) -> dict[str, Any]:
        query = "?recursive=1" if recursive else ""
        return await self.get_json(f"/repos/{_path(owner, repo)}/git/trees/{_path(sha)}{query}", what)

    async def blob(self, owner: str, repo: str, sha: str, what: str) -> bytes:
        return _decoded(await self.get_json(f"/repos/{_path(owner, repo)}/git/blobs/{_path(sha)}", what))

    async def file(self, owner: str, repo: str, path: str, ref: str, what: str) -> bytes:
        """One file's bytes through the contents API (files up to 1 MB, as GitHub serves them there)."""
        names = [p for p in path.split("/") if p]
        got = await self.get_json(f"/repos/{_path(owner, repo)}/contents/{_path(*names)}?ref={quote(ref, safe='')}",
                                  what)
        if got.get("type") != "file":
            raise GitHubError(f"{what} is not a file (it is a {got.get('type')}).", 200)
        return _decoded(got)

    async def account_type(self, login: str) -> str:
        """``Organization`` or ``User``: what ``login`` is (where a repository for it is created)."""
        got = await self.get_json(f"/users/{_path(login)}", f"The GitHub account {login}")
        return str(got.get("type") or "User")

    # --- writing --------------------------------------------------------------------------------

    async def _write(self, method: str, path: str, body: Any, what: str, ok: Sequence[int]) -> Any:
        got = await self._call(method, path, body)
        if isinstance(got, FetchProblem):
            raise GitHubError(f"Could not {what}: GitHub could not be reached ({got.message}).")
        if got.status not in ok:
            data = got.json()
            detail = str(data.get("message") or "") if isinstance(data, dict) else got.body[:200].decode("utf-8", "replace")
            errors = data.get("errors") if isinstance(data, dict) else None
            if isinstance(errors, list):
                detail += "".join(f"; {e.get('message') or e.get('code')}" for e in errors if isinstance(e, Mapping))
            hint = " (check GITHUB_TOKEN and its scopes)" if got.status in (401, 403, 404) else ""
            raise GitHubError(f"Could not {what}: GitHub answered {got.status}: {detail}{hint}", got.status)
        return got.json() if got.body else None

    async def create_repository(self, spec: NewRepository, files: Sequence[FileToPush] = (), *,
                                message: str = "Initial commit") -> CreatedRepository:
        """Create the repository (with a first commit, so it has a branch), push ``files`` to
        ``spec.default_branch`` as one commit, make that the default branch, then set topics and
        invite the collaborators."""
        full = f"{spec.owner}/{spec.name}"
        body: dict[str, Any] = {"name": spec.name, "description": spec.description, "auto_init": True}
        if spec.organization:
            path = f"/orgs/{_path(spec.owner)}/repos"
            body["visibility"] = spec.visibility
        else:
            path = "/user/repos"
            body["private"] = spec.visibility != "public"
        created = await self._write("POST", path, body, f"create the repository {full}", (201,))
        owner = str((created.get("owner") or {}).get("login") or spec.owner)
        name = str(created.get("name") or spec.name)
        initial_branch = str(created.get("default_branch") or "main")
        commit = None
        if files:
            commit = await self.push(owner, name, spec.default_branch, files, message=message,
                                     start_from=initial_branch)
        if spec.default_branch != initial_branch:
            repo = _path(owner, name)
            if commit is None:  # the branch is the first commit, under its new name
                ref = await self._write("GET", f"/repos/{repo}/git/ref/heads/{_path(initial_branch)}", None,
                                        f"read the branch {initial_branch} of {full}", (200,))
                await self._write("POST", f"/repos/{repo}/git/refs",
                                  {"ref": f"refs/heads/{spec.default_branch}", "sha": ref["object"]["sha"]},
                                  f"create the branch {spec.default_branch} in {full}", (201,))
            await self._write("PATCH", f"/repos/{repo}", {"default_branch": spec.default_branch},
                              f"make {spec.default_branch} the default branch of {full}", (200,))
            await self._write("DELETE", f"/repos/{repo}/git/refs/heads/{_path(initial_branch)}", None,
                              f"delete the branch {initial_branch} of {full}", (204,))
        if spec.topics:
            await self._write("PUT", f"/repos/{_path(owner, name)}/topics", {"names": list(spec.topics)},
                              f"set the topics of {full}", (200,))
        for person in spec.collaborators:
            await self._write("PUT", f"/repos/{_path(owner, name)}/collaborators/{_path(person.username)}",
                              {"permission": person.permission},
                              f"add {person.username} to {full} as a collaborator", (201, 204))
        return CreatedRepository(owner=owner, name=name, html_url=str(created.get("html_url") or ""),
                                 default_branch=spec.default_branch, commit=commit,
                                 clone_url=str(created.get("clone_url") or ""))

    async def push(self, owner: str, repo: str, branch: str, files: Sequence[FileToPush], *, message: str,
                   start_from: str | None = None) -> str:
        """Commit ``files`` (the whole tree of the new commit) on top of ``branch`` — or, when that
        does not exist yet, of ``start_from`` — and point ``branch`` at it. Returns the commit sha."""
        if not files:
            raise GitHubError(f"Nothing to push to {owner}/{repo}: no files.")
        for f in files:
            parts = f.path.split("/")
            if f.path.startswith("/") or any(p in ("", ".", "..", ".git") for p in parts):
                raise GitHubError(f"Cannot push {f.path!r} to {owner}/{repo}: not a plain relative path.")
        full, base = f"{owner}/{repo}", f"/repos/{_path(owner, repo)}"
        got = await self._call("GET", f"{base}/git/ref/heads/{_path(branch)}")
        exists = isinstance(got, Answer) and got.status == 200
        parent_branch = branch if exists or start_from is None else start_from
        ref = await self._write("GET", f"{base}/git/ref/heads/{_path(parent_branch)}", None,
                                f"read the branch {parent_branch} of {full}", (200,))
        parent = str(ref["object"]["sha"])
        tree = []
        for f in files:
            blob = await self._write("POST", f"{base}/git/blobs",
                                     {"content": base64.b64encode(f.content).decode(), "encoding": "base64"},
                                     f"upload {f.path} to {full}", (201,))
            tree.append({"path": f.path, "mode": "100755" if f.executable else "100644", "type": "blob",
                         "sha": blob["sha"]})
        made = await self._write("POST", f"{base}/git/trees", {"tree": tree}, f"write the tree of {full}", (201,))
        commit = await self._write("POST", f"{base}/git/commits",
                                   {"message": message, "tree": made["sha"], "parents": [parent]},
                                   f"write the commit to {full}", (201,))
        sha = str(commit["sha"])
        if exists:
            await self._write("PATCH", f"{base}/git/refs/heads/{_path(branch)}", {"sha": sha, "force": False},
                              f"move the branch {branch} of {full}", (200,))
        else:
            await self._write("POST", f"{base}/git/refs", {"ref": f"refs/heads/{branch}", "sha": sha},
                              f"create the branch {branch} in {full}", (201,))
        return sha


def _said(got: Answer) -> str:
    """What GitHub said in an error answer: its JSON ``message`` (``Bad credentials``), else the
    start of the body as text."""
    data = got.json()
    if isinstance(data, dict) and isinstance(data.get("message"), str) and data["message"]:
        return str(data["message"])[:200]
    return got.body[:200].decode("utf-8", "replace")


def _decoded(data: Mapping[str, Any]) -> bytes:
    if data.get("encoding") == "base64":
        return base64.b64decode(str(data.get("content", "")))
    return str(data.get("content", "")).encode()
