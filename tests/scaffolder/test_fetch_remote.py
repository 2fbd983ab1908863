"""Skeletons in a GitHub repository (``https://<host>/<owner>/<repo>/tree/<branch>/<folder>``),
read by fetch:template, fetch:plain and fetch:plain:file through the project's GitHub client
against the GitHub fake over HTTP, run by the engine: rendered as a local skeleton is, within the
size limits, no path that escapes, symbolic links left out and never followed, and every refusal
naming the URL and why (never the token)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from callboard.providers.http import FetchLimits, Fetcher
from callboard.scaffolder.actions.api import ActionDeps
from callboard.scaffolder.engine import RunResult, execute
from callboard.scaffolder.model import Runner, template_from_document

from ..fakes.github import GitHubFake

TOKEN = "ghp_remote_skeleton_token_42"


@pytest.fixture
async def fake() -> AsyncIterator[GitHubFake]:
    github = GitHubFake(token=TOKEN)
    await github.start()
    try:
        yield github
    finally:
        await github.stop()


@pytest.fixture
async def http() -> AsyncIterator[Fetcher]:
    fetcher = Fetcher(limits=FetchLimits(retries=0))
    try:
        yield fetcher
    finally:
        await fetcher.close()


def _repo(tmp_path: Path, fake: GitHubFake, files: Mapping[str, str], *, private: bool = False,
          name: str = "skeletons") -> Path:
    root = tmp_path / f"repo-{name}"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    fake.add_repo("acme", name, {"main": root}, private=private)
    return root


SKELETON = {
    "skeleton/README.md": "# ${{ values.name }}\n",
    "skeleton/${{ values.name }}/__init__.py": "NAME = '${{ values.name }}'\n",
    "skeleton/docs/index.md": "Docs of ${{ values.name }}\n",
    "skeleton/raw.txt": "${{ kept }}",
    "other/secret.txt": "not part of the skeleton\n",
}


def _deps(fake: GitHubFake, http: Fetcher, *, token: str | None = TOKEN, hosts: bool = True,
          **config: Any) -> ActionDeps:
    app = SimpleNamespace(http=http, settings=SimpleNamespace(github_api_url=fake.url, github_token=token))
    if hosts:
        config["github_hosts"] = {_host(fake): fake.url}
    return ActionDeps(app=app, config=config)


def _host(fake: GitHubFake) -> str:
    return fake.url.split("://", 1)[1]


async def _run(steps: list[dict[str, Any]], workspace: Path, deps: ActionDeps, *, dry_run: bool = False,
               base_url: str | None = None) -> RunResult:
    template = template_from_document({
        "apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template", "metadata": {"name": "remote"},
        "spec": {"steps": steps}}, base_url=base_url)
    return await execute(template, {"name": "orders"}, secrets={}, user=Runner(), workspace=workspace, deps=deps,
                         dry_run=dry_run)


def _fetch_template(url: str, **extra: Any) -> dict[str, Any]:
    return {"id": "fetch", "action": "fetch:template",
            "input": {"url": url, "values": {"name": "${{ parameters.name }}"}, **extra}}


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("dry_run", [False, True])
async def test_fetch_template_renders_a_repository_folder(tmp_path: Path, fake: GitHubFake, http: Fetcher,
                                                          dry_run: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    _repo(tmp_path, fake, SKELETON)
    url = f"http://{_host(fake)}/acme/skeletons/tree/main/skeleton"
    ws = tmp_path / "ws"
    result = await _run([_fetch_template(url, copyWithoutTemplating=["raw.txt"])], ws, _deps(fake, http),
                        dry_run=dry_run)
    assert result.ok, result.error
    assert _tree(ws) == {"README.md": "# orders\n", "orders/__init__.py": "NAME = 'orders'\n",
                         "docs/index.md": "Docs of orders\n", "raw.txt": "${{ kept }}"}
    assert f"info: Read 4 files from {url}" in result.log, result.log
    # read through the API: the branch, its tree, one blob per file of the folder (not other/)
    blobs = [c for c in fake.calls if "/git/blobs/" in c]
    assert len(blobs) == 4 and any("/branches/main" in c for c in fake.calls)
    assert list(temp.iterdir()) == []  # the copy read from GitHub is gone


async def test_github_com_is_read_at_the_operators_api_with_the_token(tmp_path: Path, fake: GitHubFake,
                                                                      http: Fetcher) -> None:
    _repo(tmp_path, fake, SKELETON, private=True)
    ws = tmp_path / "ws"
    url = "https://github.com/acme/skeletons/tree/main/skeleton/docs"
    result = await _run([{"id": "docs", "action": "fetch:plain", "input": {"url": url, "targetPath": "d"}}],
                        ws, _deps(fake, http, hosts=False))
    assert result.ok, result.error
    assert _tree(ws) == {"d/index.md": "Docs of ${{ values.name }}\n"}  # copied, not rendered


async def test_fetch_plain_file_reads_one_file_from_a_blob_url(tmp_path: Path, fake: GitHubFake,
                                                              http: Fetcher) -> None:
    _repo(tmp_path, fake, SKELETON)
    ws = tmp_path / "ws"
    url = f"http://{_host(fake)}/acme/skeletons/blob/main/skeleton/README.md"
    ok = await _run([{"id": "one", "action": "fetch:plain:file", "input": {"url": url, "targetPath": "x/R.md"}}],
                    ws, _deps(fake, http))
    assert ok.ok, ok.error
    assert _tree(ws) == {"x/R.md": "# ${{ values.name }}\n"}
    folder = await _run([{"id": "one", "action": "fetch:plain:file",
                          "input": {"url": url.rsplit("/", 1)[0], "targetPath": "y"}}], tmp_path / "ws2",
                        _deps(fake, http))
    assert not folder.ok and folder.error is not None and "is a folder" in folder.error
    file_as_folder = await _run([_fetch_template(url)], tmp_path / "ws3", _deps(fake, http))
    assert file_as_folder.error is not None and "is a file; fetch:template reads a folder" in file_as_folder.error


async def test_a_relative_url_of_a_template_read_from_a_repository(tmp_path: Path, fake: GitHubFake,
                                                                   http: Fetcher) -> None:
    _repo(tmp_path, fake, {**SKELETON, "template.yaml": "kind: Template\n"})
    base = f"http://{_host(fake)}/acme/skeletons/blob/main/template.yaml"
    ws = tmp_path / "ws"
    result = await _run([_fetch_template("./skeleton/docs")], ws, _deps(fake, http), base_url=base)
    assert result.ok, result.error
    assert _tree(ws) == {"index.md": "Docs of orders\n"}


async def test_symbolic_links_in_the_repository_are_left_out_not_followed(tmp_path: Path, fake: GitHubFake,
                                                                          http: Fetcher) -> None:
    root = _repo(tmp_path, fake, {"skeleton/a.txt": "a\n"})
    secret = tmp_path / "outside.txt"
    secret.write_text("the machine's secret\n")
    os.symlink(secret, root / "skeleton" / "leak.txt")
    os.symlink("a.txt", root / "skeleton" / "alias.txt")
    ws = tmp_path / "ws"
    url = f"http://{_host(fake)}/acme/skeletons/tree/main/skeleton"
    result = await _run([_fetch_template(url)], ws, _deps(fake, http))
    assert result.ok, result.error
    assert _tree(ws) == {"a.txt": "a\n"}
    assert not (ws / "leak.txt").exists() and not (ws / "leak.txt").is_symlink()
    assert any("Left out leak.txt: a symbolic link" in line for line in result.log), result.log
    link = await _run([{"id": "one", "action": "fetch:plain:file",
                        "input": {"url": url.replace("/tree/", "/blob/") + "/leak.txt", "targetPath": "l"}}],
                      tmp_path / "ws2", _deps(fake, http))
    assert link.error is not None and "symbolic link or a submodule; not followed" in link.error


class _EvilFake(GitHubFake):
    """A GitHub whose tree lists a path that climbs out (a hostile or broken server)."""

    bad_path: str = "skeleton/../../escaped.txt"

    def _snapshot(self, folder: Path) -> str:
        commit = super()._snapshot(folder)
        entry = dict(self._trees[commit][0])
        entry["path"] = self.bad_path
        self._trees[commit] = [*self._trees[commit], entry]
        return commit


@pytest.mark.parametrize("bad", ["skeleton/../../escaped.txt", "skeleton//x", "skeleton/./x", "skeleton/a\\..\\b"])
async def test_a_tree_path_that_escapes_is_refused(tmp_path: Path, http: Fetcher, bad: str) -> None:
    fake = _EvilFake(token=TOKEN)
    fake.bad_path = bad
    await fake.start()
    try:
        _repo(tmp_path, fake, {"skeleton/a.txt": "a\n"})
        ws = tmp_path / "ws"
        url = f"http://{_host(fake)}/acme/skeletons/tree/main/skeleton"
        result = await _run([_fetch_template(url)], ws, _deps(fake, http))
        assert not result.ok and result.error is not None
        assert "not a plain relative path; refused" in result.error, result.error
        assert not (tmp_path / "escaped.txt").exists() and not list(ws.rglob("*"))
        assert not [c for c in fake.calls if "/git/blobs/" in c]  # refused before anything was read
    finally:
        await fake.stop()


@pytest.mark.parametrize(("config", "message"), [
    ({"max_skeleton_files": 3}, "holds 4 files, over the 3 a skeleton may have (scaffolder.max_skeleton_files)"),
    ({"max_skeleton_bytes": 40}, "over the 40 a skeleton may have (scaffolder.max_skeleton_bytes)"),
])
async def test_size_limits_refuse_before_reading(tmp_path: Path, fake: GitHubFake, http: Fetcher,
                                                 config: dict[str, Any], message: str) -> None:
    _repo(tmp_path, fake, SKELETON)
    url = f"http://{_host(fake)}/acme/skeletons/tree/main/skeleton"
    result = await _run([_fetch_template(url)], tmp_path / "ws", _deps(fake, http, **config))
    assert not result.ok and result.error is not None and message in result.error, result.error
    assert not [c for c in fake.calls if "/git/blobs/" in c]


@pytest.mark.parametrize(("url", "kwargs", "message"), [
    ("https://gitlab.com/acme/skeletons/tree/main/skeleton", {},
     "is a remote location on gitlab.com, not a GitHub host Callboard reads skeletons from"),
    ("https://github.com/acme/skeletons/tree/main/skeleton", {"token": None, "hosts": False},
     "is a remote location on github.com; reading a repository skeleton needs a GitHub token"),
    ("{fake}/acme/skeletons", {}, "does not name a branch and a path in a GitHub repository"),
    ("{fake}/acme/skeletons/tree/main/nowhere", {}, "there is no 'nowhere' in acme/skeletons at main"),
    ("{fake}/acme/skeletons/tree/release/skeleton", {}, "could not read {fake}/acme/skeletons/tree/release/skeleton: "
                                                        "The branch release of acme/skeletons was not found on GitHub"),
    ("{fake}/acme/private/tree/main/skeleton", {"token": "ghp_not_the_right_one"},
     "The branch main of acme/private was not found on GitHub"),
    ("{fake}/acme/skeletons/tree/main/skeleton?x=1", {}, "has no query, fragment or credentials"),
    ("{fake}/acme/skeletons/tree/main/skeleton/%2e%2e/other", {}, "has the path part '..'; refused"),
])
async def test_refusals_name_the_url_and_why(tmp_path: Path, fake: GitHubFake, http: Fetcher, url: str,
                                             kwargs: dict[str, Any], message: str) -> None:
    _repo(tmp_path, fake, SKELETON)
    _repo(tmp_path, fake, SKELETON, private=True, name="private")
    base = f"http://{_host(fake)}"
    url, message = url.format(fake=base), message.format(fake=base)
    result = await _run([_fetch_template(url)], tmp_path / "ws", _deps(fake, http, **kwargs))
    assert not result.ok and result.error is not None
    assert result.error.startswith("fetch: ") and message in result.error, result.error
    assert TOKEN not in result.error and "ghp_not_the_right_one" not in result.error
    assert not (tmp_path / "ws").exists() or not list((tmp_path / "ws").rglob("*"))
