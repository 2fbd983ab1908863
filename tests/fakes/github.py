"""A local fake of the parts of GitHub's REST API that Callboard calls, answering in the shapes of
``shared/reference/apis/github/rest-api.json`` (``branch-with-protection``, ``git-tree``, ``blob``,
``content-file``; and for writing ``full-repository``, ``git-ref``, ``short-blob``, ``git-commit``,
``topic``, ``repository-invitation``). Every JSON request and answer is kept in ``exchanges`` with
the description's path template, so a test checks both against the description.

Created repositories (``POST /user/repos``, ``POST /orgs/{org}/repos``) live in memory: refs,
commits, trees and blobs as the git data API makes them; ``fake.files(owner, repo, branch)``
reads a branch back.

``GET /users/{username}`` answers the token's user (``type: User``) and the organizations
(``type: Organization``). ``fake.faults`` makes chosen requests fail (a status, or no answer in
time) to test how callers report it.

Repositories are local folders: ``fake.add_repo("acme", "svc", {"main": path})``. Hashes are
computed the way git computes them (``sha1("blob <size>\\0" + content)``), so an unchanged file
keeps its sha across commits; a symbolic link is a blob of mode ``120000`` holding its target,
an executable file has mode ``100755``, as git lists them. A repository added with ``private=True`` answers 404 unless
the request carries the fake's token, as GitHub does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

__all__ = ["Fault", "GitHubFake"]


def blob_sha(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()  # noqa: S324 - git's own hash


@dataclass
class _Repo:
    branches: dict[str, Path]
    private: bool = False


@dataclass
class Exchange:
    """One request to a write endpoint and its answer, with the description's path template."""

    method: str
    template: str
    request: Any
    status: int
    answer: Any


@dataclass
class _Created:
    owner: str
    name: str
    description: str
    private: bool
    visibility: str
    default_branch: str
    organization: bool
    refs: dict[str, str] = field(default_factory=dict)  # branch -> commit sha
    commits: dict[str, dict[str, Any]] = field(default_factory=dict)  # sha -> {tree, parents, message}
    trees: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    topics: list[str] = field(default_factory=list)
    collaborators: dict[str, str] = field(default_factory=dict)  # login -> permission


@dataclass
class Fault:
    """Requests whose method and path match answer ``status`` (with GitHub's error body), or are
    held ``delay`` seconds first; ``times`` requests in all (None: every one)."""

    method: str
    path_prefix: str
    status: int | None = None
    delay: float = 0.0
    times: int | None = None


_ids = itertools.count(1000)


def _sha(*parts: object) -> str:
    return hashlib.sha1(repr(parts).encode()).hexdigest()  # noqa: S324 - a fake's object names


