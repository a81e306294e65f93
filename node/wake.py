"""Waiting in the agent's level-triggered loops: until poked, stopped, or a timeout, whichever comes first.

Pure asyncio, no state: the reconciler and the data plane each keep their own `asyncio.Event` and call this.
"""

from __future__ import annotations

import asyncio


async def wait_any(wake: asyncio.Event, stop: asyncio.Event, timeout: float | None) -> None:
    """Return when `wake` or `stop` is set, or after `timeout` seconds (None: no timeout)."""
    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
