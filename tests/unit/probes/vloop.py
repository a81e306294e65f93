"""A virtual-time asyncio loop for component tests: time moves only when every task waits.

When nothing is ready to run, the loop's selector, instead of blocking for the time left until the next timer,
moves the loop's clock to that timer at once (the idea of trio's MockClock with autojump and of kopf's looptime).
So a simulated minute of probing takes milliseconds, and tests assert exact times: `loop.time()` starts at 0.
Only for code that waits on timers: real sockets would see time jump while the kernel still works on them.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self, advance: Callable[[float], None]) -> None:
        super().__init__()
        self._advance = advance

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready: list[tuple[selectors.SelectorKey, int]] = super().select(0)
        if ready or (timeout is not None and timeout <= 0):
            return ready
        if timeout is None:  # no timer at all: only I/O could wake us (a test that forgot to stop hangs here)
            return list(super().select(None))
        self._advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._virtual_now = 0.0
        super().__init__(_JumpingSelector(self._advance))

    def time(self) -> float:
        return self._virtual_now

    def _advance(self, seconds: float) -> None:
        self._virtual_now += seconds


def run_virtual(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run `main()` on a fresh virtual-time loop, closed afterwards."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main())
