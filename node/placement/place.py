"""`assign(nodes, services)`: which node runs each replica slot; pure, so every node computes the same answer.

Boundary: the caller passes only nodes that may run replicas (alive or suspect, a container runtime, not
draining: node/schedule.py) and the current service specs; placement reads a spec's name, mode, replicas and
deploy.placement (constraints, spread, max_replicas_per_node) and nothing else, and a node's id and the
attributes constraints and spreads name (inputs_digest hashes exactly these). Determinism: nodes are sorted by
id and services by name, hashes are blake2b (score.py), and no decision depends on dict or set order.

- Replicated: each slot (service, i) ranks the service's eligible nodes by rendezvous score and offers itself
  down that list; a node accepts if it (1) has room in the service's quota (quota.py: ordered spread, counts on
  a group's nodes within one of each other, max_replicas_per_node) and (2) holds fewer than ceil(LOAD_FACTOR x
  replicas / nodes) replicas of all services. A slot every node under the cap refuses takes its first node
  with quota room: the cap balances, it never leaves a replica pending. Slots that fit nowhere
  (max_replicas_per_node too small, no node meets the constraints) are the highest indices, listed unplaced.
- Order: offers of all services are decided in descending score (a heap), so each node keeps the replicas
  that score highest on it (the stable matching of slots and nodes). When a node leaves, its replicas fall
  back to their next node, where they score lower than that node's own first choices do: they are refused
  before those are displaced, which keeps moves near the minimum (1.15-1.25x at 10 replicas a node, against
  1.3-1.35x deciding slot by slot in key-hash order). Refusing the lowest score is also the best a stateless
  rule can do at a full node: the replica likeliest to have come from a lost node is the one scoring lowest
  there. Costlier: a node change that moves the cap, or the counts of a service with more replicas than nodes
  (docs/placement.md, "Stability", also lists the alternatives measured and why they lost).
- Global: one replica on every eligible node, placed first (it cannot go elsewhere) and counted in the load.
  Its replica index derives from the node id alone (score.global_replica: the id's first 8 hex digits as a
  number), so no node's replica changes identity when another node joins or leaves; two ids with the same
  prefix (chance ~n^2/2^33) take the next free index, in id order.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType

from node.manifest.model import GLOBAL, Constraint, ServiceSpec
from node.placement.eligible import eligible, spread_keys
from node.placement.model import Assignment, NodeInfo, Slot
from node.placement.quota import Quota, quota
from node.placement.score import NodeHashes, global_replica, hash64, key_hash

LOAD_FACTOR = Fraction(5, 4)
"""Bounded loads (Mirrokni, Thorup, Zadimoghaddam 2016): no node above 1.25x the average while that is feasible.
research/perf-anchors.md §5: at 100 nodes x 1,000 replicas pure hashing reaches 1.9x the average; c = 1.25
keeps 1.3x for ~1.2x the minimum moves, while c = 1.1 costs 5.7x (cascades). Exact, so all platforms round alike."""

_INDEX_SPACE = 1 << 32  # global replica indices are 32-bit (score.global_replica)


@dataclass(frozen=True, slots=True)
class _Eligible:
    """The nodes meeting one set of constraints: positions in the sorted node list, the nodes, their hashes."""

    positions: tuple[int, ...]
    nodes: tuple[NodeInfo, ...]
    hashes: NodeHashes


class _Eligibility:
    """Eligible nodes per set of constraints, computed once per set: most services share one (no constraints)."""

    def __init__(self, nodes: list[NodeInfo]) -> None:
        self._nodes = nodes
        self._hashes = [hash64(node.id) for node in nodes]
        self._known: dict[tuple[Constraint, ...], _Eligible] = {}

    def of(self, service: ServiceSpec) -> _Eligible:
        constraints = service.deploy.placement.constraints
        if constraints not in self._known:
            positions = eligible(self._nodes, service)
            self._known[constraints] = _Eligible(tuple(positions), tuple(self._nodes[i] for i in positions),
                                                 NodeHashes([self._hashes[i] for i in positions]))
        return self._known[constraints]


@dataclass(frozen=True, slots=True)
class Replicated:
    """One replicated service during a walk: its eligible nodes ("members") and its quota over them."""

    name: str
    members: tuple[int, ...]  # positions in the sorted node list
    hashes: NodeHashes
    quota: Quota

    def preferences(self, key: int) -> list[int]:
        """The key's rank values for every member, best first (NodeHashes.node_of names each one's node)."""
        return sorted(self.hashes.ranks(key), reverse=True)


@dataclass(slots=True)
class Setup:
    """One placement run before any replicated slot is placed: global replicas placed and counted in `load`,
    each replicated service's quota fresh, the load cap fixed. Mutable: the walk (or sticky.py) consumes it."""

    node_ids: list[str]  # sorted; `load` and every service's `members` index into it
    load: list[int]
    by_slot: dict[tuple[str, int], str]
    unplaced: list[tuple[str, int]]
    reasons: dict[str, str]
    replicated: list[Replicated]
    cap: int | None

    def result(self) -> Assignment:
        return Assignment(MappingProxyType(dict(sorted(self.by_slot.items()))), tuple(sorted(self.unplaced)),
                          MappingProxyType(self.reasons))


