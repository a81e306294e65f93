"""Builders for placement tests: nodes with hex ids, services from node.manifest.model's dataclasses, counters."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence

from node.manifest.model import REPLICATED, Constraint, Deploy, Placement, ServiceSpec
from node.placement import Assignment, NodeInfo


def node_id(seed: object) -> str:
    """A 32-hex-character node id, random-looking as real ones are (gossip.identity.new_id)."""
    return hashlib.blake2b(str(seed).encode(), digest_size=16).hexdigest()


def node(seed: object, name: str | None = None, **labels: str) -> NodeInfo:
    return NodeInfo(node_id(seed), name or f"node-{seed}", tuple(sorted(labels.items())))


def cluster(count: int, seed: object = 0) -> list[NodeInfo]:
    return [node(f"{seed}-{i}", f"n{i}") for i in range(count)]


def service(name: str, replicas: int = 1, *, mode: str = REPLICATED, constraints: Sequence[str] = (),
            spread: Sequence[str] = (), max_per_node: int = 0, image: str = "registry.example/app:1",
            environment: tuple[tuple[str, str], ...] = ()) -> ServiceSpec:
    """A service; constraints as 'attribute op value' text, e.g. 'node.labels.zone == a'."""
    parsed = tuple(Constraint(*text.split(" ", 2)) for text in constraints)
    placement = Placement(parsed, tuple(spread), max_per_node)
    return ServiceSpec(name=name, image=image, environment=environment,
                       deploy=Deploy(mode=mode, replicas=replicas, placement=placement))


def mix(sizes: Sequence[int]) -> list[ServiceSpec]:
    """One replicated service per size, named s000, s001, ..."""
    return [service(f"s{i:03d}", size) for i, size in enumerate(sizes)]


def per_node(assignment: Assignment, name: str) -> Counter[str]:
    """How many replicas of service `name` each node runs."""
    return Counter(node for (service_name, _), node in assignment.by_slot.items() if service_name == name)


def moved(before: Assignment, after: Assignment) -> int:
    """Slots placed before whose node changed (or that became unplaced)."""
    return sum(1 for slot, node in before.by_slot.items() if after.by_slot.get(slot) != node)
