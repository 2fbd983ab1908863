"""Socket Mode: with SLACK_APP_TOKEN, the same handlers answer over Slack's WebSocket.

Slack's side is faked: ``apps.connections.open`` on the Web API fake hands out the
address of a local WebSocket server that speaks Socket Mode's envelope protocol.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from callboard.bot.app import Callboard, demo_catalog_path
from callboard.bot.config import Settings
from callboard.bot.server import create_server
from callboard.bot.slack.app import SlackSettings
from callboard.commands.dispatch import CommandRegistry

from ..fakes.slack import SlackFake


async def test_slash_command_over_socket_mode(tmp_path: Path) -> None:
    answers: asyncio.Queue[dict] = asyncio.Queue()
    connected = asyncio.Event()

    async def link(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        connected.set()
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0FAKEAPP1"}})
        await ws.send_json({
            "envelope_id": "env-1", "type": "slash_commands", "accepts_response_payload": True,
            "payload": {"command": "/owner", "text": "checkout-api", "user_id": "U0ASKER01",
                        "channel_id": "C0GENERAL1", "team_id": "T0FAKE001",
                        "response_url": "http://127.0.0.1:9/unused", "trigger_id": "1.2"},
        })
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await answers.put(json.loads(msg.data))
        return ws

    socket_app = web.Application()
    socket_app.router.add_get("/link", link)
    socket_server = TestServer(socket_app, host="127.0.0.1")
    await socket_server.start_server()
    fake = SlackFake(tokens=("xoxb-test", "xapp-test"))
    await fake.start()
    fake.set_handler("apps.connections.open", lambda call: {"url": str(socket_server.make_url("/link")).replace("http", "ws", 1)})
    app = await Callboard.open(
        Settings(database_url=f"sqlite:///{tmp_path / 'cb.db'}", data_dir=str(tmp_path / "data")),
        CommandRegistry.from_entry_points(), resident=True,
    )
    await app.sync((str(demo_catalog_path()),))
    web_app = create_server(app, catalog=None, sync_interval=3600,
                            slack=SlackSettings(bot_token="xoxb-test", signing_secret="", app_token="xapp-test",
                                                api_url=fake.url))
    server = TestServer(web_app, host="127.0.0.1")
    await server.start_server()
    try:
        await asyncio.wait_for(connected.wait(), 10)
        answer = await asyncio.wait_for(answers.get(), 10)
    finally:
        await server.close()
        await socket_server.close()
        await fake.stop()
    assert answer["envelope_id"] == "env-1"
    assert answer["payload"]["response_type"] == "ephemeral"
    assert "checkout-team" in json.dumps(answer["payload"])
    (opened,) = fake.calls_to("apps.connections.open")
    assert opened.token == "xapp-test"
