"""Fetching URLs (issue 10, point 4): URLs from catalog data never reach internal addresses.

The operator's URLs (``--catalog``, config, ``GITHUB_API_URL``) are trusted. URLs found in catalog
data (``url`` Location targets, ``$text``/``$json``/``$yaml`` placeholders, ``url:`` docs
references) are refused when they reach a loopback, link-local, private or otherwise non-public
address (after DNS, on every redirect) unless ``reading.allow`` lists the host or range. Every
fetch has connect/total time limits and a size limit; errors on data URLs do not tell an open
port from a closed one; credentials in URLs never reach what answers display.

Real HTTP servers on loopback stand in for internal services; each counts the requests it got.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer

from callboard.bot.shell.render import render_text
from callboard.catalog.urls import strip_userinfo, without_userinfo
from callboard.providers.http import FetchLimits, Fetcher, FetchProblem, ReadingPolicy, address_of, guarded_socket

from ..catalog.test_bad_input import GOOD, TEAM



def _location(name: str, *targets: str) -> str:
    lines = "\n".join(f"    - {t}" for t in targets)
    return f"apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: {name}\nspec:\n  targets:\n{lines}\n"


@dataclass
class Site:
    """A local HTTP server serving ``files`` (path -> body or handler); it records every request."""

    files: dict[str, str | Callable[[web.Request], Awaitable[web.StreamResponse]]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    auth: str | None = None  # "user:password" the server insists on
    server: TestServer | None = None

    async def start(self) -> Site:
        async def handler(request: web.Request) -> web.StreamResponse:
            self.calls.append(request.path)
            if self.auth is not None:
                import base64

                want = "Basic " + base64.b64encode(self.auth.encode()).decode()
                if request.headers.get("Authorization") != want:
                    return web.Response(status=401)
            body = self.files.get(request.path)
            if body is None:
                return web.Response(status=404)
            if callable(body):
                return await body(request)
            return web.Response(text=body)

        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", handler)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    @property
    def port(self) -> int:
        assert self.server is not None and self.server.port is not None
        return self.server.port

    def url(self, path: str, *, host: str = "127.0.0.1", userinfo: str = "") -> str:
        return f"http://{userinfo}{host}:{self.port}{path}"

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()


@pytest.fixture
async def sites() -> AsyncIterator[Callable[..., Awaitable[Site]]]:
    started: list[Site] = []

    async def start(**files: str) -> Site:
        site = await Site(files={f"/{k.replace('__', '/').replace('_', '-')}.yaml" if not k.startswith("/") else k: v
                                 for k, v in files.items()}).start()
        started.append(site)
        return site

    yield start
    for site in started:
        await site.close()


class MapResolver(AbstractResolver):
    """DNS for tests: names map to fixed addresses (no network)."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.names:
            raise OSError(f"no such host {host}")
        address = self.names[host]
        fam = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [ResolveResult(hostname=host, host=address, port=port, family=fam, proto=0, flags=0)]

    async def close(self) -> None:
        pass


def _without_port(text: str, *ports: int) -> str:
    for port in ports:
        text = text.replace(f":{port}", ":<port>")
    return text


# --- the address check (unit level) ---------------------------------------------------------

REFUSED_HOSTS = [
    "127.0.0.1", "127.9.9.9", "localhost.", "169.254.169.254", "10.1.2.3", "172.16.0.1", "192.168.1.1",
    "100.64.0.1", "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255",
    "::1", "[::1]", "::", "::ffff:127.0.0.1", "[::ffff:7f00:1]", "::ffff:169.254.169.254", "fc00::1", "fd12::1",
    "fe80::1", "ff02::1", "2002:7f00:1::1", "64:ff9b::a9fe:a9fe",
    "2130706433", "0x7f.1", "0x7f000001", "017700000001", "127.1", "0177.0.0.1",
]


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_internal_addresses_are_refused(host: str) -> None:
    """Every loopback, link-local, private, CGNAT, unspecified, multicast and reserved address, in
    every spelling an address can have (IPv4-mapped IPv6, 6to4/NAT64 embedding, decimal, hex, octal,
    short forms), is refused; ``localhost.`` is a name and is refused once it resolves (below)."""
    policy = ReadingPolicy.parse(())
    address = address_of(host)
    if host == "localhost.":
        assert address is None
        return
    assert address is not None, host
    assert not policy.allows_address(address), host


