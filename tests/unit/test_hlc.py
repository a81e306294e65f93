"""Hybrid logical clock: monotonic whatever the wall clock does, and bounded against clocks far ahead."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gossip.hlc import MAX_COUNTER, ClockDrift, HybridClock, Stamp

walls = st.integers(0, 10**13)
events = st.lists(st.tuples(st.booleans(), walls, walls, st.integers(0, 5)), max_size=60)


@given(events)
def test_stamps_only_grow_even_when_the_wall_clock_jumps_back(steps: list[tuple[bool, int, int, int]]) -> None:
    clock = HybridClock(max_drift_ms=10**13)
    last = clock.last
    for remote, wall, remote_wall, counter in steps:
        stamp = clock.observe(Stamp(remote_wall, counter), wall) if remote else clock.tick(wall)
        assert stamp > last
        if remote:
            assert stamp > Stamp(remote_wall, counter)
        last = stamp


def test_a_tick_follows_the_wall_clock_when_it_is_ahead() -> None:
    clock = HybridClock()
    assert clock.tick(1000) == Stamp(1000, 0)
    assert clock.tick(1000) == Stamp(1000, 1)
    assert clock.tick(900) == Stamp(1000, 2)  # wall went back 100 ms: the counter carries order
    assert clock.tick(1001) == Stamp(1001, 0)


def test_a_write_after_seeing_a_remote_one_sorts_after_it_despite_a_slow_clock() -> None:
    clock = HybridClock()
    clock.observe(Stamp(5000, 7), 1000)
    assert clock.tick(1000) == Stamp(5000, 9)


def test_a_stamp_too_far_ahead_is_refused_and_does_not_move_the_clock() -> None:
    clock = HybridClock(max_drift_ms=60_000)
    clock.tick(1000)
    with pytest.raises(ClockDrift):
        clock.observe(Stamp(1000 + 60_001), 1000)
    assert clock.last == Stamp(1000, 0)


def test_a_full_counter_borrows_the_next_millisecond() -> None:
    clock = HybridClock(Stamp(10, MAX_COUNTER))
    assert clock.tick(5) == Stamp(11, 0)
