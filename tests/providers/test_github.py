"""providers/github.py against the local GitHub fake: creating a repository (organization and
user), its default branch, topics and collaborators, one commit with the files, reading a file
back, and errors that say what failed. Every request and answer is checked against GitHub's own
description (tests/fakes/_schemas.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from callboard.providers.github import Collaborator, FileToPush, GitHub, GitHubError, NewRepository
from callboard.providers.http import Fetcher

from ..fakes._schemas import api_description, schema_errors_at
from ..fakes.github import GitHubFake

REST_API = api_description("github")


def _pointer(template: str) -> str:
    return "/paths/" + template.replace("~", "~0").replace("/", "~1")


def exchange_errors(fake: GitHubFake) -> list[str]:
    """Where the client's requests or the fake's answers break the description."""
    problems = []
    for ex in fake.exchanges:
        at = f"{_pointer(ex.template)}/{ex.method.lower()}"
        if ex.request is not None:
            problems += [f"{ex.method} {ex.template} request: {e}" for e in schema_errors_at(
                REST_API, ex.request, f"{at}/requestBody/content/application~1json/schema")]
        if ex.answer is not None and ex.status < 300:
            problems += [f"{ex.method} {ex.template} {ex.status}: {e}" for e in schema_errors_at(
                REST_API, ex.answer, f"{at}/responses/{ex.status}/content/application~1json/schema", formats=False)]
    return problems


@pytest.fixture
async def rig() -> AsyncIterator[tuple[GitHubFake, GitHub]]:
    fake = GitHubFake()
    await fake.start()
    http = Fetcher()
    try:
        # a GitHub Enterprise-like base URL: everything is asked of the configured API
        yield fake, GitHub(http, api_url=fake.url, token=fake.token, timeout=5.0)
    finally:
        await http.close()
        await fake.stop()


FILES = (FileToPush(path="catalog-info.yaml", content=b"kind: Component\n"),
         FileToPush(path="scripts/run.sh", content=b"#!/bin/sh\necho hi\n", executable=True),
         FileToPush(path="logo.png", content=bytes(range(256))))


async def test_create_an_org_repository_with_everything(rig: tuple[GitHubFake, GitHub]) -> None:
    fake, github = rig
    spec = NewRepository(owner="acme", name="payments", description="Takes money", visibility="private",
                         default_branch="trunk", topics=("payments", "python"),
                         collaborators=(Collaborator(username="ana", permission="admin"), Collaborator(username="ben")))
    made = await github.create_repository(spec, FILES, message="Scaffolded by Callboard")
    created = fake.created[("acme", "payments")]
    assert (created.description, created.visibility, created.default_branch) == ("Takes money", "private", "trunk")
    assert set(created.refs) == {"trunk"}  # the auto-init branch is gone
    assert fake.files("acme", "payments", "trunk") == {f.path: f.content for f in FILES}
    assert created.commits[made.commit or ""]["message"] == "Scaffolded by Callboard"
    assert created.topics == ["payments", "python"] and created.collaborators == {"ana": "admin", "ben": "push"}
    assert made.html_url.endswith("/acme/payments") and made.default_branch == "trunk"
    assert await github.file("acme", "payments", "scripts/run.sh", "trunk", "run.sh") == FILES[1].content
    modes = {e["path"]: e["mode"] for e in created.trees[created.commits[made.commit or ""]["tree"]]}
    assert modes["scripts/run.sh"] == "100755" and modes["logo.png"] == "100644"
    assert not exchange_errors(fake), exchange_errors(fake)


async def test_a_user_repository_and_a_second_push(rig: tuple[GitHubFake, GitHub]) -> None:
    fake, github = rig
    made = await github.create_repository(NewRepository(owner="octocat", name="notes", organization=False,
                                                         visibility="public"))
    assert made.owner == "octocat" and made.commit is None
    assert fake.created[("octocat", "notes")].private is False and "POST /user/repos" in fake.calls
    first = await github.push("octocat", "notes", "main", [FileToPush(path="a.md", content=b"a")], message="one")
    second = await github.push("octocat", "notes", "main", [FileToPush(path="b.md", content=b"b")], message="two")
    created = fake.created[("octocat", "notes")]
    assert created.commits[second]["parents"] == [first]  # a fast-forward on the branch
    assert fake.files("octocat", "notes", "main") == {"b.md": b"b"}
    assert not exchange_errors(fake), exchange_errors(fake)


async def test_errors_name_what_failed(rig: tuple[GitHubFake, GitHub]) -> None:
    fake, github = rig
    await github.create_repository(NewRepository(owner="acme", name="dup"))
    with pytest.raises(GitHubError, match=r"create the repository acme/dup: GitHub answered 422: .*already exists"):
        await github.create_repository(NewRepository(owner="acme", name="dup"))
    with pytest.raises(GitHubError, match=r"acme-elsewhere/x: GitHub answered 404.*GITHUB_TOKEN"):
        await github.create_repository(NewRepository(owner="acme-elsewhere", name="x"))
    for bad in ("../x", "/etc/passwd", "a//b", ".git/config"):
        with pytest.raises(GitHubError, match="not a plain relative path"):
            await github.push("acme", "dup", "main", [FileToPush(path=bad, content=b"")], message="m")
    anonymous = GitHub(github._http, api_url=fake.url)  # no token
    with pytest.raises(GitHubError, match="401"):
        await anonymous.create_repository(NewRepository(owner="acme", name="y"))
    missing: Any = await github.file("acme", "dup", "nope.md", "main", "nope.md")
    assert missing == "nope.md was not found on GitHub."
