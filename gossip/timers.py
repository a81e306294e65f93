"""A deterministic timer heap for the sans-I/O protocol core: named deadlines, cancellable by name."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

Action = Callable[[float], None]


class Timers:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str]] = []
        self._live: dict[str, tuple[int, Action]] = {}
        self._order = itertools.count()

    def set(self, name: str, deadline: float, action: Action) -> None:
        """Schedule `action(now)` at `deadline`, replacing any timer with the same name."""
        order = next(self._order)
        self._live[name] = (order, action)
        heapq.heappush(self._heap, (deadline, order, name))

    def cancel(self, name: str) -> None:
        self._live.pop(name, None)

    def next_deadline(self) -> float | None:
        while self._heap:
            deadline, order, name = self._heap[0]
            live = self._live.get(name)
            if live is not None and live[0] == order:
                return deadline
            heapq.heappop(self._heap)
        return None

    def run_due(self, now: float) -> int:
        """Run every timer whose deadline has passed, in deadline order; returns how many ran."""
        ran = 0
        while (deadline := self.next_deadline()) is not None and deadline <= now:
            _, _, name = heapq.heappop(self._heap)
            _, action = self._live.pop(name)
            action(now)
            ran += 1
        return ran
