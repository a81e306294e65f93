"""The DNS responder on loopback with a fake upstream on loopback: answers, forwards, bounds, and survives
whatever a client sends. Every wait is for a reply with a deadline; "no reply" is shown by the next reply's ID."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from ipaddress import IPv4Address

import pytest
from dnslib import RCODE, DNSRecord

from node.discovery.dns import DnsServer
from node.discovery.upstream import Upstream
from tests.unit.discovery.fakes import UPSTREAM_ANSWER, FakeUpstream, ask_tcp, fake_upstream, udp_client

pytestmark = pytest.mark.timeout(30)
HERE, UPSTREAM, SECOND_UPSTREAM = "127.0.53.1", "127.0.53.2", "127.0.53.3"
VIPS = {"api": IPv4Address("198.19.0.177"), "web": IPv4Address("198.19.0.88")}


def a_records(reply: DNSRecord) -> list[str]:
    return [str(rr.rdata) for rr in reply.rr]


def play(body: Callable[[DnsServer, FakeUpstream], Awaitable[None]], *, mode: str = "answer",
         timeout_s: float = 1.0, **settings: float) -> None:
    """Run `body` against a responder on HERE (a port the kernel picks) that forwards to a fake upstream."""
    async def main() -> None:
        async with fake_upstream(UPSTREAM, mode) as upstream:
            forwarder = Upstream([(UPSTREAM, upstream.port)], timeout_s=timeout_s)
            async with DnsServer(HERE, 0, forwarder=forwarder, **settings) as dns:  # type: ignore[arg-type]
                dns.update(VIPS)
                await body(dns, upstream)

    asyncio.run(main())


def test_service_names_are_answered_with_their_vip_over_udp_and_tcp() -> None:
    async def body(dns: DnsServer, upstream: FakeUpstream) -> None:
        async with udp_client(dns.bound) as client:
            assert a_records(await client.ask(DNSRecord.question("api"))) == ["198.19.0.177"]
            assert a_records(await client.ask(DNSRecord.question("WEB.shoal"))) == ["198.19.0.88"]
        [by_tcp] = await ask_tcp(dns.bound, DNSRecord.question("api.shoal"))
        assert a_records(by_tcp) == ["198.19.0.177"] and by_tcp.rr[0].ttl == 5
        assert upstream.asked == []
        assert dns.counters["answered"] == 3 and dns.counters["tcp_queries"] == 1

    play(body)


def test_unknown_names_under_shoal_are_nxdomain_and_never_forwarded() -> None:
    async def body(dns: DnsServer, upstream: FakeUpstream) -> None:
        async with udp_client(dns.bound) as client:
            reply = await client.ask(DNSRecord.question("db.shoal"))
        assert reply.header.rcode == RCODE.NXDOMAIN and upstream.asked == []

    play(body)


def test_other_names_are_forwarded_and_the_upstreams_reply_relayed() -> None:
    async def body(dns: DnsServer, upstream: FakeUpstream) -> None:
        async with udp_client(dns.bound) as client:
            query = DNSRecord.question("example.com")
            reply = await client.ask(query)
        assert reply.header.id == query.header.id and a_records(reply) == [UPSTREAM_ANSWER]
        [by_tcp] = await ask_tcp(dns.bound, DNSRecord.question("example.org"))
        assert a_records(by_tcp) == [UPSTREAM_ANSWER]
        assert upstream.asked == [("udp", "example.com."), ("tcp", "example.org.")]  # TCP stays TCP upstream
        assert dns.counters["forwarded"] == 2

    play(body)


@pytest.mark.parametrize("mode", ["silent", "wrong-id"])
def test_an_upstream_that_does_not_answer_properly_gives_servfail_after_its_timeout(mode: str) -> None:
    async def body(dns: DnsServer, upstream: FakeUpstream) -> None:
        async with udp_client(dns.bound) as client:
            t0 = time.monotonic()
            reply = await client.ask(DNSRecord.question("example.com"))
            elapsed = time.monotonic() - t0
        assert reply.header.rcode == RCODE.SERVFAIL
        assert 0.3 <= elapsed < 3.0, elapsed
        assert upstream.asked == [("udp", "example.com.")] and dns.counters["upstream_failed"] == 1

    play(body, mode=mode, timeout_s=0.3)


def test_the_next_upstream_is_tried_when_the_first_is_silent() -> None:
    async def main() -> None:
        async with fake_upstream(UPSTREAM, "silent") as first, fake_upstream(SECOND_UPSTREAM) as second:
            forwarder = Upstream([(UPSTREAM, first.port), (SECOND_UPSTREAM, second.port)], timeout_s=0.3)
            async with DnsServer(HERE, 0, forwarder=forwarder) as dns, udp_client(dns.bound) as client:
                assert a_records(await client.ask(DNSRecord.question("example.com"))) == [UPSTREAM_ANSWER]
            assert first.asked == second.asked == [("udp", "example.com.")]

    asyncio.run(main())


@pytest.mark.parametrize(("bad", "reason"), [
    (b"\x12\x34\x00", "malformed"),
    (b"\xab\xcd" + b"\xff" * 40, "malformed"),
    (DNSRecord.question("api").reply().pack(), "not_a_query"),
    (b"\x00" * 5000, "oversized"),
])
def test_a_bad_datagram_is_counted_and_dropped_and_the_next_query_answered(bad: bytes, reason: str) -> None:
    async def body(dns: DnsServer, upstream: FakeUpstream) -> None:
        async with udp_client(dns.bound) as client:
            client.send(bad)
            query = DNSRecord.question("api")
            reply = await client.ask(query)
        assert reply.header.id == query.header.id  # the first reply is the good query's: the bad one got none
        assert dns.counters[reason] == 1 and dns.counters["udp_queries"] == 2

    play(body)


def test_a_malformed_message_over_tcp_gets_no_reply_and_the_connection_goes_on() -> None:
    async def body(dns: DnsServer, upstream: FakeUpstream) -> None:
        reader, writer = await asyncio.open_connection(*dns.bound)
        try:
            good = DNSRecord.question("web").pack()
            writer.write(struct.pack("!H", 3) + b"\x01\x02\x03" + struct.pack("!H", len(good)) + good)
            async with asyncio.timeout(5):
                (size,) = struct.unpack("!H", await reader.readexactly(2))
                reply = DNSRecord.parse(await reader.readexactly(size))
        finally:
            writer.close()
        assert a_records(reply) == ["198.19.0.88"] and dns.counters["malformed"] == 1

    play(body)


def test_update_replaces_the_whole_table_and_leaves_out_bad_entries() -> None:
    async def body(dns: DnsServer, upstream: FakeUpstream) -> None:
        rejected = dns.update({"db": "198.19.0.20", "Bad_Name": "198.19.0.21", "v6": "2001:db8::1", "x": "nope"})
        assert sorted(rejected) == ["'Bad_Name'", "'v6'", "'x'"]
        async with udp_client(dns.bound) as client:
            assert a_records(await client.ask(DNSRecord.question("db.shoal"))) == ["198.19.0.20"]
            assert (await client.ask(DNSRecord.question("api.shoal"))).header.rcode == RCODE.NXDOMAIN

    play(body)


def test_forwards_beyond_max_in_flight_get_servfail_at_once() -> None:
    async def body(dns: DnsServer, upstream: FakeUpstream) -> None:
        async with udp_client(dns.bound) as client:
            held = [DNSRecord.question(f"held{i}.example.com") for i in range(2)]
            for query in held:
                client.send(query.pack())
            await wait_for(lambda: len(upstream.asked) == 2)
            extra = DNSRecord.question("extra.example.com")
            t0 = time.monotonic()
            reply = await client.ask(extra)
            assert time.monotonic() - t0 < 1.0
        assert reply.header.id == extra.header.id and reply.header.rcode == RCODE.SERVFAIL
        assert dns.counters["overloaded"] == 1 and len(upstream.asked) == 2

    t0 = time.monotonic()
    play(body, mode="silent", timeout_s=20.0, max_in_flight=2)
    assert time.monotonic() - t0 < 10.0, "closing the responder did not cancel the forwards in flight"


def test_tcp_connections_beyond_max_tcp_are_closed_and_idle_ones_time_out() -> None:
    async def body(dns: DnsServer, upstream: FakeUpstream) -> None:
        first_reader, first_writer = await asyncio.open_connection(*dns.bound)
        await wait_for(lambda: dns.counters["tcp_connections"] == 1)
        second_reader, second_writer = await asyncio.open_connection(*dns.bound)
        async with asyncio.timeout(5):
            assert await second_reader.read() == b""  # closed by the responder, unanswered
            t0 = time.monotonic()
            assert await first_reader.read() == b""  # idle for tcp_idle_s: closed
        assert time.monotonic() - t0 < 3.0
        first_writer.close()
        second_writer.close()
        assert dns.counters["tcp_refused"] == 1 and dns.counters["tcp_idle_closed"] == 1

    play(body, max_tcp=1, tcp_idle_s=0.3)


def test_a_forwarder_that_raises_is_counted_and_the_responder_goes_on() -> None:
    class Broken:
        async def forward(self, query: bytes, *, tcp: bool) -> bytes | None:
            raise RuntimeError("forwarder bug")

    async def main() -> None:
        async with DnsServer(HERE, 0, forwarder=Broken()) as dns, udp_client(dns.bound) as client:
            dns.update(VIPS)
            client.send(DNSRecord.question("example.com").pack())
            await wait_for(lambda: dns.counters["errors"] == 1)
            query = DNSRecord.question("api")
            reply = await client.ask(query)
            assert reply.header.id == query.header.id and a_records(reply) == ["198.19.0.177"]

    asyncio.run(main())


def test_closing_frees_the_port_for_udp_and_tcp() -> None:
    bound: list[tuple[str, int]] = []

    async def body(dns: DnsServer, upstream: FakeUpstream) -> None:
        bound.append(dns.bound)
        await ask_tcp(dns.bound, DNSRecord.question("api"))  # a connection existed

    play(body)
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(bound[0])


async def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Until `condition` holds, checking at each turn of the loop; AssertionError after timeout_s."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.01)
