"""Endpoint selection: smooth weighted round robin is fair, follows weights exactly per cycle, spreads picks,
skips tried and cooling-down endpoints, and keeps its place across readiness changes."""

from __future__ import annotations

import itertools
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from node.proxy.model import Endpoint
from node.proxy.select import Rotation

A, B, C = Endpoint("10.0.0.1", 80), Endpoint("10.0.0.2", 80), Endpoint("10.0.0.3", 80)


def names(rotation: Rotation, n: int, now: float = 0.0) -> str:
    picked = [rotation.pick(now) for _ in range(n)]
    return "".join("abc"[int(e.ip[-1]) - 1] if e else "-" for e in picked)


def test_equal_weights_take_turns_in_route_order() -> None:
    assert names(Rotation([A, B, C]), 9) == "abcabcabc"


def test_smooth_weights_spread_picks_like_nginx() -> None:
    # nginx's documented example for weights 5, 1, 1: { a, a, b, a, c, a, a }
    rotation = Rotation([Endpoint("10.0.0.1", 80, 5), Endpoint("10.0.0.2", 80, 1), Endpoint("10.0.0.3", 80, 1)])
    assert names(rotation, 7) == "aabacaa"


def test_canary_weight_1_of_100_gets_exactly_one_connection_per_100() -> None:
    stable, canary = Endpoint("10.0.0.1", 80, 99), Endpoint("10.0.0.2", 80, 1)
    rotation = Rotation([stable, canary])
    picks = [rotation.pick(0.0) for _ in range(1000)]
    assert Counter(picks) == {stable: 990, canary: 10}
    canary_at = [i for i, e in enumerate(picks) if e == canary]
    assert all(b - a == 100 for a, b in itertools.pairwise(canary_at))  # spread, never bunched


@given(st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=8), st.integers(1, 5))
def test_every_cycle_of_total_weight_picks_each_endpoint_weight_times(weights: list[int], cycles: int) -> None:
    endpoints = [Endpoint(f"10.0.0.{i + 1}", 80, w) for i, w in enumerate(weights)]
    rotation = Rotation(endpoints)
    total = sum(weights)
    for _ in range(cycles):
        counts = Counter(rotation.pick(0.0) for _ in range(total))
        assert counts == {e: e.weight for e in endpoints if e.weight}
    if total == 0:
        assert rotation.pick(0.0) is None


@given(st.lists(st.integers(0, 20), min_size=1, max_size=6), st.integers(0, 40),
       st.lists(st.integers(0, 20), min_size=1, max_size=6), st.integers(1, 4))
def test_after_any_endpoint_change_the_split_stays_within_one_of_the_weights(
        before: list[int], picks: int, after: list[int], cycles: int) -> None:
    rotation = Rotation([Endpoint(f"10.0.0.{i + 1}", 80, w) for i, w in enumerate(before)])
    for _ in range(picks):
        rotation.pick(0.0)
    endpoints = [Endpoint(f"10.0.0.{i + 3}", 80, w) for i, w in enumerate(after)]  # some kept, some new
    rotation = rotation.with_endpoints(endpoints)
    counts = Counter(rotation.pick(0.0) for _ in range(sum(after) * cycles))
    assert all(abs(counts[e] - e.weight * cycles) <= 1 for e in endpoints)


def test_same_state_same_picks() -> None:
    first, second = Rotation([A, B, C]), Rotation([A, B, C])
    assert names(first, 50) == names(second, 50)


def test_no_endpoints_picks_none() -> None:
    assert Rotation([]).pick(0.0) is None


def test_a_retry_never_picks_an_endpoint_already_tried() -> None:
    rotation = Rotation([A, B, C])
    assert rotation.pick(0.0, tried=[A.address]) == B
    assert rotation.pick(0.0, tried=[A.address, B.address]) == C
    assert rotation.pick(0.0, tried=[A.address, B.address, C.address]) is None


def test_a_failed_endpoint_sits_out_its_cool_down_then_returns() -> None:
    rotation = Rotation([A, B, C])
    assert rotation.failed(B.address, now=10.0, cool_down_s=5.0) is True
    assert rotation.failed(B.address, now=11.0, cool_down_s=5.0) is False  # already down: logged once
    assert names(rotation, 6, now=12.0) == "acacac"
    assert rotation.down(12.0) == (B.address,)
    assert set(names(rotation, 6, now=16.5)) == {"a", "b", "c"}
    assert rotation.down(16.5) == ()


def test_when_every_endpoint_cools_down_they_are_all_tried_anyway() -> None:
    rotation = Rotation([A, B])
    rotation.failed(A.address, 0.0, 5.0)
    rotation.failed(B.address, 0.0, 5.0)
    assert {rotation.pick(1.0), rotation.pick(1.0)} == {A, B}


def test_an_endpoint_that_becomes_unready_gets_no_more_picks_and_the_rest_stay_fair() -> None:
    rotation = Rotation([A, B, C])
    names(rotation, 4)
    rotation = rotation.with_endpoints([A, C])  # B failed readiness: the caller drops it from the route
    picks = Counter(rotation.pick(0.0) for _ in range(100))
    assert picks == {A: 50, C: 50}


def test_an_endpoint_that_becomes_ready_again_gets_its_share_at_once() -> None:
    rotation = Rotation([A, C]).with_endpoints([A, B, C])
    assert Counter(rotation.pick(0.0) for _ in range(3)) == {A: 1, B: 1, C: 1}


def test_a_readiness_change_elsewhere_does_not_reset_who_is_due_next() -> None:
    rotation = Rotation([A, B, C])
    assert names(rotation, 1) == "a"
    rotation = rotation.with_endpoints([A, B, C, Endpoint("10.0.0.4", 80)])
    assert rotation.pick(0.0) == B  # a fresh rotation would start over at a


def test_a_cool_down_survives_a_route_change() -> None:
    rotation = Rotation([A, B])
    rotation.failed(B.address, 0.0, 5.0)
    rotation = rotation.with_endpoints([A, B, C])
    assert rotation.down(1.0) == (B.address,)
    assert B not in {rotation.pick(1.0), rotation.pick(1.0)}
