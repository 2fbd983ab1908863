"""``/docs`` serves built TechDocs sites and nothing else, whatever an unauthenticated client sends.

The requests go over a real socket to the real aiohttp server, byte for byte as written (an HTTP
client library would normalise ``..`` and re-encode the path, hiding exactly what is tested).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from aiohttp.test_utils import TestServer

from callboard.bot.app import Callboard
from callboard.bot.cli import serve
from callboard.bot.server import create_server

from ..docs.test_techdocs import TEAM, component, open_app, write

MAX_DOCS_PATH = 1024  # what the server promises (bot/server.py)
SECRET = "TOP-SECRET-do-not-serve"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: str


async def raw_get(port: int, path: str) -> Answer:
    """``GET path`` exactly as given: no normalisation, no re-encoding."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode("latin-1"))
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return Answer(status, body.decode("utf-8", "replace"))


@dataclass
class Rig:
    app: Callboard
    port: int
    root: Path
    outside: Path


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    root = tmp_path / "catalog"
    write(root / "org" / "catalog-info.yaml", TEAM)
    component(root, "svc", mkdocs="site_name: svc\nnav:\n  - Home: index.md\n  - Runbook: runbook.md\n",
              pages={"docs/index.md": "# Svc\n\nHome page.\n", "docs/runbook.md": "# Runbook\n\nPromote.\n"})
    # everything an attacker would want: the database, config, an env file, /etc/passwd-alikes
    outside = tmp_path / "secret.txt"
    outside.write_text(SECRET)
    (tmp_path / ".env").write_text(f"SLACK_BOT_TOKEN=xoxb-{SECRET}\n")
    app = await open_app(tmp_path, public_url="http://callboard.example.com")
    await app.sync((str(root),))
    assert (await app.sync_docs()).built == 1
    server = TestServer(create_server(app, catalog=None, sync_interval=3600, slack=None), host="127.0.0.1")
    await server.start_server()
    try:
        yield Rig(app, server.port or 0, root, outside)
    finally:
        await server.close()


SITE = "/docs/default/component/svc"

#: paths that try to leave the site or the store; none may answer 200, none may be a 500
HOSTILE = [
    # dot segments, plain and encoded, in every part of the path
    f"{SITE}/../../../../../secret.txt",
    f"{SITE}/../../../../../.env",
    f"{SITE}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret.txt",
    f"{SITE}/..%2f..%2f..%2f..%2f..%2fsecret.txt",
    f"{SITE}/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.txt",
    f"{SITE}/.%2e/.%2e/.%2e/.%2e/.%2e/secret.txt",
    "/docs/%2e%2e/%2e%2e/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.txt",
    "/docs/%2e%2e/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd/x",
    "/docs/%2e%2e/%2e%2e/%2e%2e/%2e%2e",
    "/docs/../../../secret.txt",
    "/docs/default/%2e%2e/%2e%2e/x",
    "/docs/default/component/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e/secret.txt",
    "/docs/..%2f..%2f..%2f..%2f/x/y/secret.txt",
    # encoded separators and backslashes
    f"{SITE}/..%5c..%5c..%5c..%5csecret.txt",
    f"{SITE}/..\\..\\..\\..\\..\\secret.txt",
    "/docs/default%2fcomponent/svc/x/",
    # double encoding is a literal name, never a second decode
    f"{SITE}/%252e%252e/%252e%252e/secret.txt",
    # NUL
    f"{SITE}/index.html%00.txt",
    f"{SITE}/%00",
    "/docs/default/component/svc%00/",
    # absolute paths and schemes smuggled into a segment
    f"{SITE}//etc/passwd",
    f"{SITE}/%2fetc%2fpasswd",
    "/docs/default/component/%2fetc%2fpasswd/",
    # over-long
    f"{SITE}/" + "a" * 5000,
    f"{SITE}/" + "a/" * 800,
    "/docs/" + "n" * 2000 + "/component/svc/",
    # not an entity ref, or not a catalog entity
    "/docs/Default Namespace/component/svc/",
    "/docs/default/comp-onent/svc/",
    "/docs/default/component/-svc-/",
    "/docs/default/component/ghost/",
    "/docs/default/component/ghost/index.html",
    # symlinks planted in the site (see the test)
    f"{SITE}/leak.txt",
    f"{SITE}/leak-dir/secret.txt",
    f"{SITE}/loop/",
]


async def test_traversal_corpus_reads_nothing_outside_a_site(rig: Rig) -> None:
    site = rig.app.docs.site_dir("component:default/svc")
    os.symlink(rig.outside, site / "leak.txt")
    os.symlink(rig.outside.parent, site / "leak-dir")
    os.symlink(site / "loop", site / "loop")
    # a folder in the store that looks like a site but belongs to no catalog entity
    ghost = rig.app.docs.site_dir("component:default/ghost")
    (ghost / "search").mkdir(parents=True)
    (ghost / "search" / "search_index.json").write_text("{}")
    (ghost / "index.html").write_text(SECRET)

    wrong = []
    for path in HOSTILE:
        answer = await raw_get(rig.port, path)
        if answer.status not in (400, 403, 404) or SECRET in answer.body or "Traceback" in answer.body:
            wrong.append(f"{path[:120]} -> {answer.status} {answer.body[:80]!r}")
    assert not wrong, "\n".join(wrong)


async def test_sites_still_serve_their_pages(rig: Rig) -> None:
    assert (await raw_get(rig.port, f"{SITE}/runbook/")).status == 200
    assert "Promote." in (await raw_get(rig.port, f"{SITE}/runbook/index.html")).body
    assert (await raw_get(rig.port, f"{SITE}/search/search_index.json")).status == 200
    assert (await raw_get(rig.port, f"{SITE}/runbook/?q=x")).status == 200
    # kinds and names are matched the way refs are: case-insensitively
    assert (await raw_get(rig.port, "/docs/default/Component/svc/")).status == 200
    redirect = await raw_get(rig.port, SITE)
    assert redirect.status == 302
    # a symlink to a file inside the same site is fine
    site = rig.app.docs.site_dir("component:default/svc")
    os.symlink(site / "runbook" / "index.html", site / "alias.html")
    assert "Promote." in (await raw_get(rig.port, f"{SITE}/alias.html")).body


async def test_long_and_nul_paths_are_client_errors(rig: Rig) -> None:
    answer = await raw_get(rig.port, f"{SITE}/" + "x" * (MAX_DOCS_PATH + 10))
    assert answer.status == 400 and str(MAX_DOCS_PATH) in answer.body
    assert (await raw_get(rig.port, f"{SITE}/runbook%00/")).status == 400
    # a name too long for the file system is a 404, not a 500
    assert (await raw_get(rig.port, f"{SITE}/" + "y" * 300)).status == 404


async def test_docs_of_an_entity_removed_from_the_catalog_are_not_served(rig: Rig) -> None:
    (rig.root / "svc" / "catalog-info.yaml").unlink()
    await rig.app.sync((str(rig.root),))
    assert (await raw_get(rig.port, f"{SITE}/runbook/")).status == 404


def test_serve_listens_on_loopback_unless_told_otherwise() -> None:
    host = next(p for p in serve.params if p.name == "host")
    assert isinstance(host, click.Option)  # an option has help (a Parameter's type does not say so in every click)
    assert host.default == "127.0.0.1"
    assert "0.0.0.0" in (host.help or "")  # and says how to listen elsewhere
