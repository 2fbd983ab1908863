"""The publishing actions: ``publish:file`` (the embedded default: the workspace becomes a local git
repository, so the golden path works without GitHub) and ``publish:github`` (a new repository
through the project's GitHub client, ``providers.github``).

Both read the files under ``sourcePath`` inside the workspace (default: all of it). Untrusted
template output never escapes: the source must lie inside the workspace; a symbolic link is
published as the file it points to only when that lies inside the source folder, and anything
else linked is refused, naming it; ``.git`` entries are never published (a ``.git`` folder in a
skeleton could carry hooks or config that run code).

``publish:file`` runs ``git`` as a subprocess with nothing of the machine's or the person's git
set-up: no system or global config, no hooks (``core.hooksPath=/dev/null``), no fsmonitor, no
signing, ``HOME`` an empty temporary folder. The repository is
``<scaffolder.publish_dir>/<owner>/<repo>`` (``publish_dir`` defaults to ``<data_dir>/repos``),
or ``<publish_dir>/<path>`` with the ``path`` input; an existing one is never overwritten.

``publish:github`` takes its token from the ``token`` input (a secret, as Backstage's templates
pass ``${{ secrets.USER_OAUTH_TOKEN }}``) or the operator's ``GITHUB_TOKEN``; it is never logged
and never part of an error. github.com is reached at ``GITHUB_API_URL`` (default
``https://api.github.com``); a GitHub Enterprise host at the API URL ``scaffolder.github_hosts``
maps it to (``{ghe.example.com: https://ghe.example.com/api/v3}``).

Configuration (``ActionDeps.config``, the ``scaffolder`` section; all optional):
``publish_dir``, ``github_hosts``, ``github_timeout`` (seconds per GitHub request, default 30),
``max_publish_bytes`` (default 200 MB), ``default_author`` (``{name, email}``; default
"Callboard" <callboard@localhost>, used when the person running the template has neither).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs

from callboard.providers.github import Collaborator, FileToPush, GitHub, GitHubError, NewRepository, Visibility
from callboard.providers.http import Fetcher

from .api import Action, ActionContext, ActionError

__all__ = [
    "PUBLISH_FILE",
    "PUBLISH_GITHUB",
    "RepoUrl",
    "SourceFile",
    "github_api_url",
    "parse_repo_url",
    "publish_dir",
    "source_files",
]

#: a GitHub owner or repository name (GitHub's own rule is narrower; this one is path-safe)
_NAME = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,99}")
_TOPIC = re.compile(r"[a-z0-9][a-z0-9-]{0,49}")
_PERMISSIONS = ("pull", "triage", "push", "maintain", "admin")
_GIT_TIMEOUT = 120.0
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
EXAMPLE = "<example>"  # what Backstage's dry-run shows for an output it did not compute


# --- inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RepoUrl:
    """A RepoUrlPicker value: ``host?owner=o&repo=r``."""

    host: str
    owner: str
    repo: str


def parse_repo_url(value: Any, action: str, *, owner_required: bool = True) -> RepoUrl:
    """``host?owner=o&repo=r`` (Backstage's ``parseRepoUrl``), names checked to be path-safe."""
    if not isinstance(value, str) or "?" not in value:
        raise ActionError(f"{action}: input repoUrl must look like host?owner=<owner>&repo=<repo>, got {value!r}")
    host, _, query = value.partition("?")
    host = host.removeprefix("https://").removeprefix("http://").rstrip("/")
    params = parse_qs(query, keep_blank_values=True)
    if not host or "/" in host or any(c.isspace() for c in host):
        raise ActionError(f"{action}: input repoUrl has no valid host: {value!r}")

    def one(name: str, required: bool) -> str:
        got = params.get(name) or [""]
        if len(got) > 1:
            raise ActionError(f"{action}: input repoUrl names {name} more than once")
        item = got[0]
        if not item:
            if required:
                raise ActionError(f"{action}: input repoUrl has no {name} (host?owner=<owner>&repo=<repo>)")
            return ""
        if not _NAME.fullmatch(item) or item in (".", "..") or item.endswith(".git"):
            raise ActionError(f"{action}: input repoUrl: {name} {item!r} is not a valid name "
                              "(letters, digits, '.', '_' and '-')")
        return item

    return RepoUrl(host=host.lower(), owner=one("owner", owner_required), repo=one("repo", True))


def _text(ctx: ActionContext, action: str, name: str, default: str = "") -> str:
    value = ctx.input.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ActionError(f"{action}: input {name} must be a string, got {type(value).__name__}")
    return value


def _clean(value: str) -> str:
    """A name or address for a git author line: no control characters, no angle brackets."""
    return "".join(c for c in value if c.isprintable() and c not in "<>").strip()


def _author(ctx: ActionContext, action: str) -> tuple[str, str]:
    """The commit author: the inputs gitAuthorName/gitAuthorEmail, else the person running the
    template (their catalog User's display name and email), else ``default_author``."""
    default = ctx.deps.config.get("default_author") or {}
    name = _clean(_text(ctx, action, "gitAuthorName"))
    email = _clean(_text(ctx, action, "gitAuthorEmail"))
    entity = ctx.user.entity or {}
    profile = (entity.get("spec") or {}).get("profile") or {} if isinstance(entity, Mapping) else {}
    if isinstance(profile, Mapping):
        name = name or _clean(str(profile.get("displayName") or ""))
        email = email or _clean(str(profile.get("email") or ""))
    if not name and isinstance(entity, Mapping):
        name = _clean(str((entity.get("metadata") or {}).get("name") or ""))
    return (name or str(default.get("name") or "Callboard"),
            email or str(default.get("email") or "callboard@localhost"))


# --- the files to publish -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: str  # "/"-separated, relative to the source folder
    real: Path  # the file read (a link's target)
    executable: bool


def _source_dir(ctx: ActionContext, action: str) -> Path:
    workspace = ctx.workspace.resolve()
    raw = _text(ctx, action, "sourcePath")
    if raw and (Path(raw).is_absolute() or raw.startswith(("/", "\\"))):
        raise ActionError(f"{action}: input sourcePath {raw!r} must be a path inside the workspace, not absolute")
    source = (workspace / raw).resolve() if raw else workspace
    if source != workspace and workspace not in source.parents:
        raise ActionError(f"{action}: input sourcePath {raw!r} leads outside the workspace; refused")
    if not source.is_dir():
        raise ActionError(f"{action}: input sourcePath {raw!r} is not a folder in the workspace")
    return source


def source_files(source: Path, action: str, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 log: Any = None) -> list[SourceFile]:
    """Every file under ``source`` to publish, sorted. A link is followed only to a regular
    file inside ``source``; ``.git`` entries are left out (said in ``log``); more than
    ``max_bytes`` in all is refused."""
    out: list[SourceFile] = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(source):
        here = Path(dirpath)
        for name in sorted(dirnames):
            if name == ".git":
                dirnames.remove(name)
                if log:
                    log(f"Left out {(here / name).relative_to(source).as_posix()}: .git folders are not published")
            elif (here / name).is_symlink():
                raise ActionError(f"{action}: {(here / name).relative_to(source).as_posix()} is a link to a folder; "
                                  "refused (publish the folder itself)")
        for name in filenames:
            path = here / name
            rel = path.relative_to(source).as_posix()
            if name == ".git":
                if log:
                    log(f"Left out {rel}: .git entries are not published")
                continue
            real = path.resolve()
            if path.is_symlink() and source not in real.parents:
                raise ActionError(f"{action}: {rel} is a link to a file outside the source folder; refused")
            try:
                info = real.stat()
            except OSError:
                raise ActionError(f"{action}: {rel} is a link to nothing; refused") from None
            if not stat.S_ISREG(info.st_mode):
                raise ActionError(f"{action}: {rel} is not a regular file; refused")
            total += info.st_size
            if total > max_bytes:
                raise ActionError(f"{action}: the files to publish are over {max_bytes / 1e6:,.0f} MB "
                                  "(scaffolder.max_publish_bytes); refused")
            out.append(SourceFile(path=rel, real=real, executable=bool(info.st_mode & stat.S_IXUSR)))
    return sorted(out, key=lambda f: f.path)


def _max_bytes(ctx: ActionContext) -> int:
    value = ctx.deps.config.get("max_publish_bytes", DEFAULT_MAX_BYTES)
    return int(value) if isinstance(value, (int, float)) and value > 0 else DEFAULT_MAX_BYTES


# --- publish:file ---------------------------------------------------------------------------


def publish_dir(ctx: ActionContext) -> Path:
    """Where ``publish:file`` makes repositories: ``scaffolder.publish_dir``, else
    ``<data_dir>/repos`` of the running app."""
    configured = ctx.deps.config.get("publish_dir")
    if isinstance(configured, (str, os.PathLike)) and str(configured):
        return Path(configured).expanduser().resolve()
    data_dir = getattr(getattr(ctx.deps.app, "settings", None), "data_dir", None)
    if isinstance(data_dir, str) and data_dir:
        return (Path(data_dir).expanduser() / "repos").resolve()
    raise ActionError("publish:file: no folder to publish into (set scaffolder.publish_dir)")


def _target(ctx: ActionContext, root: Path) -> Path:
    raw_path = _text(ctx, "publish:file", "path")
    if raw_path:
        parts = raw_path.replace("\\", "/").split("/")
        if raw_path.startswith("/") or any(not _NAME.fullmatch(p) or p in (".", "..") for p in parts):
            raise ActionError(f"publish:file: input path {raw_path!r} must be a relative path of plain names "
                              "(letters, digits, '.', '_' and '-')")
        return root.joinpath(*parts)
    if "repoUrl" not in ctx.input:
        raise ActionError("publish:file: give input repoUrl (host?owner=<owner>&repo=<repo>) or path")
    url = parse_repo_url(ctx.input.get("repoUrl"), "publish:file", owner_required=False)
    return root / (url.owner or "default") / url.repo


def _git_env(home: str, author: tuple[str, str], git: str) -> dict[str, str]:
    """Nothing of the machine's or the person's git set-up: no config files, no prompts."""
    return {
        "PATH": os.pathsep.join([str(Path(git).parent), os.defpath]),
        "HOME": home,
        "XDG_CONFIG_HOME": home,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": author[0],
        "GIT_AUTHOR_EMAIL": author[1],
        "GIT_COMMITTER_NAME": author[0],
        "GIT_COMMITTER_EMAIL": author[1],
        "LC_ALL": "C",
    }


_SAFE = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "commit.gpgSign=false",
         "-c", "protocol.allow=never", "-c", "core.autocrlf=false")


