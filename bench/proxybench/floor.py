"""The least an asyncio Protocol proxy on uvloop can do per request: the bench's `floor` config.

research/proxy.md's reference design (py-proto-uvloop), rewritten for the bench: round robin per accepted
connection, `data_received` straight into the peer's transport, each side's `pause_writing` pausing the other's
reading, EOF relayed. Nothing else: no readiness, no weights, no retry on another endpoint, no drain, no idle
timeout, no counters, no policy. It is a measuring stick, not product code: shoal / floor is what Shoal's
proxy's features cost per request, floor / HAProxy what the Protocol design itself can reach on this machine.

Run by bench/proxy.py as `proxy.py floor --listen IP:PORT --backends IP:PORT,...`, until SIGTERM.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
from typing import Any


class Side(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: Any = None
        self.peer: Side | None = None
        self.early = b""
        self.eof = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.write(data)
        else:
            self.early += data

    def eof_received(self) -> bool:
        self.eof = True
        peer = self.peer
        if peer is None or peer.transport is None:
            return True
        if peer.eof:  # both directions done
            peer.transport.close()
            return False
        peer.transport.write_eof()
        return True

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        peer, self.peer = self.peer, None
        if peer is not None and peer.transport is not None:
            peer.peer = None
            peer.transport.close()


class Client(Side):
    def __init__(self, backends: itertools.cycle[tuple[str, int]]) -> None:
        super().__init__()
        self.backends = backends

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        transport.pause_reading()
        asyncio.get_running_loop().create_task(self.connect(next(self.backends)))

    async def connect(self, backend: tuple[str, int]) -> None:
        try:
            _, server = await asyncio.get_running_loop().create_connection(Side, *backend)
        except OSError:
            if self.transport is not None:
                self.transport.close()
            return
        if self.transport is None:  # the client left while we connected
            server.transport.close()
            return
        server.peer, self.peer = self, server
        if self.early:
            server.transport.write(self.early)
            self.early = b""
        self.transport.resume_reading()


async def open_floor(host: str, port: int, backends: list[tuple[str, int]]) -> asyncio.Server:
    """Listen on host:port and relay each connection to the next of `backends`."""
    cycle = itertools.cycle(backends)
    return await asyncio.get_running_loop().create_server(lambda: Client(cycle), host, port, backlog=4096)


def serve(listen: str, backends: str) -> None:
    from node.eventloop import run  # uvloop, as the agent's data plane runs on

    host, port = listen.rsplit(":", 1)
    addresses = [(h, int(p)) for h, p in (b.rsplit(":", 1) for b in backends.split(","))]

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        server = await open_floor(host, int(port), addresses)
        print(f"floor serving {listen}", flush=True)
        await stop.wait()
        server.close()

    run(main())
