"""TechDocs end to end: real MkDocs builds (techdocs-core) in build workers, the section index,
the docs and runbook commands, and every bad input the issue names."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from callboard.bot.app import Callboard
from callboard.bot.config import Settings
from callboard.bot.shell.render import render_text
from callboard.bot.slack.render import render
from callboard.bot.surface import View
from callboard.commands.api import Status
from callboard.commands.dispatch import CommandRegistry
from callboard.commands.runbook import runbook_location
from callboard.providers.techdocs.errors import DocsError
from callboard.providers.techdocs.remote import GitHubTree

from ..conftest import REFERENCE as BACKSTAGE

REFERENCE = BACKSTAGE / "techdocs"

COMPONENT = """apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: {name}
  annotations:
    backstage.io/techdocs-ref: {ref}
{extra}spec:
  type: service
  lifecycle: production
  owner: team-a
"""
TEAM = """apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-a
spec:
  type: team
  profile:
    email: team-a@example.com
  children: []
"""
MKDOCS = "site_name: {name}\nnav:\n{nav}plugins:\n  - techdocs-core\n"


def write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")


def component(root: Path, name: str, *, ref: str = "dir:.", mkdocs: str | None = None,
              pages: dict[str, str] | None = None, extra: str = "") -> Path:
    folder = root / name
    write(folder / "catalog-info.yaml", COMPONENT.format(name=name, ref=ref, extra=extra))
    if mkdocs is not None:
        write(folder / "mkdocs.yml", mkdocs)
    for page, text in (pages or {}).items():
        write(folder / page, text)
    return folder


async def open_app(tmp_path: Path, **settings: object) -> Callboard:
    return await Callboard.open(
        Settings(database_url=f"sqlite:///{tmp_path / 'cb.db'}", data_dir=str(tmp_path / "data"), **settings),  # type: ignore[arg-type]
        CommandRegistry.from_entry_points(),
        resident=True,
    )


RUNBOOK = """# Orders runbook

## Cache stampede on sessions-cache

**Symptom.** p99 latency above 2 s right after a Redis failover.

1. Check the hit rate:
   ```bash
   redis-cli -h sessions-cache info stats | grep keyspace
   ```
2. Enable request coalescing:
   ```bash
   kubectl -n orders set env deploy/orders COALESCE=1
   ```
3. Tell `#team-orders`.

## Bad deploy

