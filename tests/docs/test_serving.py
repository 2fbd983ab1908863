"""``callboard serve`` serves the built sites over real HTTP, and nothing outside them."""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from callboard.bot.server import create_server

from .test_techdocs import TEAM, component, open_app, write


async def test_sites_are_served_and_nothing_else(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    write(root / "org" / "catalog-info.yaml", TEAM)
    component(root, "svc", mkdocs="site_name: svc\nnav:\n  - Home: index.md\n  - Runbook: runbook.md\n",
              pages={"docs/index.md": "# Svc\n\nHome page.\n", "docs/runbook.md": "# Runbook\n\n## Failover\n\nPromote.\n"})
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve me")
    app = await open_app(tmp_path, public_url="http://callboard.example.com")
    await app.sync((str(root),))
    assert (await app.sync_docs()).built == 1
    os.symlink(secret, app.docs.site_dir("component:default/svc") / "leak.txt")
    server = TestServer(create_server(app, catalog=None, sync_interval=3600, slack=None), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            base = server.make_url("/docs/default/component/svc")
            async with http.get(base, allow_redirects=False) as resp:
                assert resp.status == 302 and resp.headers["Location"].endswith("/docs/default/component/svc/")
            async with http.get(str(base) + "/runbook/") as resp:
                assert resp.status == 200 and "Promote." in await resp.text()
            async with http.get(str(base) + "/search/search_index.json") as resp:
                assert resp.status == 200
            for path in ("/leak.txt", "/../../../../secret.txt", "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret.txt",
                         "/..%2f..%2f..%2f..%2fsecret.txt"):
                async with http.get(str(base) + path) as resp:
                    assert resp.status in (400, 403, 404), path
                    assert "do not serve me" not in await resp.text()
            async with http.get(server.make_url("/docs/default/component/unknown/")) as resp:
                assert resp.status == 404 and "No entity component:default/unknown" in await resp.text()
        # links in chat point at this server
        reply = await app.ask("runbook svc failover")
        assert reply.data["url"] == "http://callboard.example.com/docs/default/component/svc/runbook/#failover"
    finally:
        await server.close()  # closes the app too (the server owns it)
