"""The placement rules as properties over random clusters and services, plus the corner cases by name."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.manifest.model import GLOBAL, LABEL_PREFIX, ServiceSpec
from node.placement import Assignment, NodeInfo, assign
from tests.unit.placement.build import cluster, node, per_node, service
from tests.unit.placement.strategies import clusters, services


def _value(n: NodeInfo, attribute: str) -> str | None:
    """The test's own reading of a constraint attribute (not NodeInfo.attribute, which is under test)."""
    if attribute == "node.id":
        return n.id
    if attribute == "node.name":
        return n.name
    return dict(n.labels).get(attribute.removeprefix(LABEL_PREFIX))


def _eligible(nodes: Sequence[NodeInfo], spec: ServiceSpec) -> list[NodeInfo]:
    return [n for n in nodes if all((_value(n, c.attribute) == c.value) == (c.op == "==")
                                    for c in spec.deploy.placement.constraints)]


def _capacity(spec: ServiceSpec, nodes: int) -> float:
    per_node = spec.deploy.placement.max_replicas_per_node
    return nodes * per_node if per_node or not nodes else float("inf")


def assert_rules(nodes: list[NodeInfo], specs: list[ServiceSpec], placed: Assignment) -> None:
    """Every rule below at once, for another module's placements (test_sticky.py)."""
    for check in (_constraints, _max_per_node, _placed_and_unplaced, _global, _spread):
        check(nodes, specs, placed)


@given(clusters(), services())
def test_constraints_are_never_violated(nodes: list[NodeInfo], specs: list[ServiceSpec]) -> None:
    _constraints(nodes, specs, assign(nodes, specs))


def _constraints(nodes: list[NodeInfo], specs: list[ServiceSpec], placed: Assignment) -> None:
    by_id = {n.id: n for n in nodes}
    for spec in specs:
        allowed = {n.id for n in _eligible(nodes, spec)}
        assert set(per_node(placed, spec.name)) <= allowed
        assert all(n in by_id for n in per_node(placed, spec.name))


@given(clusters(), services())
def test_max_replicas_per_node_is_never_exceeded(nodes: list[NodeInfo], specs: list[ServiceSpec]) -> None:
    _max_per_node(nodes, specs, assign(nodes, specs))


def _max_per_node(nodes: list[NodeInfo], specs: list[ServiceSpec], placed: Assignment) -> None:
    for spec in specs:
        if limit := spec.deploy.placement.max_replicas_per_node:
            assert max(per_node(placed, spec.name).values(), default=0) <= limit


@given(clusters(), services())
def test_a_replicated_service_places_what_fits_and_lists_the_rest_unplaced(nodes: list[NodeInfo],
                                                                          specs: list[ServiceSpec]) -> None:
    _placed_and_unplaced(nodes, specs, assign(nodes, specs))


def _placed_and_unplaced(nodes: list[NodeInfo], specs: list[ServiceSpec], placed: Assignment) -> None:
    for spec in (s for s in specs if s.deploy.mode != GLOBAL):
        fits = int(min(spec.deploy.replicas, _capacity(spec, len(_eligible(nodes, spec)))))
        replicas = sorted(r for (name, r) in placed.by_slot if name == spec.name)
        assert replicas == list(range(fits))
        assert [r for (name, r) in placed.unplaced if name == spec.name] == list(range(fits, spec.deploy.replicas))
        assert (spec.name in placed.reasons) == (fits < spec.deploy.replicas)


@given(clusters(), services())
def test_a_global_service_runs_exactly_once_on_every_eligible_node(nodes: list[NodeInfo],
                                                                   specs: list[ServiceSpec]) -> None:
    _global(nodes, specs, assign(nodes, specs))


def _global(nodes: list[NodeInfo], specs: list[ServiceSpec], placed: Assignment) -> None:
    for spec in (s for s in specs if s.deploy.mode == GLOBAL):
        counts = per_node(placed, spec.name)
        assert counts == Counter({n.id: 1 for n in _eligible(nodes, spec)})
        assert not [slot for slot in placed.unplaced if slot[0] == spec.name]


@given(clusters(), services())
def test_spread_groups_differ_by_at_most_one_unless_full(nodes: list[NodeInfo], specs: list[ServiceSpec]) -> None:
    """At every spread level, within its parent group: label values (a missing label is a value of its own)
    hold counts within one of each other, except a group holding all its nodes can (max_replicas_per_node);
    at the last level the same holds node by node."""
    _spread(nodes, specs, assign(nodes, specs))


def _spread(nodes: list[NodeInfo], specs: list[ServiceSpec], placed: Assignment) -> None:
    for spec in (s for s in specs if s.deploy.mode != GLOBAL):
        counts = per_node(placed, spec.name)
        keys = spec.deploy.placement.spread
        for level in range(len(keys) + 1):
            for parent in _groups(_eligible(nodes, spec), keys[:level]):
                children = _groups(parent, keys[level:level + 1]) if level < len(keys) else [[n] for n in parent]
                held = [(sum(counts[n.id] for n in c), _capacity(spec, len(c))) for c in children]
                for (a, _), (b, b_cap) in itertools.permutations(held, 2):
                    assert a - b <= 1 or b == b_cap, (spec, level, held)


def _groups(nodes: Sequence[NodeInfo], keys: Sequence[str]) -> list[list[NodeInfo]]:
    """Nodes grouped by their values of `keys` (None for a missing label)."""
    groups: dict[tuple[str | None, ...], list[NodeInfo]] = {}
    for n in nodes:
        groups.setdefault(tuple(dict(n.labels).get(k) for k in keys), []).append(n)
    return list(groups.values())


