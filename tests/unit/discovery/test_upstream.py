"""Forwarding to upstream resolvers on loopback: a port nobody listens on fails at once (ICMP), not at the
timeout, and the next server is asked."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from dnslib import DNSRecord

from node.discovery.upstream import Upstream, exchange_tcp, exchange_udp
from tests.unit.discovery.fakes import UPSTREAM_ANSWER, fake_upstream

pytestmark = pytest.mark.timeout(30)
UPSTREAM = "127.0.53.4"


def unused_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((UPSTREAM, 0))
        return int(sock.getsockname()[1])


def test_a_closed_udp_port_fails_at_once_rather_than_at_the_timeout() -> None:
    query = DNSRecord.question("example.com").pack()
    t0 = time.monotonic()
    with pytest.raises(OSError):
        asyncio.run(exchange_udp((UPSTREAM, unused_port(socket.SOCK_DGRAM)), query, 10.0))
    assert time.monotonic() - t0 < 3.0


def test_a_closed_tcp_port_fails_at_once() -> None:
    query = DNSRecord.question("example.com").pack()
    with pytest.raises(OSError):
        asyncio.run(exchange_tcp((UPSTREAM, unused_port(socket.SOCK_STREAM)), query, 10.0))


def test_forward_skips_a_dead_server_without_waiting_out_its_timeout() -> None:
    async def main() -> tuple[bytes | None, float]:
        async with fake_upstream("127.0.53.5") as live:
            upstream = Upstream([(UPSTREAM, unused_port(socket.SOCK_DGRAM)), ("127.0.53.5", live.port)],
                                timeout_s=10.0)
            t0 = time.monotonic()
            reply = await upstream.forward(DNSRecord.question("example.com").pack(), tcp=False)
            return reply, time.monotonic() - t0

    reply, elapsed = asyncio.run(main())
    assert reply is not None and [str(rr.rdata) for rr in DNSRecord.parse(reply).rr] == [UPSTREAM_ANSWER]
    assert elapsed < 3.0


def test_forward_gives_none_when_no_server_answers() -> None:
    upstream = Upstream([(UPSTREAM, unused_port(socket.SOCK_DGRAM))], timeout_s=1.0)
    assert asyncio.run(upstream.forward(DNSRecord.question("example.com").pack(), tcp=False)) is None
    assert asyncio.run(Upstream([]).forward(b"anything", tcp=True)) is None
