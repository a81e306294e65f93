#!/usr/bin/env python3
"""Placement: balance, stability and recompute time of node.placement.assign against two baselines, in one run.

Schemes (the baselines live here, not in Shoal):
  shoal          node.placement.assign, given where the replicas run (the placement before the change): the
                 stateless target below, kept where replicas run (node/placement/sticky.py)
  shoal, stateless  node.placement.place: rendezvous hashing with quotas and the 1.25x load cap, no memory
  shoal, no cap  the stateless one without the load cap (node.placement.place.place(load_factor=None))
  HRW            plain rendezvous hashing: each replica on its top-scoring node (same hashes), nothing else
  ring 100 vn    a consistent-hash ring, 100 virtual nodes a node, blake2b points; a replica on the next point
Fixtures: 100 nodes (random ids) and 1,000 replicas as 100 services x 10, 1,000 x 1 and 1 x 1,000; 100,000
replicas as 100,000 x 1 (skipped with --quick). Figures, each over the same nodes for every scheme:
  max/avg, min/avg  the busiest and idlest node's replicas over the average
  loss moves        replicas whose node changed when one node leaves, over the minimum, summed over the loss of
                    every node in turn (a single loss moves ~10 replicas: one alone is mostly noise). The
                    minimum is the replicas the lost node held: they must move, and nothing else has to, even
                    under Shoal's rules (keep every other replica and add the lost ones one at a time to the
                    node with the fewest of that service, then the lowest load: counts stay within one and
                    loads under the new cap; tests/unit/placement/test_balance.py checks it on these mixes;
                    sticky placement reaches it)
  join moves        the same when one of JOINS new nodes joins, over the replicas the new node holds (the
                    research/perf-anchors.md convention, K/(N+1); nothing forces a sparse service onto it)
  time              median wall time of every run of the scheme on the fixture (>= 5 runs), one process
Then a sweep of loss moves over total replicas 700..1,300 (100 nodes, services of 10), shoal and shoal
stateless: the load cap ceil(1.25 x replicas / nodes) moves by one for about one node change in ten, and
those changes cost the stateless placement more.

  .venv/bin/python bench/placement.py            # ~90 s on 2 cores
  .venv/bin/python bench/placement.py --quick    # without 100,000 replicas, ~55 s
Method and figures: docs/placement.md.
"""

from __future__ import annotations

import argparse
import bisect
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from node.manifest.model import Deploy, ServiceSpec  # noqa: E402
from node.placement import LOAD_FACTOR, NodeInfo, assign  # noqa: E402
from node.placement.place import place  # noqa: E402
from node.placement.score import NodeHashes, hash64, key_hash  # noqa: E402

Placement = Mapping[tuple[str, int], str]
Scheme = Callable[[Sequence[NodeInfo], Sequence[ServiceSpec], Placement | None], Placement]
"""(nodes, services, the placement before the change or None) -> placement; only shoal reads the third."""
LOSSES = 100  # every node of the 100-node cluster, in turn
JOINS = 20
VNODES = 100


def shoal(nodes: Sequence[NodeInfo], services: Sequence[ServiceSpec], before: Placement | None) -> Placement:
    current = {slot: (node_id,) for slot, node_id in before.items()} if before else None
    return assign(nodes, services, current).by_slot


def shoal_stateless(nodes: Sequence[NodeInfo], services: Sequence[ServiceSpec], _: Placement | None) -> Placement:
    return place(nodes, services, load_factor=LOAD_FACTOR).by_slot


def shoal_uncapped(nodes: Sequence[NodeInfo], services: Sequence[ServiceSpec], _: Placement | None) -> Placement:
    return place(nodes, services, load_factor=None).by_slot


def hrw(nodes: Sequence[NodeInfo], services: Sequence[ServiceSpec], _: Placement | None) -> Placement:
    """Plain rendezvous hashing: every replica on its highest-scoring node."""
    ordered = sorted(nodes, key=lambda n: n.id)
    packed = NodeHashes([hash64(n.id) for n in ordered])
    placed = {}
    for s in services:
        for r in range(s.deploy.replicas):
            placed[(s.name, r)] = ordered[packed.node_of(max(packed.ranks(key_hash(s.name, r))))].id
    return placed


def ring(nodes: Sequence[NodeInfo], services: Sequence[ServiceSpec], _: Placement | None) -> Placement:
    """Consistent hashing on a ring: VNODES points a node; a replica goes to the first point at or after its key."""
    points = sorted((hash64(f"{n.id}#{v}"), n.id) for n in nodes for v in range(VNODES))
    positions = [p for p, _ in points]
    placed = {}
    for s in services:
        for r in range(s.deploy.replicas):
            placed[(s.name, r)] = points[bisect.bisect_left(positions, key_hash(s.name, r)) % len(points)][1]
    return placed


