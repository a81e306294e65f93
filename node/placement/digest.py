"""`inputs_digest(nodes, services)`: a hash of exactly what `assign` reads, for operators to compare across nodes.

Pure. Two nodes that show the same digest compute the same placement; a different digest means their views of
membership, labels or services differ (DESIGN §5). Only read inputs count: node ids, the node attributes that
some constraint or spread names (other labels, renamed nodes nobody constrains on: no change), and each
service's name, mode, constraints and, for replicated services, replicas, spread and max_replicas_per_node
(image, environment and the rest: no change). A version tag changes the digest when the rules change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from node.manifest.model import GLOBAL, ServiceSpec
from node.placement.eligible import read_attributes, spread_keys
from node.placement.model import NodeInfo

RULES_VERSION = "shoal-placement-1"  # bump when assign's rules change: equal inputs would no longer mean equal output


def inputs_digest(nodes: Sequence[NodeInfo], services: Sequence[ServiceSpec]) -> str:
    """Hex blake2b (16 bytes) of the canonical JSON encoding of the inputs `assign` reads."""
    attributes = read_attributes(services)
    node_rows = [[node.id, [node.attribute(a) for a in attributes]] for node in sorted(nodes, key=lambda n: n.id)]
    service_rows = [_service_row(s) for s in sorted(services, key=lambda s: s.name)]
    text = json.dumps([RULES_VERSION, attributes, node_rows, service_rows], ensure_ascii=False,
                      separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _service_row(service: ServiceSpec) -> list[object]:
    placement = service.deploy.placement
    constraints = sorted([c.attribute, c.op, c.value] for c in placement.constraints)  # their order is not read
    if service.deploy.mode == GLOBAL:  # one replica per eligible node: replicas, spread and the per-node cap unused
        return [service.name, GLOBAL, constraints]
    return [service.name, service.deploy.mode, constraints, service.deploy.replicas, list(spread_keys(service)),
            placement.max_replicas_per_node]
