"""The connect deadline, checked by a periodic expiry rather than a timer per attempt, never strands a client:
the first attempt starts (and so has its deadline) within the client's `connection_made`, so an expiry tick
before that deadline leaves it alone (when a Task ran the attempts, a tick before the task first ran cancelled
it and its client hung in CLOSE-WAIT: found by the benchmark), and a tick after the deadline moves the attempt
on to the next endpoint."""

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
    return Listener(Address("127.0.0.2", 9), route, config=config, now=loop.time, admit=None)


def test_the_first_attempt_starts_at_once_and_a_tick_before_its_deadline_leaves_it_alone(loop: str) -> None:
    async def scenario() -> None:
        async with serving("a") as [a]:
            site = listener(Route("web", (a.endpoint(),)), ProxyConfig())
            client, side = Downstream(site, site.counters), ClientSide()
            client.connection_made(side)  # type: ignore[arg-type]
            assert client.connect is not None and client.connect.tried == [a.address]  # no loop turn needed
            site.expire(client.connect.deadline - 0.001)  # same loop turn, just before the deadline
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
                assert client.connect is not None and client.connect.deadline < float("inf")
                site.expire(client.connect.deadline)  # the tick that finds the deadline reached
                await until(lambda: client.upstream is not None, what="the second endpoint to answer")
                assert (site.counters.connect_failures, site.counters.retries) == (1, 1)
                client.abort()
            finally:
                filler.close()
                blackhole.close()
    run(loop, scenario)


def test_a_bug_in_settling_an_attempt_costs_that_client_only(loop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("bug")

    async def scenario() -> None:
        async with serving("a") as [a]:
            site = listener(Route("web", (a.endpoint(),)), ProxyConfig())
            monkeypatch.setattr(site, "_linked", broken)
            client, side = Downstream(site, site.counters), ClientSide()
            client.connection_made(side)  # type: ignore[arg-type]
            await until(lambda: side.closed, what="the client to be dropped")
            assert not site.connecting and client.connect is None
    run(loop, scenario)
