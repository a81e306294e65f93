"""Observed state: what each node reports about itself, under `status/<node id>` in the replicated store.

Pure. Only the node itself writes its status (gossip refuses any other author) and each publish is its next
generation, so peers compare per-node versions. Today a status names the node's runtime and an empty replica
list; the placement issue fills the list with the replicas the node runs (state, image, restarts, since).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from gossip.replication import STATUS_PREFIX as STATUS_PREFIX


@dataclass(frozen=True, slots=True)
class NodeStatus:
    runtime: str
    replicas: tuple[dict[str, object], ...] = ()


def status_key(node_id: str) -> str:
    return STATUS_PREFIX + node_id


def encode_status(status: NodeStatus) -> bytes:
    body = {"runtime": status.runtime, "replicas": list(status.replicas)}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def needs_publish(current: bytes | None, status: NodeStatus) -> bool:
    """Publish only what differs from the last status this node stored (a restart reloads it)."""
    return current != encode_status(status)
