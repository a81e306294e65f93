"""Which nodes a service may use (its constraints), and which node attributes placement reads at all.

Pure. Constraints are Swarm's: `node.id`, `node.name` or `node.labels.<key>`, `==` or `!=`; a node lacking a
label never equals a value and always differs from it (Constraint.matches). Draining and `--runtime none` nodes
are not here: the caller leaves them out of the node list (node/schedule.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from node.manifest.model import GLOBAL, LABEL_PREFIX, ServiceSpec
from node.placement.model import NodeInfo


def eligible(nodes: Sequence[NodeInfo], service: ServiceSpec) -> list[int]:
    """Positions in `nodes` of the nodes meeting every constraint of `service`, in the order given."""
    constraints = service.deploy.placement.constraints
    if not constraints:
        return list(range(len(nodes)))
    return [i for i, node in enumerate(nodes) if all(c.matches(node.attribute(c.attribute)) for c in constraints)]


def spread_keys(service: ServiceSpec) -> tuple[str, ...]:
    """The label keys a service spreads over, in order; none for a global service (one replica per node)."""
    return () if service.deploy.mode == GLOBAL else service.deploy.placement.spread


def read_attributes(services: Sequence[ServiceSpec]) -> list[str]:
    """Every node attribute some service's constraints or spread read, sorted: the only ones placement sees."""
    attributes = {c.attribute for s in services for c in s.deploy.placement.constraints}
    attributes.update(LABEL_PREFIX + key for s in services for key in spread_keys(s))
    return sorted(attributes)
