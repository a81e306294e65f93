"""The connect deadline, checked by a periodic expiry rather than a timer per attempt, never strands a client:
an expiry tick that lands before a connect task first runs must leave it alone (found by the benchmark: such
clients hung in CLOSE-WAIT), and one after the deadline moves the attempt on to the next endpoint."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from node.proxy import Address, Endpoint, ProxyConfig, Route
from node.proxy.listener import Listener
from node.proxy.relay import Downstream
from tests.unit.proxy.loopback import LOOPS, run, serving, until

pytestmark = pytest.mark.parametrize("loop", sorted(LOOPS))


class ClientSide:
    """The few transport calls the listener makes on a client's side, recorded."""

    def __init__(self) -> None:
        self.closed = False
        self.reading = True
        self.written = bytearray()

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def is_closing(self) -> bool:
        return self.closed

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    abort = close


def listener(route: Route, config: ProxyConfig) -> Listener:
    loop = asyncio.get_running_loop()
    return Listener(Address("127.0.0.2", 9), route, config=config, now=loop.time, admit=None,
                    spawn=loop.create_task)


def test_an_expiry_tick_before_the_connect_task_starts_leaves_it_alone(loop: str) -> None:
    async def scenario() -> None:
        async with serving("a") as [a]:
            site = listener(Route("web", (a.endpoint(),)), ProxyConfig())
            client, side = Downstream(site, site.counters), ClientSide()
            client.connection_made(side)  # type: ignore[arg-type]
            site.expire(asyncio.get_running_loop().time() + 1000)  # same loop turn: the task has not run yet
            await until(lambda: client.upstream is not None, what="the replica to be connected")
            await until(lambda: bytes(side.written) == b"a\n", what="the replica's greeting")
            assert site.counters.connect_failures == 0 and not side.closed
            client.abort()
    run(loop, scenario)


def test_an_attempt_past_its_deadline_moves_on_to_the_next_endpoint(loop: str) -> None:
    async def scenario() -> None:
        async with serving("a") as [a]:
            blackhole = socket.socket()  # never accepts, its one-slot queue taken: SYNs go unanswered
            blackhole.bind(("127.0.0.1", 0))
            blackhole.listen(0)
            filler = socket.create_connection(blackhole.getsockname())
            try:
                silent = Endpoint("127.0.0.1", blackhole.getsockname()[1])
                site = listener(Route("web", (silent, a.endpoint())), ProxyConfig(connect_timeout_s=60.0))
                client, side = Downstream(site, site.counters), ClientSide()
                client.connection_made(side)  # type: ignore[arg-type]
                await until(lambda: client.deadline < float("inf"), what="the first attempt to start")
                site.expire(client.deadline)  # the tick that finds the deadline reached
                await until(lambda: client.upstream is not None, what="the second endpoint to answer")
                assert (site.counters.connect_failures, site.counters.retries) == (1, 1)
                client.abort()
            finally:
                filler.close()
                blackhole.close()
    run(loop, scenario)