@pytest.mark.parametrize("host", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:93.184.216.34", "1.1.1.1"])
def test_public_addresses_pass(host: str) -> None:
    address = address_of(host)
    assert address is not None and ReadingPolicy.parse(()).allows_address(address)


def test_names_are_not_addresses() -> None:
    for name in ("github.com", "cafe", "face.bad", "deadbeef", "git.corp.example"):
        assert address_of(name) is None, name


def test_reading_allow_hosts_and_ranges() -> None:
    policy = ReadingPolicy.parse(["git.corp.example", "*.internal.example", "wiki.example:8080", "10.20.0.0/16",
                                  "fd00::/8"])
    assert policy.allows_host("git.corp.example", 443) and policy.allows_host("GIT.corp.example", 80)
    assert policy.allows_host("a.b.internal.example", 80) and not policy.allows_host("internal.example", 80)
    assert policy.allows_host("wiki.example", 8080) and not policy.allows_host("wiki.example", 80)
    assert not policy.allows_host("evil.example", 80)
    for ok in ("10.20.3.4", "fd00::1", "::ffff:10.20.0.1"):
        assert policy.allows_address(address_of(ok)), ok  # type: ignore[arg-type]
    for bad in ("10.21.0.1", "127.0.0.1", "169.254.169.254"):
        assert not policy.allows_address(address_of(bad)), bad  # type: ignore[arg-type]


def test_the_socket_is_checked_at_connect_time() -> None:
    """The last word is the address the socket connects to, whatever DNS said before."""
    factory = guarded_socket(ReadingPolicy.parse(()))
    with pytest.raises(OSError, match="reading.allow"):
        factory((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80)))
    with pytest.raises(OSError, match="reading.allow"):
        factory((socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::ffff:169.254.169.254", 80, 0, 0)))
    sock = factory((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 80)))
    sock.close()
    allowed = guarded_socket(ReadingPolicy.parse(["127.0.0.0/8"]))
    allowed((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80))).close()


def test_userinfo_is_stripped() -> None:
    assert strip_userinfo("url:http://bob:s3cret@git.example/x.yaml") == "url:http://git.example/x.yaml"
    assert strip_userinfo("could not read https://tok@h:8443/a and http://a:b@c/d") == (
        "could not read https://h:8443/a and http://c/d")
    assert strip_userinfo("mailto:x@y.example, a@b") == "mailto:x@y.example, a@b"
    data = {"metadata": {"annotations": {"x": "url:http://u:p@h/c.yaml"}}, "list": ["https://u:p@h/"], "n": 1}
    assert "u:p" not in json.dumps(without_userinfo(data))


# --- catalogs over HTTP ---------------------------------------------------------------------


async def test_location_target_to_loopback_is_refused(make_app, database_url: str, sites) -> None:
    """A trusted root URL (as --catalog gives it) whose catalog file points at an internal server:
    the internal server gets no request, and the error names the URL and says how to allow it.
    A relative target on the root's own (trusted) host is data too, and refused the same way."""
    internal = await sites(secret=GOOD.format(name="secret-thing"))
    root = await sites(catalog_info=_location("org", internal.url("/secret.yaml"), "./team.yaml"),
                       team=TEAM)
    app = await make_app(database_url)
    try:
        summary = await app.sync((root.url("/catalog-info.yaml"),))
    finally:
        await app.close()
    assert internal.calls == []
    assert root.calls == ["/catalog-info.yaml"]
    assert "location:default/org" in app.catalog.index.keys()
    assert "component:default/secret-thing" not in app.catalog.index.keys()
    by_url = {e.file: e.message for e in summary.errors}
    refused = by_url[internal.url("/secret.yaml")]
    assert internal.url("/secret.yaml") in refused and "reading.allow" in refused and "callboard.yaml" in refused
    assert "reading.allow" in by_url[root.url("/team.yaml")]


