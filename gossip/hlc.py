"""Hybrid logical clock (Kulkarni et al. 2014): timestamps that follow wall time yet never run backwards.

A `Stamp` is (wall milliseconds, counter). `HybridClock.tick` stamps a local write; `observe` folds in a
stamp from another node, so anything written after seeing a remote write sorts after it, even when our own
wall clock lags. Stamps from a clock too far ahead are refused (`ClockDrift`): one node with a wrong clock
must not drag every other node's timestamps into the future. Pure: the caller passes wall time in.
"""

from __future__ import annotations

from dataclasses import dataclass

from gossip.errors import GossipError

MAX_COUNTER = (1 << 32) - 1


class ClockDrift(GossipError):
    """A remote stamp lies further ahead of our wall clock than the tolerated drift."""


@dataclass(frozen=True, slots=True, order=True)
class Stamp:
    wall_ms: int
    counter: int = 0


ZERO = Stamp(0, 0)


class HybridClock:
    def __init__(self, last: Stamp = ZERO, *, max_drift_ms: int = 60_000) -> None:
        self.last = last
        self._max_drift_ms = max_drift_ms

    def tick(self, wall_ms: int) -> Stamp:
        """A stamp for a local event: above every stamp issued or observed so far."""
        return self._advance(self.last, wall_ms)

    def observe(self, remote: Stamp, wall_ms: int) -> Stamp:
        """Fold in a stamp seen on the network; raises ClockDrift if it is too far in the future."""
        if remote.wall_ms > wall_ms + self._max_drift_ms:
            raise ClockDrift(f"stamp {remote.wall_ms} ms is {remote.wall_ms - wall_ms} ms ahead of our clock")
        return self._advance(max(self.last, remote), wall_ms)

    def _advance(self, floor: Stamp, wall_ms: int) -> Stamp:
        if wall_ms > floor.wall_ms:
            stamp = Stamp(wall_ms, 0)
        elif floor.counter < MAX_COUNTER:
            stamp = Stamp(floor.wall_ms, floor.counter + 1)
        else:  # 4 billion events in one millisecond: borrow the next millisecond rather than wrap
            stamp = Stamp(floor.wall_ms + 1, 0)
        self.last = stamp
        return stamp