Roll back with `kubectl rollout undo deploy/orders`.
"""


async def test_builds_search_and_runbook(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    write(root / "org" / "catalog-info.yaml", TEAM)
    component(root, "orders", mkdocs=MKDOCS.format(name="Orders", nav="  - Home: index.md\n  - Runbook: runbook.md\n"),
              pages={"docs/index.md": "# Orders\n\nTakes orders.\n\n## Architecture\n\nPostgreSQL and Kafka.\n",
                     "docs/runbook.md": RUNBOOK})
    # no mkdocs.yml and no docs/: techdocs-cli's defaults (generated config, README as home page)
    component(root, "ledger", pages={"README.md": "# Ledger\n\n## Month-end close\n\nReconciliation runs nightly.\n"})
    app = await open_app(tmp_path)
    try:
        assert not (await app.sync((str(root),))).errors
        docs = await app.sync_docs()
        assert (docs.built, docs.failed) == (2, 0), docs.errors
        site = app.docs.site_dir("component:default/orders")
        assert (site / "runbook" / "index.html").is_file() and (site / "search" / "search_index.json").is_file()
        assert (tmp_path / "catalog" / "orders" / "site").exists() is False  # the source folder is never written

        reply = await app.ask("runbook orders cache stampede")
        assert reply.status is Status.OK, render_text(reply)
        assert reply.data["section"] == "runbook/#cache-stampede-on-sessions-cache"
        text = render_text(reply)
        assert "1. Check the hit rate:" in text and "redis-cli -h sessions-cache info stats" in text
        assert "team-a@example.com" in text  # owner contact follows the steps
        assert "runbook/index.html#cache-stampede-on-sessions-cache" in text

        reply = await app.ask("runbook orders")  # no topic: the runbook's beginning and its topics
        assert reply.status is Status.OK and "Cache stampede on sessions-cache" in [t["title"] for t in reply.data["topics"]]

        hits = (await app.ask("docs reconcilation")).data["hits"]  # a typo
        assert hits[0]["entity"] == "component:default/ledger" and hits[0]["location"] == "#month-end-close"
        home = await app.ask("docs ledger")
        assert home.status is Status.OK and "#month-end-close" in home.data["sections"]
        scoped = await app.ask("docs orders kafka")
        assert scoped.data["hits"][0]["location"] == "#architecture"
        assert all(h["entity"] == "component:default/orders" for h in scoped.data["hits"])

        # a no-change pass builds nothing
        again = await app.sync_docs()
        assert (again.built, again.unchanged) == (0, 2)

        # one page changes: only that site is rebuilt, and the index follows
        write(root / "orders" / "docs" / "index.md", "# Orders\n\n## Architecture\n\nCassandra now.\n")
        changed = await app.sync_docs()
        assert (changed.built, changed.unchanged) == (1, 1)
        assert (await app.ask("docs cassandra")).data["hits"][0]["entity"] == "component:default/orders"
        assert (await app.ask("docs orders kafka")).status is Status.NOT_FOUND

        # the annotation goes away: the site and its sections go too
        write(root / "ledger" / "catalog-info.yaml",
              COMPONENT.format(name="ledger", ref="dir:.", extra="").replace(
                  "  annotations:\n    backstage.io/techdocs-ref: dir:.\n", ""))
        await app.sync((str(root),))
        removed = await app.sync_docs()
        assert removed.removed == 1
        assert not app.docs.site_dir("component:default/ledger").exists()
        assert (await app.ask("docs reconciliation")).status is Status.NOT_FOUND
    finally:
        await app.close()


async def test_bad_docs_fail_alone_with_mkdocs_messages(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    write(root / "org" / "catalog-info.yaml", TEAM)
    (root / ".git").mkdir(parents=True)  # the repository boundary for dir: references
    page = {"docs/index.md": "# Home\n\nText.\n"}
    component(root, "good", mkdocs=MKDOCS.format(name="Good", nav="  - Home: index.md\n"), pages=page)
    component(root, "bad-yaml", mkdocs="site_name: [unclosed\n", pages=page)
    component(root, "bad-config", mkdocs="site_name: x\nnav: 5\n", pages=page)
    component(root, "no-plugin", mkdocs="site_name: x\nplugins:\n  - no-such-plugin\n", pages=page)
    component(root, "latin1", mkdocs="site_name: x\n", pages={"docs/index.md": "# Home\n", "docs/caf\u00e9.md": ""})
    write(root / "latin1" / "docs" / "café.md", "# Café\n\nCrème brûlée\n".encode("latin-1"))
    component(root, "escapes", ref="dir:../../../etc")
    component(root, "hooked", mkdocs="site_name: x\nhooks:\n  - hook.py\n", pages={**page, "hook.py": "X = 1\n"})
    component(root, "not-a-ref", ref="github:acme/x")
    app = await open_app(tmp_path)
    try:
        assert not (await app.sync((str(root),))).errors
        docs = await app.sync_docs()
        errors = dict(docs.errors)
        assert docs.built == 1 and app.docs.site_dir("component:default/good").is_dir()  # siblings unaffected
        assert "mkdocs.yml" in errors["component:default/bad-yaml"]
        assert "nav" in errors["component:default/bad-config"]
        assert 'The "no-such-plugin" plugin is not installed' in errors["component:default/no-plugin"]
        assert "UTF-8" in errors["component:default/latin1"] and "café.md" in errors["component:default/latin1"]
        assert "leaves the repository" in errors["component:default/escapes"]
        assert "hooks" in errors["component:default/hooked"] and "docs.allow_hooks" in errors["component:default/hooked"]
        assert "dir:" in errors["component:default/not-a-ref"]
        assert docs.failed == 7

        # the failure is shown wherever these docs are asked for
        reply = await app.ask("docs no-plugin")
        assert reply.status is Status.ERROR and "no-such-plugin" in render_text(reply)
        reply = await app.ask("runbook bad-config")
        assert "nav" in render_text(reply)
        # a failing build is not retried until its sources change
        again = await app.sync_docs()
        assert (again.built, again.failed, again.unchanged) == (0, 7, 1)
        assert dict(again.errors)["component:default/bad-yaml"] == errors["component:default/bad-yaml"]
    finally:
        await app.close()


async def test_failed_rebuild_keeps_the_last_good_site(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    write(root / "org" / "catalog-info.yaml", TEAM)
    component(root, "svc", mkdocs="site_name: svc\n", pages={"docs/index.md": "# Svc\n\n## Failover\n\nPromote the replica.\n"})
    app = await open_app(tmp_path)
    try:
        await app.sync((str(root),))
        assert (await app.sync_docs()).built == 1
        write(root / "svc" / "mkdocs.yml", "site_name: svc\nplugins:\n  - missing-plugin\n")
        assert (await app.sync_docs()).failed == 1
        reply = await app.ask("docs svc failover")
        assert reply.status is Status.OK and "missing-plugin" in render_text(reply)  # old site, with the error
        assert "Showing the last good build" in render_text(reply)
    finally:
        await app.close()


async def test_hanging_build_is_stopped_at_the_limit(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    write(root / "org" / "catalog-info.yaml", TEAM)
    component(root, "quick", mkdocs="site_name: quick\n", pages={"docs/index.md": "# Quick\n"})
    component(root, "hangs", mkdocs="site_name: hangs\nhooks:\n  - hang.py\n",
              pages={"docs/index.md": "# Hangs\n", "hang.py": "import time\n\ndef on_config(config):\n    time.sleep(600)\n"})
    app = await open_app(tmp_path, docs_allow_hooks=True, docs_build_timeout=4.0, docs_workers=2)
    try:
        await app.sync((str(root),))
        import time

        started = time.monotonic()
        docs = await app.sync_docs()
        assert time.monotonic() - started < 30
        errors = dict(docs.errors)
        assert docs.built == 1 and "longer than 4 s" in errors["component:default/hangs"]
    finally:
        await app.close()


async def test_snippets_are_escaped_for_chat(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    write(root / "org" / "catalog-info.yaml", TEAM)
    component(root, "web", mkdocs="site_name: web\n", pages={"docs/index.md": (
        "# Web\n\n## Injection\n\nattack <script>alert('x')</script> text and <b>bold</b> &amp; "
        "<a href=\"javascript:alert(1)\">click</a> xsstoken here.\n")})
    app = await open_app(tmp_path)
    try:
        await app.sync((str(root),))
        assert (await app.sync_docs()).built == 1
        reply = await app.ask("docs xsstoken")
        assert reply.status is Status.OK
        message = render(reply, View(asked="docs xsstoken"))
        blob = json.dumps(message.blocks)
        assert "xsstoken" in blob
        assert "<script" not in blob and "<b>" not in blob and "<a href" not in blob
        # the rendered page itself shows the markup Markdown allows; the chat never does
    finally:
        await app.close()


@pytest.mark.reference
async def test_reference_sites_build(tmp_path: Path) -> None:
    """Backstage's own TechDocs examples build as techdocs-cli would build them."""
    root = tmp_path / "catalog"
    write(root / "org" / "catalog-info.yaml", TEAM)
    for name in ("documented-component", "backstage-demo"):
        shutil.copytree(REFERENCE / name, root / name)
    app = await open_app(tmp_path)
    try:
        await app.sync((str(root),))
        docs = await app.sync_docs()
        assert (docs.built, docs.failed) == (2, 0), docs.errors
        hits = (await app.ask("docs task lists")).data["hits"]
        assert hits[0]["entity"] == "component:default/documented-component"
        assert hits[0]["location"] == "extensions/#task-lists"
        state = await app.docs.state("component:default/documented-component")
        assert state is not None and state.pages == 4
    finally:
        await app.close()