SCHEMES: dict[str, Scheme] = {"shoal": shoal, "shoal, stateless": shoal_stateless, "shoal, no cap": shoal_uncapped,
                              "HRW": hrw, f"ring {VNODES} vn": ring}


@dataclass(frozen=True, slots=True)
class Row:
    fixture: str
    scheme: str
    max_avg: float
    min_avg: float
    loss: float
    join: float
    time_ms: float


def cluster(count: int, tag: str = "n") -> list[NodeInfo]:
    return [NodeInfo(f"{hash64(f'{tag}{i}'):016x}{hash64(f'{tag}{i}!'):016x}", f"{tag}{i}") for i in range(count)]


def services(sizes: Sequence[int]) -> list[ServiceSpec]:
    return [ServiceSpec(name=f"s{i:06d}", image="bench", deploy=Deploy(replicas=q)) for i, q in enumerate(sizes)]


def measure(fixture: str, name: str, scheme: Scheme, nodes: list[NodeInfo], specs: list[ServiceSpec],
            losses: int, joins: int) -> Row:
    times: list[float] = []

    def run(members: Sequence[NodeInfo], previous: Placement | None = None) -> Placement:
        start = time.perf_counter()
        placed = scheme(members, specs, previous)
        times.append(time.perf_counter() - start)
        return placed

    before = run(nodes)
    loads = [0] * len(nodes)
    index = {n.id: i for i, n in enumerate(nodes)}
    for node_id in before.values():
        loads[index[node_id]] += 1
    average = len(before) / len(nodes)
    moved = minimum = 0
    for lost in nodes[:: len(nodes) // losses][:losses]:
        after = run([n for n in nodes if n != lost], before)
        moved += sum(1 for slot, n in before.items() if after.get(slot) != n)
        minimum += loads[index[lost.id]]
    join_moved = join_minimum = 0
    for newcomer in cluster(joins, "new"):
        after = run([*nodes, newcomer], before)
        join_moved += sum(1 for slot, n in before.items() if after.get(slot) != n)
        join_minimum += sum(1 for n in after.values() if n == newcomer.id)
    return Row(fixture, name, max(loads) / average, min(loads) / average, moved / max(minimum, 1),
               join_moved / max(join_minimum, 1), statistics.median(times) * 1000)


def sweep(nodes: list[NodeInfo], scheme: Scheme) -> list[tuple[int, float]]:
    """A scheme's loss moves over the minimum, for totals 700..1,300 in services of 10 (10 losses each)."""
    out = []
    for total in range(700, 1301, 50):
        specs = services([10] * (total // 10))
        out.append((total, measure("", "", scheme, nodes, specs, 10, 0).loss))
    return out


def table(rows: list[Row]) -> str:
    lines = ["| fixture | scheme | max/avg | min/avg | loss moves / min | join moves / min | time (median) |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r.fixture} | {r.scheme} | {r.max_avg:.2f} | {r.min_avg:.2f} | {r.loss:.2f}x | {r.join:.2f}x | "
              f"{r.time_ms:.0f} ms |" for r in rows]
    return "\n".join(lines)


def header() -> str:
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip() or "unknown"
    return (f"{datetime.date.today().isoformat()}, commit {commit} (+ working tree), Python "
            f"{platform.python_version()}, {platform.machine()}, {len(os.sched_getaffinity(0))} CPUs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="skip the 100,000-replica fixture")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    nodes = cluster(100)
    fixtures = {"100 x 1,000 (100 svc x 10)": [10] * 100, "100 x 1,000 (1,000 svc x 1)": [1] * 1000,
                "100 x 1,000 (1 svc x 1,000)": [1000]}
    rows = [measure(fixture, name, scheme, nodes, services(sizes), LOSSES, JOINS)
            for fixture, sizes in fixtures.items() for name, scheme in SCHEMES.items()]
    if not args.quick:
        big = services([1] * 100_000)
        rows += [measure("100 x 100,000 (100,000 svc x 1)", name, SCHEMES[name], nodes, big, 2, 2)
                 for name in ("shoal", "shoal, stateless", "HRW", f"ring {VNODES} vn")]
    print(header())
    print(table(rows))
    for name in ("shoal", "shoal, stateless"):
        swept = sweep(nodes, SCHEMES[name])
        ratios = [r for _, r in swept]
        print(f"\n{name}: loss moves / min over total replicas 700..1,300 step 50 (100 nodes, services of 10): "
              f"median {statistics.median(ratios):.2f}x, mean {statistics.mean(ratios):.2f}x, max {max(ratios):.2f}x")
        print("  " + ", ".join(f"{total}: {ratio:.2f}" for total, ratio in swept))
    print(f"\n(bench ran {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
