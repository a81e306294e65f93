"""Time, injected: the protocol reads `now()` (monotonic s), `wall()` (epoch s) and schedules callbacks.

`LoopClock` is the real one (the asyncio loop's clock); `gossip.simnet.SimClock` is the fake one that jumps
to the next deadline, so a simulated minute takes milliseconds and every run with one seed is identical.
This is the only module that reads the system clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol


class Handle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float: ...

    def wall(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Handle: ...


class LoopClock:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def now(self) -> float:
        return self._loop.time()

    def wall(self) -> float:
        return time.time()

    def call_at(self, when: float, callback: Callable[[], None]) -> Handle:
        return self._loop.call_at(when, callback)