async def _git(git: str, args: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> str:
    proc = await asyncio.create_subprocess_exec(git, *_SAFE, *args, cwd=cwd, env=dict(env),
                                                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), _GIT_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise ActionError(f"publish:file: git {args[0]} took longer than {_GIT_TIMEOUT:g} s; stopped") from None
    if proc.returncode != 0:
        said = err.decode("utf-8", "replace").strip().splitlines()
        raise ActionError(f"publish:file: git {args[0]} failed: {said[-1] if said else f'exit {proc.returncode}'}")
    return out.decode("utf-8", "replace").strip()


async def _publish_file(ctx: ActionContext) -> None:
    action = "publish:file"
    branch = _text(ctx, action, "defaultBranch", "main") or "main"
    message = _text(ctx, action, "gitCommitMessage", "initial commit") or "initial commit"
    source = _source_dir(ctx, action)
    root = publish_dir(ctx)
    target = _target(ctx, root)
    git = shutil.which("git")
    if git is None:
        raise ActionError(f"{action}: git is not installed here; publish:file needs it")
    files = await asyncio.to_thread(source_files, source, action, max_bytes=_max_bytes(ctx), log=ctx.log)
    target.parent.mkdir(parents=True, exist_ok=True)
    if root not in target.resolve().parents:  # a link planted under publish_dir
        raise ActionError(f"{action}: {target} leads outside {root}; refused")
    try:
        target.mkdir()
    except FileExistsError:
        raise ActionError(f"{action}: a repository already exists at {target}; not overwritten "
                          "(choose another name)") from None
    try:
        with tempfile.TemporaryDirectory(prefix="callboard-git-") as home:
            env = _git_env(home, _author(ctx, action), git)
            await _git(git, ["check-ref-format", "--branch", branch], cwd=target, env=env)
            await _git(git, ["init", "-q"], cwd=target, env=env)
            await _git(git, ["symbolic-ref", "HEAD", f"refs/heads/{branch}"], cwd=target, env=env)
            await asyncio.to_thread(_copy, files, target)
            await _git(git, ["add", "-A", "--", "."], cwd=target, env=env)
            await _git(git, ["commit", "-q", "--allow-empty", "--no-verify", "-m", message], cwd=target, env=env)
            commit = await _git(git, ["rev-parse", "HEAD"], cwd=target, env=env)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # ours: made above, nothing else is in it
        raise
    ctx.log(f"Published {len(files)} files to the git repository {target} (branch {branch}, commit {commit[:12]})")
    url = target.as_uri()
    ctx.output("remoteUrl", url)
    ctx.output("repoContentsUrl", url)  # the checked-out tree: <repoContentsUrl>/catalog-info.yaml
    ctx.output("commitHash", commit)


def _copy(files: Sequence[SourceFile], target: Path) -> None:
    for f in files:
        dest = target.joinpath(*f.path.split("/"))
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f.real, dest, follow_symlinks=True)
        dest.chmod(0o755 if f.executable else 0o644)


