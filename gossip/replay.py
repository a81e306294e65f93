"""Replay protection per sender: a boot counter plus a sliding window over sequence numbers. Pure.

Every datagram carries the sender's boot number (persisted, raised on every start) and a sequence number
that rises within a boot. A receiver accepts a sequence number once, within a window below the highest
seen (UDP reorders), and forgets the window when the sender's boot goes up, so a restarted sender's fresh
datagrams are never mistaken for replays while its old ones (lower boot) are refused as stale.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Verdict(enum.Enum):
    FRESH = "fresh"
    REPLAYED = "replayed"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class Window:
    boot: int
    top: int
    """Highest sequence number accepted in this boot."""
    seen: int
    """Bit i set: sequence number top - i was accepted."""


def check(window: Window | None, boot: int, seq: int, size: int) -> tuple[Verdict, Window | None]:
    """Judge (boot, seq) against the window; returns the verdict and the window to keep if fresh."""
    if window is None or boot > window.boot:
        return Verdict.FRESH, Window(boot, seq, 1)
    if boot < window.boot:
        return Verdict.STALE, None
    if seq > window.top:
        shift = seq - window.top
        seen = ((window.seen << shift) | 1) & ((1 << size) - 1) if shift < size else 1
        return Verdict.FRESH, Window(boot, seq, seen)
    offset = window.top - seq
    if offset >= size:
        return Verdict.STALE, None
    if window.seen >> offset & 1:
        return Verdict.REPLAYED, None
    return Verdict.FRESH, Window(boot, window.top, window.seen | (1 << offset))
