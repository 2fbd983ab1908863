"""A TCP proxy a test controls, to stand between Callboard and its database.

Three modes, switched at any time::

    proxy = TcpProxy("127.0.0.1", 5432)
    port = await proxy.start()       # listens on 127.0.0.1:<port>, forwarding
    await proxy.refuse()             # stops listening (connects get ECONNREFUSED); open connections are reset
    proxy.black_hole()               # accepts and reads, never answers; open connections freeze too
    await proxy.forward()            # new connections reach the target again
    await proxy.close()

A connection frozen by ``black_hole()`` stays frozen after ``forward()``: like a dead NAT entry,
bytes sent into it are lost, so whoever holds it must notice (time limits) and let it go.
``accepted`` counts the connections taken since start, ``open`` those still open.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass, field

__all__ = ["TcpProxy"]

_CHUNK = 65536


@dataclass(eq=False)
class _Link:
    """One client connection and, unless it was born black-holed, its upstream connection."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    frozen: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None and not writer.is_closing():
                sock = writer.get_extra_info("socket")
                if sock is not None:  # RST instead of FIN: the peer sees the connection reset
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                writer.transport.abort()


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        self.mode = "forward"
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()

    @property
    def open(self) -> int:
        return len(self._links)

    async def start(self) -> int:
        await self._listen()
        return self.port

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, self.host, self.port, reuse_address=True)
            self.port = self._server.sockets[0].getsockname()[1]

    async def forward(self) -> None:
        self.mode = "forward"
        await self._listen()

    def black_hole(self) -> None:
        self.mode = "black_hole"
        for link in self._links:
            link.frozen = True

    async def refuse(self) -> None:
        self.mode = "refuse"
        if self._server is not None:
            server, self._server = self._server, None
            server.close()
            await server.wait_closed()
        self._reset_all()

    async def close(self) -> None:
        await self.refuse()
        self.mode = "closed"

    def _reset_all(self) -> None:
        links, self._links = list(self._links), set()
        for link in links:
            for task in link.tasks:
                task.cancel()
            link.abort()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        link = _Link(client=writer, frozen=self.mode != "forward")
        if self.mode == "refuse":  # a connect that raced the listener closing
            link.abort()
            return
        self._links.add(link)
        try:
            if link.frozen:
                await self._swallow(reader)
                return
            try:
                up_reader, link.upstream = await asyncio.open_connection(*self.target)
            except OSError:
                link.abort()
                return
            link.tasks = [asyncio.current_task()]  # type: ignore[list-item]
            pump_back = asyncio.ensure_future(self._pump(up_reader, writer, link))
            link.tasks.append(pump_back)
            try:
                await self._pump(reader, link.upstream, link)
            finally:
                pump_back.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pump_back
        except asyncio.CancelledError:
            pass
        finally:
            self._links.discard(link)
            link.abort()

    @staticmethod
    async def _swallow(reader: asyncio.StreamReader) -> None:
        while await reader.read(_CHUNK):
            pass

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link) -> None:
        """Copy bytes one way until EOF; once the link is frozen, read and drop them."""
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(_CHUNK):
                if link.frozen:
                    continue
                writer.write(data)
                await writer.drain()