async def test_a_resync_keeps_roots_trusted_and_children_not(make_app, sqlite_url: str, sites) -> None:
    """``sync`` with no catalog re-reads the registered roots: they are still the operator's (read),
    and the children the database remembers are still catalog data (refused)."""
    internal = await sites(secret=GOOD.format(name="secret-thing"))
    root = await sites(catalog_info=_location("org", internal.url("/secret.yaml")))
    app = await make_app(sqlite_url)
    try:
        await app.sync((root.url("/catalog-info.yaml"),))
        root.files["/catalog-info.yaml"] += "---\n" + TEAM  # changed: parsed again
        changed = await app.sync(None)
        unchanged = await app.sync(None)  # skipped without parsing: children come from the database
    finally:
        await app.close()
    assert root.calls == ["/catalog-info.yaml"] * 3
    assert internal.calls == []
    assert "group:default/team-a" in app.catalog.index.keys()
    for summary in (changed, unchanged):
        (err,) = summary.errors
        assert "reading.allow" in err.message


@pytest.mark.parametrize("allow", ["127.0.0.1", "127.0.0.0/8", "127.0.0.1:{port}", "::ffff:127.0.0.1/128"])
async def test_reading_allow_lets_data_urls_in(make_app, sqlite_url: str, sites, allow: str) -> None:
    internal = await sites(secret=GOOD.format(name="secret-thing"), team=TEAM)
    root = await sites(catalog_info=_location("org", internal.url("/secret.yaml"), internal.url("/team.yaml")))
    app = await make_app(sqlite_url, reading_allow=(allow.format(port=internal.port),))
    try:
        summary = await app.sync((root.url("/catalog-info.yaml"),))
    finally:
        await app.close()
    assert summary.errors == ()
    assert {"component:default/secret-thing", "group:default/team-a"} <= set(app.catalog.index.keys())
    assert sorted(internal.calls) == ["/secret.yaml", "/team.yaml"]


