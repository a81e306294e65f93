"""Forwarding a query to upstream resolvers, over UDP or TCP, bounded in time: the responder's way out.

Role: `Upstream.forward(query, tcp=...)` tries each server in order (at most `attempts`), each for at most
`timeout_s`, and returns the first reply that `matches` the query (same ID and question, from the server asked:
every attempt has its own connected socket on a fresh port, so a reply can only come from that server). None when
none answered. The raw reply is relayed as it is: no rewriting, so EDNS, DNSSEC records and truncation pass through
untouched. Boundary: sockets to the configured servers only; what to forward is decided in answer.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Sequence

from node.discovery.answer import matches

TIMEOUT_S = 2.0  # per server: a resolver answers from cache in ms and recursively in well under a second
ATTEMPTS = 2  # servers tried per query; with the timeout, a query's worst case is 4 s (a client retries after 5)
MAX_REPLY_BYTES = 65_535  # the most DNS over TCP can frame; UDP replies are at most a datagram


class _FirstMatchingReply(asyncio.DatagramProtocol):
    def __init__(self, query: bytes, answered: asyncio.Future[bytes]) -> None:
        self._query, self._answered = query, answered

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if not self._answered.done() and matches(self._query, data):  # anything else: ignored, keep waiting
            self._answered.set_result(data)

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable: nobody listens there
        if not self._answered.done():
            self._answered.set_exception(exc)


async def exchange_udp(server: tuple[str, int], query: bytes, timeout_s: float) -> bytes:
    """One query over UDP; TimeoutError or OSError when no matching reply came."""
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[bytes] = loop.create_future()
    transport, _ = await loop.create_datagram_endpoint(lambda: _FirstMatchingReply(query, answered),
                                                       remote_addr=server)
    try:
        transport.sendto(query)
        async with asyncio.timeout(timeout_s):
            return await answered
    finally:
        transport.close()


async def exchange_tcp(server: tuple[str, int], query: bytes, timeout_s: float) -> bytes:
    """One query over TCP (2-byte length framing, RFC 1035 §4.2.2); TimeoutError, OSError or ValueError."""
    async with asyncio.timeout(timeout_s):
        reader, writer = await asyncio.open_connection(*server)
        try:
            writer.write(struct.pack("!H", len(query)) + query)
            await writer.drain()
            (size,) = struct.unpack("!H", await reader.readexactly(2))
            reply = await reader.readexactly(size)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    if not matches(query, reply):
        raise ValueError("the upstream's reply does not answer the query")
    return reply


class Upstream:
    def __init__(self, servers: Sequence[tuple[str, int]], *, timeout_s: float = TIMEOUT_S,
                 attempts: int = ATTEMPTS) -> None:
        self.servers = tuple(servers)
        self._timeout_s, self._attempts = timeout_s, attempts

    async def forward(self, query: bytes, *, tcp: bool) -> bytes | None:
        exchange = exchange_tcp if tcp else exchange_udp
        for server in self.servers[:self._attempts]:
            try:
                return await exchange(server, query, self._timeout_s)
            except (TimeoutError, OSError, ValueError, asyncio.IncompleteReadError):
                continue  # that server is down, slow or confused: the next one, if any
        return None
