"""Red-team cases for untrusted data (issue 10) that the first tests did not try.

Each test here was written as an attacker's input against the real code (real loopback servers,
real syncs, real MkDocs builds in the real worker pool); those that found a hole failed before the
fix that follows them in the history, those that held are kept so they keep holding.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from callboard.bot.shell.render import render_text
from callboard.catalog.urls import strip_userinfo
from callboard.providers.http import Answer, Fetcher, FetchProblem
from callboard.providers.techdocs.errors import DocsError
from callboard.providers.techdocs.remote import GitHubDocs, GitHubTree, parse_github_url

from .test_ssrf import GOOD, TEAM, _location, sites  # noqa: F401 - sites is a fixture


# --- url: docs references and the GitHub API -----------------------------------------------


@pytest.fixture
async def github_api() -> AsyncIterator[tuple[str, list[tuple[str, str | None]]]]:
    """A GitHub Enterprise API on loopback under /api/v3 that records (path, Authorization) and
    answers 404 to everything."""
    seen: list[tuple[str, str | None]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append((request.raw_path, request.headers.get("Authorization")))
        return web.json_response({"message": "Not Found"}, status=404)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}/api/v3", seen
    finally:
        await server.close()


@pytest.mark.parametrize("ref", [
    "https://github.com/../../tree/main/docs",          # owner and repository are dot segments
    "https://github.com/acme/../tree/main/docs",
    "https://github.com/./svc/tree/main",
    "https://github.com/acme/svc/tree/../docs",         # the branch is a dot segment
    "https://github.com/acme/svc/tree/./docs",
])
async def test_dot_segments_in_a_github_reference_never_move_the_token_off_the_repos_api(
    tmp_path: Path, github_api: tuple[str, list[tuple[str, str | None]]], ref: str
) -> None:
    """Owner, repository and branch come from catalog data and go into the API path: ``..`` there
    would take the request (and GITHUB_TOKEN) to other paths of the API host (``/api/branches/main``
    instead of ``/api/v3/repos/…``). Such a reference is refused before anything is asked."""
    api, seen = github_api
    tree = parse_github_url(ref)
    if isinstance(tree, GitHubTree):
        docs = GitHubDocs(tmp_path / "cache", api, token="ghp_SECRET", reading_allow=("127.0.0.1",))
        problem = await docs.fetch(tree, tmp_path / "out")
        assert problem is not None
    else:
        problem = tree
    assert all(path.startswith("/api/v3/repos/") for path, _ in seen), seen
    assert seen == [], seen
    assert isinstance(problem, DocsError)
    assert "." in problem.message and ref.split("/tree")[0] in problem.message, problem


# --- TechDocs builds from untrusted repositories --------------------------------------------


async def test_extra_templates_render_in_the_sandbox_and_run_nothing(tmp_path: Path) -> None:
    """MkDocs compiles ``extra_templates`` with a bare ``jinja2.Template`` (no sandbox, whatever
    ``on_env`` returned), so a template in the docs folder could reach ``os`` through the globals
    of ``cycler`` and run anything in the build worker. Such a template is refused for its entity;
    a harmless one still renders; nothing runs."""
    from .test_mkdocs_untrusted import catalog, open_app, repository, store_bytes

    root = catalog(tmp_path)
    marker = tmp_path / "MARKER-extra-template"
    payload = "{{ cycler.__init__.__globals__.os.system('touch %s') }}" % marker
    repository(root, "evil", {"mkdocs.yml": "site_name: evil\nextra_templates: [evil.html]\n",
                               "docs/index.md": "# Home\n", "docs/evil.html": f"<p>{payload}</p>\n"})
    repository(root, "fine", {"mkdocs.yml": "site_name: fine\nextra_templates: [about.html]\n",
                              "docs/index.md": "# Home\n",
                              "docs/about.html": "<p>about {{ config.site_name }} and-rendered</p>\n"})
    app = await open_app(tmp_path)
    try:
        assert not (await app.sync((str(root),))).errors
        docs = await app.sync_docs()
        errors = dict(docs.errors)
        assert not marker.exists()
        assert "component:default/fine" not in errors and docs.built >= 1, errors
        assert "evil.html" in errors["component:default/evil"] and "sandbox" in errors["component:default/evil"], errors
        assert b"about fine and-rendered" in store_bytes(app)
    finally:
        await app.close()


async def test_plantuml_options_cannot_run_a_command_or_call_a_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where PlantUML is installed, plantuml_markdown runs ``plantuml_cmd`` (split at spaces) for
    every diagram and sends diagrams to each of ``servers``: a repository's mkdocs.yml could run any
    command in the build worker, or make it call an internal address and put the answer in the
    site. Only the options that shape the picture are kept; the build uses the local plantuml."""
    from .test_mkdocs_untrusted import catalog, open_app, repository, store_bytes

    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "plantuml"  # stands in for PlantUML: a diagram is an SVG that says it was drawn here
    fake.write_text("#!/bin/sh\ncat >/dev/null\nprintf '<svg xmlns=\"http://www.w3.org/2000/svg\"><text>drawn-by-local-plantuml</text></svg>'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    calls: list[str] = []

    async def internal(request: web.Request) -> web.StreamResponse:
        calls.append(request.path)
        return web.Response(text="INTERNAL-ANSWER", content_type="image/svg+xml")

    server_app = web.Application()
    server_app.router.add_route("*", "/{tail:.*}", internal)
    server = TestServer(server_app, host="127.0.0.1")
    await server.start_server()
    marker = tmp_path / "MARKER-plantuml-cmd"
    # no spaces (the extension splits at them): tabs separate what Python and the shell read
    command = "%s -c import\\tos;os.system('touch\\t%s')" % (sys.executable, marker)  # \\t: a tab, once YAML reads it
    diagram = "# Home\n\n```plantuml\nBob -> Alice : hello\n```\n"
    root = catalog(tmp_path)
    repository(root, "cmd", {"mkdocs.yml": ("site_name: cmd\nmarkdown_extensions:\n  - plantuml_markdown:\n"
                                            f"      format: svg\n      plantuml_cmd: \"{command}\"\n"),
                             "docs/index.md": diagram})
    repository(root, "servers", {"mkdocs.yml": ("site_name: servers\nmarkdown_extensions:\n  - plantuml_markdown:\n"
                                                f"      format: svg\n      servers: [http://127.0.0.1:{server.port}/plantuml]\n"),
                                 "docs/index.md": diagram})
    app = await open_app(tmp_path)
    try:
        assert not (await app.sync((str(root),))).errors
        docs = await app.sync_docs()
        assert docs.built == 2, dict(docs.errors)
        stored = store_bytes(app)
    finally:
        await app.close()
        await server.close()
    assert not marker.exists()
    assert calls == []
    assert b"INTERNAL-ANSWER" not in stored
    drawn = base64.b64encode(b'<svg xmlns="http://www.w3.org/2000/svg"><text>drawn-by-local-plantuml</text></svg>')
    assert stored.count(drawn) >= 2  # both diagrams drawn by the local program, inlined as images


async def test_the_repository_git_folder_never_reaches_the_site(tmp_path: Path) -> None:
    """A repository's ``.git`` is written by whoever cloned it, not by its authors: its ``config``
    often holds the clone's credentials (a token in the remote URL, or an ``extraheader``). A
    snippet of ``.git/config``, a symlink in the docs to ``../.git`` and ``theme.custom_dir: .git``
    (whose files a template could include) all published them. ``.git`` counts as outside."""
    from .test_mkdocs_untrusted import catalog, open_app, repository, store_bytes

    token = "ghs_CLONE-TOKEN-written-by-the-server"
    git_config = (f'[remote "origin"]\n\turl = https://x-access-token:{token}@github.com/acme/svc\n'
                  f'[http "https://github.com/"]\n\textraheader = AUTHORIZATION: basic {token}\n')
    root = catalog(tmp_path)
    repos = [
        repository(root, "snippet", {"mkdocs.yml": "site_name: snippet\n",
                                     "docs/index.md": '# Home\n\n--8<-- ".git/config"\n\nsnippet-page-built\n'}),
        repository(root, "linked", {"mkdocs.yml": "site_name: linked\n", "docs/index.md": "# Home\n\nlinked-page-built\n"},
                   links={"docs/gitdir": "../.git"}),
        repository(root, "themed", {"mkdocs.yml": "site_name: themed\ntheme:\n  name: material\n  custom_dir: .git\n",
                                    "docs/index.md": "# Home\n"}),
    ]
    for repo in repos:
        (repo / ".git" / "config").write_text(git_config)
        (repo / ".git" / "main.html").write_text("{% extends 'base.html' %}{% block content %}{% include 'config' %}"
                                                 "{% endblock %}")
    app = await open_app(tmp_path)
    try:
        assert not (await app.sync((str(root),))).errors
        docs = await app.sync_docs()
        errors = dict(docs.errors)
        stored = store_bytes(app)
    finally:
        await app.close()
    assert token.encode() not in stored
    assert b"snippet-page-built" in stored and b"linked-page-built" in stored, errors
    assert ".git" in errors["component:default/themed"], errors


async def test_templates_cannot_call_what_loads_yaml_or_runs_plugins(tmp_path: Path) -> None:
    """Jinja's sandbox blocks ``__class__`` and friends but lets a template call any public method
    of the objects MkDocs hands it: ``config.load_file(text)`` parses text with MkDocs' (unsafe)
    YAML loader, so ``!!python/object/apply`` in a template ran in the build worker, from
    ``extra_templates`` and from ``theme.custom_dir`` alike; ``config.nav.append`` plus
    ``config.plugins.get('monorepo').on_config(config)`` got a YAML file of the docs read the same
    way. Templates may read (``get``, ``items``, ``keys``, ``values``), not call the rest, and not
    change MkDocs' lists and mappings; a theme override that only reads still builds."""
    from .test_mkdocs_untrusted import catalog, open_app, repository, store_bytes

    root = catalog(tmp_path)
    marker = tmp_path / "MARKER-template-call"

    def load(n: int) -> str:
        return "{{ config.load_file(\"x: !!python/object/apply:os.system ['touch %s-%d']\") }}" % (marker, n)

    monorepo = ("{{ config.nav.append({'x': '!include ' ~ config.docs_dir ~ '/evil/mkdocs.yml'}) }}"
                "{{ config.plugins.get('monorepo').on_config(config) }}")
    evil_yml = "site_name: !!python/object/apply:os.system ['touch %s-3']\n" % marker
    repository(root, "extra", {"mkdocs.yml": "site_name: extra\nextra_templates: [evil.html]\n",
                               "docs/index.md": "# Home\n", "docs/evil.html": load(1)})
    repository(root, "themed", {"mkdocs.yml": "site_name: themed\ntheme:\n  name: material\n  custom_dir: overrides\n",
                                "docs/index.md": "# Home\n",
                                "overrides/main.html": "{% extends 'base.html' %}{% block content %}" + load(2)
                                + "{% endblock %}"})
    repository(root, "mono", {"mkdocs.yml": "site_name: mono\nextra_templates: [evil.html]\nnav:\n  - Home: index.md\n",
                              "docs/index.md": "# Home\n", "docs/evil.html": monorepo,
                              "docs/evil/mkdocs.yml": evil_yml, "docs/evil/docs/index.md": "# x\n"})
    inner = "{{ cycler.__init__.__globals__.os.system('touch %s-4') }}" % marker
    repository(root, "escape", {  # a Template made from a class reached through the guard plugin: no sandbox
        "mkdocs.yml": "site_name: escape\nextra_templates: [evil.html]\n", "docs/index.md": "# Home\n",
        "docs/evil.html": "{{ config.plugins.get('callboard-guard').sandbox.template_class(\"%s\").render() }}" % inner})
    repository(root, "klass", {  # any class reached through an object
        "mkdocs.yml": "site_name: klass\nextra_templates: [evil.html]\n", "docs/index.md": "# Home\n",
        "docs/evil.html": "{{ config.plugins.get('search').config_class().items() }}"})
    repository(root, "reader", {
        "mkdocs.yml": "site_name: reader\nextra:\n  team: blue-team-extra\ntheme:\n  name: material\n  custom_dir: overrides\n",
        "docs/index.md": "---\nowner: meta-owner-value\n---\n# Home\n",
        "overrides/main.html": ("{% extends 'base.html' %}{% block content %}{{ super() }}"
                                "{% set n = namespace(seen=0) %}{% set c = cycler('a', 'b') %}{{ c.next() }}"
                                "<p>{{ config.extra.get('team') }} {{ page.meta.get('owner') }} "
                                "{% for k, v in config.extra.items() %}{{ k }}{% endfor %}</p>{% endblock %}")})
    app = await open_app(tmp_path)
    try:
        assert not (await app.sync((str(root),))).errors
        docs = await app.sync_docs()
        errors = dict(docs.errors)
        assert list(tmp_path.glob(marker.name + "*")) == []
        for name in ("extra", "themed", "mono", "klass"):
            assert "sandbox" in errors.get(f"component:default/{name}", ""), errors
        assert "component:default/escape" in errors
        assert "component:default/reader" not in errors, errors
        stored = store_bytes(app)
        assert b"blue-team-extra meta-owner-value team" in stored
    finally:
        await app.close()


# --- catalog files ---------------------------------------------------------------------------


async def test_placeholders_repeated_through_aliases_cannot_multiply_what_is_read(
    tmp_path: Path, make_app, sqlite_url: str
) -> None:
    """Each placeholder read stops at catalog.max_file_bytes, but nothing bounded their sum: one
    ``$text`` of a 1 MB file behind a YAML anchor, repeated 300 times by aliases (a 2 kB catalog
    file), read 300 MB into memory before the 4 MB entity limit said no; a few such documents
    exhaust the server. What placeholders pull into one document is now capped as they are read;
    the document is refused with a message naming the limit, and its neighbours sync."""
    from .test_catalog_files import component, synced, with_config, write

    root = tmp_path / "catalog"
    write(root / "big.txt", "x" * 1_000_000)
    aliases = ", ".join(["*t"] * 300)
    fan_out = with_config("fan-out", f"\n    first: &t {{$text: big.txt}}\n    copies: [{aliases}]")
    write(root / "catalog-info.yaml", "---\n".join([fan_out, component("neighbour")]))
    app = await make_app(sqlite_url)
    tracemalloc.start()
    try:
        result = await synced(app, root)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await app.close()
    (error,) = [e for e in result.summary.errors if e.entity == "component:default/fan-out"]
    assert "placeholders" in error.message and "MB" in error.message and "big.txt" in error.message, error
    assert "component:default/neighbour" in result.keys
    assert peak < 64_000_000, f"peak {peak / 1e6:.0f} MB"


async def test_one_placeholder_repeated_by_aliases_is_not_read_thousands_of_times(
    tmp_path: Path, make_app, sqlite_url: str
) -> None:
    """A tiny ``$text`` behind an anchor, repeated 5,000 times by aliases: 5,000 reads (for a URL
    catalog, 5,000 fetches) from a 20 kB file. Refused once past the placeholder count."""
    from .test_catalog_files import component, synced, with_config, write

    root = tmp_path / "catalog"
    write(root / "small.txt", "x")
    aliases = ", ".join(["*t"] * 5000)
    fan_out = with_config("fan-out", f"\n    first: &t {{$text: small.txt}}\n    copies: [{aliases}]")
    write(root / "catalog-info.yaml", "---\n".join([fan_out, component("neighbour")]))
    app = await make_app(sqlite_url)
    try:
        result = await synced(app, root)
    finally:
        await app.close()
    (error,) = [e for e in result.summary.errors if e.entity == "component:default/fan-out"]
    assert "more than 1,000 placeholders" in error.message, error
    assert "component:default/neighbour" in result.keys


# --- credentials in URLs ---------------------------------------------------------------------


def test_a_password_holding_an_at_sign_is_stripped_whole() -> None:
    """The user info of a URL runs to the last ``@`` before the path (that is how the URL is
    fetched); stripping it at the first ``@`` showed the rest of the password."""
    assert strip_userinfo("http://bob:hunter@2secret@git.example/c.yaml") == "http://git.example/c.yaml"
    assert strip_userinfo("url:https://a@b:c@d@git.example/x?y=1@2") == "url:https://git.example/x?y=1@2"
    assert strip_userinfo("http://git.example/a@b and bob@example.com") == "http://git.example/a@b and bob@example.com"


async def test_a_catalog_url_whose_password_holds_an_at_sign_never_shows_it(make_app, sqlite_url: str, sites) -> None:
    root = await sites(team=TEAM + "---\n" + GOOD.format(name="web-thing"))
    root.auth = "bob:hunter@2secret"
    root.files["/catalog-info.yaml"] = _location("org", "./team.yaml", "./gone.yaml")
    secret_url = root.url("/catalog-info.yaml", userinfo="bob:hunter@2secret@")
    app = await make_app(sqlite_url, reading_allow=("127.0.0.1",))
    try:
        summary = await app.sync((secret_url,))
        info = await app.ask("info web-thing")
        entity = await app.catalog.get("component:default/web-thing")
    finally:
        await app.close()
    assert entity is not None  # fetched with the credentials
    shown = [render_text(info), json.dumps(info.data), json.dumps(entity.data),
             *(str(e) for e in summary.errors), *(e.file for e in summary.errors)]
    assert summary.errors
    for text in shown:
        assert "2secret" not in text and "hunter" not in text, text


async def test_odd_targets_in_a_file_catalog_reach_nothing(tmp_path: Path, make_app, sqlite_url: str, sites) -> None:
    """Held when tried: Location targets and placeholders of a file catalog in spellings meant to
    slip past a check (``file:`` and ``url:file:`` schemes, an upper-case scheme, IPv4-mapped,
    ``0`` and trailing-dot hosts, ``user@`` before a loopback host, a ``$text`` that is a folder)
    read nothing outside the catalog and call no internal server; each is one clear error and
    the rest of the catalog syncs."""
    from .test_catalog_files import component, synced, with_config, write

    internal = await sites(secret=GOOD.format(name="secret-thing"))
    port = internal.port
    root = tmp_path / "catalog"
    write(root / "org" / "catalog-info.yaml", TEAM)
    write(root / "folder" / "inside.txt", "x")
    targets = ["file:///etc/passwd", "url:file:///etc/passwd", f"HTTP://127.0.0.1:{port}/secret.yaml",
               f"http://[::ffff:7f00:1]:{port}/secret.yaml", f"http://0:{port}/secret.yaml",
               f"http://127.0.0.1.:{port}/secret.yaml", f"http://git.example@127.0.0.1:{port}/secret.yaml"]
    locations = [(f"odd-{i}", "url", target) for i, target in enumerate(targets)] + [("odd-file", "file", "file:///etc/passwd")]
    write(root / "loc" / "catalog-info.yaml", "---\n".join(
        f"apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: {name}\nspec:\n  type: {kind}\n"
        f"  target: '{target}'\n" for name, kind, target in locations))
    write(root / "api" / "catalog-info.yaml", "---\n".join([
        with_config("folder-text", "\n    $text: ../folder"),
        with_config("scheme-text", "\n    $text: file:///etc/passwd"),
        component("neighbour"),
    ]))
    app = await make_app(sqlite_url)
    try:
        result = await synced(app, root)
    finally:
        await app.close()
    assert internal.calls == []
    assert "secret-thing" not in result.seen and "root:x:0:0" not in result.seen
    assert {"component:default/neighbour", "group:default/team-a", "location:default/odd-file",
            *(f"location:default/odd-{i}" for i in range(len(targets)))} <= result.keys
    by_entity = {e.entity: e.message for e in result.summary.errors if e.entity}
    assert "a folder" in by_entity["component:default/folder-text"], by_entity
    assert "file:///etc/passwd" in by_entity["component:default/scheme-text"], by_entity
    assert len(result.summary.errors) >= len(targets) + 3, result.summary.errors



async def test_hostile_docs_that_held(tmp_path: Path) -> None:
    """Held when tried: merge keys pulling ``hooks`` in, ``!!binary``/``!!set`` values, paths
    outside the docs in ``extra_css``/``extra_javascript``/``extra_templates``/``nav``/images,
    ``theme.static_templates`` leaving the theme, a Jinja ``include`` of an outside file, snippets
    with ``url_download`` and ``auto_append`` (outside file and URL) and a ``!relative`` base path,
    file names with a newline or dots. Nothing outside the repository reaches the store, no URL
    is fetched, nothing runs; each hostile config is refused or built without the outside part."""
    from .test_mkdocs_untrusted import OUTSIDE_SECRET, catalog, open_app, repository, store_bytes

    calls: list[str] = []

    async def snippet_server(request: web.Request) -> web.StreamResponse:
        calls.append(request.path)
        return web.Response(text="DOWNLOADED-SNIPPET")

    server_app = web.Application()
    server_app.router.add_route("GET", "/{tail:.*}", snippet_server)
    server = TestServer(server_app, host="127.0.0.1")
    await server.start_server()
    url = f"http://127.0.0.1:{server.port}/snippet.md"
    marker = tmp_path / "MARKER-held"
    root = catalog(tmp_path)
    home = "# Home\n"
    repository(root, "merge", {"mkdocs.yml": "base: &b\n  hooks: [h.py]\nsite_name: merge\n<<: *b\n",
                               "h.py": f"open({str(marker)!r}, 'w')\n", "docs/index.md": home})
    repository(root, "binary", {"mkdocs.yml": "site_name: !!binary aGVsbG8=\nextra:\n  s: !!set {a, b}\n",
                                "docs/index.md": home})
    repository(root, "outref", {
        "mkdocs.yml": ("site_name: outref\nextra_css: [../../outside.env]\nextra_javascript: [/etc/hostname]\n"
                       "extra_templates: [../../outside.env]\nnav:\n  - a: ../../outside.env\n  - b: /etc/hostname\n"
                       "  - c: file:///etc/passwd\n  - Home: index.md\n"),
        "docs/index.md": "# Home\n\n![x](../../outside.png)\n[y](../../outside.env)\n"})
    repository(root, "snip", {
        "mkdocs.yml": ("site_name: snip\nmarkdown_extensions:\n  - pymdownx.snippets:\n      url_download: true\n"
                       f"      auto_append: [../outside.env, {url}]\n      base_path: [!relative , !relative $docs_dir]\n"),
        "docs/index.md": f'# Home\n\n--8<-- "{url}"\n\n--8<-- "../../outside.env"\n\n--8<-- "../../../outside.env"\n'})
    repository(root, "names", {"mkdocs.yml": "site_name: names\n", "docs/index.md": home, "docs/a\nb.md": "# nl\n",
                               "docs/..md": "# dots\n", "docs/...md": "# more dots\n"})
    repository(root, "theme", {
        "mkdocs.yml": ("site_name: theme\ntheme:\n  name: material\n  custom_dir: tpl\n"
                       "  static_templates: [../../outside.env, /etc/hostname]\n"),
        "docs/index.md": home,
        "tpl/main.html": ("{% extends 'base.html' %}{% block content %}"
                          "{% include '../../outside.env' ignore missing %}{% endblock %}")})
    app = await open_app(tmp_path)
    try:
        assert not (await app.sync((str(root),))).errors
        docs = await app.sync_docs()
        errors = dict(docs.errors)
        stored = store_bytes(app)
    finally:
        await app.close()
        await server.close()
    assert "hooks" in errors["component:default/merge"] and "site_name" in errors["component:default/binary"], errors
    assert not marker.exists() and calls == []
    assert OUTSIDE_SECRET.encode() not in stored and b"DOWNLOADED-SNIPPET" not in stored
    assert docs.built >= 4, errors



# --- fetching: what held ---------------------------------------------------------------------


async def _serve(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> TestServer:
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def test_a_redirect_to_another_host_carries_no_credentials() -> None:
    """Held when tried: the operator's URL (trusted, as the GitHub API is) with a token header or
    user info redirects to another origin (another port, another name, scheme-relative): the new
    host gets neither; a redirect to file: or ftp: is not followed."""
    seen: list[tuple[str, str | None]] = []

    async def other(request: web.Request) -> web.StreamResponse:
        seen.append((request.path, request.headers.get("Authorization")))
        return web.Response(text="other")

    other_server = await _serve(other)
    port = other_server.port

    async def first(request: web.Request) -> web.StreamResponse:
        targets = {"/port": f"http://127.0.0.1:{port}/a", "/name": f"http://localhost:{port}/b",
                   "/scheme-relative": f"//127.0.0.1:{port}/c", "/file": "file:///etc/passwd", "/ftp": "ftp://127.0.0.1/x"}
        raise web.HTTPFound(targets[request.path])

    first_server = await _serve(first)
    try:
        async with Fetcher(allow=("127.0.0.0/8", "localhost")) as http:
            for path in ("/port", "/name", "/scheme-relative"):
                got = await http.get(f"http://127.0.0.1:{first_server.port}{path}", trusted=True, max_bytes=1000,
                                     headers={"Authorization": "Bearer ghp_SECRET"})
                assert isinstance(got, Answer) and got.body == b"other", got
                got = await http.get(f"http://bob:s3cret@127.0.0.1:{first_server.port}{path}", trusted=True,
                                     max_bytes=1000)
                assert isinstance(got, Answer) and got.body == b"other", got
            for path in ("/file", "/ftp"):
                got = await http.get(f"http://127.0.0.1:{first_server.port}{path}", trusted=True, max_bytes=1000)
                assert isinstance(got, FetchProblem) and "not an http(s) URL" in got.message, got
    finally:
        await first_server.close()
        await other_server.close()
    assert len(seen) == 6 and all(auth is None for _, auth in seen), seen


async def test_a_gzip_bomb_is_cut_at_the_size_limit() -> None:
    """Held when tried: 256 MB of zeros sent as 256 kB of gzip (Content-Encoding: gzip) is refused as
    over the limit without being inflated into memory."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 24)
    bomb = b"".join(squeeze.compress(block) for _ in range(16)) + squeeze.flush()

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})

    server = await _serve(handler)
    tracemalloc.start()
    try:
        async with Fetcher(allow=("127.0.0.1",)) as http:
            got = await http.get(f"http://127.0.0.1:{server.port}/", trusted=False, max_bytes=1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await server.close()
    assert isinstance(got, FetchProblem) and got.kind == "too_big", got
    assert peak < 64_000_000, f"peak {peak / 1e6:.0f} MB"


async def test_catalog_placeholders_and_targets_never_read_a_git_folder(tmp_path: Path, make_app, sqlite_url: str) -> None:
    """The catalog side of the same hole: ``$text: .git/config`` in a repository's catalog file put
    the clone's credentials into the entity, shown by every ``info``; a Location target inside
    ``.git`` is refused the same way. The error says why; the rest of the file syncs."""
    from .test_catalog_files import component, synced, with_config, write

    token = "ghs_CLONE-TOKEN-written-by-the-server"
    root = tmp_path / "catalog"
    write(root / "org" / "catalog-info.yaml", TEAM)
    write(root / "svc" / ".git" / "config", f'[remote "origin"]\n\turl = https://x-access-token:{token}@github.com/acme/svc\n')
    write(root / "svc" / ".git" / "info.yaml", component("from-git", token))
    write(root / "svc" / "catalog-info.yaml", "---\n".join([
        with_config("leaky", "\n    $text: .git/config"),
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: into-git\nspec:\n  targets: [./.git/info.yaml]\n",
        component("neighbour"),
    ]))
    app = await make_app(sqlite_url)
    try:
        result = await synced(app, root)
    finally:
        await app.close()
    assert token not in result.seen
    assert "component:default/from-git" not in result.keys
    assert {"component:default/neighbour", "location:default/into-git"} <= result.keys
    (leaky,) = [e for e in result.summary.errors if e.entity == "component:default/leaky"]
    assert ".git" in leaky.message, leaky
    assert any(".git" in e.message and "info.yaml" in e.message for e in result.summary.errors), result.summary.errors


async def test_an_enormous_build_message_fails_its_build_alone(tmp_path: Path) -> None:
    """A refusal quotes the value it refuses: ``docs_dir: [*a, *a]`` with a 900 kB anchor made a
    1.8 MB message, over the worker's 1 MB answer line, and the ValueError stopped every other
    build of the sync. Messages are cut to a readable length; an answer that is still too long
    fails that build only."""
    from .test_mkdocs_untrusted import catalog, open_app, repository

    root = catalog(tmp_path)
    big = "x" * 900_000
    repository(root, "aaa-big", {"mkdocs.yml": f'site_name: big\nlong: &a "{big}"\ndocs_dir: [*a, *a]\n',
                                 "docs/index.md": "# Home\n"})
    middling = "y" * 60_000  # 20 warnings naming it: over the answer line, each a readable size once cut
    repository(root, "aab-warns", {"mkdocs.yml": (f'site_name: warns\nlong: &a "{middling}"\nnav:\n'
                                                  + "".join(f"  - {i}: *a\n" for i in range(20))),
                                   "docs/index.md": "# Home\n"})
    repository(root, "zzz-fine", {"mkdocs.yml": "site_name: fine\n", "docs/index.md": "# Home\n"})
    app = await open_app(tmp_path)
    try:
        assert not (await app.sync((str(root),))).errors
        docs = await app.sync_docs()
        errors = dict(docs.errors)
        warns = await app.docs.state("component:default/aab-warns")
    finally:
        await app.close()
    assert "component:default/zzz-fine" not in errors, errors
    message = errors["component:default/aaa-big"]
    assert "docs_dir" in message and len(message) < 10_000, message[:300]
    assert warns is not None and len(errors.get("component:default/aab-warns", "")) < 10_000


async def test_odd_techdocs_refs_fail_alone(tmp_path: Path) -> None:
    """A ``backstage.io/techdocs-ref`` that urllib cannot parse (``url:http://[::1``) raised
    ValueError out of ``sync_docs``: no docs were built for anyone. Each odd reference (also a NUL,
    a 5,000-character folder, control characters) is its entity's error."""
    from ..docs.test_techdocs import TEAM as DOCS_TEAM
    from ..docs.test_techdocs import component, open_app, write

    root = tmp_path / "catalog"
    write(root / "org" / "catalog-info.yaml", DOCS_TEAM)
    refs = {"bracket": "url:http://[::1", "bracket2": "url:https://[github.com/a/b", "nul": "dir:a\\0b",
            "long": "dir:" + "a" * 5000, "control": "dir:\\x1b[31m"}
    for name, ref in refs.items():
        component(root, name, ref=f'"{ref}"', pages={"docs/index.md": "# Home\n"})
    component(root, "zz-fine", pages={"docs/index.md": "# Home\n"})
    app = await open_app(tmp_path)
    try:
        await app.sync((str(root),))
        docs = await app.sync_docs()
    finally:
        await app.close()
    errors = dict(docs.errors)
    assert docs.built >= 1 and "component:default/zz-fine" not in errors, errors
    for name in ("bracket", "bracket2", "long"):  # "nul" is refused before: a NUL in entity data
        assert f"component:default/{name}" in errors, errors


@pytest.mark.parametrize("where", ["placeholder", "target"])
async def test_a_nul_in_a_path_is_that_documents_error(tmp_path: Path, make_app, database_url: str, where: str) -> None:
    """``$text: "a\\0b"`` or a Location target ``"a\\0b"``: Python's path functions raise ValueError
    (not OSError) for a NUL, and it stopped the whole sync. It is that document's error now."""
    from .test_catalog_files import component, synced, with_config, write

    root = tmp_path / "catalog"
    write(root / "org" / "catalog-info.yaml", TEAM)
    hostile = (with_config("nul", '\n    $text: "a\\0b"') if where == "placeholder" else
               "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: nul\nspec:\n  targets: [\"a\\0b\"]\n")
    write(root / "svc" / "catalog-info.yaml", hostile + "---\n" + component("neighbour"))
    write(root / "zz" / "catalog-info.yaml", component("later"))
    app = await make_app(database_url)
    try:
        result = await synced(app, root)
    finally:
        await app.close()
    assert {"component:default/neighbour", "component:default/later", "group:default/team-a"} <= result.keys
    assert any("NUL" in e.message for e in result.summary.errors), result.summary.errors


@pytest.mark.parametrize("where", ["target", "placeholder"])
async def test_unparseable_urls_in_a_url_catalog_are_that_documents_error(
    make_app, database_url: str, sites, where: str
) -> None:
    """In a catalog read over HTTP, a Location target or ``$text`` of ``http://[::1`` (urllib
    raises ValueError joining it) stopped the whole sync, and a NUL in a placeholder URL reached
    the stored error as it was. Each is its document's error; the rest syncs."""
    site = await sites(team=TEAM)
    bad = (_location("odd", "http://[::1") if where == "target" else
           GOOD.format(name="odd") + "  definition:\n    $text: 'http://[::1'\n---\n"
           + GOOD.format(name="nul") + '  definition:\n    $text: "./a\\0b"\n')
    site.files["/catalog-info.yaml"] = bad + "---\n" + _location("org", "./team.yaml")
    app = await make_app(database_url, reading_allow=("127.0.0.1",))
    try:
        summary = await app.sync((site.url("/catalog-info.yaml"),))
        keys = app.catalog.index.keys()
    finally:
        await app.close()
    assert "group:default/team-a" in keys and "location:default/org" in keys
    assert any("http://[::1" in e.message for e in summary.errors), summary.errors
    assert not any("\0" in e.message or "\0" in e.file for e in summary.errors), summary.errors


@pytest.mark.parametrize("what", ["url-target", "path-target", "escape-target", "placeholder"])
async def test_a_nul_in_url_catalog_data_never_reaches_the_database(
    make_app, database_url: str, sites, what: str
) -> None:
    """PostgreSQL refuses a NUL in text. A Location target ``"http://a\\0b/x"`` (or a relative
    ``"./x\\0y.yaml"``) became a location key, and a placeholder URL with a NUL was quoted in the
    stored error: the sync failed with a database error and nothing after it was written. A target
    with a control character is refused; a NUL quoted in an error is stored as ``\\0``. (SQLite
    stored them; the test runs on both.)"""
    site = await sites(team=TEAM)
    bad = {"url-target": _location("odd", '"http://a\\0b/x"'), "path-target": _location("odd", '"./x\\0y.yaml"'),
           "escape-target": _location("odd", '"http://a\\x1bb/x"'),
           "placeholder": GOOD.format(name="odd") + '  definition:\n    $text: "http://a\\0b/"\n'}[what]
    site.files["/catalog-info.yaml"] = bad + "---\n" + _location("org", "./team.yaml")
    app = await make_app(database_url, reading_allow=("127.0.0.1",))
    try:
        summary = await app.sync((site.url("/catalog-info.yaml"),))
        keys = app.catalog.index.keys()
        again = await app.sync((site.url("/catalog-info.yaml"),))  # errors read back from the database
    finally:
        await app.close()
    assert "group:default/team-a" in keys and "location:default/org" in keys
    assert summary.errors and again.errors
    if what != "placeholder":  # a NUL anywhere in an entity refuses it; other control characters in targets
        assert any("control character" in e.message or "NUL" in e.message for e in summary.errors), summary.errors


async def test_a_nul_in_entity_data_never_reaches_the_database(tmp_path: Path, make_app, database_url: str) -> None:
    """``backstage.io/techdocs-ref: "dir:a\\0b"``: the entity was stored with ``\\u0000`` in its
    JSON, which PostgreSQL cannot turn into text, so the docs sync's query over every entity's
    annotations failed and no docs were built for anyone. An entity holding a NUL anywhere is
    refused, naming the reason; the others sync and build."""
    from ..docs.test_techdocs import TEAM as DOCS_TEAM
    from ..docs.test_techdocs import component, write

    root = tmp_path / "catalog"
    write(root / "org" / "catalog-info.yaml", DOCS_TEAM)
    component(root, "nul", ref='"dir:a\\0b"', pages={"docs/index.md": "# Home\n"})
    component(root, "zz-fine", pages={"docs/index.md": "# Home\n"})
    app = await make_app(database_url, resident=True, docs_workers=1)
    try:
        summary = await app.sync((str(root),))
        docs = await app.sync_docs()
    finally:
        await app.close()
    errors = dict(docs.errors)
    assert "component:default/zz-fine" not in errors and docs.built == 1, errors
    (refused,) = [e for e in summary.errors if e.entity == "component:default/nul"]
    assert "NUL" in refused.message and "\0" not in refused.message, refused
