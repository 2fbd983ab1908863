"""providers/github.py against the local GitHub fake: creating a repository (organization and
user), its default branch, topics and collaborators, one commit with the files, reading a file
back, and errors that say what failed. Every request and answer is checked against GitHub's own
description (tests/fakes/_schemas.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

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
    with pytest.raises(GitHubError) as missing:
        await github.file("acme", "dup", "nope.md", "main", "nope.md")
    assert (str(missing.value), missing.value.status) == ("nope.md was not found on GitHub.", 404)


async def test_reads_raise_an_error_that_says_what_and_why(rig: tuple[GitHubFake, GitHub]) -> None:
    """The read side has the write side's one error shape: ``GitHubError``, its message fit to show
    a person, ``status`` when GitHub answered."""
    fake, github = rig
    with pytest.raises(GitHubError) as missing:
        await github.branch("acme", "nope", "main", "Branch acme/nope@main")
    assert (str(missing.value), missing.value.status) == ("Branch acme/nope@main was not found on GitHub.", 404)
    anonymous = GitHub(github._http, api_url=fake.url)  # no token: the hint says what a private repository needs
    with pytest.raises(GitHubError, match=r"^The tree of acme/nope@abc was not found on GitHub \(a private "
                                          r"repository needs GITHUB_TOKEN\)\.$") as hinted:
        await anonymous.tree("acme", "nope", "abc", "The tree of acme/nope@abc")
    assert hinted.value.status == 404
    with pytest.raises(GitHubError, match="a.md was not found on GitHub") as blob:
        await github.blob("acme", "nope", "abc", "a.md")
    assert blob.value.status == 404


@pytest.fixture
async def answers() -> AsyncIterator[tuple[dict[str, Callable[[], web.Response]], GitHub]]:
    """A server answering each path with the response made for it (GitHub's error answers)."""
    table: dict[str, Callable[[], web.Response]] = {}

    async def handler(request: web.Request) -> web.Response:
        return table[request.path]()

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    http = Fetcher()
    try:
        yield table, GitHub(http, api_url=str(server.make_url("")), token="ghp_x", timeout=5.0)
    finally:
        await http.close()
        await server.close()


async def test_read_errors_keep_their_messages(
    answers: tuple[dict[str, Callable[[], web.Response]], GitHub],
) -> None:
    table, github = answers
    cases: list[tuple[Callable[[], web.Response], str, int]] = [
        (lambda: web.Response(status=403, text="API rate limit exceeded", headers={"X-RateLimit-Remaining": "0"}),
         "what: GitHub refused (403, rate limit reached): API rate limit exceeded", 403),
        (lambda: web.Response(status=401, text="Bad credentials"), "what: GitHub refused (401): Bad credentials", 401),
        (lambda: web.json_response({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
                                   status=401), "what: GitHub refused (401): Bad credentials", 401),  # JSON: its message
        (lambda: web.Response(status=429, text="slow down", headers={"Retry-After": "3600"}),  # not waited for
         "what: GitHub refused (429, rate limit reached): slow down", 429),
        (lambda: web.Response(status=501, text="oops"), "what: GitHub answered 501: oops", 501),
        (lambda: web.json_response([1, 2]), "what: unexpected answer from GitHub", 200),
    ]
    for response, message, status in cases:
        table["/p"] = response
        with pytest.raises(GitHubError) as caught:
            await github.get_json("/p", "what")
        assert (str(caught.value), caught.value.status) == (message, status)
    table["/repos/acme/svc/contents/docs"] = lambda: web.json_response({"type": "dir"})
    with pytest.raises(GitHubError) as folder:
        await github.file("acme", "svc", "docs", "main", "docs")
    assert (str(folder.value), folder.value.status) == ("docs is not a file (it is a dir).", 200)
    table["/repos/acme/svc/contents/a.md"] = lambda: web.json_response({"type": "file", "encoding": "base64",
                                                                         "content": "aGk="})
    assert await github.file("acme", "svc", "a.md", "main", "a.md") == b"hi"


async def test_a_read_from_an_unreachable_github_names_it_without_a_status() -> None:
    async with Fetcher() as http:
        github = GitHub(http, api_url="http://127.0.0.1:9", token="ghp_x", timeout=2.0)
        with pytest.raises(GitHubError, match=r"^Branch a/b@main: GitHub could not be reached \(.+\)\.$") as caught:
            await github.branch("a", "b", "main", "Branch a/b@main")
    assert caught.value.status is None and "ghp_x" not in str(caught.value)
