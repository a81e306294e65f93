"""node.proxypipe and node.proxyworker without a second process: frames written into a StreamReader, the worker
serving them on this loop with real sockets on 127.0.0.x."""

from __future__ import annotations

import asyncio
import pickle
from ipaddress import IPv4Network

import pytest

from gossip.clock import LoopClock
from netpolicy.gate import Gate
from node.admission import Admission
from node.proxy import Address, ProxyConfig, Route
from node.proxypipe import HEADER, MAX_FRAME, Configure, PipeError, SetAdmission, SetTable, frame, receive
from node.proxyworker import serve
from tests.unit.proxy.loopback import (
    LOOPS,
    answered_by,
    ask,
    closed_at_once,
    eventually,
    free_port,
    listening,
    run,
    serving,
    until,
)

CONFIGURE = Configure(ProxyConfig(connect_timeout_s=0.5), "info")
NOBODY = Admission(None, Gate(checks={}, ingress={"web": (IPv4Network("192.0.2.0/24"),)}, own_subnet=None,
                              members=frozenset(), endpoint_ports=frozenset(), local={}))


def reader_of(*chunks: bytes, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    for chunk in chunks:
        reader.feed_data(chunk)
    if eof:
        reader.feed_eof()
    return reader


def test_every_message_comes_back_as_it_was_sent() -> None:
    table = {Address("127.0.0.9", 80): Route("web", ())}
    messages = [CONFIGURE, SetTable(table), SetAdmission(NOBODY)]

    async def main() -> None:
        reader = reader_of(b"".join(frame(m) for m in messages))
        assert [await receive(reader) for _ in messages] == messages
        assert await receive(reader) is None  # the end of the pipe, between frames

    asyncio.run(main())


@pytest.mark.parametrize(("data", "error"), [
    (HEADER.pack(MAX_FRAME + 1), "over the pipe's"),
    (b"\x00\x00", "inside a frame header"),
    (HEADER.pack(10) + b"abc", r"inside a frame \(3 of 10 bytes\)"),
    (HEADER.pack(4) + b"junk", "does not decode"),
    (HEADER.pack(len(pickle.dumps(42))) + pickle.dumps(42), "holding a int"),
])
def test_a_frame_that_is_not_a_message_is_refused(data: bytes, error: str) -> None:
    async def main() -> None:
        with pytest.raises(PipeError, match=error):
            await receive(reader_of(data))

    asyncio.run(main())


@pytest.mark.parametrize("loop", LOOPS)
def test_the_worker_serves_the_latest_table_and_admission_until_the_pipe_ends(loop: str) -> None:
    async def main() -> None:
        listen = Address("127.0.0.31", free_port("127.0.0.31"))
        async with serving("a", "b") as (a, b):
            reader = reader_of(frame(CONFIGURE), frame(SetTable({listen: Route("web", (a.endpoint(),))})),
                               eof=False)
            worker = asyncio.create_task(serve(LoopClock(asyncio.get_running_loop()), reader, asyncio.Event()))
            await until(lambda: listening(listen), what="the listener")
            assert await ask(listen) == "a"
            reader.feed_data(frame(SetTable({listen: Route("web", (b.endpoint(),))})))
            await eventually(lambda: answered_by(listen, "b"), what="the new route")
            reader.feed_data(frame(SetAdmission(NOBODY)))  # web's ingress list holds 192.0.2.0/24 only
            await eventually(lambda: closed_at_once(listen), what="the admission applied")
            reader.feed_eof()
            assert await asyncio.wait_for(worker, 5.0) == 0
            assert not listening(listen)

    run(loop, main)


@pytest.mark.parametrize("first", [frame(SetTable({})), HEADER.pack(3) + b"bad"])
def test_the_worker_exits_1_on_a_broken_pipe_and_0_when_stopped(first: bytes) -> None:
    async def main() -> None:
        clock = LoopClock(asyncio.get_running_loop())
        assert await asyncio.wait_for(serve(clock, reader_of(first), asyncio.Event()), 5.0) == 1
        listen = Address("127.0.0.32", free_port("127.0.0.32"))
        stop = asyncio.Event()
        reader = reader_of(frame(CONFIGURE), frame(SetTable({listen: Route("web", ())})), eof=False)
        worker = asyncio.create_task(serve(clock, reader, stop))
        await until(lambda: listening(listen), what="the listener")
        stop.set()  # SIGTERM's path: the pipe is still open
        assert await asyncio.wait_for(worker, 5.0) == 0
        assert not listening(listen)

    asyncio.run(main())