async def test_runbook_sources(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    write(root / "org" / "catalog-info.yaml", TEAM)
    component(root, "annotated", mkdocs="site_name: annotated\n",
              extra="    callboard.io/runbook: docs/ops/on-call.md#failover\n",
              pages={"docs/index.md": "# Annotated\n", "docs/ops/on-call.md": "# On call\n\n## Failover\n\nPromote.\n\n## Other\n\nx\n"})
    write(root / "linked" / "catalog-info.yaml", COMPONENT.format(name="linked", ref="dir:.", extra="  links:\n    - url: https://wiki.example.com/rb\n      title: Ops runbook\n").replace(
        "  annotations:\n    backstage.io/techdocs-ref: dir:.\n", ""))
    write(root / "bare" / "catalog-info.yaml", COMPONENT.format(name="bare", ref="dir:.", extra="").replace(
        "  annotations:\n    backstage.io/techdocs-ref: dir:.\n", ""))
    app = await open_app(tmp_path)
    try:
        await app.sync((str(root),))
        await app.sync_docs()
        reply = await app.ask("runbook annotated")
        assert reply.data["section"] == "ops/on-call/#failover" and "Promote." in render_text(reply)
        reply = await app.ask("runbook linked")
        assert reply.status is Status.OK and "https://wiki.example.com/rb" in render_text(reply)
        reply = await app.ask("runbook bare")
        assert reply.status is Status.NOT_FOUND and "team-a@example.com" in render_text(reply)
    finally:
        await app.close()


@pytest.mark.parametrize(
    ("written", "location"),
    [("runbook.md", "runbook/"), ("docs/runbook.md#db", "runbook/#db"), ("index.md", ""),
     ("ops/index.md", "ops/"), ("runbook/", "runbook/"), ("./docs/a/b.md", "a/b/")],
)
def test_runbook_location(written: str, location: str) -> None:
    assert runbook_location(written) == location


async def test_links_follow_backstage_when_configured(tmp_path: Path) -> None:
    app = await open_app(tmp_path, backstage_base_url="https://backstage.example.com")
    try:
        assert app.docs.link("component:default/svc", "runbook/#db") == (
            "https://backstage.example.com/docs/default/component/svc/runbook/#db")
    finally:
        await app.close()


async def test_url_docs_are_fetched_from_github(tmp_path: Path) -> None:
    """url: references, and dir: references of entities read from GitHub, through GitHub's REST
    API (a local fake): fetched once per commit, one blob per changed file."""
    from ..fakes.github import GitHubFake

    repo = tmp_path / "repo"
    write(repo / "docs-site" / "mkdocs.yml", "site_name: remote\n")
    write(repo / "docs-site" / "docs" / "index.md", "# Remote\n\n## Failover\n\nPromote the standby replica.\n")
    write(repo / "docs-site" / "docs" / "other.md", "# Other\n\nUnchanged page.\n")
    fake = GitHubFake()
    await fake.start()
    fake.add_repo("acme", "svc", {"main": repo}, private=True)
    root = tmp_path / "catalog"
    write(root / "org" / "catalog-info.yaml", TEAM)
    component(root, "remote", ref="url:https://github.com/acme/svc/tree/main/docs-site")
    component(root, "missing", ref="url:https://github.com/acme/nope/tree/main/docs")
    app = await open_app(tmp_path, github_api_url=fake.url, github_token=fake.token)
    try:
        await app.sync((str(root),))
        docs = await app.sync_docs()
        assert docs.built == 1, docs.errors
        assert "not found on GitHub" in dict(docs.errors)["component:default/missing"]
        assert (await app.ask("docs standby replica")).data["hits"][0]["entity"] == "component:default/remote"
        # same commit: one request (the branch), nothing built
        fake.calls.clear()
        again = await app.sync_docs()
        assert again.built == 0 and [c for c in fake.calls if "acme/svc" in c] == ["/repos/acme/svc/branches/main"]
        # one page changes: one blob downloaded, the site rebuilt
        write(repo / "docs-site" / "docs" / "index.md", "# Remote\n\n## Failover\n\nPromote the warm replica.\n")
        fake.calls.clear()
        changed = await app.sync_docs()
        assert changed.built == 1
        assert len([c for c in fake.calls if "/git/blobs/" in c]) == 1
        assert (await app.ask("docs warm replica")).data["hits"][0]["entity"] == "component:default/remote"
    finally:
        await app.close()
        await fake.stop()


async def test_private_repository_needs_the_token(tmp_path: Path) -> None:
    from ..fakes.github import GitHubFake

    repo = tmp_path / "repo"
    write(repo / "docs" / "index.md", "# Home\n")
    fake = GitHubFake()
    await fake.start()
    fake.add_repo("acme", "private", {"main": repo}, private=True)
    root = tmp_path / "catalog"
    write(root / "org" / "catalog-info.yaml", TEAM)
    component(root, "svc", ref="url:https://github.com/acme/private/tree/main")
    app = await open_app(tmp_path, github_api_url=fake.url)
    try:
        await app.sync((str(root),))
        docs = await app.sync_docs()
        assert "GITHUB_TOKEN" in dict(docs.errors)["component:default/svc"]
    finally:
        await app.close()
        await fake.stop()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/acme/svc/tree/main/docs-site", ("acme", "svc", "main", "docs-site")),
        ("https://github.com/acme/svc/tree/main", ("acme", "svc", "main", "")),
        ("https://github.com/acme/svc.git", ("acme", "svc", "HEAD", "")),
        ("https://ghe.example.com/acme/svc/blob/v2/services/a/catalog-info.yaml", ("acme", "svc", "v2", "services/a")),
    ],
)
def test_github_urls(url: str, expected: tuple[str, str, str, str]) -> None:
    from callboard.providers.techdocs.remote import parse_github_url

    tree = parse_github_url(url)
    assert isinstance(tree, GitHubTree) and (tree.owner, tree.repo, tree.ref, tree.path) == expected