PUBLISH_FILE = Action(
    id="publish:file",
    run=_publish_file,
    description="Make the workspace (or sourcePath in it) a new local git repository, one commit "
                "on defaultBranch, under scaffolder.publish_dir",
    supports_dry_run=False,
    example_outputs={"remoteUrl": EXAMPLE, "repoContentsUrl": EXAMPLE, "commitHash": EXAMPLE},
)


# --- publish:github -------------------------------------------------------------------------


def github_api_url(ctx: ActionContext, host: str, action: str) -> str:
    """The API URL for a GitHub host: github.com at the operator's ``GITHUB_API_URL``, an
    Enterprise host at what ``scaffolder.github_hosts`` maps it to."""
    hosts = ctx.deps.config.get("github_hosts") or {}
    if isinstance(hosts, Mapping) and isinstance(hosts.get(host), str):
        return str(hosts[host]).rstrip("/")
    if host == "github.com":
        configured = getattr(getattr(ctx.deps.app, "settings", None), "github_api_url", None)
        return str(configured or "https://api.github.com").rstrip("/")
    raise ActionError(f"{action}: {host} is not a GitHub host Callboard knows (github.com, or a host "
                      "listed in scaffolder.github_hosts)")


def _strings(ctx: ActionContext, action: str, name: str) -> list[str]:
    value = ctx.input.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ActionError(f"{action}: input {name} must be a list of strings")
    return list(value)


