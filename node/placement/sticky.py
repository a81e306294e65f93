"""`assign(nodes, services, current)`: the placement, keeping replicas where they already run.

Pure. The stateless placement (place.py) is the target: what a cluster with nothing running gets, and where a
replica goes when it has to go somewhere. A stateless rule alone moves more than the lost node's replicas when
a node leaves (a fallback replica displaces another at a full node, a new load cap lets refused replicas
return: docs/placement.md), so placement also reads `current`, where each slot runs now, from the nodes' own
reports (node/schedule.py gathers it from the replicated statuses, so every node reads the same). Then:

1. Keep: a slot running on a node that may still hold it stays there, while the service's quota (spread, even
   spread, max per node) and the load cap allow. Where a slot runs twice (a move in progress), the copy on its
   target node counts, else the best-scoring one. Slots the quota or cap turn away first are those off their
   target, then the lowest scores.
2. Fill: every other slot (its node left, was drained, or it is new) goes to its target node if that has room,
   else to the least loaded node with room (the best-ranked among equals); over the cap only if no node under
   it has quota room, as in the stateless walk.
3. Go home: a slot whose target is its top-ranked node, and that runs elsewhere, moves there when the quota
   allows and its node holds at least two more replicas than that one. So a joining (or emptied) node takes
   replicas that rank it first, as in rendezvous hashing, until it holds about as many as the others; no move
   merely trades places between nodes equally loaded, and a fallback never chases a second choice.

With nothing running, the result is exactly the target. Applying it again to its own result changes nothing
(every phase ends where no step applies), so nodes that run what it says compute the same placement again.
A node leaving moves exactly its replicas (while the cap does not fall); a node joining moves the replicas
that rank it first, plus those an even spread or a lower cap forces.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from node.manifest.model import ServiceSpec
from node.placement.model import Assignment, NodeInfo, Slot
from node.placement.place import LOAD_FACTOR, Replicated, Setup, place, prepare
from node.placement.score import key_hash

_ROUNDS = 4  # passes at most; a second only follows a slot placed over the cap, and it settles (tested)

Current = Mapping[tuple[str, int], Collection[str]]
"""Where each slot runs now: node ids reporting it (two while a move is in progress). Unknown ids are ignored."""


@dataclass(slots=True)
class _Slot:
    service: Replicated
    member: Mapping[str, int]  # node id -> member index, for the service's eligible nodes
    replica: int
    ranks: list[int]  # rank value per service member (NodeHashes order): higher is better
    target: int  # member index the stateless placement picks
    top: int  # member index ranking highest
    at: int = -1  # member index it is placed on here; -1 while unplaced


def assign(nodes: Sequence[NodeInfo], services: Sequence[ServiceSpec], current: Current | None = None) -> Assignment:
    """Place every replica of `services` on `nodes`, keeping the slots in `current` where they run."""
    target = place(nodes, services, load_factor=LOAD_FACTOR)
    placed, settled = target, not current
    for _ in range(_ROUNDS):
        if settled:
            break
        placed, settled = _settle(nodes, services, target, current or {})
        current = {slot: (node_id,) for slot, node_id in placed.by_slot.items()}
    return placed


def _settle(nodes: Sequence[NodeInfo], services: Sequence[ServiceSpec], target: Assignment,
            current: Current) -> tuple[Assignment, bool]:
    """One pass of the three phases; False if a slot had to go over the cap, since the next pass could then
    keep a different set of slots on that node: `assign` places once more from this result."""
    setup = prepare(nodes, services, LOAD_FACTOR)
    slots = _slots(setup, target)
    limits = _limits(setup, target)
    homeless = _keep(setup, slots, current, limits)
    within = _fill(setup, homeless, limits)
    _go_home(setup, slots, limits)
    for slot in slots:
        setup.by_slot[Slot(slot.service.name, slot.replica)] = setup.node_ids[slot.service.members[slot.at]]
    return setup.result(), within


def _slots(setup: Setup, target: Assignment) -> list[_Slot]:
    """Every replicated slot the target places, in canonical order (service name, replica)."""
    members: dict[tuple[int, ...], dict[str, int]] = {}  # services with the same constraints share one
    slots = []
    for service in setup.replicated:
        if (member := members.get(service.members)) is None:
            member = members[service.members] = {setup.node_ids[p]: m for m, p in enumerate(service.members)}
        for replica in range(service.quota.placeable):
            ranks = service.hashes.ranks(key_hash(service.name, replica))
            top = service.hashes.node_of(max(ranks))
            slots.append(_Slot(service, member, replica, ranks, member[target.by_slot[(service.name, replica)]], top))
    return slots


def _limits(setup: Setup, target: Assignment) -> list[int]:
    """Most replicas each node may hold: the cap, or more where the target itself exceeds it (when every node
    a replica may use is at the cap, the cap gives way rather than leave it pending)."""
    if setup.cap is None:
        return [len(target.by_slot)] * len(setup.node_ids)
    return [max(setup.cap, target.load(node_id)) for node_id in setup.node_ids]


def _keep(setup: Setup, slots: list[_Slot], current: Current, limits: list[int]) -> list[_Slot]:
    """Phase 1: leave running slots where they are while quota and cap allow; answer the slots left to place."""
    kept: list[tuple[bool, int, int, int, _Slot]] = []
    homeless = []
    for order, slot in enumerate(slots):
        runs = [m for node_id in sorted(current.get((slot.service.name, slot.replica), ()))
                if (m := slot.member.get(node_id)) is not None]
        if not runs:
            homeless.append(slot)
            continue
        at = slot.target if slot.target in runs else max(runs, key=slot.ranks.__getitem__)
        kept.append((at != slot.target, -slot.ranks[at], order, at, slot))
    for _, _, _, at, slot in sorted(kept, key=lambda k: k[:3]):
        if _fits(setup, slot.service, at, limits):
            _put(setup, slot, at)
        else:
            homeless.append(slot)
    return homeless


def _fill(setup: Setup, homeless: list[_Slot], limits: list[int]) -> bool:
    """Phase 2: each slot to its target if it has room, else to the least loaded node with room; over the cap
    only if no node under it has quota room (as the stateless walk). False if that happened."""
    within = True
    for slot in sorted(homeless, key=lambda s: (s.service.name, s.replica)):
        if _fits(setup, slot.service, slot.target, limits):
            _put(setup, slot, slot.target)
            continue
        members = slot.service.members
        fitting = [m for m in range(len(members)) if _fits(setup, slot.service, m, limits)]
        spare = fitting or [m for m in range(len(members)) if slot.service.quota.has_room(m)]
        within = within and bool(fitting)
        _put(setup, slot, min(spare, key=lambda m: (setup.load[members[m]], -slot.ranks[m])))
    return within


def _go_home(setup: Setup, slots: list[_Slot], limits: list[int]) -> None:
    """Phase 3: move slots to their top-ranked node where that is also their target, until none can move."""
    waiting = [s for s in slots if s.at != s.target and s.target == s.top]
    moved = True
    while moved:
        moved = False
        for slot in waiting:
            if slot.at == slot.target:
                continue
            quota, home, members = slot.service.quota, slot.target, slot.service.members
            if setup.load[members[slot.at]] <= setup.load[members[home]] + 1 or \
                    setup.load[members[home]] >= limits[members[home]]:
                continue  # only a move that evens the loads: a joining node, never a shuffle among equals
            quota.release(slot.at)
            if quota.has_room(home):
                setup.load[members[slot.at]] -= 1
                _put(setup, slot, home)
                moved = True
            else:
                quota.take(slot.at)


def _fits(setup: Setup, service: Replicated, m: int, limits: list[int]) -> bool:
    node = service.members[m]
    return service.quota.has_room(m) and setup.load[node] < limits[node]


def _put(setup: Setup, slot: _Slot, m: int) -> None:
    slot.service.quota.take(m)
    setup.load[slot.service.members[m]] += 1
    slot.at = m
