"""Balance and stability at the goal's scale, 100 nodes x 1,000 replicas (research/perf-anchors.md G6, G7), of
the stateless target (`assign` with nothing running). With replicas kept where they run, a loss moves exactly
the minimum: test_sticky.py. The target's own figures here guard what fills and rebalances from.

Moves are counted slot by slot: a slot whose node changed. The theoretical minimum on a node loss is the number
of replicas that node held: they must move, and nothing else has to. Each ratio sums 10 losses (the same 10
nodes for every mix), as one loss moves only ~10 replicas and a single one is mostly noise.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence

import pytest

from node.manifest.model import ServiceSpec
from node.placement import LOAD_FACTOR, Assignment, NodeInfo, assign
from node.placement.place import place
from tests.unit.placement.build import cluster, mix, moved

NODES = cluster(100)


def _sizes(rng: random.Random, total: int) -> list[int]:
    """Service sizes drawn from 1..40 until they add up to `total`."""
    sizes: list[int] = []
    while (left := total - sum(sizes)) > 0:
        sizes.append(min(left, rng.choice([1, 2, 3, 5, 8, 13, 20, 40])))
    return sizes


MIXES = {
    "100 x 10": [10] * 100,
    "1000 x 1": [1] * 1000,
    "200 x 5": [5] * 200,
    "50 x 20": [20] * 50,
    "10 x 100": [100] * 10,
    "1 x 1000": [1000],
    "sizes 1..40": _sizes(random.Random(5), 1000),
    "90 x 8": [8] * 90,
}


def _loss_ratio(sizes: Sequence[int], *, capped: bool = True, losses: int = 10, clusters: int = 1) -> float:
    """Moves over the minimum, summed over `losses` node losses in each of `clusters` clusters of 100 nodes."""
    specs = mix(sizes)
    run = assign if capped else _uncapped
    moves = minimum = 0
    for nodes in [NODES, *(cluster(100, seed) for seed in range(1, clusters))]:
        before = run(nodes, specs)
        for lost in random.Random(1).sample(nodes, losses):
            after = run([n for n in nodes if n != lost], specs)
            moves += moved(before, after)
            minimum += before.load(lost.id)
    return moves / minimum


def _uncapped(nodes: Sequence[NodeInfo], specs: Sequence[ServiceSpec]) -> Assignment:
    return place(nodes, specs, load_factor=None)


@pytest.mark.parametrize("sizes", MIXES.values(), ids=MIXES.keys())
def test_max_load_is_at_most_1_3_times_the_average(sizes: list[int]) -> None:
    placed = assign(NODES, mix(sizes))
    loads = [placed.load(n.id) for n in NODES]
    assert max(loads) <= 1.3 * sum(sizes) / len(NODES)
    assert sum(loads) == sum(sizes)


@pytest.mark.parametrize("name", ["100 x 10", "1000 x 1", "200 x 5"])
def test_with_the_cap_a_node_loss_moves_at_most_1_2_times_the_minimum(name: str) -> None:
    """G7 for the target alone. Measured 1.14, 1.15 and 1.15 over 3 clusters x 10 losses; one cluster alone
    ranges 1.09-1.31 (the bench's cluster, every node lost in turn: 1.25 and 1.21). A replica falling back from
    the lost node can outrank, at a full node, one that ranked that node first, which then moves too (docs/placement.md,
    "Stability")."""
    assert _loss_ratio(MIXES[name], clusters=3) <= 1.2


@pytest.mark.parametrize("name", ["50 x 20", "sizes 1..40"])
def test_with_the_cap_larger_services_move_about_1_2_times_the_minimum(name: str) -> None:
    """Measured 1.18 and 1.17: 20 replicas a service also meet their own at-most-one-a-node quota more often."""
    assert _loss_ratio(MIXES[name], clusters=3) <= 1.25


@pytest.mark.parametrize("name", ["100 x 10", "1000 x 1", "90 x 8", "1 x 1000", "10 x 100", "sizes 1..40"])
def test_the_minimum_is_reachable_under_the_rules(name: str) -> None:
    """The minimum the ratios divide by, the lost node's replicas, is also the minimum under Shoal's rules: keep
    every other replica where it is and add the lost ones one at a time to the node holding the fewest of that
    service, then the lowest load. Per-service counts stay within one of each other and no node exceeds the
    new cap, so no rule forces a further move; the excess comes from statelessness alone."""
    specs = mix(MIXES[name])
    before = assign(NODES, specs)
    for lost in random.Random(1).sample(NODES, 3):
        rest = [n.id for n in NODES if n != lost]
        cap = math.ceil(LOAD_FACTOR * sum(MIXES[name]) / len(rest))
        sticky = {slot: node for slot, node in before.by_slot.items() if node != lost.id}
        counts = Counter((service_name, node) for (service_name, _), node in sticky.items())
        loads = Counter(sticky.values())
        for service_name, _ in before.for_node(lost.id):
            target = min((n for n in rest if loads[n] < cap), key=lambda n: (counts[(service_name, n)], loads[n], n))
            counts[(service_name, target)] += 1
            loads[target] += 1
        assert max(loads.values()) <= cap
        for spec in specs:
            held = [counts[(spec.name, n)] for n in rest]
            assert max(held) - min(held) <= 1, spec.name


def test_a_loss_that_raises_the_cap_lets_refused_replicas_return() -> None:
    """720 replicas: the cap is ceil(1.25 x 7.2) = 9 on 100 nodes, 10 on 99. Every full node then takes back the
    replica it refused: measured 3.8x the minimum. About one node change in ten moves the cap at ~10 replicas
    a node (docs/placement.md, "Stability"). A regression guard, not a goal."""
    assert _loss_ratio(MIXES["90 x 8"]) <= 4.5


def test_uncapped_a_node_loss_moves_exactly_its_replicas() -> None:
    """Uncapped: the load cap off and no quota that can bind (one replica per service, no spread, no
    max_replicas_per_node): placement is plain rendezvous hashing, and nothing but the lost node's replicas move."""
    assert _loss_ratio(MIXES["1000 x 1"], capped=False) == 1.0


def test_uncapped_sparse_services_move_little_more_than_the_minimum() -> None:
    """10 replicas of a service on 100 nodes, at most one a node: a sibling holding the node the lost replica
    falls back to can be displaced, rarely (measured 1.02)."""
    assert _loss_ratio(MIXES["100 x 10"], capped=False) <= 1.05


@pytest.mark.parametrize("name", ["1 x 1000", "10 x 100"])
def test_a_dense_service_pays_for_exact_balance_in_moves(name: str) -> None:
    """1,000 replicas on 100 nodes, exactly 10 each (or 100, one each); with 99 nodes some must hold one more.
    Keeping counts within one of each other in a stateless function costs chains of displaced replicas:
    measured 3.9x and 5.0x the minimum (docs/placement.md, "Stability"). A regression guard, not a goal."""
    assert _loss_ratio(MIXES[name], losses=5) <= 6.0
