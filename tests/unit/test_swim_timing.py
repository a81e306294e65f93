"""The protocol core under the fake clock: exact times of suspicion and death, and the local-health score."""

from __future__ import annotations

import pytest

from gossip.awareness import Awareness
from gossip.config import GossipConfig
from gossip.members import Status
from gossip.simnet import Simulation


def first_event(sim: Simulation, viewer: int, about: str, kind: str) -> float:
    return next(t for t, e in sim.nodes[viewer].events if e.member.node == about and e.kind == kind)


def test_a_silent_peer_is_suspected_within_two_probe_rounds_and_dead_exactly_one_minimum_timeout_later() -> None:
    config = GossipConfig(suspicion_mult=2.5, suspicion_confirmations=1)
    sim = Simulation(3, config=config)
    a, b = sim.add_node(), sim.add_node()
    sim.join(b, a)
    assert sim.run(5, sim.converged)
    sim.crash(b)
    crashed_at = sim.clock.now()
    assert sim.run(20, lambda: a.view()[b.node] == Status.DEAD, step=0.01)
    suspected = first_event(sim, 0, b.node, "suspect")
    dead = first_event(sim, 0, b.node, "dead")
    assert suspected - crashed_at <= 2 * config.probe_interval_s + 0.01
    # Two members: no one else can confirm (k = min(1, N - 2) = 0), so the timeout is the minimum:
    # 2.5 x max(1, log10 2) x 1 s.
    assert dead - suspected == pytest.approx(2.5)


def test_awareness_is_bounded_and_scales_timeouts() -> None:
    health = Awareness(maximum=8)
    health.apply(-1)
    assert health.score == 0 and health.scale(0.5) == 0.5
    for _ in range(20):
        health.apply(1)
    assert health.score == 7 and health.scale(0.5) == 4.0


def test_an_agent_with_no_one_to_ask_grows_its_awareness_when_probes_fail() -> None:
    sim = Simulation(4)
    a, b = sim.add_node(), sim.add_node()
    sim.join(b, a)
    assert sim.run(5, sim.converged)
    sim.crash(b)
    sim.run(3)
    assert a.driver.core.awareness >= 1
