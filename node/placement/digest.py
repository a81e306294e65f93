"""`inputs_digest(nodes, services)`: a hash of exactly what `assign` reads, for operators to compare across nodes.

Pure. Two nodes that show the same digest compute the same placement; a different digest means their views of
membership, labels or services differ (DESIGN §5). Only read inputs count: node ids, the node attributes that
some constraint or spread names (other labels, renamed nodes nobody constrains on: no change), and each
service's name, mode, constraints and, for replicated services, replicas, spread and max_replicas_per_node
(image, environment and the rest: no change), and where the replicas run now (sticky placement). A version tag
changes the digest when the rules change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence

from node.manifest.model import GLOBAL, ServiceSpec
from node.placement.eligible import read_attributes, spread_keys
from node.placement.model import NodeInfo

RULES_VERSION = "shoal-placement-2"  # bump when assign's rules change: equal inputs would no longer mean equal output


def inputs_digest(nodes: Sequence[NodeInfo], services: Sequence[ServiceSpec],
                  current: Mapping[tuple[str, int], Collection[str]] | None = None) -> str:
    """Hex blake2b (16 bytes) of the canonical JSON encoding of the inputs `assign` reads: with `current`, the
    slots placement keeps (those of its services, on its nodes)."""
    attributes = read_attributes(services)
    node_rows = [[node.id, [node.attribute(a) for a in attributes]] for node in sorted(nodes, key=lambda n: n.id)]
    service_rows = [_service_row(s) for s in sorted(services, key=lambda s: s.name)]
    names, ids = {s.name for s in services}, {n.id for n in nodes}
    kept = [[service, replica, sorted(set(on) & ids)] for (service, replica), on in sorted((current or {}).items())
            if service in names and set(on) & ids]
    text = json.dumps([RULES_VERSION, attributes, node_rows, service_rows, kept], ensure_ascii=False,
                      separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _service_row(service: ServiceSpec) -> list[object]:
    placement = service.deploy.placement
    constraints = sorted([c.attribute, c.op, c.value] for c in placement.constraints)  # their order is not read
    if service.deploy.mode == GLOBAL:  # one replica per eligible node: replicas, spread and the per-node cap unused
        return [service.name, GLOBAL, constraints]
    return [service.name, service.deploy.mode, constraints, service.deploy.replicas, list(spread_keys(service)),
            placement.max_replicas_per_node]
