"""The piggyback queue: newest news per key, fewest-sent first, retransmit limit, size budget."""

from __future__ import annotations

from gossip.broadcast import BroadcastQueue
from gossip.wire import Ack, Message, Suspect, encoded_size

A, B, C = "a" * 32, "b" * 32, "c" * 32


def test_newer_news_about_a_member_replaces_the_older() -> None:
    q = BroadcastQueue(encoded_size)
    q.queue(A, Suspect(A, 1, B))
    q.queue(A, Suspect(A, 2, B))
    assert len(q) == 1
    assert q.take(1000, 5) == [Suspect(A, 2, B)]


def test_news_leaves_the_queue_after_the_retransmit_limit() -> None:
    q = BroadcastQueue(encoded_size)
    q.queue(A, Ack(1))
    assert [q.take(1000, 3) for _ in range(4)] == [[Ack(1)], [Ack(1)], [Ack(1)], []]


def test_least_sent_goes_first_and_the_budget_is_respected() -> None:
    q = BroadcastQueue(encoded_size)
    q.queue(A, Ack(1))
    q.take(1000, 10)
    q.queue(B, Ack(2))
    one = encoded_size(Ack(2))
    assert q.take(one, 10) == [Ack(2)]


def test_buddy_news_goes_ahead_of_everything() -> None:
    q = BroadcastQueue(encoded_size)
    q.queue(C, Suspect(C, 1, A))
    q.take(1000, 10)
    q.queue(B, Ack(2))
    taken: list[Message] = q.take(1000, 10, first=C)
    assert taken[0] == Suspect(C, 1, A)


def test_news_too_big_for_the_datagram_goes_out_as_its_fallback_and_still_counts_as_sent() -> None:
    q = BroadcastQueue(encoded_size)
    whole, compact = Suspect("a" * 32, 1, "b" * 32), Ack(1)
    q.queue("x", whole, fallback=compact)
    assert q.take(encoded_size(whole) - 1, limit=2) == [compact]
    assert q.take(1000, limit=2) == [whole]
    assert len(q) == 0
