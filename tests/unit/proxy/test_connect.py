"""Connect, the hand-stepped connect attempt, behaves as a Task would for the coroutines it drives: the first
step runs at once, a later one when the awaited future is done, and the outcome (value or exception) arrives
once; cancel() throws CancelledError where the coroutine waits, so it can clean up."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from node.proxy.connect import Connect
from node.proxy.model import Address
from node.proxy.select import Rotation
from tests.unit.proxy.loopback import LOOPS, run

pytestmark = pytest.mark.parametrize("loop", sorted(LOOPS))

HERE = Address("127.0.0.1", 1)


class Outcomes:
    def __init__(self) -> None:
        self.seen: list[tuple[Any, BaseException | None]] = []

    def __call__(self, connect: Connect, result: Any, exc: BaseException | None) -> None:
        self.seen.append((result, exc))


def start(connect: Connect, coro: Any) -> None:
    connect.start(coro, HERE, Rotation(()), deadline=1.0)


def test_the_first_step_runs_at_once_and_the_value_arrives_when_the_awaited_future_is_done(loop: str) -> None:
    async def scenario() -> None:
        steps: list[str] = []
        gate = asyncio.get_running_loop().create_future()

        async def attempt() -> str:
            steps.append("first")
            await gate
            steps.append("second")
            return "pair"

        outcomes = Outcomes()
        start(Connect(b"", outcomes), attempt())
        assert steps == ["first"] and outcomes.seen == []
        gate.set_result(None)
        await asyncio.sleep(0)  # the future's done callback runs on the next loop turn
        assert steps == ["first", "second"] and outcomes.seen == [("pair", None)]
    run(loop, scenario)


def test_an_exception_is_the_outcome(loop: str) -> None:
    async def scenario() -> None:
        async def refused() -> None:
            await asyncio.sleep(0)  # a bare yield: resumed on the next turn, as a Task would
            raise ConnectionRefusedError

        outcomes = Outcomes()
        start(Connect(b"", outcomes), refused())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert len(outcomes.seen) == 1 and isinstance(outcomes.seen[0][1], ConnectionRefusedError)
    run(loop, scenario)


def test_cancel_throws_where_the_coroutine_waits_and_lets_it_clean_up(loop: str) -> None:
    async def scenario() -> None:
        cleaned = []

        async def attempt() -> None:
            try:
                await asyncio.get_running_loop().create_future()  # never done
            finally:
                cleaned.append(True)  # where create_connection closes its socket

        outcomes = Outcomes()
        connect = Connect(b"", outcomes)
        start(connect, attempt())
        assert connect.cancel()
        await asyncio.sleep(0)
        assert cleaned == [True]
        assert len(outcomes.seen) == 1 and isinstance(outcomes.seen[0][1], asyncio.CancelledError)
        assert not connect.cancel()  # nothing left to cancel
    run(loop, scenario)


def test_cancel_before_a_future_is_awaited_throws_at_the_next_step(loop: str) -> None:
    async def scenario() -> None:
        async def attempt() -> None:
            await asyncio.sleep(0)  # waiting on no future: cancel() cannot cancel one
            await asyncio.get_running_loop().create_future()

        outcomes = Outcomes()
        connect = Connect(b"", outcomes)
        start(connect, attempt())
        assert connect.cancel()
        await asyncio.sleep(0)
        assert len(outcomes.seen) == 1 and isinstance(outcomes.seen[0][1], asyncio.CancelledError)
    run(loop, scenario)
