"""Waiting on the injected clock: sleep until a time, and bound an await by a deadline.

Role: the prober's only two ways to wait. Both go through `Clock.call_at` (gossip.clock), so the agent's
LoopClock drives them in production and a test's clock (or a virtual-time loop) drives them exactly.
Boundary: no system clock read here; nothing about probes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from gossip.clock import Clock

T = TypeVar("T")


async def sleep_until(clock: Clock, when: float) -> None:
    """Return at `when` on `clock` (at once if it has passed)."""
    woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def wake() -> None:
        if not woken.done():
            woken.set_result(None)

    handle = clock.call_at(when, wake)
    try:
        await woken
    finally:
        handle.cancel()


async def within(clock: Clock, seconds: float, work: Awaitable[T]) -> T:
    """Await `work`; TimeoutError if it has not finished `seconds` from now on `clock` (it is then cancelled).
    The same shape as asyncio.timeout, on the injected clock: the deadline cancels this task, and the
    cancellation is turned into TimeoutError only if the deadline caused it, so a shutdown still cancels."""
    task = asyncio.current_task()
    if task is None:
        raise RuntimeError("within() needs a running task")
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    handle = clock.call_at(clock.now() + seconds, expire)
    try:
        return await work
    except asyncio.CancelledError:
        if expired and task.uncancel() == 0:
            raise TimeoutError(f"not done within {seconds} s") from None
        raise
    finally:
        handle.cancel()
