"""inputs_digest: it changes exactly when something assign() reads changes (DESIGN §5: operators compare it)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from node.manifest.model import GLOBAL, ServiceSpec
from node.placement import NodeInfo, inputs_digest
from tests.unit.placement.build import node, service

Inputs = tuple[list[NodeInfo], list[ServiceSpec]]


def base() -> Inputs:
    nodes = [node(1, "alpha", zone="a", disk="ssd", team="x"), node(2, "beta", zone="b"), node(3, "gamma")]
    services = [service("web", 3, spread=["zone"], max_per_node=2),
                service("db", 1, constraints=["node.labels.disk == ssd"]),
                service("agent", mode=GLOBAL, constraints=["node.name != gamma"])]
    return nodes, services


def _with_node(i: int, replacement: NodeInfo) -> Callable[[Inputs], Inputs]:
    return lambda inputs: ([replacement if j == i else n for j, n in enumerate(inputs[0])], inputs[1])


def _with_service(i: int, replacement: ServiceSpec) -> Callable[[Inputs], Inputs]:
    return lambda inputs: (inputs[0], [replacement if j == i else s for j, s in enumerate(inputs[1])])


READ: dict[str, Callable[[Inputs], Inputs]] = {
    "a node joins": lambda i: ([*i[0], node(4)], i[1]),
    "a node leaves": lambda i: (i[0][1:], i[1]),
    "a spread label changes": _with_node(1, node(2, "beta", zone="c")),
    "a constrained label appears": _with_node(2, node(3, "gamma", disk="ssd")),
    "a constrained name changes": _with_node(2, node(3, "delta")),
    "replicas change": _with_service(0, service("web", 4, spread=["zone"], max_per_node=2)),
    "max_replicas_per_node changes": _with_service(0, service("web", 3, spread=["zone"], max_per_node=1)),
    "spread changes": _with_service(0, service("web", 3, spread=["disk"], max_per_node=2)),
    "a constraint changes": _with_service(1, service("db", 1, constraints=["node.labels.disk != ssd"])),
    "mode changes": _with_service(2, service("agent", 1, constraints=["node.name != gamma"])),
    "a service is renamed": _with_service(1, service("db2", 1, constraints=["node.labels.disk == ssd"])),
    "a service is added": lambda i: (i[0], [*i[1], service("cache")]),
}

UNREAD: dict[str, Callable[[Inputs], Inputs]] = {
    "the image changes": _with_service(0, service("web", 3, spread=["zone"], max_per_node=2, image="other:2")),
    "the environment changes": _with_service(0, service("web", 3, spread=["zone"], max_per_node=2,
                                                        environment=(("A", "1"),))),
    "a label nothing reads changes": _with_node(0, node(1, "alpha", zone="a", disk="ssd", team="y")),
    "a global service's replicas change": _with_service(2, service("agent", 7, mode=GLOBAL,
                                                                   constraints=["node.name != gamma"])),
    "the order of nodes and services": lambda i: (i[0][::-1], i[1][::-1]),
}


@pytest.mark.parametrize("change", READ.values(), ids=READ.keys())
def test_the_digest_changes_with_every_input_placement_reads(change: Callable[[Inputs], Inputs]) -> None:
    assert inputs_digest(*change(base())) != inputs_digest(*base())


@pytest.mark.parametrize("change", UNREAD.values(), ids=UNREAD.keys())
def test_the_digest_ignores_what_placement_does_not_read(change: Callable[[Inputs], Inputs]) -> None:
    assert inputs_digest(*change(base())) == inputs_digest(*base())


def test_a_node_name_counts_only_once_a_constraint_names_it() -> None:
    nodes, services = base()
    renamed = [node(1, "omega", zone="a", disk="ssd", team="x"), *nodes[1:]]
    without_name_rules = [s for s in services if s.name != "agent"]
    assert inputs_digest(renamed, without_name_rules) == inputs_digest(nodes, without_name_rules)
    assert inputs_digest(renamed, services) != inputs_digest(nodes, services)


def test_the_digest_is_32_hex_characters() -> None:
    digest = inputs_digest(*base())
    assert len(digest) == 32 and int(digest, 16) >= 0
