"""A local fake of the parts of GitHub's REST API that Callboard calls, answering in the shapes of
``shared/reference/apis/github/rest-api.json`` (``branch-with-protection``, ``git-tree``, ``blob``).

Repositories are local folders: ``fake.add_repo("acme", "svc", {"main": path})``. Hashes are
computed the way git computes them (``sha1("blob <size>\\0" + content)``), so an unchanged file
keeps its sha across commits. A repository added with ``private=True`` answers 404 unless
the request carries the fake's token, as GitHub does.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer

__all__ = ["GitHubFake"]


def blob_sha(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()  # noqa: S324 - git's own hash


@dataclass
class _Repo:
    branches: dict[str, Path]
    private: bool = False


@dataclass
class GitHubFake:
    token: str = "ghp_fake_token"
    calls: list[str] = field(default_factory=list)
    _repos: dict[tuple[str, str], _Repo] = field(default_factory=dict)
    _blobs: dict[str, bytes] = field(default_factory=dict)
    _trees: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    _server: TestServer | None = None

    def add_repo(self, owner: str, repo: str, branches: dict[str, Path], *, private: bool = False) -> None:
        self._repos[(owner, repo)] = _Repo(branches, private)

    def _snapshot(self, folder: Path) -> str:
        entries = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            content = path.read_bytes()
            sha = blob_sha(content)
            self._blobs[sha] = content
            rel = path.relative_to(folder).as_posix()
            entries.append({"path": rel, "mode": "100644", "type": "blob", "sha": sha, "size": len(content),
                            "url": f"{self.url}/git/blobs/{sha}"})
        commit = hashlib.sha1("".join(f"{e['path']}{e['sha']}" for e in entries).encode()).hexdigest()  # noqa: S324
        self._trees[commit] = entries
        return commit

    @property
    def url(self) -> str:
        assert self._server is not None
        return str(self._server.make_url("")).rstrip("/")

    async def start(self) -> str:
        app = web.Application()
        app.add_routes([
            web.get("/repos/{owner}/{repo}/branches/{branch}", self._branch),
            web.get("/repos/{owner}/{repo}/git/trees/{sha}", self._tree),
            web.get("/repos/{owner}/{repo}/git/blobs/{sha}", self._blob),
        ])
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.close()

    def _repo(self, request: web.Request) -> _Repo:
        self.calls.append(request.path_qs)
        repo = self._repos.get((request.match_info["owner"], request.match_info["repo"]))
        authorized = request.headers.get("Authorization") == f"Bearer {self.token}"
        if repo is None or (repo.private and not authorized):
            raise web.HTTPNotFound(text='{"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}',
                                   content_type="application/json")
        return repo

    async def _branch(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        name = request.match_info["branch"]
        folder = repo.branches.get(name)
        if folder is None:
            raise web.HTTPNotFound(text='{"message": "Branch not found"}', content_type="application/json")
        sha = self._snapshot(folder)
        return web.json_response({
            "name": name, "protected": False,
            "commit": {"sha": sha, "url": f"{self.url}/commits/{sha}",
                       "commit": {"tree": {"sha": sha, "url": f"{self.url}/git/trees/{sha}"}, "message": "docs"}},
            "_links": {"self": f"{self.url}/branches/{name}", "html": f"https://github.com/x/y/tree/{name}"},
        })

    async def _tree(self, request: web.Request) -> web.Response:
        self._repo(request)
        entries = self._trees.get(request.match_info["sha"])
        if entries is None:
            raise web.HTTPNotFound(text='{"message": "Not Found"}', content_type="application/json")
        return web.json_response({"sha": request.match_info["sha"], "url": str(request.url), "tree": entries,
                                  "truncated": False})

    async def _blob(self, request: web.Request) -> web.Response:
        self._repo(request)
        sha = request.match_info["sha"]
        content = self._blobs.get(sha)
        if content is None:
            raise web.HTTPNotFound(text='{"message": "Not Found"}', content_type="application/json")
        return web.json_response({"sha": sha, "node_id": f"B_{sha[:8]}", "size": len(content), "url": str(request.url),
                                  "content": base64.b64encode(content).decode(), "encoding": "base64"})
