"""Placement's values: the nodes it may use (`NodeInfo`), a replica slot (`Slot`) and its result (`Assignment`).

Pure data, no logic beyond lookups. The caller builds `NodeInfo`s from membership (DESIGN §5); `assign` builds
the `Assignment`, which every node computes identically, so its `digest()` may be compared across nodes (G8).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from node.manifest.model import LABEL_PREFIX


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """An eligible node as placement sees it: id, name and labels (sorted (key, value) pairs)."""

    id: str  # the node id (32 hex characters), unique; what hashes and sorting use
    name: str
    labels: tuple[tuple[str, str], ...] = ()

    def attribute(self, attribute: str) -> str | None:
        """The value of a constraint attribute (node.id, node.name, node.labels.<key>); None if the node has none."""
        if attribute == "node.id":
            return self.id
        if attribute == "node.name":
            return self.name
        if attribute.startswith(LABEL_PREFIX):
            return self.label(attribute.removeprefix(LABEL_PREFIX))
        return None

    def label(self, key: str) -> str | None:
        return next((value for k, value in self.labels if k == key), None)


class Slot(NamedTuple):
    """A replica slot: (service, replica index). A tuple, so `by_slot[("web", 0)]` finds `Slot("web", 0)`."""

    service: str
    replica: int


@dataclass(frozen=True, slots=True)
class Assignment:
    """Where every replica slot runs. Iteration orders are canonical (sorted by slot, node ids sorted)."""

    by_slot: Mapping[tuple[str, int], str]  # slot -> node id, for every placed slot, sorted by slot
    unplaced: tuple[tuple[str, int], ...] = ()  # replicated slots no node can take; they stay pending, as in Swarm
    reasons: Mapping[str, str] = field(default_factory=dict)  # service -> why some or all of it is not placed
    by_node: Mapping[str, tuple[tuple[str, int], ...]] = field(init=False)  # node id -> its slots, sorted

    def __post_init__(self) -> None:
        by_node: dict[str, list[tuple[str, int]]] = {}
        for slot, node in sorted(self.by_slot.items()):
            by_node.setdefault(node, []).append(slot)
        frozen = {node: tuple(slots) for node, slots in sorted(by_node.items())}
        object.__setattr__(self, "by_node", MappingProxyType(frozen))

    def for_node(self, node_id: str) -> list[tuple[str, int]]:
        """The slots `node_id` runs, sorted."""
        return list(self.by_node.get(node_id, ()))

    def load(self, node_id: str) -> int:
        """How many replicas (of every service) `node_id` runs."""
        return len(self.by_node.get(node_id, ()))

    def digest(self) -> str:
        """Hex blake2b of the placement itself: nodes that agree on it show the same digest."""
        rows = [[service, replica, node] for (service, replica), node in sorted(self.by_slot.items())]
        text = json.dumps([rows, sorted(self.unplaced)], ensure_ascii=False, separators=(",", ":"))
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
