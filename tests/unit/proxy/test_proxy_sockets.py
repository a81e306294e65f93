"""The proxy on real loopback sockets, on the stdlib loop and on uvloop: it rotates over replicas, retries past
dead ones, drains removed ones, follows the table, closes what it cannot serve, and bounds memory and count."""

from __future__ import annotations

import asyncio
import gc
import socket

import pytest

from node.proxy import Address, Endpoint, ProxyConfig, Route
from node.proxy.proxyv2 import header
from node.proxy.relay import Downstream, Upstream
from tests.unit.proxy.loopback import LOOPS, ask, closed_at_once, free_port, hello, proxy, run, serving, stats_of
from tests.unit.proxy.loopback import until as wait_until

pytestmark = pytest.mark.parametrize("loop", sorted(LOOPS))


def vip() -> Address:
    return Address("127.0.0.2", free_port("127.0.0.2"))


def test_round_robin_over_three_replicas(loop: str) -> None:
    async def scenario() -> None:
        async with serving("a", "b", "c") as backends:
            listen = vip()
            async with proxy() as p:
                assert await p.update({listen: Route("web", tuple(r.endpoint() for r in backends))}) == frozenset()
                answers = [await ask(listen) for _ in range(9)]
                assert "".join(answers) == "abcabcabc"
                await wait_until(lambda: stats_of(p, listen).open == 0, what="connections closed")
                stats = stats_of(p, listen)
                assert stats.accepted == 9 and stats.connect_failures == 0
                assert stats.bytes_to_clients == 9 * 2  # "a\n" from each replica
    run(loop, scenario)


def test_weights_split_new_connections(loop: str) -> None:
    async def scenario() -> None:
        async with serving("s", "c") as [stable, canary]:
            listen = vip()
            async with proxy() as p:
                await p.update({listen: Route("web", (stable.endpoint(9), canary.endpoint(1)))})
                answers = [await ask(listen) for _ in range(20)]
                assert answers.count("c") == 2 and answers.count("s") == 18
    run(loop, scenario)


def test_a_refused_connect_is_retried_on_the_next_replica_and_then_avoided(loop: str) -> None:
    async def scenario() -> None:
        async with serving("a", "c") as [a, c]:
            dead = Endpoint("127.0.0.1", free_port("127.0.0.1"))  # nothing listens: connect is refused
            listen = vip()
            async with proxy() as p:
                await p.update({listen: Route("web", (a.endpoint(), dead, c.endpoint()))})
                answers = [await ask(listen) for _ in range(6)]
                assert sorted(answers) == ["a", "a", "a", "c", "c", "c"]  # no client saw the dead replica
                stats = stats_of(p, listen)
                assert (stats.connect_failures, stats.retries, stats.closed_no_endpoint) == (1, 1, 0)
                assert [e.cooling_down for e in stats.endpoints] == [False, True, False]
    run(loop, scenario)


def test_a_connect_that_times_out_is_retried_on_the_next_replica(loop: str) -> None:
    async def scenario() -> None:
        async with serving("a") as [a]:
            # A listener that never accepts, its one-slot queue already taken: further SYNs go unanswered.
            blackhole = socket.socket()
            blackhole.bind(("127.0.0.1", 0))
            blackhole.listen(0)
            filler = socket.create_connection(blackhole.getsockname())
            silent = Endpoint("127.0.0.1", blackhole.getsockname()[1])
            listen = vip()
            try:
                async with proxy(ProxyConfig(connect_timeout_s=0.2)) as p:
                    await p.update({listen: Route("web", (silent, a.endpoint()))})
                    started = asyncio.get_running_loop().time()
                    assert await ask(listen) == "a"
                    assert asyncio.get_running_loop().time() - started < 1.0  # one timeout, not more
                    stats = stats_of(p, listen)
                    assert (stats.connect_failures, stats.retries) == (1, 1)
            finally:
                filler.close()
                blackhole.close()
    run(loop, scenario)


