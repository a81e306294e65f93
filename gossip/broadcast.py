"""Retransmit-limited queue of news to piggyback on outgoing datagrams (memberlist's TransmitLimitedQueue).

Each fact is keyed (e.g. by the member it is about); queueing a newer fact with the same key invalidates the
older one, so the queue holds only the newest news per member. Facts that were sent the fewest times go
first; a fact leaves the queue after `limit` sends (≈ mult·log10(N+1), enough to reach all with high
probability; push-pull repairs the rest). A fact may carry a compact fallback, sent in its place in a datagram
too full for it (a desired-state entry beside a certificate goes out as an announcement of it).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from gossip.wire import Message


@dataclass(slots=True)
class _Item:
    key: str
    message: Message
    size: int
    order: int
    fallback: Message | None = None
    """A compact stand-in sent when `message` does not fit (e.g. an announcement instead of a whole entry)."""
    fallback_size: int = 0
    sends: int = 0


class BroadcastQueue:
    def __init__(self, size_of: Callable[[Message], int]) -> None:
        self._size_of = size_of
        self._items: dict[str, _Item] = {}
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._items)

    def queue(self, key: str, message: Message, fallback: Message | None = None) -> None:
        """Add news, replacing any older news with the same key."""
        fallback_size = self._size_of(fallback) if fallback is not None else 0
        self._items[key] = _Item(key, message, self._size_of(message), next(self._order), fallback, fallback_size)

    def discard(self, key: str) -> None:
        self._items.pop(key, None)

    def take(self, budget: int, limit: int, first: str | None = None) -> list[Message]:
        """Pick news fitting in `budget` bytes: fewest sends first, then newest; count each send.

        `first` names a key to put ahead of the rest (Lifeguard's buddy system: a suspect hears of its
        suspicion first, so it can refute before the timeout).
        """
        ranked = sorted(self._items.values(), key=lambda i: (i.key != first, i.sends, -i.order))
        chosen: list[Message] = []
        for item in ranked:
            if item.size <= budget:
                budget -= item.size
                chosen.append(item.message)
            elif item.fallback is not None and item.fallback_size <= budget:
                budget -= item.fallback_size
                chosen.append(item.fallback)
            else:
                continue
            item.sends += 1
            if item.sends >= limit:
                del self._items[item.key]
        return chosen
