"""Endpoint selection: smooth weighted round robin (nginx's algorithm) with a cool-down for failed endpoints.

Role: decide which endpoint a new connection goes to. Each pick adds every eligible endpoint's weight to its
running `current`, takes the largest (first in route order on a tie) and subtracts the eligible total from it,
so weights 5:1:1 give a a b a c a a, spread out rather than bunched, and every cycle of sum(weights) picks
from a fresh start follows the weights exactly. Weight 0 is never picked. Endpoints a connection already
tried are not eligible for it (its retry goes elsewhere); an endpoint whose connect failed sits out a cool-down
unless every other one does too (then all are tried: refusing outright would be worse than trying a maybe-dead replica).
Boundary: no I/O and no clock of its own (`now` is passed in); the same calls on the same state give the same
picks on every node.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from node.proxy.model import Address, Endpoint


class Rotation:
    """The mutable selection state of one route: per endpoint a running weight and a failed-until time."""

    __slots__ = ("_current", "_down_until", "addresses", "endpoints", "weights")

    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        self.endpoints = tuple(endpoints)
        self.addresses = tuple(e.address for e in self.endpoints)
        self.weights = tuple(e.weight for e in self.endpoints)
        self._current = [0] * len(self.endpoints)
        self._down_until = [0.0] * len(self.endpoints)

    def pick(self, now: float, tried: Collection[Address] = ()) -> Endpoint | None:
        """The next endpoint for a new connection, or None when none is eligible (no endpoints, all weight 0,
        or all tried already)."""
        best = self._pick(now, tried, skip_down=True)
        if best < 0:
            best = self._pick(now, tried, skip_down=False)
        return self.endpoints[best] if best >= 0 else None

    def _pick(self, now: float, tried: Collection[Address], skip_down: bool) -> int:
        current, weights, down = self._current, self.weights, self._down_until
        best, total = -1, 0
        for i, weight in enumerate(weights):
            if weight == 0 or (skip_down and down[i] > now) or (tried and self.addresses[i] in tried):
                continue
            current[i] += weight
            total += weight
            if best < 0 or current[i] > current[best]:
                best = i
        if best >= 0:
            current[best] -= total
        return best

    def failed(self, address: Address, now: float, cool_down_s: float) -> bool:
        """Keep `address` out of rotation for `cool_down_s` from `now`. True if it was in rotation until now (so
        the caller logs an endpoint going down once per cool-down, not once per refused connection)."""
        for i, known in enumerate(self.addresses):
            if known == address:
                was_up = self._down_until[i] <= now
                self._down_until[i] = now + cool_down_s
                return was_up
        return False

    def down(self, now: float) -> tuple[Address, ...]:
        """Endpoints sitting out a cool-down at `now`."""
        return tuple(a for a, until in zip(self.addresses, self._down_until, strict=True) if until > now)

    def with_endpoints(self, endpoints: Sequence[Endpoint]) -> Rotation:
        """The rotation for a changed endpoint list. Endpoints that stay keep their place in the turn order and
        their cool-down, so a readiness change elsewhere does not restart the rotation at the first endpoint
        (which, with frequent changes, would favour it); new ones start from zero."""
        kept = {a: (c, d) for a, c, d in zip(self.addresses, self._current, self._down_until, strict=True)}
        rotation = Rotation(endpoints)
        old_total, new_total = sum(self.weights), sum(rotation.weights)
        current = rotation._current
        for i, address in enumerate(rotation.addresses):
            if address in kept:
                carried, rotation._down_until[i] = kept[address]
                # Rescaled to the new total weight: running weights range over about +-total, and a survivor
                # carrying the old, larger range would be over- or under-served for many turns.
                if rotation.weights[i] and old_total:
                    current[i] = int(carried * new_total / old_total)
        # Each pick keeps sum(current) at 0; removed endpoints and rounding break that. Take any excess from the
        # endpoint due soonest (or give missing credit to the one due last), so the split stays exact rather
        # than leaning one way for ever.
        leftover = sum(current)
        weighted = [i for i, w in enumerate(rotation.weights) if w]
        if leftover and weighted:
            pick = max if leftover > 0 else min
            current[pick(weighted, key=current.__getitem__)] -= leftover
        return rotation
