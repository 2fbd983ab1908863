"""publish:file (a real git repository under the publish folder, git run with a clean set-up) and
publish:github against the local GitHub fake over HTTP (repository settings, contents, and each
failure a clear ActionError that never shows the token). Contexts are built directly: no engine."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from callboard.providers.http import FetchLimits, Fetcher
from callboard.scaffolder.actions.api import ActionContext, ActionDeps, ActionError
from callboard.scaffolder.actions.publish import PUBLISH_FILE, PUBLISH_GITHUB, parse_repo_url
from callboard.scaffolder.model import Runner, template_from_document

from ..fakes.github import Fault, GitHubFake
from ..providers.test_github import exchange_errors

TEMPLATE = template_from_document({
    "apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template",
    "metadata": {"name": "python-service"}, "spec": {"steps": []},
})
ANA = Runner(ref="user:default/ana", entity={
    "apiVersion": "backstage.io/v1alpha1", "kind": "User", "metadata": {"name": "ana"},
    "spec": {"profile": {"displayName": "Ana Lima", "email": "ana@example.com"}, "memberOf": ["team-a"]}})


def make_ctx(workspace: Path, inputs: Mapping[str, Any], *, app: Any = None, config: Mapping[str, Any] | None = None,
             user: Runner = ANA, step_id: str = "publish") -> tuple[ActionContext, list[str]]:
    lines: list[str] = []
    ctx = ActionContext(step_id=step_id, workspace=workspace, input=dict(inputs), secrets={}, user=user,
                        template=TEMPLATE, dry_run=False, deps=ActionDeps(app=app, config=dict(config or {})),
                        log=lines.append)
    return ctx, lines


def skeleton(workspace: Path) -> dict[str, bytes]:
    files = {
        "catalog-info.yaml": b"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: orders\n",
        "src/orders/__init__.py": b"",
        "scripts/run.sh": b"#!/bin/sh\necho hi\n",
        "logo.bin": bytes(range(256)),
    }
    for rel, content in files.items():
        path = workspace / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    (workspace / "scripts/run.sh").chmod(0o755)
    return files


def git_bytes(repo: Path, *args: str) -> bytes:
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(repo), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CONFIG_GLOBAL": os.devnull}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env).stdout


def git(repo: Path, *args: str) -> str:
    return git_bytes(repo, *args).decode()


# --- publish:file ---------------------------------------------------------------------------


async def test_publish_file_makes_a_git_repository_with_the_files(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    files = skeleton(workspace)
    (workspace / ".git" / "hooks").mkdir(parents=True)  # a skeleton's own .git is never published
    (workspace / ".git" / "hooks" / "pre-commit").write_text("#!/bin/sh\ntouch /tmp/pwned\n")
    ctx, lines = make_ctx(workspace, {"repoUrl": "github.com?owner=acme&repo=orders", "defaultBranch": "trunk",
                                      "gitCommitMessage": "Scaffolded orders"},
                          config={"publish_dir": str(tmp_path / "repos")})
    await PUBLISH_FILE.run(ctx)
    repo = tmp_path / "repos" / "acme" / "orders"
    assert ctx.outputs["remoteUrl"] == repo.as_uri() == ctx.outputs["repoContentsUrl"]
    log = git(repo, "log", "--format=%H|%an|%ae|%s", "trunk")
    assert log.strip() == f"{ctx.outputs['commitHash']}|Ana Lima|ana@example.com|Scaffolded orders"
    assert git(repo, "symbolic-ref", "HEAD").strip() == "refs/heads/trunk"
    listed = git(repo, "ls-tree", "-r", "HEAD").splitlines()
    assert sorted(line.split("\t")[1] for line in listed) == sorted(files)
    assert any(line.startswith("100755") and line.endswith("scripts/run.sh") for line in listed)
    for rel, content in files.items():
        assert git_bytes(repo, "show", f"HEAD:{rel}") == content
    assert git(repo, "status", "--porcelain") == ""
    assert not (repo / ".git" / "hooks" / "pre-commit").exists()
    assert any(".git" in line and "not published" in line for line in lines)


async def test_publish_file_refuses_to_overwrite_and_keeps_what_is_there(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    skeleton(workspace)
    config = {"publish_dir": str(tmp_path / "repos")}
    first, _ = make_ctx(workspace, {"repoUrl": "github.com?owner=acme&repo=orders"}, config=config)
    await PUBLISH_FILE.run(first)
    (workspace / "catalog-info.yaml").write_text("changed\n")
    second, _ = make_ctx(workspace, {"repoUrl": "github.com?owner=acme&repo=orders"}, config=config)
    with pytest.raises(ActionError, match="already exists .* not overwritten"):
        await PUBLISH_FILE.run(second)
    repo = tmp_path / "repos" / "acme" / "orders"
    assert git(repo, "rev-parse", "HEAD").strip() == first.outputs["commitHash"]
    assert b"changed" not in (repo / "catalog-info.yaml").read_bytes()


async def test_publish_file_source_path_path_input_and_default_author(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    skeleton(workspace / "app")
    (workspace / "other.txt").write_text("not published\n")
    ctx, _ = make_ctx(workspace, {"path": "team-a/orders", "sourcePath": "app"},
                      config={"publish_dir": str(tmp_path / "repos")}, user=Runner())
    await PUBLISH_FILE.run(ctx)
    repo = tmp_path / "repos" / "team-a" / "orders"
    assert "other.txt" not in git(repo, "ls-files")
    assert "catalog-info.yaml" in git(repo, "ls-files")
    assert git(repo, "log", "--format=%an <%ae>|%s").strip() == "Callboard <callboard@localhost>|initial commit"
    assert git(repo, "symbolic-ref", "HEAD").strip() == "refs/heads/main"


async def test_publish_file_under_the_apps_data_dir(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    skeleton(workspace)
    app = SimpleNamespace(settings=SimpleNamespace(data_dir=str(tmp_path / "data")))
    ctx, _ = make_ctx(workspace, {"repoUrl": "github.com?owner=acme&repo=orders"}, app=app)
    await PUBLISH_FILE.run(ctx)
    assert (tmp_path / "data" / "repos" / "acme" / "orders" / ".git").is_dir()


@pytest.mark.parametrize(("inputs", "message"), [
    ({"repoUrl": "github.com?owner=acme&repo=../etc"}, "repo '../etc' is not a valid name"),
    ({"repoUrl": "github.com?owner=acme"}, "repoUrl has no repo"),
    ({"repoUrl": "acme/orders"}, "repoUrl must look like host[?]owner"),
    ({"path": "../outside"}, "input path '../outside' must be a relative path"),
    ({"path": "/abs/orders"}, "must be a relative path"),
    ({"repoUrl": "github.com?owner=acme&repo=x", "sourcePath": "../"}, "sourcePath '../' leads outside the workspace"),
    ({"repoUrl": "github.com?owner=acme&repo=x", "sourcePath": "/etc"}, "not absolute"),
    ({"repoUrl": "github.com?owner=acme&repo=x", "sourcePath": "missing"}, "is not a folder in the workspace"),
    ({"repoUrl": "github.com?owner=acme&repo=x", "defaultBranch": "a..b"}, "git check-ref-format failed"),
    ({"repoUrl": "github.com?owner=acme&repo=x", "defaultBranch": 3}, "defaultBranch must be a string"),
])
async def test_publish_file_bad_inputs_each_name_what_is_wrong(tmp_path: Path, inputs: dict[str, Any],
                                                               message: str) -> None:
    workspace = tmp_path / "ws"
    skeleton(workspace)
    ctx, _ = make_ctx(workspace, inputs, config={"publish_dir": str(tmp_path / "repos")})
    with pytest.raises(ActionError, match=message):
        await PUBLISH_FILE.run(ctx)
    assert not (tmp_path / "repos" / "acme" / "x").exists()  # a failed publish leaves nothing behind


async def test_publish_file_refuses_links_out_of_the_source(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    skeleton(workspace)
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret\n")
    (workspace / "leak.txt").symlink_to(secret)
    ctx, _ = make_ctx(workspace, {"repoUrl": "github.com?owner=acme&repo=x"},
                      config={"publish_dir": str(tmp_path / "repos")})
    with pytest.raises(ActionError, match="leak.txt is a link to a file outside the source folder"):
        await PUBLISH_FILE.run(ctx)
    (workspace / "leak.txt").unlink()
    (workspace / "docs").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(ActionError, match="docs is a link to a folder"):
        await PUBLISH_FILE.run(ctx)
    (workspace / "docs").unlink()
    (workspace / "readme-link.md").symlink_to(workspace / "catalog-info.yaml")  # inside: its content is published
    await PUBLISH_FILE.run(ctx)
    repo = tmp_path / "repos" / "acme" / "x"
    assert (repo / "readme-link.md").read_bytes() == (workspace / "catalog-info.yaml").read_bytes()
    assert not (repo / "readme-link.md").is_symlink()


async def test_publish_file_ignores_the_persons_git_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hostile global config (a hook path that would run, another author) is never read."""
    home = tmp_path / "home"
    hooks = home / "hooks"
    hooks.mkdir(parents=True)
    marker = tmp_path / "hook-ran"
    (hooks / "pre-commit").write_text(f"#!/bin/sh\ntouch {marker}\n")
    (hooks / "pre-commit").chmod(0o755)
    (home / ".gitconfig").write_text(f"[core]\n\thooksPath = {hooks}\n[user]\n\tname = Mallory\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    workspace = tmp_path / "ws"
    skeleton(workspace)
    ctx, _ = make_ctx(workspace, {"repoUrl": "github.com?owner=acme&repo=x"},
                      config={"publish_dir": str(tmp_path / "repos")})
    await PUBLISH_FILE.run(ctx)
    assert not marker.exists()
    assert "Mallory" not in git(tmp_path / "repos" / "acme" / "x", "log", "--format=%an")


def test_repo_url_parsing() -> None:
    assert parse_repo_url("github.com?owner=acme&repo=orders", "x") == \
        parse_repo_url("https://GitHub.com?repo=orders&owner=acme", "x")
    with pytest.raises(ActionError, match="names owner more than once"):
        parse_repo_url("github.com?owner=a&owner=b&repo=r", "x")


def test_dry_run_shows_example_outputs_as_backstage() -> None:
    for action in (PUBLISH_FILE, PUBLISH_GITHUB):
        assert not action.supports_dry_run
        assert action.example_outputs["remoteUrl"] == action.example_outputs["repoContentsUrl"] == "<example>"


# --- publish:github against the fake ---------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[GitHubFake]:
    github = GitHubFake()
    await github.start()
    try:
        yield github
    finally:
        await github.stop()


@pytest.fixture
async def http() -> AsyncIterator[Fetcher]:
    fetcher = Fetcher(limits=FetchLimits(retries=1, backoff=0.01))
    try:
        yield fetcher
    finally:
        await fetcher.close()


def github_app(fake: GitHubFake, http: Fetcher, tmp_path: Path, token: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(http=http, settings=SimpleNamespace(
        github_api_url=fake.url, github_token=fake.token if token is None else token, data_dir=str(tmp_path / "d")))


async def test_publish_github_creates_the_repository_with_everything(tmp_path: Path, fake: GitHubFake,
                                                                     http: Fetcher) -> None:
    workspace = tmp_path / "ws"
    files = skeleton(workspace / "out")
    ctx, lines = make_ctx(workspace, {
        "repoUrl": "github.com?owner=acme&repo=orders", "description": "Takes orders", "repoVisibility": "public",
        "defaultBranch": "main", "topics": ["python", "orders"], "sourcePath": "out",
        "collaborators": [{"user": "ben", "access": "admin"}, {"username": "cy"}], "allowedHosts": ["github.com"],
    }, app=github_app(fake, http, tmp_path))
    await PUBLISH_GITHUB.run(ctx)
    created = fake.created[("acme", "orders")]
    assert (created.description, created.visibility, created.default_branch) == ("Takes orders", "public", "main")
    assert created.topics == ["python", "orders"] and created.collaborators == {"ben": "admin", "cy": "push"}
    assert fake.files("acme", "orders", "main") == files
    assert ctx.outputs["repoContentsUrl"] == f"{fake.url}/acme/orders/blob/main"
    assert ctx.outputs["remoteUrl"] == f"{fake.url}/acme/orders.git"
    assert created.refs["main"] == ctx.outputs["commitHash"]
    assert created.commits[ctx.outputs["commitHash"]]["message"] == "initial commit"
    assert not exchange_errors(fake), exchange_errors(fake)
    assert not any(fake.token in line for line in lines)


async def test_publish_github_for_the_tokens_own_user_and_backstages_default_branch(
        tmp_path: Path, fake: GitHubFake, http: Fetcher) -> None:
    workspace = tmp_path / "ws"
    skeleton(workspace)
    ctx, _ = make_ctx(workspace, {"repoUrl": "github.com?owner=octocat&repo=notes"}, app=github_app(fake, http, tmp_path))
    await PUBLISH_GITHUB.run(ctx)
    created = fake.created[("octocat", "notes")]
    assert not created.organization and created.private and created.default_branch == "master"
    assert "POST /user/repos" in fake.calls


async def test_publish_github_enterprise_host_from_config(tmp_path: Path, fake: GitHubFake, http: Fetcher) -> None:
    workspace = tmp_path / "ws"
    skeleton(workspace)
    app = github_app(fake, http, tmp_path)
    app.settings.github_api_url = "http://127.0.0.1:9/never-asked"  # github.com is not what is asked
    ctx, _ = make_ctx(workspace, {"repoUrl": "ghe.example.com?owner=acme&repo=orders"}, app=app,
                      config={"github_hosts": {"ghe.example.com": fake.url}})
    await PUBLISH_GITHUB.run(ctx)
    assert ("acme", "orders") in fake.created
    unknown, _ = make_ctx(workspace, {"repoUrl": "gitlab.example.com?owner=acme&repo=orders"}, app=app)
    with pytest.raises(ActionError, match="gitlab.example.com is not a GitHub host Callboard knows"):
        await PUBLISH_GITHUB.run(unknown)


async def test_publish_github_token_from_the_input_is_used_and_never_shown(tmp_path: Path, fake: GitHubFake,
                                                                          http: Fetcher) -> None:
    workspace = tmp_path / "ws"
    skeleton(workspace)
    fake.token = "ghu_user_oauth_token_123"
    ctx, _ = make_ctx(workspace, {"repoUrl": "github.com?owner=acme&repo=a", "token": fake.token},
                      app=github_app(fake, http, tmp_path, token="ghp_operator_token_is_wrong"))
    await PUBLISH_GITHUB.run(ctx)
    assert ("acme", "a") in fake.created


def _failing(fake: GitHubFake, case: str) -> tuple[str, str]:
    """Make the fake fail as ``case`` says; return the token to use and what the error says."""
    if case == "401":
        return "ghp_wrong_token_abcdef", "401.*Bad credentials.*"
    if case == "422":
        fake.created[("acme", "orders")] = fake.created.get(("acme", "orders")) or _taken(fake)
        return fake.token, "create the repository acme/orders: GitHub answered 422: .*name already exists"
    if case == "5xx":
        fake.faults.append(Fault("POST", "/orgs/acme/repos", status=502))
        return fake.token, "create the repository acme/orders: GitHub answered 502"
    fake.faults.append(Fault("POST", "/orgs/acme/repos", delay=2.0))
    return fake.token, "create the repository acme/orders: GitHub could not be reached .*within 0.3 s"


def _taken(fake: GitHubFake) -> Any:
    from ..fakes.github import _Created
    return _Created(owner="acme", name="orders", description="", private=True, visibility="private",
                    default_branch="main", organization=True)


@pytest.mark.parametrize("case", ["401", "422", "5xx", "timeout"])
async def test_publish_github_failures_are_clear_and_never_show_the_token(
        tmp_path: Path, fake: GitHubFake, http: Fetcher, case: str) -> None:
    workspace = tmp_path / "ws"
    skeleton(workspace)
    token, expected = _failing(fake, case)
    ctx, lines = make_ctx(workspace, {"repoUrl": "github.com?owner=acme&repo=orders"},
                          app=github_app(fake, http, tmp_path, token=token), config={"github_timeout": 0.3})
    with pytest.raises(ActionError, match=f"^publish:github: .*{expected}") as caught:
        await PUBLISH_GITHUB.run(ctx)
    assert token not in str(caught.value) and not any(token in line for line in lines)
    assert "commitHash" not in ctx.outputs and "remoteUrl" not in ctx.outputs


async def test_publish_github_bad_inputs(tmp_path: Path, fake: GitHubFake, http: Fetcher) -> None:
    workspace = tmp_path / "ws"
    skeleton(workspace)
    app = github_app(fake, http, tmp_path)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"repoVisibility": "internal"}, "repoVisibility must be private or public"),
        ({"topics": ["Not Valid"]}, "topic 'Not Valid' must be lowercase"),
        ({"collaborators": [{"team": "core", "access": "push"}]}, r"collaborators\[0\]: team collaborators"),
        ({"collaborators": [{"user": "ben", "access": "owner"}]}, r"collaborators\[0\]: access 'owner'"),
        ({"allowedHosts": ["gitlab.com"]}, "host github.com is not in allowedHosts"),
        ({"defaultBranch": "-x"}, "defaultBranch '-x' is not a valid branch name"),
    ]
    for extra, message in cases:
        ctx, _ = make_ctx(workspace, {"repoUrl": "github.com?owner=acme&repo=orders", **extra}, app=app)
        with pytest.raises(ActionError, match=message):
            await PUBLISH_GITHUB.run(ctx)
    no_token, _ = make_ctx(workspace, {"repoUrl": "github.com?owner=acme&repo=orders"},
                           app=github_app(fake, http, tmp_path, token=""))
    with pytest.raises(ActionError, match="no GitHub token"):
        await PUBLISH_GITHUB.run(no_token)
    assert not fake.created
