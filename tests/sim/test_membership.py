"""100 real protocol cores on the simulated network (fake clock, seeded): join, crash detection, stalls,
partitions, loss, a rogue key. Failures name the seed; SHOAL_SIM_SEED=<seed> replays it."""

from __future__ import annotations

import pytest

from gossip.members import Status
from gossip.signing import SigningKey, create_ca
from gossip.simnet import WALL_EPOCH, SimNode, Simulation
from tests.sim.conftest import build, seeds


def all_see(sim: Simulation, node: str, status: Status, viewers: list[SimNode] | None = None) -> bool:
    return all(n.view().get(node) == status for n in (viewers or sim.live()) if n.node != node)


@pytest.mark.parametrize("seed", seeds(11), indirect=True)
def test_hundred_agents_join_and_converge_within_seconds(seed: int) -> None:
    sim = build(seed, 100)
    assert sim.clock.now() < 5.0, f"seed {seed}: convergence took {sim.clock.now():.1f} s"
    assert sim.network.largest <= 1232


@pytest.mark.parametrize("seed", seeds(12), indirect=True)
def test_a_crashed_agent_is_declared_dead_by_every_survivor(seed: int) -> None:
    sim = build(seed, 100)
    victim = sim.nodes[37]
    sim.crash(victim)
    start = sim.clock.now()
    assert sim.run(30, lambda: all_see(sim, victim.node, Status.DEAD)), f"seed {seed}: not detected"
    detection = sim.clock.now() - start
    assert detection < 15.0, f"seed {seed}: detection took {detection:.1f} s"
    assert sim.converged(), f"seed {seed}: a survivor lost sight of another survivor"


@pytest.mark.parametrize("seed", seeds(13), indirect=True)
def test_an_agent_stalled_two_seconds_every_ten_is_never_declared_dead(seed: int) -> None:
    sim = build(seed, 100)
    staller = sim.nodes[5]
    for _ in range(9):
        staller.host.stalled_until = sim.clock.now() + 2.0
        sim.run(10)
    deaths = [(t, n.node, e.member.node) for n in sim.nodes for t, e in n.events if e.kind == "dead"]
    suspected = sum(1 for n in sim.nodes for _, e in n.events
                    if e.member.node == staller.node and e.kind == "suspect")
    assert deaths == [], f"seed {seed}: false deaths (the staller's or, once it resumed, its victims') {deaths[:3]}"
    assert suspected > 0, f"seed {seed}: the stall never even raised a suspicion: the test tests nothing"
    assert all_see(sim, staller.node, Status.ALIVE)


@pytest.mark.parametrize("seed", seeds(14), indirect=True)
def test_a_partition_heals_into_one_cluster(seed: int) -> None:
    sim = build(seed, 100)
    side = {n.host.addr for n in sim.nodes[:40]}
    sim.network.partition(side)
    sim.run(40)
    left, right = sim.nodes[0], sim.nodes[70]
    assert left.view()[right.node] == Status.DEAD and right.view()[left.node] == Status.DEAD
    sim.network.heal()
    # Dead members are probed no more; push-pull and gossip-to-the-dead bring the sides back together.
    assert sim.run(120, sim.converged), f"seed {seed}: the partition did not heal"


@pytest.mark.parametrize("seed", seeds(15), indirect=True)
def test_convergence_and_detection_survive_twenty_percent_loss(seed: int) -> None:
    sim = build(seed, 100, loss=0.2)
    victim = sim.nodes[9]
    sim.crash(victim)
    assert sim.run(40, lambda: all_see(sim, victim.node, Status.DEAD)), f"seed {seed}"
    deaths = [e.member.node for n in sim.live() for _, e in n.events
              if e.kind == "dead" and e.member.node != victim.node]
    assert deaths == [], f"seed {seed}: loss caused false deaths"


@pytest.mark.parametrize("seed", seeds(16), indirect=True)
def test_an_agent_whose_key_the_ca_did_not_sign_can_neither_join_nor_inject(seed: int) -> None:
    sim = build(seed, 100)
    rogue_ca = create_ca("5" * 32, "sim", now_s=WALL_EPOCH - 3600)
    rogue = sim.add_node(ca=rogue_ca)
    sim.join(rogue, sim.nodes[0])
    # It also impersonates a real member's id with its own key.
    impostor = sim.add_node(ca=rogue_ca, node_id=sim.nodes[3].node, key=SigningKey.generate())
    sim.join(impostor, sim.nodes[1])
    sim.run(20)
    honest = sim.nodes[:100]
    assert all(rogue.node not in n.view() for n in honest), f"seed {seed}: rogue admitted"
    assert all_see(sim, sim.nodes[3].node, Status.ALIVE, honest), f"seed {seed}: the impostor hurt its victim"
    drops = sum(n.driver.core.stats["drop_untrusted_cert"] for n in honest)
    assert drops > 0, f"seed {seed}: the rogue's datagrams were never even seen"


@pytest.mark.parametrize("seed", seeds(17), indirect=True)
def test_a_restarted_agent_rejoins_and_its_datagrams_are_not_replays(seed: int) -> None:
    sim = build(seed, 50)
    sim.run(60)  # long enough that most pairs have probed each other and dropped their certificates
    old = sim.nodes[4]
    key = old.driver.core._key  # same identity, new boot: as an agent restarted from its data dir
    sim.crash(old)
    assert sim.run(30, lambda: all_see(sim, old.node, Status.DEAD)), f"seed {seed}"
    fresh = sim.add_node(4, node_id=old.node, key=key)
    for n in sim.nodes:
        n.events.clear()
    sim.join(fresh, sim.nodes[0])
    assert sim.run(20, sim.converged), f"seed {seed}: the restarted agent did not rejoin"
    replays = sum(n.driver.core.stats["drop_replayed"] + n.driver.core.stats["drop_stale"] for n in sim.live())
    assert replays == 0, f"seed {seed}: fresh datagrams taken for replays"
    sim.run(20)
    # Peers that knew its old self must not keep talking to it as if it still held their keys.
    suspicions = [n.node for n in sim.live() for _, e in n.events if e.member.node == old.node and e.kind == "suspect"]
    assert suspicions == [], f"seed {seed}: the restarted agent was suspected by {len(suspicions)} peers"


@pytest.mark.parametrize("seed", seeds(18), indirect=True)
def test_a_graceful_leave_is_seen_as_left_not_dead(seed: int) -> None:
    sim = build(seed, 100)
    leaver = sim.nodes[8]
    leaver.driver.leave()
    sim.run(0.5)
    sim.crash(leaver)
    assert sim.run(5, lambda: all_see(sim, leaver.node, Status.LEFT)), f"seed {seed}"
    sim.run(30)
    assert all_see(sim, leaver.node, Status.LEFT), f"seed {seed}: a leave turned into a death"