@given(st.integers(1, 40), st.integers(0, 200))
def test_without_preferences_a_service_spreads_evenly_over_nodes(count: int, replicas: int) -> None:
    placed = assign(cluster(count), [service("web", replicas)])
    counts = [per_node(placed, "web")[n.id] for n in cluster(count)]
    assert max(counts) - min(counts) <= 1
    assert sum(counts) == replicas


def test_spread_splits_across_zones_then_evenly_inside_each() -> None:
    nodes = [node(i, zone="abc"[i % 3]) for i in range(9)] + [node("bare")]
    placed = assign(nodes, [service("web", 13, spread=["zone"])])
    by_zone = Counter(dict(n.labels).get("zone") for n in nodes for _ in range(per_node(placed, "web")[n.id]))
    assert sorted(by_zone.values()) == [3, 3, 3, 4]  # a, b, c and the node without a zone: 13 = 3 x 4 + 1


def test_a_missing_label_never_equals_and_always_differs() -> None:
    nodes = [node("ssd", disk="ssd"), node("plain")]
    placed = assign(nodes, [service("eq", 4, constraints=["node.labels.disk == ssd"]),
                            service("ne", 4, constraints=["node.labels.disk != ssd"])])
    assert set(per_node(placed, "eq")) == {nodes[0].id}
    assert set(per_node(placed, "ne")) == {nodes[1].id}


def test_node_name_and_id_constraints_select_that_node() -> None:
    nodes = cluster(5)
    placed = assign(nodes, [service("by-name", 3, constraints=["node.name == n2"]),
                            service("by-id", 3, constraints=[f"node.id != {nodes[0].id}"])])
    assert per_node(placed, "by-name") == Counter({nodes[2].id: 3})
    assert nodes[0].id not in per_node(placed, "by-id")


def test_no_eligible_node_leaves_every_replica_unplaced_with_a_reason() -> None:
    placed = assign(cluster(3), [service("gpu", 2, constraints=["node.labels.gpu == yes"]),
                                 service("agent", mode=GLOBAL, constraints=["node.labels.gpu == yes"])])
    assert placed.by_slot == {}
    assert placed.unplaced == (("gpu", 0), ("gpu", 1))
    assert "constraints" in placed.reasons["gpu"] and "constraints" in placed.reasons["agent"]


def test_max_replicas_per_node_leaves_the_highest_replicas_pending() -> None:
    placed = assign(cluster(3), [service("web", 8, max_per_node=2)])
    assert placed.unplaced == (("web", 6), ("web", 7))
    assert "6 of 8" in placed.reasons["web"]
    assert set(per_node(placed, "web").values()) == {2}


def test_the_load_cap_gives_way_rather_than_leave_a_replica_pending() -> None:
    """Two nodes may run `db`: they take all 40 replicas although the cap (1.25 x 50 / 10 = 7) is far lower."""
    nodes = [node(i, disk="ssd" if i < 2 else "hdd") for i in range(10)]
    placed = assign(nodes, [service("db", 40, constraints=["node.labels.disk == ssd"]), service("web", 10)])
    assert not placed.unplaced
    assert sorted(per_node(placed, "db").values()) == [20, 20]


def test_the_load_cap_holds_when_it_can() -> None:
    nodes = cluster(20)
    placed = assign(nodes, [service(f"s{i}", 1) for i in range(200)])
    assert max(placed.load(n.id) for n in nodes) <= 13  # ceil(1.25 x 200 / 20)


def test_global_replica_index_is_the_node_id_prefix_and_survives_membership_changes() -> None:
    nodes = cluster(5)
    before = assign(nodes, [service("agent", mode=GLOBAL)])
    after = assign([*nodes[1:], node("newcomer")], [service("agent", mode=GLOBAL)])
    assert before.for_node(nodes[3].id) == [("agent", int(nodes[3].id[:8], 16))]
    assert after.for_node(nodes[3].id) == before.for_node(nodes[3].id)


def test_global_replicas_of_nodes_sharing_an_id_prefix_stay_distinct() -> None:
    twins = [NodeInfo("abcdef01" + "0" * 24, "a"), NodeInfo("abcdef01" + "1" * 24, "b")]
    placed = assign(twins, [service("agent", mode=GLOBAL)])
    assert sorted(placed.by_slot) == [("agent", 0xABCDEF01), ("agent", 0xABCDEF02)]


def test_global_replicas_count_toward_the_load() -> None:
    nodes = cluster(4)
    placed = assign(nodes, [service("agent", mode=GLOBAL), service("web", 4)])
    assert [placed.load(n.id) for n in nodes] == [2, 2, 2, 2]


def test_no_nodes_places_nothing() -> None:
    placed = assign([], [service("web", 2), service("agent", mode=GLOBAL)])
    assert placed.by_slot == {} and placed.unplaced == (("web", 0), ("web", 1))


def test_for_node_lists_a_nodes_slots_sorted() -> None:
    nodes = cluster(2)
    placed = assign(nodes, [service("b", 4), service("a", 4)])
    mine = placed.for_node(nodes[0].id)
    assert mine == sorted(mine) and len(mine) == 4
    assert placed.for_node("unknown") == []


@pytest.mark.parametrize("twice", ["node", "service"])
def test_a_repeated_node_or_service_is_refused(twice: str) -> None:
    nodes, specs = cluster(2), [service("web")]
    with pytest.raises(ValueError, match="listed twice"):
        assign(nodes + nodes[:1] if twice == "node" else nodes, specs * 2 if twice == "service" else specs)


def test_assignment_is_read_only() -> None:
    placed = assign(cluster(2), [service("web")])
    with pytest.raises(TypeError):
        placed.by_slot[("web", 9)] = "x"  # type: ignore[index]
