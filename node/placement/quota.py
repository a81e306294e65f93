"""How many replicas of one service each eligible node may hold: ordered spread, even spread, max per node.

Pure; one `Quota` per replicated service and placement run. The service's replicas are split across the values
of its first spread label (nodes lacking the label form their own group, as in Swarm) into equal shares, the
remainder going one each to the groups ranked first by a stable hash of (service, label, value) — largest
remainder with equal weights — then each group's share across the next label's values, and so on; a group whose
nodes cannot hold its share (max_replicas_per_node) keeps what fits and the rest is shared by the others (water
filling). Within a last-level group every node gets the same share, and `extra` nodes one more: whichever first
ask for it while the walk places replicas, so counts on a group's nodes differ by at most one, as in Swarm.
Group shares are fixed before the walk: they change only when a group's capacity does, never with walk order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from node.placement.model import NodeInfo
from node.placement.score import hash64

Capacity = int | None  # None: unlimited


@dataclass(frozen=True, slots=True)
class Fill:
    """A water-filled split of `total` over children with capacities: `base[i]` each, plus one more for `extra`
    of the children marked `open` (those whose capacity exceeds their base). placed = sum(base) + extra."""

    base: tuple[int, ...]
    open: tuple[bool, ...]
    extra: int


def water_fill(total: int, capacities: Sequence[Capacity]) -> Fill:
    """Split `total` as evenly as the capacities allow; whatever no child can hold is left out."""
    base = [0] * len(capacities)
    remaining, unfilled = total, list(range(len(capacities)))
    while unfilled:
        share = remaining // len(unfilled)
        full = [(i, cap) for i in unfilled if (cap := capacities[i]) is not None and cap <= share]
        if not full:
            break
        for i, cap in full:
            base[i] = cap
            remaining -= cap
        filled = {i for i, _ in full}
        unfilled = [i for i in unfilled if i not in filled]
    if not unfilled:
        return Fill(tuple(base), (False,) * len(base), 0)
    share, extra = divmod(remaining, len(unfilled))
    for i in unfilled:  # every unfilled child has room for share + 1, or it would have been filled above
        base[i] = share
    still_open = set(unfilled)
    return Fill(tuple(base), tuple(i in still_open for i in range(len(base))), extra)


class Quota(Protocol):
    """Room for one replicated service on its eligible nodes (positions) during one placement walk: the only
    mutable state of placement, consumed as the walk places replicas."""

    placeable: int  # how many of the service's replicas fit at all; the rest stay unplaced

    def has_room(self, i: int) -> bool:
        """May node position i take one more replica of this service?"""

    def take(self, i: int) -> None:
        """Node position i took one."""

    def release(self, i: int) -> None:
        """Node position i gave one up (sticky placement moves a replica): undoes a take."""


def quota(service: str, replicas: int, nodes: Sequence[NodeInfo], spread: Sequence[str],
          max_per_node: int) -> Quota:
    """The quota for `replicas` of `service` over `nodes` (its eligible nodes, in placement order)."""
    cap: Capacity = max_per_node or None
    if not spread:
        return EvenQuota(replicas, len(nodes), cap)
    return SpreadQuota(service, replicas, nodes, tuple(spread), cap)


class EvenQuota:
    """`replicas` over `nodes` nodes that hold at most `cap` each: `share` per node, and one more on `extra` of
    them, whichever ask first. Counts are kept only for nodes that took one (a service is often 1 replica)."""

    __slots__ = ("_base", "_count", "_extra", "_open", "placeable")

    def __init__(self, replicas: int, nodes: int, cap: Capacity) -> None:
        share, extra = divmod(replicas, nodes) if nodes else (0, 0)
        self._open = cap is None or cap > share  # not full at its share: one more fits
        self._base = share if cap is None or cap > share else cap
        self._extra = extra if self._open else 0  # extras left to hand out
        self._count: dict[int, int] = {}
        self.placeable = self._base * nodes + self._extra

    def has_room(self, i: int) -> bool:
        count = self._count.get(i, 0)
        return count < self._base or (count == self._base and self._open and self._extra > 0)

    def take(self, i: int) -> None:
        count = self._count.get(i, 0)
        if count == self._base:
            self._extra -= 1
        self._count[i] = count + 1

    def release(self, i: int) -> None:
        count = self._count[i] - 1
        if count == self._base:
            self._extra += 1
        self._count[i] = count


class SpreadQuota:
    """Ordered spread: a tree of label-value groups whose shares are fixed up front, an EvenQuota per leaf."""

    __slots__ = ("_leaf_of", "_leaves", "placeable")

    def __init__(self, service: str, replicas: int, nodes: Sequence[NodeInfo], spread: tuple[str, ...],
                 cap: Capacity) -> None:
        self._leaves: list[EvenQuota] = []
        self._leaf_of: dict[int, EvenQuota] = {}
        self._split(service, replicas, list(range(len(nodes))), nodes, spread, cap)
        self.placeable = sum(leaf.placeable for leaf in self._leaves)

    def has_room(self, i: int) -> bool:
        return self._leaf_of[i].has_room(i)

    def take(self, i: int) -> None:
        self._leaf_of[i].take(i)

    def release(self, i: int) -> None:
        self._leaf_of[i].release(i)

    def _split(self, service: str, total: int, members: list[int], nodes: Sequence[NodeInfo],
               spread: tuple[str, ...], cap: Capacity) -> None:
        """Give the group `members` (node positions) `total` replicas, splitting by `spread` labels in order."""
        if not spread:
            leaf = EvenQuota(total, len(members), cap)
            self._leaves.append(leaf)
            self._leaf_of.update((i, leaf) for i in members)
            return
        key, rest = spread[0], spread[1:]
        groups: dict[str | None, list[int]] = {}
        for i in members:
            groups.setdefault(nodes[i].label(key), []).append(i)
        values = sorted(groups, key=lambda v: (v is not None, v or ""))  # canonical: never dict order
        fill = water_fill(total, [None if cap is None else cap * len(groups[v]) for v in values])
        ranked = sorted((i for i, is_open in enumerate(fill.open) if is_open),
                        key=lambda i: (-hash64(_group_key(service, key, values[i])), i))
        lucky = set(ranked[:fill.extra])  # largest remainder: equal remainders, so a stable hash breaks the tie
        for i, value in enumerate(values):
            self._split(service, fill.base[i] + (i in lucky), groups[value], nodes, rest, cap)


def _group_key(service: str, label: str, value: str | None) -> str:
    """Hash input naming one spread group; a missing label is spelt differently from every value."""
    return f"{service}\0{label}\0" + ("!" if value is None else f"={value}")