def _collaborators(ctx: ActionContext, action: str) -> tuple[Collaborator, ...]:
    raw = ctx.input.get("collaborators")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ActionError(f"{action}: input collaborators must be a list of {{user, access}}")
    out = []
    for i, item in enumerate(raw):
        where = f"{action}: input collaborators[{i}]"
        if not isinstance(item, Mapping):
            raise ActionError(f"{where} must be a mapping with user and access")
        if "team" in item:
            raise ActionError(f"{where}: team collaborators are not supported by Callboard yet; name users")
        user = item.get("user", item.get("username"))
        access = item.get("access", "push")
        if not isinstance(user, str) or not _NAME.fullmatch(user):
            raise ActionError(f"{where}: user {user!r} is not a GitHub login")
        if access not in _PERMISSIONS:
            raise ActionError(f"{where}: access {access!r} is not one of {', '.join(_PERMISSIONS)}")
        out.append(Collaborator(username=user, permission=access))
    return tuple(out)


def _token(ctx: ActionContext) -> str | None:
    given = ctx.input.get("token")
    if isinstance(given, str) and given:
        return given
    configured = getattr(getattr(ctx.deps.app, "settings", None), "github_token", None)
    return configured if isinstance(configured, str) and configured else None


def _scrub(message: str, secrets: Sequence[str | None]) -> str:
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return message


