"""Which remembered peers a restarted agent should try to reach now: the pure half of rejoining.

A whole cluster restarting at once can come up split. Each agent joins the first peers that answer, and those
that were not listening yet are never tried again: two groups that each formed alone stay apart for good, since
gossip only ever spreads among members a node already knows. Serf avoids this by reconnecting to remembered
members; so does this: every address the agent was told (--join) or remembered (its snapshot) is tried again,
with a backoff, until a member at that address is known. It is then the gossip core's (which keeps exchanging
with the dead, so a healed partition finds its way back). An address nobody answers at is forgotten after
`give_up_s`, but never while the agent knows no live member at all: an agent alone keeps looking.

No I/O and no clock of its own: the agent's loop (node.agent) asks `due`, tries each address and reports back.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from gossip.wire import Address

FIRST_RETRY_S = 5.0
MAX_RETRY_S = 30.0
"""As Serf's reconnect interval: a remembered peer that comes back is found within this."""
GIVE_UP_S = 3600.0
"""A remembered address no member has held for this long is a host that has gone (or changed address)."""


@dataclass(frozen=True, slots=True)
class _Pending:
    since: float
    next_at: float
    delay: float


class Rejoin:
    """Remembered addresses not yet reached, each with its next attempt."""

    def __init__(self, seeds: Iterable[Address], now: float, *, first_retry_s: float = FIRST_RETRY_S,
                 max_retry_s: float = MAX_RETRY_S, give_up_s: float = GIVE_UP_S) -> None:
        self._max = max_retry_s
        self._give_up = give_up_s
        self._pending = {addr: _Pending(now, now, first_retry_s) for addr in dict.fromkeys(seeds)}

    @property
    def pending(self) -> tuple[Address, ...]:
        """What is still to be reached, in the order it was given (worth remembering across a restart)."""
        return tuple(self._pending)

    def due(self, now: float, known: Collection[Address], alone: bool) -> list[Address]:
        """The addresses to try now. `known` are the addresses of the members gossip knows (any status): those
        are settled. `alone` says no member is alive, so nothing is given up."""
        for addr in [a for a in self._pending if a in known]:
            del self._pending[addr]
        if not alone:
            for addr in [a for a, p in self._pending.items() if now - p.since >= self._give_up]:
                del self._pending[addr]
        return [a for a, p in self._pending.items() if p.next_at <= now]

    def failed(self, addr: Address, now: float) -> None:
        """Nobody answered at `addr`: try again later, twice as late as last time (up to the maximum)."""
        p = self._pending.get(addr)
        if p is not None:
            self._pending[addr] = _Pending(p.since, now + p.delay, min(p.delay * 2, self._max))

    def reached(self, addr: Address) -> None:
        self._pending.pop(addr, None)

    def next_at(self) -> float | None:
        """When the next address falls due; None once there is nothing left to reach."""
        return min((p.next_at for p in self._pending.values()), default=None)
