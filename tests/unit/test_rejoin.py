"""node.rejoin: which remembered peers are tried, when, and when they are settled or given up."""

from __future__ import annotations

from node.rejoin import Rejoin

A, B, C = ("10.0.0.1", 7946), ("10.0.0.2", 7946), ("10.0.0.3", 7946)


def test_every_seed_is_due_at_once_in_order_and_a_repeat_counts_once() -> None:
    rejoin = Rejoin([A, B, A, C], now=0.0)
    assert rejoin.due(0.0, known=set(), alone=True) == [A, B, C]
    assert rejoin.pending == (A, B, C)


def test_a_failed_address_backs_off_doubling_up_to_the_maximum() -> None:
    rejoin = Rejoin([A], now=0.0, first_retry_s=5.0, max_retry_s=30.0, give_up_s=1e9)
    attempts = []
    now = 0.0
    for _ in range(7):
        assert rejoin.due(now, known=set(), alone=True) == [A]
        attempts.append(now)
        rejoin.failed(A, now)
        next_at = rejoin.next_at()
        assert next_at is not None
        assert rejoin.due(next_at - 0.01, known=set(), alone=True) == []
        now = next_at
    assert attempts == [0.0, 5.0, 15.0, 35.0, 65.0, 95.0, 125.0]


def test_an_address_gossip_knows_is_settled_and_a_reached_one_is_dropped() -> None:
    rejoin = Rejoin([A, B, C], now=0.0)
    rejoin.reached(A)
    assert rejoin.due(0.0, known={B}, alone=False) == [C]
    assert rejoin.pending == (C,)
    rejoin.reached(C)
    assert rejoin.next_at() is None


def test_a_known_address_that_failed_earlier_is_not_tried_again() -> None:
    rejoin = Rejoin([A, B], now=0.0)
    for addr in (A, B):
        rejoin.failed(addr, 0.0)
    assert rejoin.due(100.0, known={A}, alone=False) == [B]


def test_an_unanswered_address_is_given_up_only_while_some_member_is_alive() -> None:
    rejoin = Rejoin([A, B], now=0.0, give_up_s=60.0)
    rejoin.failed(A, 0.0)
    rejoin.failed(B, 0.0)
    assert rejoin.due(61.0, known=set(), alone=True) == [A, B]  # alone: keep looking, however long
    assert rejoin.due(61.0, known=set(), alone=False) == []
    assert rejoin.pending == () and rejoin.next_at() is None


def test_reports_for_unknown_addresses_change_nothing() -> None:
    rejoin = Rejoin([A], now=0.0)
    rejoin.failed(B, 0.0)
    rejoin.reached(C)
    assert rejoin.pending == (A,) and rejoin.next_at() == 0.0