def test_a_removed_replica_drains_its_open_connections(loop: str) -> None:
    async def scenario() -> None:
        async with serving("a", "b") as [a, b]:
            listen = vip()
            async with proxy() as p:
                await p.update({listen: Route("web", (a.endpoint(), b.endpoint()))})
                name, reader, writer = await hello(listen)
                assert name == "a"
                await p.update({listen: Route("web", (b.endpoint(),))})  # a is no longer ready
                assert [await ask(listen) for _ in range(3)] == ["b", "b", "b"]
                drained = next(e for e in stats_of(p, listen).endpoints if e.address == a.address)
                assert (drained.weight, drained.open) == (None, 1)
                writer.write(b"still here\n")  # the old connection still reaches a
                assert await asyncio.wait_for(reader.readline(), 5.0) == b"still here\n"
                writer.close()
                await wait_until(lambda: all(e.address != a.address for e in stats_of(p, listen).endpoints),
                                 what="the drained endpoint to leave the snapshot")
    run(loop, scenario)


def test_listeners_follow_the_table(loop: str) -> None:
    async def scenario() -> None:
        async with serving("a", "b") as [a, b]:
            web, api = vip(), Address("127.0.0.3", free_port("127.0.0.3"))
            async with proxy() as p:
                await p.update({web: Route("web", (a.endpoint(),)), api: Route("api", (b.endpoint(),))})
                assert (await ask(web), await ask(api)) == ("a", "b")
                await p.update({api: Route("api", (b.endpoint(),))})
                with pytest.raises(ConnectionRefusedError):
                    await asyncio.open_connection(*web)
                assert await ask(api) == "b"
                assert [s.listen for s in p.snapshot()] == [api]
                await p.update({web: Route("web", (b.endpoint(),)), api: Route("api", (a.endpoint(),))})
                assert (await ask(web), await ask(api)) == ("b", "a")
            with pytest.raises(ConnectionRefusedError):  # leaving the block closes every listener
                await asyncio.open_connection(*api)
    run(loop, scenario)


def test_a_listener_that_cannot_open_is_reported_and_retried(loop: str) -> None:
    async def scenario() -> None:
        async with serving("a") as [a]:
            listen = vip()
            squatter = socket.socket()
            squatter.bind(listen)
            squatter.listen()
            async with proxy(ProxyConfig(listen_retry_s=0.05, listen_retry_max_s=0.1)) as p:
                assert await p.update({listen: Route("web", (a.endpoint(),))}) == {listen}
                stats = stats_of(p, listen)
                assert not stats.listening and stats.listen_failures == 1
                assert stats.listen_error is not None and "in use" in stats.listen_error
                await wait_until(lambda: stats_of(p, listen).listen_failures >= 2, what="a retry")
                squatter.close()
                await wait_until(lambda: stats_of(p, listen).listening, what="the listener to open")
                assert stats_of(p, listen).listen_error is None
                assert await ask(listen) == "a"
    run(loop, scenario)


def test_no_endpoints_closes_the_client_at_once(loop: str) -> None:
    async def scenario() -> None:
        listen, all_dead = vip(), Address("127.0.0.2", free_port("127.0.0.2"))
        dead = Endpoint("127.0.0.1", free_port("127.0.0.1"))
        async with proxy() as p:
            await p.update({listen: Route("web"), all_dead: Route("db", (dead,))})
            assert await closed_at_once(listen)
            assert await closed_at_once(all_dead)
            assert stats_of(p, listen).closed_no_endpoint == 1
            assert stats_of(p, all_dead).closed_no_endpoint == 1
    run(loop, scenario)


def test_a_slow_reader_holds_back_the_replica_with_bounded_buffers(loop: str) -> None:
    total = 64 * 1024 * 1024
    sent = 0

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        chunk = b"x" * 65536
        while sent < total:
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
        writer.close()

    async def scenario() -> None:
        server = await asyncio.start_server(flood, "127.0.0.1", 0)
        replica = Endpoint("127.0.0.1", server.sockets[0].getsockname()[1])
        listen = vip()
        buffer = 64 * 1024
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # small, and not read for now
        client.setblocking(False)
        try:
            async with proxy(ProxyConfig(buffer_bytes=buffer)) as p:
                await p.update({listen: Route("bulk", (replica,))})
                await asyncio.get_running_loop().sock_connect(client, listen)
                await wait_until(lambda: stats_of(p, listen).buffered_bytes >= buffer, what="the buffer to fill")
                # Bounded by the test's deadline: without flow control the replica would finish all 64 MiB
                # (the proxy reading it into memory); with it, `sent` stops growing within a window or two.
                last = -1
                while sent != last:
                    last = sent
                    await asyncio.sleep(0.3)  # a window in which an unbounded proxy would keep reading
                assert sent < total // 2
                assert stats_of(p, listen).buffered_bytes <= buffer + 256 * 1024  # high-water + one read
                reader, writer = await asyncio.open_connection(sock=client)
                received = 0
                while chunk := await asyncio.wait_for(reader.read(1 << 20), 5.0):
                    received += len(chunk)
                assert received == total
                writer.close()
        finally:
            client.close()
            server.close()
            await server.wait_closed()
    run(loop, scenario)


