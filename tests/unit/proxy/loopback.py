"""Real-socket helpers for the proxy's component tests: replicas on 127.0.0.1, free ports on 127.0.0.x, a waiter
with a deadline, and a runner for each event loop the proxy must work on (the stdlib loop and uvloop)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import uvloop

from gossip.clock import LoopClock
from node.proxy import Address, Endpoint, Proxy, ProxyConfig

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
TEST_DEADLINE_S = 20.0  # a whole test; each one takes well under a second when it passes


def run(loop: str, scenario: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(scenario(), TEST_DEADLINE_S)

    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(bounded())


def free_port(ip: str) -> int:
    with socket.socket() as probe:
        probe.bind((ip, 0))
        return int(probe.getsockname()[1])


def proxy(config: ProxyConfig | None = None, admit: Callable[[str, str, Address], bool] | None = None) -> Proxy:
    return Proxy(clock=LoopClock(asyncio.get_running_loop()), config=config, admit=admit)


async def until(check: Callable[[], bool], timeout_s: float = 5.0, what: str = "condition") -> None:
    """Wait for `check()` to hold, polling every 10 ms, failing after `timeout_s`."""
    async def holds() -> bool:
        return check()
    await eventually(holds, timeout_s, what)


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 5.0,
                     what: str = "condition") -> None:
    """`until`, for a check that must itself await (a connect attempt through the proxy)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.01)


def listening(address: Address) -> bool:
    """Does something accept connections at `address` now? (A blocking connect: on loopback it returns at once.)"""
    with socket.socket() as probe:
        return probe.connect_ex(address) == 0


class Replica:
    """A backend: on each connection says `name\\n`, then echoes until EOF, then closes. `received` keeps what
    each connection brought in (so a PROXY header, when the route sends one, can be checked)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.connections = 0
        self.open = 0
        self.received: list[bytearray] = []
        self.server: asyncio.Server | None = None
        self.address = Address("127.0.0.1", 0)
        self._writers: set[asyncio.StreamWriter] = set()
        self._greet = True

    async def start(self, greet: bool = True) -> Replica:
        self._greet = greet
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.address = Address("127.0.0.1", self.server.sockets[0].getsockname()[1])
        return self

    def endpoint(self, weight: int = 1) -> Endpoint:
        return Endpoint(self.address.ip, self.address.port, weight)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self._writers.add(writer)
        try:
            if self._greet:
                writer.write(self.name.encode() + b"\n")
            received = bytearray()
            self.received.append(received)
            while data := await reader.read(65536):
                received += data
                writer.write(data)
                await writer.drain()
            writer.close()
        except OSError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            self.open -= 1

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for writer in list(self._writers):
            writer.close()
        await until(lambda: self.open == 0, what=f"replica {self.name}'s connections to end")


@contextlib.asynccontextmanager
async def serving(*names: str, greet: bool = True) -> AsyncIterator[list[Replica]]:
    """Replicas for one test, all stopped (servers and connections) at its end: uvloop's loop.close() stalls
    on a server left open once its ResourceWarning is an error."""
    started: list[Replica] = []
    try:
        for name in names:
            started.append(await Replica(name).start(greet))
        yield started
    finally:
        for replica in started:
            await replica.stop()


async def hello(address: Address) -> tuple[str, asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect through the proxy and read which replica answered."""
    reader, writer = await asyncio.open_connection(*address)
    line = await asyncio.wait_for(reader.readline(), 5.0)
    return line.decode().strip(), reader, writer


async def ask(address: Address) -> str:
    name, _, writer = await hello(address)
    writer.close()
    return name


async def answered_by(address: Address, name: str) -> bool:
    return await ask(address) == name


async def closed_at_once(address: Address, within_s: float = 2.0) -> bool:
    """True if the proxy closes a new connection without a byte (EOF) or resets it, within `within_s`."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        data = await asyncio.wait_for(reader.read(1), within_s)
    except ConnectionResetError:
        data = b""
    finally:
        writer.close()
    return data == b""


def stats_of(p: Proxy, address: Address) -> Any:
    return next(s for s in p.snapshot() if s.listen == address)