def test_github_urls_refused() -> None:
    from callboard.providers.techdocs.remote import parse_github_url, relative_tree

    for url, says in (("https://github.com/acme", "is not a repository URL"),
                      ("https://github.com/acme/svc/pulls/3", "expected /tree/<branch>/<path>"),
                      ("ftp://github.com/acme/svc", "is not a repository URL"),
                      ("https://user:hunter2@github.com/acme/svc/tree/main/../x", "may not contain '..'"),
                      ("https://[::1/acme/svc", "is not a valid URL")):
        refused = parse_github_url(url)
        assert isinstance(refused, DocsError) and says in refused.message, refused
        assert "hunter2" not in str(refused)
    base = "https://github.com/acme/svc/blob/main/services/a/catalog-info.yaml"
    tree = relative_tree(base, "../b/docs")
    assert isinstance(tree, GitHubTree) and tree.path == "services/b/docs"
    leaves = relative_tree(base, "../../../etc")
    assert isinstance(leaves, DocsError) and leaves.message == "dir:../../../etc leaves the repository acme/svc: refused."
    assert isinstance(relative_tree("https://github.com/acme", "docs"), DocsError)


async def test_a_github_failure_is_a_docs_error(tmp_path: Path) -> None:
    """GitHubDocs turns the GitHub client's errors (``GitHubError``) into the TechDocs layer's
    ``DocsError``, with the client's message; a reference it refuses is one too."""
    from callboard.providers.techdocs.remote import GitHubDocs

    from ..fakes.github import GitHubFake

    write(tmp_path / "repo" / "docs" / "index.md", "# Home\n")
    fake = GitHubFake()
    await fake.start()
    fake.add_repo("acme", "svc", {"main": tmp_path / "repo"})
    try:
        docs = GitHubDocs(tmp_path / "cache", fake.url, reading_allow=("127.0.0.1",))
        hosted = "https://github.com/acme/"
        missing = await docs.fetch(GitHubTree("acme", "nope", "main", "docs", f"{hosted}nope"), tmp_path / "a")
        assert missing == DocsError(
            message="Branch acme/nope@main:docs was not found on GitHub (a private repository needs GITHUB_TOKEN).")
        no_folder = await docs.fetch(GitHubTree("acme", "svc", "main", "site", f"{hosted}svc"), tmp_path / "b")
        assert no_folder == DocsError(message="acme/svc@main:site: there is no such folder in the repository.")
        elsewhere = GitHubTree("acme", "svc", "main", "", "https://gitlab.com/acme/svc")
        assert docs.refused(elsewhere) == await docs.fetch(elsewhere, tmp_path / "c")
        assert isinstance(docs.refused(elsewhere), DocsError) and "is not on GitHub" in str(docs.refused(elsewhere))
        assert await docs.fetch(GitHubTree("acme", "svc", "main", "docs", f"{hosted}svc"), tmp_path / "d") is None
        assert (tmp_path / "d" / "index.md").read_text() == "# Home\n"
    finally:
        await fake.stop()


