"""Hypothesis strategies: small clusters with random labels, and services with random placement rules."""

from __future__ import annotations

from hypothesis import strategies as st

from node.manifest.model import GLOBAL, REPLICATED, ServiceSpec
from node.placement import NodeInfo
from tests.unit.placement.build import node_id, service

ZONES = ["a", "b", "c"]
DISKS = ["ssd", "hdd"]
CONSTRAINTS = ["node.labels.zone == a", "node.labels.zone != a", "node.labels.disk == ssd",
               "node.labels.disk != hdd", "node.labels.gpu == yes"]


@st.composite
def clusters(draw: st.DrawFn, max_nodes: int = 12) -> list[NodeInfo]:
    """1..max_nodes nodes; each may lack a label (a missing label forms its own spread group)."""
    count = draw(st.integers(1, max_nodes))
    labels = st.fixed_dictionaries({}, optional={"zone": st.sampled_from(ZONES), "disk": st.sampled_from(DISKS),
                                                 "gpu": st.just("yes")})
    return [NodeInfo(node_id(f"{draw(st.integers(0, 10**6))}-{i}"), f"n{i}",
                     tuple(sorted(draw(labels).items()))) for i in range(count)]


@st.composite
def services(draw: st.DrawFn, max_services: int = 6, max_replicas: int = 30) -> list[ServiceSpec]:
    count = draw(st.integers(1, max_services))
    return [service(f"svc{i}", draw(st.integers(0, max_replicas)),
                    mode=draw(st.sampled_from([REPLICATED, REPLICATED, REPLICATED, GLOBAL])),
                    constraints=draw(st.lists(st.sampled_from(CONSTRAINTS), max_size=2, unique=True)),
                    spread=draw(st.permutations(["zone", "disk"]).flatmap(lambda keys: st.sampled_from(
                        [(), tuple(keys[:1]), tuple(keys)]))),
                    max_per_node=draw(st.sampled_from([0, 0, 1, 2, 3])))
            for i in range(count)]