async def _publish_github(ctx: ActionContext) -> None:
    action = "publish:github"
    url = parse_repo_url(ctx.input.get("repoUrl"), action)
    allowed = _strings(ctx, action, "allowedHosts")
    if allowed and url.host not in {h.lower() for h in allowed}:
        raise ActionError(f"{action}: host {url.host} is not in allowedHosts ({', '.join(allowed)})")
    api_url = github_api_url(ctx, url.host, action)
    visibility = _text(ctx, action, "repoVisibility", "private") or "private"
    if visibility not in ("private", "public"):
        raise ActionError(f"{action}: input repoVisibility must be private or public, got {visibility!r}")
    branch = _text(ctx, action, "defaultBranch", "master") or "master"
    if not re.fullmatch(r"[A-Za-z0-9._/-]{1,200}", branch) or ".." in branch or branch.startswith(("/", "-", ".")) \
            or branch.endswith(("/", ".", ".lock")):
        raise ActionError(f"{action}: input defaultBranch {branch!r} is not a valid branch name")
    topics = _strings(ctx, action, "topics")
    for topic in topics:
        if not _TOPIC.fullmatch(topic):
            raise ActionError(f"{action}: topic {topic!r} must be lowercase letters, digits and '-', at most 50")
    collaborators = _collaborators(ctx, action)
    description = _text(ctx, action, "description")
    message = _text(ctx, action, "gitCommitMessage", "initial commit") or "initial commit"
    token = _token(ctx)
    if token is None:
        raise ActionError(f"{action}: no GitHub token (set GITHUB_TOKEN, or pass the token input)")
    source = _source_dir(ctx, action)
    found = await asyncio.to_thread(source_files, source, action, max_bytes=_max_bytes(ctx), log=ctx.log)
    files = await asyncio.to_thread(lambda: [FileToPush(path=f.path, content=f.real.read_bytes(),
                                                        executable=f.executable) for f in found])
    timeout = ctx.deps.config.get("github_timeout", 30.0)
    app_http = getattr(ctx.deps.app, "http", None)
    http = app_http if isinstance(app_http, Fetcher) else Fetcher()
    try:
        github = GitHub(http, api_url=api_url, token=token,
                        timeout=float(timeout) if isinstance(timeout, (int, float)) and timeout > 0 else 30.0)
        organization = await github.account_type(url.owner) == "Organization"
        made = await github.create_repository(
            NewRepository(owner=url.owner, name=url.repo, organization=organization, description=description,
                          visibility=cast(Visibility, visibility), default_branch=branch, topics=tuple(topics),
                          collaborators=collaborators),
            files, message=message)
    except GitHubError as exc:
        raise ActionError(f"{action}: {_scrub(str(exc), [token])}") from None
    finally:
        if http is not app_http:
            await http.close()
    ctx.log(f"Created the GitHub repository {made.owner}/{made.name} with {len(files)} files "
            f"on {made.default_branch}")
    ctx.output("remoteUrl", made.clone_url or f"{made.html_url}.git")
    ctx.output("repoContentsUrl", f"{made.html_url}/blob/{made.default_branch}")
    if made.commit:
        ctx.output("commitHash", made.commit)


PUBLISH_GITHUB = Action(
    id="publish:github",
    run=_publish_github,
    description="Create a GitHub repository (description, visibility, default branch, topics, "
                "collaborators) and push the workspace (or sourcePath in it) as its first commit",
    supports_dry_run=False,
    example_outputs={"remoteUrl": EXAMPLE, "repoContentsUrl": EXAMPLE, "commitHash": EXAMPLE},
)