@dataclass
class GitHubFake:
    token: str = "ghp_fake_token"
    user: str = "octocat"  # the token's own account
    orgs: tuple[str, ...] = ("acme",)  # organizations the token may create repositories in
    calls: list[str] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    created: dict[tuple[str, str], _Created] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    _repos: dict[tuple[str, str], _Repo] = field(default_factory=dict)
    _blobs: dict[str, bytes] = field(default_factory=dict)
    _trees: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    _server: TestServer | None = None

    def add_repo(self, owner: str, repo: str, branches: dict[str, Path], *, private: bool = False) -> None:
        self._repos[(owner, repo)] = _Repo(branches, private)

    def _snapshot(self, folder: Path) -> str:
        entries = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink()):
            # a link is a blob of mode 120000 holding its target, as git keeps it
            link = path.is_symlink()
            content = os.readlink(path).encode() if link else path.read_bytes()
            sha = blob_sha(content)
            self._blobs[sha] = content
            rel = path.relative_to(folder).as_posix()
            mode = "120000" if link else "100755" if path.stat().st_mode & 0o100 else "100644"
            entries.append({"path": rel, "mode": mode, "type": "blob", "sha": sha, "size": len(content),
                            "url": f"{self.url}/git/blobs/{sha}"})
        commit = hashlib.sha1("".join(f"{e['path']}{e['sha']}" for e in entries).encode()).hexdigest()  # noqa: S324
        self._trees[commit] = entries
        return commit

    @property
    def url(self) -> str:
        assert self._server is not None
        return str(self._server.make_url("")).rstrip("/")

    async def start(self) -> str:
        app = web.Application(middlewares=[self._faulty])
        app.add_routes([
            web.get("/users/{username}", self._user),
            web.get("/repos/{owner}/{repo}/branches/{branch}", self._branch),
            web.get("/repos/{owner}/{repo}/git/trees/{sha}", self._tree),
            web.get("/repos/{owner}/{repo}/git/blobs/{sha}", self._blob),
            web.get("/repos/{owner}/{repo}/contents/{path:.+}", self._contents),
            web.post("/user/repos", self._create_user_repo),
            web.post("/orgs/{org}/repos", self._create_org_repo),
            web.patch("/repos/{owner}/{repo}", self._edit_repo),
            web.put("/repos/{owner}/{repo}/topics", self._topics),
            web.put("/repos/{owner}/{repo}/collaborators/{username}", self._collaborator),
            web.get("/repos/{owner}/{repo}/git/ref/heads/{branch}", self._get_ref),
            web.post("/repos/{owner}/{repo}/git/refs", self._create_ref),
            web.patch("/repos/{owner}/{repo}/git/refs/heads/{branch}", self._move_ref),
            web.delete("/repos/{owner}/{repo}/git/refs/heads/{branch}", self._delete_ref),
            web.post("/repos/{owner}/{repo}/git/blobs", self._create_blob),
            web.post("/repos/{owner}/{repo}/git/trees", self._create_tree),
            web.post("/repos/{owner}/{repo}/git/commits", self._create_commit),
        ])
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return self.url

    @web.middleware
    async def _faulty(self, request: web.Request, handler: Any) -> web.StreamResponse:
        for fault in self.faults:
            if request.method == fault.method and request.path.startswith(fault.path_prefix) and fault.times != 0:
                if fault.times is not None:
                    fault.times -= 1
                self.calls.append(f"{request.method} {request.path_qs} (fault)")
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.status is not None:
                    return web.json_response({"message": "Server Error" if fault.status >= 500 else "Fault",
                                              "documentation_url": "https://docs.github.com/rest"},
                                             status=fault.status)
                break
        response: web.StreamResponse = await handler(request)
        return response

    async def _user(self, request: web.Request) -> web.Response:
        self.calls.append(f"{request.method} {request.path_qs}")
        login = request.match_info["username"]
        given = request.headers.get("Authorization")
        if given is not None and given != f"Bearer {self.token}":
            return self._error(request, "/users/{username}", None, 401, "Bad credentials")
        if login != self.user and login not in self.orgs:
            return self._error(request, "/users/{username}", None, 404, "Not Found")
        user = {**self._user_json(login, "Organization" if login in self.orgs else "User"),
                "user_view_type": "public", "name": None, "company": None, "blog": "", "location": None,
                "email": None, "hireable": None, "bio": None, "public_repos": 0, "public_gists": 0, "followers": 0,
                "following": 0, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}
        return self._answer(request, "/users/{username}", None, 200, user)

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

    # --- writing: repositories created through the API ----------------------------------------

    def files(self, owner: str, repo: str, branch: str) -> dict[str, bytes]:
        """The files of ``branch`` of a created repository."""
        created = self.created[(owner, repo)]
        commit = created.commits[created.refs[branch]]
        return {e["path"]: self._blobs[e["sha"]] for e in created.trees[commit["tree"]]}

    def _answer(self, request: web.Request, template: str, payload: Any, status: int, answer: Any) -> web.Response:
        self.exchanges.append(Exchange(request.method, template, payload, status, answer))
        if answer is None:
            return web.Response(status=status)
        return web.json_response(answer, status=status)

    def _error(self, request: web.Request, template: str, payload: Any, status: int, message: str) -> web.Response:
        return self._answer(request, template, payload, status,
                            {"message": message, "documentation_url": "https://docs.github.com/rest"})

    async def _payload(self, request: web.Request) -> Any:
        self.calls.append(f"{request.method} {request.path_qs}")
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            raise web.HTTPUnauthorized(text='{"message": "Requires authentication"}', content_type="application/json")
        return await request.json() if request.can_read_body else None

    def _mine(self, request: web.Request) -> _Created:
        created = self.created.get((request.match_info["owner"], request.match_info["repo"]))
        if created is None:
            raise web.HTTPNotFound(text='{"message": "Not Found"}', content_type="application/json")
        return created

    def _user_json(self, login: str, kind: str = "User") -> dict[str, Any]:
        api = f"{self.url}/users/{login}"
        return {"login": login, "id": abs(hash(login)) % 10**6, "node_id": f"U_{login}", "avatar_url": f"{api}.png",
                "gravatar_id": "", "url": api, "html_url": f"{self.url}/{login}", "followers_url": f"{api}/followers",
                "following_url": f"{api}/following{{/other_user}}", "gists_url": f"{api}/gists{{/gist_id}}",
                "starred_url": f"{api}/starred{{/owner}}{{/repo}}", "subscriptions_url": f"{api}/subscriptions",
                "organizations_url": f"{api}/orgs", "repos_url": f"{api}/repos", "events_url": f"{api}/events{{/privacy}}",
                "received_events_url": f"{api}/received_events", "type": kind, "site_admin": False}

    def _repo_json(self, c: _Created, *, full: bool = True) -> dict[str, Any]:
        api = f"{self.url}/repos/{c.owner}/{c.name}"
        urls = {f"{k}_url": f"{api}/{k}" for k in (
            "archive", "assignees", "blobs", "branches", "collaborators", "comments", "commits", "compare", "contents",
            "contributors", "deployments", "downloads", "events", "forks", "git_commits", "git_refs", "git_tags",
            "hooks", "issue_comment", "issue_events", "issues", "keys", "labels", "languages", "merges",
            "milestones", "notifications", "pulls", "releases", "stargazers", "statuses", "subscribers",
            "subscription", "tags", "teams", "trees")}
        out: dict[str, Any] = {
            **urls, "id": next(_ids), "node_id": f"R_{c.owner}_{c.name}", "name": c.name,
            "full_name": f"{c.owner}/{c.name}", "owner": self._user_json(c.owner, "Organization" if c.organization else "User"),
            "private": c.private, "html_url": f"{self.url}/{c.owner}/{c.name}", "description": c.description or None,
            "fork": False, "url": api,
        }
        if full:
            out.update({
                "clone_url": f"{self.url}/{c.owner}/{c.name}.git", "git_url": f"git://fake/{c.owner}/{c.name}.git",
                "ssh_url": f"git@fake:{c.owner}/{c.name}.git", "svn_url": f"{self.url}/{c.owner}/{c.name}",
                "mirror_url": None, "homepage": None, "language": None, "forks": 0, "forks_count": 0,
                "stargazers_count": 0, "watchers_count": 0, "watchers": 0, "size": 0, "default_branch": c.default_branch,
                "open_issues": 0, "open_issues_count": 0, "has_issues": True, "has_projects": True, "has_wiki": True,
                "has_pages": False, "has_discussions": False, "archived": False, "disabled": False,
                "visibility": c.visibility, "pushed_at": "2026-01-01T00:00:00Z", "created_at": "2026-01-01T00:00:00Z",
                "updated_at": "2026-01-01T00:00:00Z", "license": None, "network_count": 0, "subscribers_count": 0,
                "topics": list(c.topics),
            })
        return out

    def _ref_json(self, c: _Created, branch: str) -> dict[str, Any]:
        sha = c.refs[branch]
        api = f"{self.url}/repos/{c.owner}/{c.name}/git"
        return {"ref": f"refs/heads/{branch}", "node_id": f"REF_{sha[:8]}", "url": f"{api}/refs/heads/{branch}",
                "object": {"type": "commit", "sha": sha, "url": f"{api}/commits/{sha}"}}

    async def _create(self, request: web.Request, template: str, owner: str, organization: bool) -> web.Response:
        payload = await self._payload(request)
        name = payload.get("name") if isinstance(payload, dict) else None
        if not isinstance(name, str) or not name:
            return self._error(request, template, payload, 422, "Repository creation failed.")
        if (owner, name) in self.created:
            return self._answer(request, template, payload, 422, {
                "message": "Repository creation failed.", "documentation_url": "https://docs.github.com/rest",
                "errors": [{"resource": "Repository", "code": "custom", "field": "name",
                            "message": "name already exists on this account"}]})
        visibility = payload.get("visibility") or ("private" if payload.get("private") else "public")
        c = _Created(owner=owner, name=name, description=str(payload.get("description") or ""),
                     private=visibility != "public", visibility=visibility, default_branch="main",
                     organization=organization)
        if payload.get("auto_init"):
            readme = f"# {name}\n".encode()
            self._blobs[blob_sha(readme)] = readme
            tree = _sha("tree", owner, name)
            c.trees[tree] = [{"path": "README.md", "mode": "100644", "type": "blob", "sha": blob_sha(readme)}]
            commit = _sha("commit", owner, name)
            c.commits[commit] = {"tree": tree, "parents": [], "message": "Initial commit"}
            c.refs["main"] = commit
        self.created[(owner, name)] = c
        return self._answer(request, template, payload, 201, self._repo_json(c))

    async def _create_user_repo(self, request: web.Request) -> web.Response:
        return await self._create(request, "/user/repos", self.user, False)

    async def _create_org_repo(self, request: web.Request) -> web.Response:
        org = request.match_info["org"]
        if org not in self.orgs:
            await self._payload(request)
            raise web.HTTPNotFound(text='{"message": "Not Found"}', content_type="application/json")
        return await self._create(request, "/orgs/{org}/repos", org, True)

    async def _edit_repo(self, request: web.Request) -> web.Response:
        payload = await self._payload(request)
        c = self._mine(request)
        template = "/repos/{owner}/{repo}"
        branch = payload.get("default_branch")
        if branch is not None:
            if branch not in c.refs:
                return self._error(request, template, payload, 422, "Validation Failed")
            c.default_branch = branch
        return self._answer(request, template, payload, 200, self._repo_json(c))

    async def _topics(self, request: web.Request) -> web.Response:
        payload = await self._payload(request)
        c = self._mine(request)
        c.topics = [str(n).lower() for n in payload["names"]]
        return self._answer(request, "/repos/{owner}/{repo}/topics", payload, 200, {"names": c.topics})

    async def _collaborator(self, request: web.Request) -> web.Response:
        payload = await self._payload(request)
        c = self._mine(request)
        login = request.match_info["username"]
        permission = (payload or {}).get("permission", "push")
        c.collaborators[login] = permission
        shown = {"pull": "read", "push": "write"}.get(permission, permission)
        invitation = {"id": next(_ids), "node_id": f"I_{login}", "repository": self._repo_json(c, full=False),
                      "invitee": self._user_json(login), "inviter": self._user_json(self.user),
                      "permissions": shown, "created_at": "2026-01-01T00:00:00Z", "expired": False,
                      "url": f"{self.url}/user/repository_invitations/1",
                      "html_url": f"{self.url}/{c.owner}/{c.name}/invitations"}
        return self._answer(request, "/repos/{owner}/{repo}/collaborators/{username}", payload, 201, invitation)

    async def _get_ref(self, request: web.Request) -> web.Response:
        await self._payload(request)
        c = self._mine(request)
        branch = request.match_info["branch"]
        if branch not in c.refs:
            return self._error(request, "/repos/{owner}/{repo}/git/ref/{ref}", None, 404, "Not Found")
        return self._answer(request, "/repos/{owner}/{repo}/git/ref/{ref}", None, 200, self._ref_json(c, branch))

    async def _create_ref(self, request: web.Request) -> web.Response:
        payload = await self._payload(request)
        c = self._mine(request)
        template = "/repos/{owner}/{repo}/git/refs"
        ref, sha = payload.get("ref", ""), payload.get("sha")
        branch = ref.removeprefix("refs/heads/")
        if not ref.startswith("refs/heads/") or sha not in c.commits:
            return self._error(request, template, payload, 422, "Reference update failed")
        if branch in c.refs:
            return self._error(request, template, payload, 422, "Reference already exists")
        c.refs[branch] = sha
        return self._answer(request, template, payload, 201, self._ref_json(c, branch))

    async def _move_ref(self, request: web.Request) -> web.Response:
        payload = await self._payload(request)
        c = self._mine(request)
        template = "/repos/{owner}/{repo}/git/refs/{ref}"
        branch, sha = request.match_info["branch"], payload.get("sha")
        if branch not in c.refs or sha not in c.commits:
            return self._error(request, template, payload, 422, "Reference does not exist")
        if not payload.get("force") and c.refs[branch] not in c.commits[sha]["parents"]:
            return self._error(request, template, payload, 422, "Update is not a fast forward")
        c.refs[branch] = sha
        return self._answer(request, template, payload, 200, self._ref_json(c, branch))

    async def _delete_ref(self, request: web.Request) -> web.Response:
        await self._payload(request)
        c = self._mine(request)
        branch = request.match_info["branch"]
        template = "/repos/{owner}/{repo}/git/refs/{ref}"
        if branch not in c.refs or branch == c.default_branch:
            return self._error(request, template, None, 422, "Reference does not exist or is the default branch")
        del c.refs[branch]
        return self._answer(request, template, None, 204, None)

    async def _create_blob(self, request: web.Request) -> web.Response:
        payload = await self._payload(request)
        self._mine(request)
        content = (base64.b64decode(payload["content"]) if payload.get("encoding") == "base64"
                   else str(payload["content"]).encode())
        sha = blob_sha(content)
        self._blobs[sha] = content
        url = f"{self.url}/repos/{request.match_info['owner']}/{request.match_info['repo']}/git/blobs/{sha}"
        return self._answer(request, "/repos/{owner}/{repo}/git/blobs", payload, 201, {"url": url, "sha": sha})

    async def _create_tree(self, request: web.Request) -> web.Response:
        payload = await self._payload(request)
        c = self._mine(request)
        template = "/repos/{owner}/{repo}/git/trees"
        entries = [dict(e) for e in payload["tree"]]
        if any(e.get("sha") not in self._blobs for e in entries):
            return self._error(request, template, payload, 422, "Invalid tree info")
        sha = _sha("tree", *(f"{e['path']}:{e['sha']}:{e['mode']}" for e in entries))
        c.trees[sha] = entries
        shown = [{**e, "size": len(self._blobs[e["sha"]]), "url": f"{self.url}/git/blobs/{e['sha']}"} for e in entries]
        return self._answer(request, template, payload, 201, {"sha": sha, "url": f"{self.url}/git/trees/{sha}",
                                                              "tree": shown, "truncated": False})

    async def _create_commit(self, request: web.Request) -> web.Response:
        payload = await self._payload(request)
        c = self._mine(request)
        template = "/repos/{owner}/{repo}/git/commits"
        if payload["tree"] not in c.trees or any(p not in c.commits for p in payload.get("parents", [])):
            return self._error(request, template, payload, 422, "Tree SHA does not exist")
        sha = _sha("commit", payload["tree"], tuple(payload.get("parents", [])), payload["message"])
        c.commits[sha] = {"tree": payload["tree"], "parents": list(payload.get("parents", [])),
                          "message": payload["message"]}
        person = {"name": "Callboard", "email": "callboard@example.com", "date": "2026-01-01T00:00:00Z"}
        api = f"{self.url}/repos/{c.owner}/{c.name}/git"
        return self._answer(request, template, payload, 201, {
            "sha": sha, "node_id": f"C_{sha[:8]}", "url": f"{api}/commits/{sha}",
            "html_url": f"{self.url}/{c.owner}/{c.name}/commit/{sha}", "author": person, "committer": person,
            "message": payload["message"], "tree": {"sha": payload["tree"], "url": f"{api}/trees/{payload['tree']}"},
            "parents": [{"sha": p, "url": f"{api}/commits/{p}", "html_url": f"{self.url}/commit/{p}"}
                        for p in payload.get("parents", [])],
            "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None,
                             "verified_at": None}})

    async def _contents(self, request: web.Request) -> web.Response:
        await self._payload(request)
        c = self._mine(request)
        template = "/repos/{owner}/{repo}/contents/{path}"
        path, ref = request.match_info["path"], request.query.get("ref", c.default_branch)
        entries = c.trees[c.commits[c.refs[ref]]["tree"]] if ref in c.refs else []
        entry = next((e for e in entries if e["path"] == path), None)
        if entry is None:
            return self._error(request, template, None, 404, "Not Found")
        content = self._blobs[entry["sha"]]
        api = f"{self.url}/repos/{c.owner}/{c.name}"
        html = f"{self.url}/{c.owner}/{c.name}/blob/{ref}/{path}"
        return self._answer(request, template, None, 200, {
            "type": "file", "encoding": "base64", "size": len(content), "name": path.rsplit("/", 1)[-1],
            "path": path, "content": base64.b64encode(content).decode(), "sha": entry["sha"],
            "url": f"{api}/contents/{path}", "git_url": f"{api}/git/blobs/{entry['sha']}", "html_url": html,
            "download_url": f"{self.url}/raw/{c.owner}/{c.name}/{ref}/{path}",
            "_links": {"self": f"{api}/contents/{path}", "git": f"{api}/git/blobs/{entry['sha']}", "html": html}})