def test_connections_past_the_cap_are_closed_on_arrival(loop: str) -> None:
    async def scenario() -> None:
        async with serving("a") as [a]:
            listen = vip()
            async with proxy(ProxyConfig(max_connections=2)) as p:
                await p.update({listen: Route("web", (a.endpoint(),))})
                first, second = await hello(listen), await hello(listen)
                assert await closed_at_once(listen)
                assert stats_of(p, listen).closed_full == 1
                first[2].close()
                await wait_until(lambda: stats_of(p, listen).open == 1, what="a slot to free up")
                assert await ask(listen) == "a"
                second[2].close()
    run(loop, scenario)


def test_an_idle_connection_is_closed(loop: str) -> None:
    async def scenario() -> None:
        async with serving("a") as [a]:
            listen = vip()
            async with proxy(ProxyConfig(idle_timeout_s=0.4)) as p:
                await p.update({listen: Route("web", (a.endpoint(),))})
                _, reader, writer = await hello(listen)
                assert await asyncio.wait_for(reader.read(1), 3.0) == b""  # closed by the proxy, not by us
                assert stats_of(p, listen).closed_idle == 1
                writer.close()
                await wait_until(lambda: a.open == 0, what="the replica side to close too")
    run(loop, scenario)


def test_the_admission_hook_sees_client_and_service_and_can_refuse(loop: str) -> None:
    async def scenario() -> None:
        async with serving("a") as [a]:
            web, db = vip(), Address("127.0.0.2", free_port("127.0.0.2"))
            asked: list[tuple[str, str]] = []
            listens: set[Address] = set()

            def admit(client_ip: str, service: str, listen: Address) -> bool:
                asked.append((client_ip, service))
                listens.add(listen)
                if service == "broken":
                    raise RuntimeError("policy engine down")
                return service == "web"

            async with proxy(admit=admit) as p:
                await p.update({web: Route("web", (a.endpoint(),)), db: Route("db", (a.endpoint(),))})
                assert await ask(web) == "a"
                assert await closed_at_once(db)
                await p.update({web: Route("broken", (a.endpoint(),)), db: Route("db", (a.endpoint(),))})
                assert await closed_at_once(web)  # a failing hook refuses, and the proxy keeps serving
                assert asked == [("127.0.0.1", "web"), ("127.0.0.1", "db"), ("127.0.0.1", "broken")]
                assert listens == {web, db}  # the hook learns which listener: a VIP port, or a published one
                assert (stats_of(p, db).denied, stats_of(p, web).denied) == (1, 1)
                assert a.connections == 1
    run(loop, scenario)


def test_the_replica_receives_a_proxy_v2_header_with_the_clients_address(loop: str) -> None:
    async def scenario() -> None:
        async with serving("a", greet=False) as [replica]:
            listen = vip()
            async with proxy() as p:
                await p.update({listen: Route("web", (replica.endpoint(),), proxy_protocol=True)})
                reader, writer = await asyncio.open_connection(*listen)
                client = writer.get_extra_info("sockname")
                writer.write(b"hi")
                expected = header(client, listen) + b"hi"
                await wait_until(lambda: bool(replica.received) and len(replica.received[0]) >= len(expected),
                                 what="the replica to receive header and data")
                assert replica.received == [expected]
                assert await asyncio.wait_for(reader.readexactly(len(expected)), 5.0) == expected  # echoed back
                writer.close()
    run(loop, scenario)


def test_half_close_is_relayed_both_ways(loop: str) -> None:
    async def scenario() -> None:
        async with serving("a", greet=False) as [replica]:
            listen = vip()
            async with proxy() as p:
                await p.update({listen: Route("web", (replica.endpoint(),))})
                reader, writer = await asyncio.open_connection(*listen)
                writer.write(b"request")
                writer.write_eof()  # the client is done sending; the replica answers, then closes
                assert await asyncio.wait_for(reader.read(), 5.0) == b"request"
                writer.close()
                await wait_until(lambda: stats_of(p, listen).open == 0, what="the pair to close")
    run(loop, scenario)


