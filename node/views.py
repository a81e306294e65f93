"""Cluster-wide read views of observed state: `shoal ps`, the running counts of `shoal services`, `shoal node`.

Pure: statuses (each node's own report), members, node settings and this node's placement in; JSON-ready rows out.
A slot placement gives a node that has not reported it yet shows as `pending` on that node; a slot no node can
take (constraints, max_replicas_per_node) shows as `pending` with no node, so an operator sees why it waits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gossip.members import MemberState
from node.nodes import NodeSettings
from node.observed import NodeStatus, ReplicaReport
from node.schedule import PLACEABLE, Share, labels_of

Json = dict[str, object]


def live(statuses: Mapping[str, NodeStatus], members: Sequence[MemberState]) -> dict[str, NodeStatus]:
    """Statuses of members not known dead or gone: a dead node's last report describes containers that no
    longer run (or that nobody can reach), so views leave it out."""
    up = {m.node for m in members if m.status in PLACEABLE}
    return {node: s for node, s in statuses.items() if node in up}


def replica_json(report: ReplicaReport, node: str) -> Json:
    """One element of `shoal ps --json` (SPEC.md), plus where and since when, and the owner's rollout verdict
    (watching | settled | failed; "" before it judged the replica)."""
    return {"service": report.service, "replica": report.replica, "node": node, "container": report.container,
            "state": report.state, "image": report.image, "ready": report.ready, "restarts": report.restarts,
            "address": report.address, "since": report.since, "generation": report.generation,
            "error": report.error, "verdict": report.verdict}


def replicas(service: str, statuses: Mapping[str, NodeStatus], names: Mapping[str, str],
             placement: Share | None) -> list[Json]:
    rows = [replica_json(r, names.get(node, node[:12]))
            for node, status in statuses.items() for r in status.replicas if r.service == service]
    if placement is not None:
        rows += _unreported(service, statuses, names, placement)
    return sorted(rows, key=lambda r: (r["replica"], r["node"], r["container"]))


def _unreported(service: str, statuses: Mapping[str, NodeStatus], names: Mapping[str, str],
                placement: Share) -> list[Json]:
    reported = {(node, r.replica) for node, s in statuses.items() for r in s.replicas if r.service == service}
    rows = []
    for (name, replica), node in placement.assignment.by_slot.items():
        if name == service and (node, replica) not in reported:
            rows.append(replica_json(ReplicaReport(service, replica, "pending"), names.get(node, node[:12])))
    for name, replica in placement.assignment.unplaced:
        if name == service:
            rows.append(replica_json(ReplicaReport(service, replica, "pending",
                                                   error="no eligible node can take it"), ""))
    return rows


def counts(service: str, statuses: Mapping[str, NodeStatus]) -> tuple[int, int]:
    """(running, ready) distinct slots of the service, cluster-wide (a slot handed over counts once)."""
    running, ready = set(), set()
    for status in statuses.values():
        for r in status.replicas:
            if r.service == service and r.state == "running":
                running.add(r.replica)
                if r.ready:
                    ready.add(r.replica)
    return len(running), len(ready)


def node_json(m: MemberState, status: NodeStatus | None, settings: NodeSettings) -> Json:
    """One element of `shoal node ls --json`."""
    return {"name": m.name, "id": m.node, "address": f"{m.addr[0]}:{m.addr[1]}", "status": m.status.label,
            "availability": settings.availability, "runtime": status.runtime if status else "unknown",
            "labels": dict(labels_of(m, settings)),
            "replicas": sum(r.state == "running" for r in status.replicas) if status else 0,
            "digest": status.digest if status else ""}


def node_detail(m: MemberState, status: NodeStatus | None, settings: NodeSettings) -> Json:
    """`shoal node inspect`: the row, where each label comes from, the subnet and what the node runs."""
    body = node_json(m, status, settings)
    body.update({"agent_labels": dict(m.labels), "node_labels": dict(settings.labels), "incarnation": m.incarnation,
                 "subnet": status.subnet if status else "",
                 "running": [replica_json(r, m.name) for r in (status.replicas if status else ())]})
    return body


def nodes(members: Sequence[MemberState], statuses: Mapping[str, NodeStatus],
          settings: Mapping[str, NodeSettings]) -> list[Json]:
    return [node_json(m, statuses.get(m.node), settings.get(m.node, NodeSettings()))
            for m in sorted(members, key=lambda m: m.name)]
