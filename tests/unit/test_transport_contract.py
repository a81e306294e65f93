"""One contract, two transports: real UDP on loopback and the simulated network both deliver a datagram with
its source address, to the right receiver only, and nothing after close."""

from __future__ import annotations

import asyncio
import random

from gossip.simnet import SimClock, SimHost, SimNetwork
from gossip.udp import MAX_BACKLOG, UdpTransport
from gossip.wire import MAX_DATAGRAM_BYTES, Address

Got = list[tuple[bytes, Address]]


async def _until(condition: object, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.005)


def test_udp_delivers_with_source_address_and_drops_oversize() -> None:
    async def scenario() -> None:
        got_a: Got = []
        got_b: Got = []
        async with UdpTransport.bound(("127.0.0.1", 0)) as a, UdpTransport.bound(("127.0.0.1", 0)) as b:
            a.start(lambda d, s: got_a.append((d, s)))
            b.start(lambda d, s: got_b.append((d, s)))
            a.send(b"x" * (MAX_DATAGRAM_BYTES + 1), b.local_addr)
            a.send(b"hello", b.local_addr)
            await _until(lambda: got_b)
            assert got_b == [(b"hello", a.local_addr)] and got_a == []
            assert b.stats["drop_oversize"] == 1

    asyncio.run(scenario())


def test_simulated_network_delivers_with_source_address_and_honours_partitions_and_close() -> None:
    clock = SimClock()
    net = SimNetwork(clock, random.Random(1))
    a, b = SimHost(net, ("198.18.0.1", 1)), SimHost(net, ("198.18.0.2", 1))
    got_a: Got = []
    got_b: Got = []
    a.start(lambda d, s: got_a.append((d, s)))
    b.start(lambda d, s: got_b.append((d, s)))
    a.send(b"hello", b.local_addr)
    clock.run_until(1.0)
    assert got_b == [(b"hello", a.local_addr)] and got_a == []
    net.partition({a.local_addr})
    a.send(b"cut", b.local_addr)
    clock.run_until(2.0)
    assert len(got_b) == 1
    net.heal()
    b.close()
    a.send(b"closed", b.local_addr)
    clock.run_until(3.0)
    assert len(got_b) == 1


def test_udp_sheds_a_flood_backlog_instead_of_growing_without_bound() -> None:
    async def scenario() -> None:
        got: Got = []
        async with UdpTransport.bound(("127.0.0.1", 0)) as t:
            backlog = t._stream._recvq  # what asyncio-dgram queued from the kernel (a flood, simulated)
            for i in range(MAX_BACKLOG + 1000):
                backlog.put_nowait((b"%d" % i, ("127.0.0.1", 9)))
            t.start(lambda d, s: got.append((d, s)))
            await _until(lambda: backlog.qsize() == 0)
            assert t.stats["drop_backlog"] >= 999
            assert len(got) + t.stats["drop_backlog"] == MAX_BACKLOG + 1000

    asyncio.run(scenario())
