"""From this node's view of the cluster to its share of the work: eligible nodes, placement, handovers.

Pure. Every node runs the same functions on the same replicated inputs (members, node settings, statuses,
services), so every node computes the same placement and runs only its own slots (DESIGN §5):
- eligible nodes are members not known dead or gone, that published a status with a container runtime (so
  `--runtime none` nodes never get replicas) and are not drained; labels set by `shoal node label` override the
  agent's `--label` flags;
- placement keeps each replica where the nodes report it (`current`), so a node change moves only what it must;
- a slot placement moved to another node is handed over once that node reports it running (rebalancing starts
  the new replica before the old one stops).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gossip.members import MemberState, Status
from node.desired import ServiceView
from node.nodes import DRAIN, NodeSettings
from node.observed import NodeStatus
from node.placement import Assignment, NodeInfo, assign, inputs_digest
from node.replica import SlotKey, Wanted

RUNNING_STATE = "running"
REMOVING_STATE = "removing"
PLACEABLE = frozenset({Status.ALIVE, Status.SUSPECT})
"""A suspect member keeps its replicas: only a confirmed death (or a leave) moves them, so a slow node costs
no churn."""


@dataclass(frozen=True, slots=True)
class Share:
    """This node's part of the placement, and what it needs to hand slots over."""

    wanted: tuple[Wanted, ...]
    placed_elsewhere: frozenset[SlotKey]
    handed_over: frozenset[SlotKey]
    digest: str
    assignment: Assignment
    held: frozenset[SlotKey] = frozenset()  # this node's slots the rollout gate keeps on their older replica


def labels_of(member: MemberState, settings: NodeSettings) -> tuple[tuple[str, str], ...]:
    merged = dict(member.labels)
    merged.update(settings.labels)
    return tuple(sorted(merged.items()))


def eligible(members: Sequence[MemberState], statuses: Mapping[str, NodeStatus],
             settings: Mapping[str, NodeSettings]) -> list[NodeInfo]:
    nodes = []
    for m in members:
        status, own = statuses.get(m.node), settings.get(m.node, NodeSettings())
        if m.status not in PLACEABLE or status is None or status.runtime == "none" or own.availability == DRAIN:
            continue
        nodes.append(NodeInfo(id=m.node, name=m.name, labels=labels_of(m, own)))
    return sorted(nodes, key=lambda n: n.id)


def current(nodes: Sequence[NodeInfo], statuses: Mapping[str, NodeStatus]) -> dict[tuple[str, int], tuple[str, ...]]:
    """Where each slot runs now, by the eligible nodes' own reports: placement keeps replicas there. A slot
    being removed no longer counts; one being handed over counts on both nodes until the old copy goes."""
    runs: dict[tuple[str, int], list[str]] = {}
    for node in nodes:
        status = statuses.get(node.id)
        for r in status.replicas if status else ():
            if r.state != REMOVING_STATE:
                runs.setdefault((r.service, r.replica), []).append(node.id)
    return {slot: tuple(sorted(ids)) for slot, ids in sorted(runs.items())}


def share(me: str, nodes: Sequence[NodeInfo], services: Sequence[ServiceView],
          statuses: Mapping[str, NodeStatus]) -> Share:
    specs = [v.spec for v in services]
    now = current(nodes, statuses)
    assignment = assign(nodes, specs, now)
    views = {v.name: v for v in services}
    wanted, elsewhere = [], set()
    for (service, replica), node in assignment.by_slot.items():
        key = SlotKey(service, replica)
        if node == me:
            wanted.append(Wanted(key, views[service].spec, views[service].generation))
        else:
            elsewhere.add(key)
    handed = {k for k in elsewhere if _runs(statuses.get(assignment.by_slot[(k.service, k.replica)]), k)}
    return Share(tuple(sorted(wanted, key=lambda w: w.key)), frozenset(elsewhere), frozenset(handed),
                 inputs_digest(nodes, specs, now), assignment)


def share_from(me: str, members: Sequence[MemberState], statuses: Mapping[str, NodeStatus],
               settings: Mapping[str, NodeSettings], services: Sequence[ServiceView]) -> Share:
    """The whole chain: eligible nodes, then this node's share."""
    return share(me, eligible(members, statuses, settings), services, statuses)


def _runs(status: NodeStatus | None, key: SlotKey) -> bool:
    return status is not None and any(
        r.service == key.service and r.replica == key.replica and r.state == RUNNING_STATE for r in status.replicas)
