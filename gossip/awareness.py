"""Lifeguard local health multiplier (§3): a node that misses acks and nacks slows its own probing.

If *we* are the slow one (CPU starved, a GC-like stall, a lossy uplink), our probes time out for reasons
that are not the target's fault; stretching our timeouts keeps us from accusing healthy members.
"""

from __future__ import annotations


class Awareness:
    def __init__(self, maximum: int) -> None:
        self._max = maximum
        self.score = 0

    def apply(self, delta: int) -> None:
        self.score = min(self._max - 1, max(0, self.score + delta))

    def scale(self, duration_s: float) -> float:
        return duration_s * (self.score + 1)