def test_heading_paths() -> None:
    from callboard.providers.techdocs.content import heading_paths

    html = ('<nav><h2 id="nav">Menu</h2></nav><article><h1 id="runbook">Runbook<a class="headerlink">¶</a></h1>'
            '<h2 id="db">Database</h2><h3 id="failover">Failover</h3><h3 id="vacuum">Vacuum</h3>'
            '<h2 id="cache">Cache</h2></article>')
    assert heading_paths(html) == {"runbook": (), "db": ("Runbook",), "failover": ("Runbook", "Database"),
                                   "vacuum": ("Runbook", "Database"), "cache": ("Runbook",)}


async def test_a_worker_that_dies_says_why(tmp_path: Path) -> None:
    from callboard.providers.techdocs.build import BuildJob
    from callboard.providers.techdocs.worker import BuildPool

    write(tmp_path / "src" / "mkdocs.yml", "site_name: x\nhooks:\n  - die.py\n")
    write(tmp_path / "src" / "docs" / "index.md", "# Home\n")
    write(tmp_path / "src" / "die.py", "import os, sys\nsys.stderr.write('segfault in a C extension\\n')\nsys.stderr.flush()\nos._exit(3)\n")
    pool = BuildPool(1, timeout=60)
    try:
        result = await pool.build(BuildJob(source=str(tmp_path / "src"), out=str(tmp_path / "out"), site_name="x",
                                           allow_hooks=True))
    finally:
        await pool.close()
    assert not result.ok and "exited (code 3)" in str(result.error) and "segfault in a C extension" in str(result.error)


async def test_a_pool_closing_while_cancelled_reaps_every_worker_before_it_returns(tmp_path: Path) -> None:
    """A server shutting down cancels the docs sync while its pool closes: ``close()`` returns (with
    the cancellation) only once every worker is reaped. Returning when the first one was left the
    others' reaping to an event loop about to close: their processes and pipes outlived it."""
    from callboard.providers.techdocs.build import BuildJob
    from callboard.providers.techdocs.worker import BuildPool

    write(tmp_path / "src" / "mkdocs.yml", "site_name: x\n")
    write(tmp_path / "src" / "docs" / "index.md", "# Home\n")
    pool = BuildPool(3, timeout=60)
    jobs = [BuildJob(source=str(tmp_path / "src"), out=str(tmp_path / f"out{i}"), site_name="x") for i in range(3)]
    results = await asyncio.gather(*(pool.build(job) for job in jobs))
    assert all(r.ok for r in results), results
    workers = list(pool._workers)
    assert len(workers) == 3
    closing = asyncio.ensure_future(pool.close())
    await asyncio.sleep(0)  # stdin closed: the workers are on their way out
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert [w.proc.returncode is not None for w in workers] == [True] * 3
