"""Rolling updates with no coordinator on 50 real gossip cores (simulated network, fake clock, seeded): every node
runs the rollout gate on its own lagging view. A good version rolls through and completes without ever having more
than `parallelism` replacements in flight or opening a batch early; a failing one (crashing, or never ready) is
rolled back everywhere, to one and the same generation, while the old version keeps serving; nodes that die mid-
rollout do not stop it. Failures name the seed; SHOAL_SIM_SEED replays it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from node.manifest import Deploy, ServiceSpec, UpdateConfig
from node.replica import version
from node.rollout import Phase, Previous
from tests.sim.conftest import build, seeds
from tests.sim.rollout_world import CRASH, GOOD, KEY, NEVER_READY, World, payload

NODES, SLOTS, PARALLELISM, ROLLBACK_PARALLELISM = 50, 30, 5, 3
PACING = UpdateConfig(parallelism=PARALLELISM, delay_s=0.2, monitor_s=1.0, failure_action="rollback")
V1 = ServiceSpec(name="web", image="reg/web:1", deploy=Deploy(
    replicas=SLOTS, update_config=PACING, rollback_config=UpdateConfig(parallelism=ROLLBACK_PARALLELISM,
                                                                       delay_s=0.2, monitor_s=1.0)))
V2 = replace(V1, image="reg/web:2")


def world(seed: int, fate: str) -> World:
    """50 agents running V1 everywhere, every node's view agreeing it completed, ready for the update to V2."""
    sim = build(seed, NODES)
    w = World(sim, SLOTS, {version(V1): GOOD, version(V2): fate},
              {version(V1): ROLLBACK_PARALLELISM, version(V2): PARALLELISM})
    w.deploy(V1)
    assert sim.run(30, lambda: w.phases() == {(1, Phase.COMPLETED)}, step=0.5), f"seed {seed}: V1 never completed"
    assert w.running(V1) == set(range(SLOTS))
    return w


def update(w: World) -> None:
    w.sim.nodes[7].write(KEY, payload(V2, Previous(1, V1)), expect=1, note="image reg/web:1 -> reg/web:2")


@pytest.mark.parametrize("seed", seeds(61), indirect=True)
def test_a_rollout_across_50_nodes_completes_and_never_exceeds_parallelism(seed: int) -> None:
    w = world(seed, GOOD)
    update(w)
    done = w.sim.run(300, lambda: w.phases() == {(2, Phase.COMPLETED)} and w.boxes_of(V1) == 0, step=0.5)
    assert done, f"seed {seed}: not completed; phases {w.phases()}"
    assert w.running(V2) == set(range(SLOTS)), f"seed {seed}"
    assert w.truth.violations == [], f"seed {seed}: {w.truth.violations[:5]}"
    assert w.truth.replaced[version(V2)] == SLOTS  # every slot was replaced, none started early or twice
    assert w.truth.most_in_flight[version(V2)] == PARALLELISM, f"seed {seed}: batches never filled"
    assert w.rollback_writes == 0


@pytest.mark.parametrize("fate", [CRASH, NEVER_READY])
@pytest.mark.parametrize("seed", seeds(62), indirect=True)
def test_a_failing_version_is_rolled_back_everywhere_to_one_generation(seed: int, fate: str) -> None:
    w = world(seed, fate)
    serving: list[int] = []

    def rolled_back_everywhere() -> bool:
        serving.append(len(w.running(V1)))  # sampled every 0.5 s of simulated time
        return w.phases() == {(3, Phase.ROLLED_BACK)} and w.boxes_of(V2) == 0

    update(w)
    rolled_back = w.sim.run(300, rolled_back_everywhere, step=0.5)
    assert rolled_back, f"seed {seed}: not rolled back; phases {w.phases()}"
    records = {n.record(KEY).entry.version for n in w.sim.live()}  # type: ignore[union-attr]
    assert len(records) == 1, f"seed {seed}: nodes hold different records"
    record = w.sim.nodes[0].record(KEY)
    assert record is not None and record.entry.generation == 3  # concurrent rollbacks merged: no cascade
    assert record.entry.note.startswith("rollback of generation 2 ")
    writes = [c.version for c in record.history if c.version.generation == 3]
    assert 1 <= len(writes) <= w.rollback_writes  # the writers' entries (history keeps the newest 16), one won
    assert {v.digest for v in writes} == {record.entry.version.digest}, f"seed {seed}: rollbacks differ in content"
    assert w.running(V1) == set(range(SLOTS))
    assert min(serving) >= SLOTS - PARALLELISM, f"seed {seed}: the old version stopped serving ({min(serving)})"
    assert w.truth.violations == [], f"seed {seed}: {w.truth.violations[:5]}"
    assert w.truth.most_in_flight[version(V2)] <= PARALLELISM


@pytest.mark.parametrize("seed", seeds(63), indirect=True)
def test_nodes_that_die_mid_rollout_do_not_stop_it(seed: int) -> None:
    w = world(seed, GOOD)
    update(w)
    assert w.sim.run(60, lambda: len(w.truth.settled.get(version(V2), ())) >= 2 * PARALLELISM, step=0.5)
    victims = [a for a in w.live_agents() if a.boxes][3:6]  # three nodes that run replicas
    for agent in victims:
        w.crash(agent)
    done = w.sim.run(300, lambda: w.phases() == {(2, Phase.COMPLETED)} and w.boxes_of(V1) == 0, step=0.5)
    assert done, f"seed {seed}: not completed after {len(victims)} nodes died; phases {w.phases()}"
    assert w.running(V2) == set(range(SLOTS)), f"seed {seed}"
    assert w.truth.violations == [], f"seed {seed}: {w.truth.violations[:5]}"
