"""Every node computes the same placement: across processes, hash seeds and input orders (DESIGN §5, G8)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from node.manifest.model import GLOBAL, ServiceSpec
from node.placement import NodeInfo, assign, inputs_digest
from tests.unit.placement.build import node, service

ROOT = Path(__file__).resolve().parents[3]

PINNED = "802d6df363d4472630a430f0a4570515"
"""The placement digest of `scenario()`. It changes only if placement's rules change: then bump
node.placement.digest.RULES_VERSION too (nodes on either side of the change place differently) and pin anew."""


def scenario() -> tuple[list[NodeInfo], list[ServiceSpec]]:
    """30 nodes over 3 zones (some without one), disks on half; every kind of rule in use."""
    nodes = [node(i, **({"zone": "abc"[i % 3]} if i % 7 else {}), **({"disk": "ssd"} if i % 2 else {}))
             for i in range(30)]
    services = [service("web", 40, spread=["zone"]), service("db", 6, constraints=["node.labels.disk == ssd"],
                                                             max_per_node=1),
                service("agent", mode=GLOBAL, constraints=["node.labels.zone != c"]),
                service("cache", 25, spread=["zone", "disk"], max_per_node=2), service("api", 90)]
    return nodes, services


SCRIPT = """
import json
from tests.unit.placement.test_determinism import scenario
from node.placement import assign, inputs_digest
nodes, services = scenario()
print(json.dumps([assign(nodes, services).digest(), inputs_digest(nodes, services)]))
"""


def test_processes_with_different_hash_seeds_agree() -> None:
    nodes, services = scenario()
    here = [assign(nodes, services).digest(), inputs_digest(nodes, services)]
    for seed in ("0", "1", "4242", "random"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(ROOT))
        done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=60, check=True)
        assert json.loads(done.stdout) == here, seed


def test_the_placement_of_a_fixed_scenario_is_pinned() -> None:
    assert assign(*scenario()).digest() == PINNED


@given(st.randoms(use_true_random=False))
def test_input_order_does_not_matter(rng: random.Random) -> None:
    nodes, services = scenario()
    expected = assign(nodes, services)
    rng.shuffle(nodes)
    rng.shuffle(services)
    shuffled = assign(nodes, services)
    assert shuffled.by_slot == expected.by_slot and list(shuffled.by_slot) == list(expected.by_slot)
    assert shuffled.digest() == expected.digest()
    assert inputs_digest(nodes, services) == inputs_digest(*scenario())


def test_every_slot_of_the_scenario_is_placed_or_listed() -> None:
    placed = assign(*scenario())
    assert len(placed.by_slot) + len(placed.unplaced) == 40 + 6 + 25 + 90 + len(
        [n for n in scenario()[0] if dict(n.labels).get("zone") != "c"])