async def test_a_redirect_to_an_internal_server_is_refused(make_app, sqlite_url: str, sites) -> None:
    """An allowed server redirects a data URL to an internal one: the redirect target is checked
    like the first URL, and the internal server gets nothing."""
    internal = await sites(secret=GOOD.format(name="secret-thing"))

    async def bounce(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(internal.url("/secret.yaml"))

    allowed = await sites()
    allowed.files["/moved.yaml"] = bounce
    allowed.files["/hop.yaml"] = lambda request: _redirect(allowed.url("/moved.yaml"))
    root = await sites(catalog_info=_location("org", allowed.url("/hop.yaml")))
    app = await make_app(sqlite_url, reading_allow=(f"127.0.0.1:{allowed.port}",))
    try:
        summary = await app.sync((root.url("/catalog-info.yaml"),))
    finally:
        await app.close()
    assert allowed.calls == ["/hop.yaml", "/moved.yaml"]
    assert internal.calls == []
    (err,) = summary.errors
    assert internal.url("/secret.yaml") in err.message and "reading.allow" in err.message


async def _redirect(to: str) -> web.StreamResponse:
    raise web.HTTPMovedPermanently(to)


async def test_too_many_redirects_stop(sites) -> None:
    loop_site = await sites()
    loop_site.files["/a.yaml"] = lambda request: _redirect(loop_site.url("/a.yaml"))
    async with Fetcher(allow=("127.0.0.1",), limits=FetchLimits(max_redirects=3)) as http:
        got = await http.get(loop_site.url("/a.yaml"), trusted=False, max_bytes=1000)
    assert isinstance(got, FetchProblem) and "redirect" in got.message
    assert len(loop_site.calls) == 4


async def test_text_placeholder_to_loopback_is_refused(make_app, sqlite_url: str, sites) -> None:
    internal = await sites(**{"/token.txt": "hunter2"})
    api = ("apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: web-api\nspec:\n  type: openapi\n"
           "  lifecycle: production\n  owner: team-a\n  definition:\n    $text: {target}\n")
    root = await sites(catalog_info=api.format(target=internal.url("/token.txt")))
    root.files["/relative.yaml"] = api.replace("web-api", "rel-api").format(target="./spec.yaml")
    root.files["/spec.yaml"] = "openapi: 3.0.0\n"
    app = await make_app(sqlite_url)
    try:
        summary = await app.sync((root.url("/catalog-info.yaml"), root.url("/relative.yaml")))
        api_entity = await app.catalog.get("api:default/web-api")
    finally:
        await app.close()
    assert internal.calls == [] and "/spec.yaml" not in root.calls
    assert api_entity is None
    messages = sorted(e.message for e in summary.errors)
    assert len(messages) == 2 and all("reading.allow" in m for m in messages)
    assert any(internal.url("/token.txt") in m for m in messages)
    assert not any("hunter2" in m for m in messages)


async def test_docs_reference_to_loopback_is_refused(tmp_path: Path) -> None:
    """``backstage.io/techdocs-ref: url:http://127.0.0.1/...``: refused by the address rule before
    anything is asked, not even the (trusted) GitHub API; allowed when reading.allow lists it."""
    from ..docs.test_techdocs import TEAM as DOCS_TEAM
    from ..docs.test_techdocs import component, open_app, write
    from ..fakes.github import GitHubFake

    repo = tmp_path / "repo"
    write(repo / "docs" / "index.md", "# Internal\n\nNothing to see.\n")
    fake = GitHubFake()
    await fake.start()
    fake.add_repo("acme", "svc", {"main": repo})
    root = tmp_path / "catalog"
    write(root / "org" / "catalog-info.yaml", DOCS_TEAM)
    for name, host in (("loop", "127.0.0.1:8080"), ("meta", "169.254.169.254"), ("six", "[::1]"),
                       ("dec", "2130706433")):
        component(root, name, ref=f"url:http://{host}/acme/svc/tree/main")
    try:
        app = await open_app(tmp_path, github_api_url=fake.url)
        try:
            await app.sync((str(root),))
            docs = await app.sync_docs()
        finally:
            await app.close()
        errors = dict(docs.errors)
        for name in ("loop", "meta", "six", "dec"):
            assert "reading.allow" in errors[f"component:default/{name}"], errors
        assert fake.calls == []
        allowed = await open_app(tmp_path / "again", github_api_url=fake.url, reading_allow=("127.0.0.1",))
        try:
            await allowed.sync((str(root),))
            docs = await allowed.sync_docs()
        finally:
            await allowed.close()
        assert "component:default/loop" not in dict(docs.errors) and docs.built >= 1
    finally:
        await fake.stop()


async def test_docs_references_never_show_their_credentials(tmp_path: Path) -> None:
    from ..docs.test_techdocs import TEAM as DOCS_TEAM
    from ..docs.test_techdocs import component, open_app, write

    root = tmp_path / "catalog"
    write(root / "org" / "catalog-info.yaml", DOCS_TEAM)
    component(root, "svc", ref="url:https://bob:s3cret@github.com/acme")
    app = await open_app(tmp_path)
    try:
        await app.sync((str(root),))
        docs = await app.sync_docs()
        answer = await app.ask("docs svc")
    finally:
        await app.close()
    message = dict(docs.errors)["component:default/svc"]
    assert "github.com/acme" in message
    for text in (message, render_text(answer), json.dumps(answer.data)):
        assert "s3cret" not in text and "bob" not in text, text


# --- the fetcher: names, time, size, errors -------------------------------------------------


async def test_a_name_that_resolves_to_loopback_is_refused(sites) -> None:
    """A public-looking name whose DNS answer is 127.0.0.1 (an injected resolver stands in for DNS)."""
    site = await sites(x="hello")
    resolver = MapResolver({"intranet.example": "127.0.0.1", "v6.example": "::ffff:127.0.0.1"})
    async with Fetcher(resolver=resolver) as http:
        for name in ("intranet.example", "v6.example"):
            got = await http.get(site.url("/x.yaml", host=name), trusted=False, max_bytes=1000)
            assert isinstance(got, FetchProblem) and got.kind == "refused", got
            assert "reading.allow" in got.message and name in got.message
        assert site.calls == []
        trusted = await http.get(site.url("/x.yaml", host="intranet.example"), trusted=True, max_bytes=1000)
        assert not isinstance(trusted, FetchProblem) and trusted.body == b"hello"
    assert "intranet.example" in resolver.asked
    async with Fetcher(resolver=resolver, allow=("*.example",)) as http:
        allowed = await http.get(site.url("/x.yaml", host="intranet.example"), trusted=False, max_bytes=1000)
        assert not isinstance(allowed, FetchProblem) and allowed.body == b"hello"
    async with Fetcher(resolver=resolver, allow=("10.0.0.0/8", "other.example")) as http:
        got = await http.get(site.url("/x.yaml", host="intranet.example"), trusted=False, max_bytes=1000)
        assert isinstance(got, FetchProblem) and got.kind == "refused"


async def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    return port


async def test_open_and_closed_ports_answer_alike() -> None:
    """Refused by policy: the same words for an open and a closed port. Allowed internal host (the
    operator's choice): a closed port, a reset connection and a server that never answers still
    give the same words, so a catalog author cannot scan ports through Callboard's errors."""

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.transport.abort()

    hung_clients: list[asyncio.StreamWriter] = []

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hung_clients.append(writer)  # accepted; never answered

    open_server = await asyncio.start_server(reset, "127.0.0.1", 0)
    hang_server = await asyncio.start_server(hang, "127.0.0.1", 0)
    open_port = open_server.sockets[0].getsockname()[1]
    hang_port = hang_server.sockets[0].getsockname()[1]
    closed_port = await _closed_port()
    ports = (open_port, hang_port, closed_port)
    try:
        async with Fetcher(limits=FetchLimits(total=0.5, connect=0.5)) as http:
            refused = {
                p: (await http.get(f"http://127.0.0.1:{p}/c.yaml", trusted=False, max_bytes=100)) for p in ports
            }
        async with Fetcher(allow=("127.0.0.1",), limits=FetchLimits(total=0.5, connect=0.5)) as http:
            reached = {
                p: (await http.get(f"http://127.0.0.1:{p}/c.yaml", trusted=False, max_bytes=100)) for p in ports
            }
    finally:
        for w in hung_clients:
            w.close()
        open_server.close()
        hang_server.close()
        await open_server.wait_closed()
        await hang_server.wait_closed()
    for answers in (refused, reached):
        assert all(isinstance(a, FetchProblem) for a in answers.values())
        texts = {_without_port(a.message, *ports) for a in answers.values()}  # type: ignore[union-attr]
        kinds = {a.kind for a in answers.values()}  # type: ignore[union-attr]
        assert len(texts) == 1 and len(kinds) == 1, texts
    assert {a.kind for a in refused.values()} == {"refused"}  # type: ignore[union-attr]
    assert "reading.allow" not in next(iter(reached.values())).message  # type: ignore[union-attr]


async def test_a_slow_drip_is_cut_off_by_the_total_time_limit(sites) -> None:
    async def drip(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        while True:  # one byte every 50 ms, forever: never idle long enough for a read timeout
            await resp.write(b"x")
            await asyncio.sleep(0.05)

    site = await sites()
    site.files["/drip.yaml"] = drip
    async with Fetcher(limits=FetchLimits(total=0.6, connect=0.5)) as http:
        started = time.monotonic()
        data_url = await http.get(site.url("/drip.yaml"), trusted=False, max_bytes=10_000_000)
        trusted = await http.get(site.url("/drip.yaml"), trusted=True, max_bytes=10_000_000)
        elapsed = time.monotonic() - started
    assert elapsed < 3.0
    assert isinstance(data_url, FetchProblem) and isinstance(trusted, FetchProblem)
    assert "0.6 s" in trusted.message  # the operator's own URL: the reason is given


async def test_an_oversized_answer_is_cut_at_max_bytes(sites) -> None:
    sent: list[int] = []

    async def endless(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()  # chunked: no Content-Length to refuse up front
        await resp.prepare(request)
        chunk = b"y" * 65536
        for _ in range(10_000):  # 640 MB if nobody stops reading
            await resp.write(chunk)
            sent.append(len(chunk))
        return resp

    site = await sites()
    site.files["/big.yaml"] = endless
    site.files["/declared.yaml"] = lambda request: _sized(request)
    async with Fetcher(limits=FetchLimits(total=10)) as http:
        got = await http.get(site.url("/big.yaml"), trusted=True, max_bytes=200_000)
        declared = await http.get(site.url("/declared.yaml"), trusted=True, max_bytes=200_000)
    assert isinstance(got, FetchProblem) and got.kind == "too_big" and "200,000" in got.message
    assert sum(sent) < 50_000_000
    assert isinstance(declared, FetchProblem) and declared.kind == "too_big"


async def _sized(request: web.Request) -> web.StreamResponse:
    return web.Response(body=b"z" * 300_000)


async def test_a_url_catalog_over_the_limit_is_refused(make_app, sqlite_url: str, sites) -> None:
    site = await sites(**{"/big.yaml": "x" * 5000})
    app = await make_app(sqlite_url, max_file_bytes=1024)
    try:
        summary = await app.sync((site.url("/big.yaml"),))
    finally:
        await app.close()
    (err,) = summary.errors
    assert "limit" in err.message and "max_file_bytes" in err.message


# --- credentials in URLs --------------------------------------------------------------------


async def test_credentials_in_catalog_urls_are_never_shown(make_app, sqlite_url: str, sites) -> None:
    root = await sites(team=TEAM + "---\n" + GOOD.format(name="web-thing"))
    root.auth = "bob:s3cret"
    root.files["/catalog-info.yaml"] = (
        _location("org", "./team.yaml", "./gone.yaml") + "---\n"
        + "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: broken-api\nspec:\n  type: openapi\n"
        "  lifecycle: production\n  owner: team-a\n  definition:\n    $text: ./nothing.txt\n"
    )
    secret_url = root.url("/catalog-info.yaml", userinfo="bob:s3cret@")
    app = await make_app(sqlite_url, reading_allow=("127.0.0.1",))
    try:
        summary = await app.sync((secret_url,))
        info = await app.ask("info web-thing")
        location = await app.ask("info location:default/org")
        entity = await app.catalog.get("component:default/web-thing")
    finally:
        await app.close()
    assert "component:default/web-thing" in app.catalog.index.keys()  # fetched with the credentials
    assert entity is not None
    shown = [render_text(info), json.dumps(info.data), render_text(location), json.dumps(location.data),
             json.dumps(entity.data), *(str(e) for e in summary.errors), *(e.file for e in summary.errors)]
    assert len(summary.errors) == 2, summary.errors  # gone.yaml (404) and the broken placeholder
    for text in shown:
        assert "s3cret" not in text and "bob:" not in text and "bob@" not in text, text
    annotations = entity.data["metadata"]["annotations"]
    assert annotations["backstage.io/managed-by-location"] == f"url:{root.url('/team.yaml')}"
    assert annotations["backstage.io/managed-by-origin-location"] == f"url:{root.url('/catalog-info.yaml')}"
    assert root.url("/team.yaml") in render_text(info)  # the source is still named, without the credentials
    assert any(re.search(r"gone\.yaml", e.file) for e in summary.errors)


async def test_docs_reference_on_another_host_is_not_read_from_github(tmp_path: Path) -> None:
    """``url:https://gitlab.corp/acme/svc/tree/main`` names a repository on another host: reading
    acme/svc from GitHub with the server's token instead would publish someone else's docs."""
    from ..docs.test_techdocs import TEAM as DOCS_TEAM
    from ..docs.test_techdocs import component, open_app, write
    from ..fakes.github import GitHubFake

    repo = tmp_path / "repo"
    write(repo / "docs" / "index.md", "# Private\n\nOnly for GitHub readers.\n")
    fake = GitHubFake()
    await fake.start()
    fake.add_repo("acme", "svc", {"main": repo})
    root = tmp_path / "catalog"
    write(root / "org" / "catalog-info.yaml", DOCS_TEAM)
    component(root, "elsewhere", ref="url:https://gitlab.corp.example/acme/svc/tree/main")
    try:
        app = await open_app(tmp_path, github_api_url=fake.url)
        try:
            await app.sync((str(root),))
            docs = await app.sync_docs()
        finally:
            await app.close()
        message = dict(docs.errors)["component:default/elsewhere"]
        assert "is not on GitHub" in message and "GITHUB_API_URL" in message
        assert fake.calls == []
    finally:
        await fake.stop()