def place(nodes: Sequence[NodeInfo], services: Sequence[ServiceSpec], *,
          load_factor: Fraction | None) -> Assignment:
    """The stateless placement of every replica of `services` on `nodes` (see the module docstring for the
    rules); load_factor None: no load cap, for tests and the benchmark only."""
    setup = prepare(nodes, services, load_factor)
    _walk(setup.replicated, setup.node_ids, setup.load, setup.cap, setup.by_slot)
    return setup.result()


def prepare(nodes: Sequence[NodeInfo], services: Sequence[ServiceSpec], load_factor: Fraction | None) -> Setup:
    """Sort the inputs, place global services, size every replicated service's quota and the load cap."""
    ordered = _by_id(nodes)
    load = [0] * len(ordered)
    by_slot: dict[tuple[str, int], str] = {}
    unplaced: list[tuple[str, int]] = []
    reasons: dict[str, str] = {}
    walking: list[Replicated] = []
    eligibility = _Eligibility(ordered)
    for service in _by_name(services):
        group = eligibility.of(service)
        placeable = len(group.positions)
        if service.deploy.mode == GLOBAL:
            _place_global(service.name, [node.id for node in group.nodes], by_slot)
            for i in group.positions:
                load[i] += 1
        else:
            room = quota(service.name, service.deploy.replicas, group.nodes, spread_keys(service),
                         service.deploy.placement.max_replicas_per_node)
            walking.append(Replicated(service.name, group.positions, group.hashes, room))
            placeable = room.placeable
            unplaced.extend(Slot(service.name, r) for r in range(placeable, service.deploy.replicas))
        if reason := _reason(service, placeable, len(group.positions), len(ordered)):
            reasons[service.name] = reason
    cap = _load_cap(load_factor, sum(load) + sum(s.quota.placeable for s in walking), len(ordered))
    return Setup([node.id for node in ordered], load, by_slot, unplaced, reasons, walking, cap)


def _reason(service: ServiceSpec, placeable: int, eligible_nodes: int, nodes: int) -> str | None:
    """Why a service is not fully placed, for operators (Swarm's "no suitable node"); None if it is."""
    if service.deploy.mode != GLOBAL and placeable == service.deploy.replicas:
        return None
    if not eligible_nodes:
        return "no eligible node: none meets the constraints" if nodes else "no eligible node"
    if service.deploy.mode == GLOBAL:
        return None
    per_node = service.deploy.placement.max_replicas_per_node
    return f"{placeable} of {service.deploy.replicas} replicas fit: max_replicas_per_node={per_node} on " \
           f"{eligible_nodes} eligible nodes"


