"""sleep_until and within on the injected clock, on a virtual-time loop (exact times)."""

from __future__ import annotations

import asyncio

import pytest

from gossip.clock import LoopClock
from node.probes.timing import sleep_until, within
from tests.unit.probes.vloop import run_virtual


async def _answer_after(clock: LoopClock, seconds: float) -> str:
    await sleep_until(clock, clock.now() + seconds)
    return "done"


def test_sleep_until_returns_at_that_time_and_at_once_for_a_past_one() -> None:
    async def main() -> list[float]:
        clock = LoopClock(asyncio.get_running_loop())
        await sleep_until(clock, 7.5)
        first = clock.now()
        await sleep_until(clock, 1.0)
        return [first, clock.now()]

    assert run_virtual(main) == [7.5, 7.5]


def test_within_returns_the_result_of_work_that_finishes_in_time() -> None:
    async def main() -> tuple[str, float]:
        clock = LoopClock(asyncio.get_running_loop())
        return await within(clock, 5.0, _answer_after(clock, 4.0)), clock.now()

    assert run_virtual(main) == ("done", 4.0)


def test_within_raises_timeout_error_at_the_deadline() -> None:
    async def main() -> float:
        clock = LoopClock(asyncio.get_running_loop())
        with pytest.raises(TimeoutError):
            await within(clock, 5.0, _answer_after(clock, 60.0))
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0  # the deadline's cancel was taken back
        return clock.now()

    assert run_virtual(main) == 5.0


def test_a_cancel_from_outside_stays_a_cancel() -> None:
    async def main() -> float:
        clock = LoopClock(asyncio.get_running_loop())
        inner = asyncio.ensure_future(within(clock, 5.0, _answer_after(clock, 60.0)))
        await sleep_until(clock, 2.0)
        inner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await inner
        return clock.now()

    assert run_virtual(main) == 2.0
