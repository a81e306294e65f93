"""Waiting on a condition with a deadline: the lab's only reader of the clock.

Role: `poll_until(check, timeout_s)` for the synchronous CLI (agents healthy, converged, exited).
Boundary: no knowledge of what is checked; callers build their own failure message.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def poll_until(check: Callable[[], bool], timeout_s: float, interval_s: float = 0.2) -> bool:
    """Call `check` until it returns True (-> True) or `timeout_s` passes (-> False). The check runs
    at least once, and once more at the deadline, so a condition met late is not reported as missed."""
    deadline = time.monotonic() + timeout_s
    while True:
        if check():
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(interval_s, remaining))
