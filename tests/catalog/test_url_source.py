"""The URL source against a real local HTTP server: targets and placeholders relative to the URL."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestServer

from .test_bad_input import GOOD, TEAM, _location

FILES = {
    "/org/catalog-info.yaml": _location("org", "./team.yaml", "./api.yaml", "./gone.yaml"),
    "/org/team.yaml": TEAM + "---\n" + GOOD.format(name="web-thing"),
    "/org/api.yaml": (
        "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: web-api\nspec:\n  type: openapi\n"
        "  lifecycle: production\n  owner: team-a\n  definition:\n    $text: ./spec/openapi.yaml\n"
    ),
    "/org/spec/openapi.yaml": "openapi: 3.0.0\n",
    "/big.yaml": "x" * 2048,
}


async def _serve() -> TestServer:
    async def handler(request: web.Request) -> web.Response:
        body = FILES.get(request.path)
        if body is None:
            return web.Response(status=404)
        return web.Response(text=body)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def test_url_catalog(make_app, sqlite_url: str) -> None:
    server = await _serve()
    try:
        # the targets and placeholders in the file are catalog data: loopback must be allowed for them
        app = await make_app(sqlite_url, reading_allow=("127.0.0.1",))
        try:
            summary = await app.sync((str(server.make_url("/org/catalog-info.yaml")),))
            api = await app.catalog.get("api:default/web-api")
            again = await app.sync((str(server.make_url("/org/catalog-info.yaml")),))
        finally:
            await app.close()
    finally:
        await server.close()
    assert {"component:default/web-thing", "group:default/team-a", "api:default/web-api"} <= set(app.catalog.index.keys())
    assert api is not None and api.spec["definition"] == "openapi: 3.0.0\n"
    (err,) = summary.errors
    assert err.name == "NotFoundError" and err.file.endswith("/org/gone.yaml")
    assert again.added == 0 and again.updated == 0


async def test_url_size_limit_and_unreachable(make_app, sqlite_url: str) -> None:
    server = await _serve()
    try:
        app = await make_app(sqlite_url, max_file_bytes=1024)
        try:
            summary = await app.sync((str(server.make_url("/big.yaml")), "http://127.0.0.1:9/nothing.yaml"))
        finally:
            await app.close()
    finally:
        await server.close()
    messages = sorted(e.message for e in summary.errors)
    assert any("over the" in m and "limit" in m for m in messages)
    assert any("could not fetch http://127.0.0.1:9/nothing.yaml" in m for m in messages)
