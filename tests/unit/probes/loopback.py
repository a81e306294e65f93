"""Loopback servers for the runner tests: an HTTP server that answers what it is told, and TCP ports that accept,
refuse, or never answer. Everything binds 127.0.0.1 on a port the kernel picks, and is closed by the test."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field


@dataclass
class HttpStub:
    """Answers every request with `status` (or `raw` bytes), or never answers when `hang`; records request heads."""

    status: int = 200
    raw: bytes | None = None
    hang: bool = False
    heads: list[list[str]] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")[:-2]
                self.heads.append(head)
                if self.hang:
                    await reader.read()  # until the client gives up and closes
                    return
                writer.write(self.raw if self.raw is not None else
                             f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\nLocation: http://127.0.0.1:1/\r\n"
                             f"\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def http_stub(**settings: object) -> AsyncIterator[HttpStub]:
    stub = HttpStub(**settings)  # type: ignore[arg-type]
    server = await asyncio.start_server(stub.handle, "127.0.0.1", 0)
    stub.port = server.sockets[0].getsockname()[1]
    try:
        yield stub
    finally:
        server.close()
        await server.wait_closed()


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A port that is bound but not listening: a connect is refused at once, and nobody else can take it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops further SYNs, so a connect never completes."""
    with socket.socket() as server, socket.socket() as filler:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        filler.connect(("127.0.0.1", port))  # fills the queue of length 0 (Linux admits one more than the backlog)
        yield port
