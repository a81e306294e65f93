"""A fake upstream resolver and a DNS client, both on loopback, for the responder's tests. The fake answers
every A query with 203.0.113.7 (a documentation address) over UDP and TCP on one port, or stays silent, or answers
with the wrong ID, as the test says; it records what it was asked. Never a real resolver."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import cast

from dnslib import QTYPE, RR, A, DNSRecord

UPSTREAM_ANSWER = "203.0.113.7"
CLIENT_WAIT_S = 5.0  # how long a test waits for a reply that must come (a loopback reply takes ~1 ms)


@dataclass
class FakeUpstream:
    mode: str = "answer"  # answer | silent | wrong-id
    asked: list[tuple[str, str]] = field(default_factory=list)  # (transport, name)
    port: int = 0

    def reply(self, packet: bytes, transport: str) -> bytes | None:
        query = DNSRecord.parse(packet)
        self.asked.append((transport, str(query.q.qname)))
        if self.mode == "silent":
            return None
        reply = query.reply()
        reply.add_answer(RR(query.q.qname, QTYPE.A, rdata=A(UPSTREAM_ANSWER), ttl=60))
        if self.mode == "wrong-id":
            reply.header.id = (query.header.id + 1) % 65536
        return bytes(reply.pack())


class _UpstreamUdp(asyncio.DatagramProtocol):
    def __init__(self, fake: FakeUpstream) -> None:
        self.fake = fake
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # 3.11's UDP transport does not subclass it

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        answer = self.fake.reply(data, "udp")
        if answer is not None and self.transport is not None:
            self.transport.sendto(answer, addr)


@contextlib.asynccontextmanager
async def fake_upstream(address: str, mode: str = "answer") -> AsyncIterator[FakeUpstream]:
    fake = FakeUpstream(mode)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _UpstreamUdp(fake), local_addr=(address, 0))
    fake.port = transport.get_extra_info("sockname")[1]

    async def serve_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            (size,) = struct.unpack("!H", await reader.readexactly(2))
            answer = fake.reply(await reader.readexactly(size), "tcp")
            if answer is not None:
                writer.write(struct.pack("!H", len(answer)) + answer)
                await writer.drain()
            await reader.read()  # until the responder closes
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve_tcp, address, fake.port)
    try:
        yield fake
    finally:
        transport.close()
        server.close()
        await server.wait_closed()


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.replies.put_nowait(data)


@dataclass
class UdpClient:
    transport: asyncio.DatagramTransport
    protocol: _Client

    def send(self, packet: bytes) -> None:
        self.transport.sendto(packet)

    async def receive(self, timeout_s: float = CLIENT_WAIT_S) -> DNSRecord:
        async with asyncio.timeout(timeout_s):
            return DNSRecord.parse(await self.protocol.replies.get())

    async def ask(self, query: DNSRecord) -> DNSRecord:
        self.send(query.pack())
        return await self.receive()


@contextlib.asynccontextmanager
async def udp_client(server: tuple[str, int]) -> AsyncIterator[UdpClient]:
    transport, protocol = await asyncio.get_running_loop().create_datagram_endpoint(_Client, remote_addr=server)
    try:
        yield UdpClient(transport, protocol)
    finally:
        transport.close()


async def ask_tcp(server: tuple[str, int], *queries: DNSRecord) -> list[DNSRecord]:
    """Send the queries on one TCP connection, one after another; read a reply to each."""
    async with asyncio.timeout(CLIENT_WAIT_S):
        reader, writer = await asyncio.open_connection(*server)
        try:
            replies = []
            for query in queries:
                packet = query.pack()
                writer.write(struct.pack("!H", len(packet)) + packet)
                (size,) = struct.unpack("!H", await reader.readexactly(2))
                replies.append(DNSRecord.parse(await reader.readexactly(size)))
            return replies
        finally:
            writer.close()
            await writer.wait_closed()
