"""bench/proxybench/floor.py, the bench's reference proxy: it must relay like a proxy, or its figures mean
nothing (a first version crashed uvloop with a double free halfway through a `Connection: close` run)."""

from __future__ import annotations

import asyncio

import pytest

from bench.proxybench.floor import open_floor
from tests.unit.proxy.loopback import LOOPS, free_port, hello, run, serving, until


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_the_floor_relays_round_robin_both_ways_and_passes_each_close_on(loop: str) -> None:
    async def scenario() -> None:
        async with serving("a", "b") as replicas:
            port = free_port("127.0.0.1")
            server = await open_floor("127.0.0.1", port, [tuple(r.address) for r in replicas])
            try:
                answered = []
                for _ in range(200):  # closed at once each time, as wrk's Connection: close run does
                    name, reader, writer = await hello(("127.0.0.1", port))
                    writer.write(b"ping")
                    assert await asyncio.wait_for(reader.readexactly(4), 5.0) == b"ping"
                    writer.write_eof()  # the replica ends on EOF: the floor passes both FINs on
                    assert await asyncio.wait_for(reader.read(), 5.0) == b""
                    writer.close()
                    answered.append(name)
                assert answered == ["a", "b"] * 100
                await until(lambda: all(r.open == 0 for r in replicas), what="every replica connection to end")
            finally:
                server.close()
                await server.wait_closed()

    run(loop, scenario)
