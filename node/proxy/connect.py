"""A client's connect attempts, each one `loop.create_connection` coroutine stepped by hand rather than by a Task.

Role: the mechanics of connecting upstream for one client: start an attempt, deliver its outcome (the
connected pair, or the exception) to the listener, cut it short on its deadline or when the client leaves. The
listener decides what an outcome means (link, next endpoint, give up). Why not a Task: asyncio has no
callback-style connect, so every new connection used to cost a Task (created, registered in asyncio's task
WeakSet, first stepped one loop turn later, and finished through the task group's done callback). Stepping the
coroutine here does the same work with none of that: its first step runs at once (within the client's
`connection_made`, so the SYN leaves from there rather than a loop turn later), and each later step is the done
callback of the future it waits on, exactly where a Task would resume it. Cancelling works as in a Task: the
awaited future is cancelled, so the coroutine sees CancelledError where it waits and closes its socket itself.
Boundary: no endpoint choice, no counters; the per-client state of the attempts (tried endpoints, deadline)
lives here so that `Downstream` stays small for the connections that are long past connecting.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine
from typing import Any

from node.proxy.model import Address
from node.proxy.select import Rotation

Outcome = Callable[["Connect", Any, "BaseException | None"], None]
"""outcome(connect, (transport, protocol) or None, exception or None): called once per attempt."""


class Connect:
    """The connect attempts of one client, one at a time."""

    __slots__ = ("_coro", "_must_cancel", "_outcome", "_waiting", "deadline", "endpoint", "expired", "header",
                 "rotation", "tried")

    def __init__(self, header: bytes, outcome: Outcome) -> None:
        self.header = header  # PROXY v2 header for each attempt's upstream, or b""
        self.tried: list[Address] = []  # endpoints attempted so far, the current one last
        self.endpoint: Address | None = None  # the current attempt's endpoint
        self.rotation: Rotation | None = None  # the rotation it was picked from (a failure cools it down there)
        # When the current attempt times out (loop clock); expire() in the listener compares it with the clock.
        self.deadline = math.inf
        self.expired = False  # the current attempt was cancelled for its deadline, not because the client left
        self._outcome = outcome
        self._coro: Coroutine[Any, Any, Any] | None = None
        self._waiting: asyncio.Future[Any] | None = None  # what the coroutine waits on now
        self._must_cancel = False  # cancel() came while no future was awaited: throw at the next step

    def start(self, coro: Coroutine[Any, Any, Any], endpoint: Address, rotation: Rotation, deadline: float) -> None:
        """Run `coro` (a create_connection) as the current attempt; its first step runs now."""
        self._coro, self.endpoint, self.rotation, self.deadline = coro, endpoint, rotation, deadline
        self.expired = self._must_cancel = False
        self._step(None)

    def cancel(self) -> bool:
        """Cut the current attempt short, as Task.cancel would: its outcome (CancelledError) comes later, once the
        coroutine has cleaned up. False if there is nothing left to cancel."""
        if self._coro is None:
            return False
        waiting = self._waiting
        if waiting is None:
            self._must_cancel = True
            return True
        return waiting.cancel()

    def _step(self, _done: object) -> None:
        coro = self._coro
        assert coro is not None, "stepped after its outcome"
        self._waiting = None
        try:
            if self._must_cancel:
                self._must_cancel = False
                yielded = coro.throw(asyncio.CancelledError())
            else:
                yielded = coro.send(None)
        except StopIteration as stop:
            result, error = stop.value, None
        except (Exception, asyncio.CancelledError) as exc:  # refused, cancelled, or a bug: the listener decides
            result, error = None, exc
        else:
            if yielded is None:  # a bare `yield` (asyncio.sleep(0)): resume on the next loop turn, as a Task would
                asyncio.get_running_loop().call_soon(self._step, None)
            else:
                self._waiting = yielded
                yielded.add_done_callback(self._step)
            return
        self._coro = None  # before the outcome, which may start the next attempt
        self._outcome(self, result, error)
