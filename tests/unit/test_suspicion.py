"""Lifeguard suspicion maths: bounds scale with log10 N; confirmations shrink the timeout to the minimum."""

from __future__ import annotations

import math

import pytest

from gossip.config import GossipConfig
from gossip.suspicion import Suspicion, expected_confirmations, remaining_timeout, timeout_bounds

CONFIG = GossipConfig(suspicion_mult=4, suspicion_max_mult=6, suspicion_confirmations=2, probe_interval_s=1.0)


@pytest.mark.parametrize(("n", "minimum"), [(1, 4.0), (10, 4.0), (50, 4 * math.log10(50)), (100, 8.0)])
def test_bounds_follow_memberlist(n: int, minimum: float) -> None:
    low, high = timeout_bounds(n, CONFIG)
    assert low == pytest.approx(minimum)
    assert high == pytest.approx(6 * minimum)


def test_timeout_starts_at_max_and_reaches_min_after_k_confirmations() -> None:
    assert remaining_timeout(0, 2, 5.0, 30.0) == 30.0
    one = remaining_timeout(1, 2, 5.0, 30.0)
    assert one == pytest.approx(30.0 - math.log(2) / math.log(3) * 25.0)
    assert remaining_timeout(2, 2, 5.0, 30.0) == pytest.approx(5.0)
    assert remaining_timeout(7, 2, 5.0, 30.0) == 5.0


def test_expected_confirmations_are_capped_by_the_cluster_size() -> None:
    assert expected_confirmations(100, CONFIG) == 2
    assert expected_confirmations(3, CONFIG) == 1
    assert expected_confirmations(2, CONFIG) == 0
    assert remaining_timeout(0, 0, 5.0, 30.0) == 5.0


def test_only_independent_confirmations_shorten_the_deadline() -> None:
    s = Suspicion(incarnation=1, started=100.0, k=2, minimum=5.0, maximum=30.0)
    assert s.deadline == 130.0
    assert s.confirm("a") and not s.confirm("a")
    assert s.confirm("b") and not s.confirm("c")  # k reached: more add nothing
    assert s.deadline == pytest.approx(105.0)
