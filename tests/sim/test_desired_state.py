"""The replicated desired-state store on 100 real protocol cores (simulated network, fake clock, seeded):
a write reaches all; concurrent writes on both sides of a partition converge to one winner everywhere, with the
loser kept in history; a delete made during a partition is never undone; a peer away past the tombstone grace
re-syncs fully; 20 % datagram loss still converges. Failures name the seed; SHOAL_SIM_SEED replays it."""

from __future__ import annotations

import pytest

from gossip.entry import Version
from gossip.simnet import SimNode, Simulation
from tests.sim.conftest import build, seeds

KEY = "service/web"
PAYLOAD = b'{"image":"198.18.0.1:5000/shoal-demo:1","replicas":3}'


def holds(sim: Simulation, version: Version, key: str = KEY, nodes: list[SimNode] | None = None) -> bool:
    return all((r := n.record(key)) is not None and r.entry.version == version for n in (nodes or sim.live()))


def spread(sim: Simulation, version: Version, seconds: float = 10.0, key: str = KEY) -> float:
    start = sim.clock.now()
    assert sim.run(seconds, lambda: holds(sim, version, key), step=0.01), \
        f"seed {sim.seed}: {key} did not reach every node in {seconds} s"
    return sim.clock.now() - start


@pytest.mark.parametrize("seed", seeds(31), indirect=True)
def test_a_write_reaches_all_hundred_agents_within_a_second(seed: int) -> None:
    sim = build(seed, 100)
    took = spread(sim, sim.nodes[17].write(KEY, PAYLOAD, expect=0).entry.version)
    assert took < 1.0, f"seed {seed}: took {took:.2f} s"
    big = sim.nodes[3].write("service/big", b"x" * 4000, expect=0)  # announced, then fetched over "TCP"
    assert spread(sim, big.entry.version, key="service/big") < 1.5
    assert sim.network.largest <= 1232


@pytest.mark.parametrize("seed", seeds(32), indirect=True)
def test_concurrent_writes_across_a_partition_converge_and_the_loser_stays_in_history(seed: int) -> None:
    sim = build(seed, 100)
    spread(sim, sim.nodes[0].write(KEY, PAYLOAD, expect=0).entry.version)
    left, right = sim.nodes[:40], sim.nodes[40:]
    sim.network.partition({n.host.addr for n in left})
    sim.run(1)
    a = left[5].write(KEY, PAYLOAD + b" left", expect=1, note="left edit")
    b = right[7].write(KEY, PAYLOAD + b" right", expect=1, note="right edit")
    assert a.entry.generation == b.entry.generation == 2
    assert sim.run(10, lambda: holds(sim, a.entry.version, nodes=left) and holds(sim, b.entry.version, nodes=right))
    sim.network.heal()
    winner, loser = max(a.entry.version, b.entry.version), min(a.entry.version, b.entry.version)
    spread(sim, winner, seconds=180)
    assert sim.run(180, lambda: all(any(c.version == loser for c in n.record(KEY).history)  # type: ignore[union-attr]
                                    for n in sim.live())), f"seed {seed}: some node never saw the losing edit"
    for n in sim.live():
        record = n.record(KEY)
        assert record is not None
        lost = [c for c in record.history if record.lost(c)]
        assert [c.version for c in lost] == [loser]


@pytest.mark.parametrize("seed", seeds(33), indirect=True)
def test_a_delete_during_a_partition_is_never_resurrected(seed: int) -> None:
    sim = build(seed, 100)
    spread(sim, sim.nodes[0].write(KEY, PAYLOAD, expect=0).entry.version)
    minority = sim.nodes[80:]
    sim.network.partition({n.host.addr for n in minority})
    sim.run(1)
    tomb = sim.nodes[2].write(KEY, b"", expect=1, tombstone=True, note="deleted")
    # The cut-off side edits the old version meanwhile: same generation as the delete, which must still win.
    minority[3].write(KEY, PAYLOAD + b" edit", expect=1, note="edit")
    sim.run(30)
    sim.network.heal()
    spread(sim, tomb.entry.version, seconds=180)
    sim.run(60)
    assert holds(sim, tomb.entry.version), f"seed {seed}: the deleted key came back"


@pytest.mark.parametrize("seed", seeds(34), indirect=True)
def test_a_peer_partitioned_past_the_tombstone_grace_resyncs_fully(seed: int) -> None:
    grace = 300.0
    sim = build(seed, 100, config=Simulation(0).config.replace(tombstone_grace_s=grace))
    spread(sim, sim.nodes[0].write(KEY, PAYLOAD, expect=0).entry.version)
    spread(sim, sim.nodes[0].write("service/kept", PAYLOAD, expect=0).entry.version, key="service/kept")
    away = sim.nodes[99]
    sim.network.partition({away.host.addr})
    sim.run(5)
    sim.nodes[1].write(KEY, b"", expect=1, tombstone=True)
    created = sim.nodes[2].write("service/new", PAYLOAD, expect=0)
    sim.run(grace + 120)  # the tombstone is collected everywhere but on the cut-off peer
    assert all(n.record(KEY) is None for n in sim.nodes[:99]), f"seed {seed}: tombstone not collected"
    assert away.record(KEY) is not None and not away.record(KEY).entry.tombstone  # type: ignore[union-attr]
    sim.network.heal()
    everyone = sim.nodes
    assert sim.run(240, lambda: all(n.record(KEY) is None for n in everyone)
                   and holds(sim, created.entry.version, key="service/new")), \
        f"seed {seed}: the returning peer did not re-sync (or revived the deleted key)"
    assert away.driver.core.stats["entries_dropped_resync"] == 1
    assert holds(sim, sim.nodes[0].record("service/kept").entry.version, key="service/kept")  # type: ignore[union-attr]


@pytest.mark.parametrize("seed", seeds(35), indirect=True)
def test_twenty_percent_datagram_loss_still_converges(seed: int) -> None:
    sim = build(seed, 100, loss=0.2)
    for i in range(5):
        spread(sim, sim.nodes[i * 13].write(f"service/s{i}", PAYLOAD, expect=0).entry.version,
               seconds=30, key=f"service/s{i}")


@pytest.mark.parametrize("seed", seeds(36), indirect=True)
def test_all_agents_restarted_keep_the_state_and_later_writes_still_spread(seed: int) -> None:
    sim = build(seed, 20)
    version = sim.nodes[4].write(KEY, PAYLOAD, expect=0).entry.version
    spread(sim, version)
    keys = [n.driver.core._key for n in sim.nodes]  # same identities, as agents restarted from their data dirs
    ids = [n.node for n in sim.nodes]
    for n in sim.nodes:
        sim.crash(n)
    sim.run(5)
    for i in range(20):
        sim.add_node(i, node_id=ids[i], key=keys[i])
    for n in sim.nodes[1:]:
        sim.join(n, sim.nodes[0])
    assert sim.run(30, sim.converged), f"seed {seed}: the restarted cluster did not re-form"
    assert holds(sim, version), f"seed {seed}: state lost across a full restart"
    after = sim.nodes[9].write(KEY, PAYLOAD + b"2", expect=1)
    assert after.entry.generation == 2
    spread(sim, after.entry.version)