def _walk(services: list[Replicated], node_ids: list[str], load: list[int], cap: int | None,
          by_slot: dict[tuple[str, int], str]) -> None:
    """Place every placeable replicated slot: (slot, node) offers are taken in descending score, across all
    services; an offer is accepted if the node has quota room and is under the cap, else the slot offers itself
    to its next node. Slots refused everywhere then take their first node with quota room, over the cap."""
    offers = [_first_offer(n, s, replica) for n, s in enumerate(services) for replica in range(s.quota.placeable)]
    heapq.heapify(offers)
    preferences: dict[tuple[int, int], list[int]] = {}  # a refused slot's sorted rank values, computed once
    refused: list[tuple[int, int, int]] = []
    while offers:
        negated, key, n, replica, depth = heapq.heappop(offers)
        service = services[n]
        if _accepts(service, i := service.hashes.node_of(-negated), load, cap):
            _take(service, i, replica, node_ids, load, by_slot)
            continue
        if (n, replica) not in preferences:
            preferences[(n, replica)] = service.preferences(key)
        ranks = preferences[(n, replica)]
        depth += 1  # room only shrinks, so a node refusing now would refuse later too: skip it at once
        while depth < len(ranks) and not _accepts(service, service.hashes.node_of(ranks[depth]), load, cap):
            depth += 1
        if depth < len(ranks):
            heapq.heappush(offers, (-ranks[depth], key, n, replica, depth))
        else:
            refused.append((key, n, replica))
    for _, n, replica in sorted(refused):  # the cap gives way rather than leave a placeable slot pending
        service = services[n]
        nodes = [service.hashes.node_of(rank) for rank in preferences[(n, replica)]]
        _take(service, next(i for i in nodes if service.quota.has_room(i)), replica, node_ids, load, by_slot)


def _accepts(service: Replicated, i: int, load: list[int], cap: int | None) -> bool:
    """Does member i take an offer now: room in the service's quota, and under the load cap?"""
    return service.quota.has_room(i) and (cap is None or load[service.members[i]] < cap)


def _first_offer(n: int, service: Replicated, replica: int) -> tuple[int, int, int, int, int]:
    """A slot's offer to its top node: (-rank value, key, service number, replica, depth 0 in its preferences).
    Negated, as heapq pops the smallest; the key breaks ties between slots alike on every node."""
    key = key_hash(service.name, replica)
    return -max(service.hashes.ranks(key)), key, n, replica, 0


def _take(service: Replicated, i: int, replica: int, node_ids: list[str], load: list[int],
          by_slot: dict[tuple[str, int], str]) -> None:
    service.quota.take(i)
    load[service.members[i]] += 1
    by_slot[Slot(service.name, replica)] = node_ids[service.members[i]]


def _place_global(name: str, node_ids: list[str], by_slot: dict[tuple[str, int], str]) -> None:
    taken: set[int] = set()
    for node_id in node_ids:  # in id order, so a prefix collision resolves alike everywhere
        replica = global_replica(node_id)
        while replica in taken:
            replica = (replica + 1) % _INDEX_SPACE
        taken.add(replica)
        by_slot[Slot(name, replica)] = node_id


def _load_cap(load_factor: Fraction | None, total: int, nodes: int) -> int | None:
    """ceil(load_factor x average load), in exact arithmetic so every platform rounds alike; None: no cap."""
    if load_factor is None or not nodes:
        return None
    return math.ceil(load_factor * total / nodes)


def _by_id(nodes: Sequence[NodeInfo]) -> list[NodeInfo]:
    ordered = sorted(nodes, key=lambda node: node.id)
    _check_unique([node.id for node in ordered], "node")
    return ordered


def _by_name(services: Sequence[ServiceSpec]) -> list[ServiceSpec]:
    ordered = sorted(services, key=lambda service: service.name)
    _check_unique([service.name for service in ordered], "service")
    return ordered


def _check_unique(names: list[str], what: str) -> None:
    """A repeated node or service is the caller's bug: placing it twice would put two answers on one key."""
    for a, b in itertools.pairwise(names):
        if a == b:
            raise ValueError(f"{what} {a} is listed twice")