def test_leaving_the_block_closes_open_connections(loop: str) -> None:
    async def scenario() -> None:
        async with serving("a") as [a]:
            listen = vip()
            async with proxy() as p:
                await p.update({listen: Route("web", (a.endpoint(),))})
                _, reader, writer = await hello(listen)
            assert await asyncio.wait_for(reader.read(1), 3.0) == b""
            writer.close()
            await wait_until(lambda: a.open == 0, what="the replica side to close")
    run(loop, scenario)


def test_a_replica_that_speaks_first_and_hangs_up_reaches_the_client_whole(loop: str) -> None:
    async def say_bye(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"bye\n")
        writer.close()

    async def scenario() -> None:
        server = await asyncio.start_server(say_bye, "127.0.0.1", 0)
        listen = vip()
        try:
            async with proxy() as p:
                await p.update({listen: Route("motd", (Endpoint("127.0.0.1", server.sockets[0].getsockname()[1]),))})
                for _ in range(5):
                    reader, writer = await asyncio.open_connection(*listen)
                    assert await asyncio.wait_for(reader.read(), 5.0) == b"bye\n"
                    writer.close()
                await wait_until(lambda: stats_of(p, listen).open == 0, what="every pair to close")
        finally:
            server.close()
            await server.wait_closed()
    run(loop, scenario)


def test_a_large_upload_sent_before_the_replica_answers_arrives_whole(loop: str) -> None:
    async def scenario() -> None:
        async with serving("a", greet=False) as [replica]:
            listen = vip()
            payload = bytes(range(256)) * (16 * 1024)  # 4 MiB, written at once: much of it before the connect
            async with proxy() as p:
                await p.update({listen: Route("up", (replica.endpoint(),))})
                reader, writer = await asyncio.open_connection(*listen)
                writer.write(payload)
                writer.write_eof()
                echoed = await asyncio.wait_for(reader.read(), 10.0)
                assert echoed == payload
                assert stats_of(p, listen).bytes_from_clients == len(payload)
                writer.close()
    run(loop, scenario)


def test_leaving_the_block_while_a_connect_attempt_waits_ends_it_and_closes_the_client(loop: str) -> None:
    async def scenario() -> None:
        blackhole = socket.socket()  # never accepts, its one-slot queue taken: SYNs go unanswered
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(0)
        filler = socket.create_connection(blackhole.getsockname())
        listen = vip()
        try:
            async with proxy() as p:
                await p.update({listen: Route("web", (Endpoint("127.0.0.1", blackhole.getsockname()[1]),))})
                reader, writer = await asyncio.open_connection(*listen)
                await wait_until(lambda: stats_of(p, listen).open == 1, what="the client to be connecting")
                connecting = p._listeners[listen].connecting
            assert not connecting  # every attempt ended inside the block (none left to the loop's close)
            try:
                data = await asyncio.wait_for(reader.read(1), 3.0)
            except ConnectionResetError:
                data = b""  # aborted: as good as a FIN here
            assert data == b""
            writer.close()
        finally:
            filler.close()
            blackhole.close()
    run(loop, scenario)


def test_a_closed_pair_is_freed_by_refcounting_not_left_to_the_cyclic_gc(loop: str) -> None:
    """At thousands of connections a second, pairs left in reference cycles made the collector run every few
    dozen connections, with pauses of milliseconds once they aged into older generations (bench/proxy.py)."""
    async def scenario() -> None:
        async with serving("a") as [a]:
            listen = vip()
            async with proxy() as p:
                await p.update({listen: Route("web", (a.endpoint(),))})
                gc.collect()
                gc.disable()
                try:
                    for _ in range(3):
                        _, reader, writer = await hello(listen)
                        writer.write(b"ping")
                        assert await reader.readexactly(4) == b"ping"
                        writer.close()
                        await writer.wait_closed()
                    await wait_until(lambda: stats_of(p, listen).open == 0, what="the pairs to close")
                    # The replica sides' connection_lost comes after the clients'; with the collector off, only
                    # reference counting can free the pairs, so a cycle left behind times this out.
                    await wait_until(lambda: not [o for o in gc.get_objects() if isinstance(o, (Downstream, Upstream))],
                                     timeout_s=2.0, what="every pair freed without the garbage collector")
                finally:
                    gc.enable()
    run(loop, scenario)
