"""Simulation fixtures: a seeded cluster builder. The seed is in every test id and every failure message;
set SHOAL_SIM_SEED to replay one."""

from __future__ import annotations

import os

import pytest

from gossip.simnet import Simulation


def seeds(default: int) -> list[int]:
    return [int(os.environ["SHOAL_SIM_SEED"])] if "SHOAL_SIM_SEED" in os.environ else [default]


def build(seed: int, n: int, **kwargs: object) -> Simulation:
    """N agents joined through the first one, run until every agent sees every agent alive."""
    sim = Simulation(seed, **kwargs)  # type: ignore[arg-type]
    first = sim.add_node()
    for _ in range(n - 1):
        sim.join(sim.add_node(), first)
    assert sim.run(30, sim.converged), f"seed {seed}: {n} agents did not converge in 30 s"
    return sim


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    return int(request.param)
