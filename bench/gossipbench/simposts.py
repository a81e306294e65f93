"""Dissemination in the simulator: N real protocol cores (gossip.simnet.Simulation) on a simulated network.

The only module here that imports Shoal: it drives gossip's own cores in-process, with real Ed25519 signatures,
the LAN gossip settings and 0.2-2 ms link latency, under a discrete-event clock. Each post is a local write
(`Replicator.write`, what the API's POST ends in) at a random node; a node's arrival is the simulated time of its
first store event holding the new generation, so the figures are exact, free of polling and of CPU contention:
they show what the protocol's rounds cost, not what 2 busy cores add.
"""

from __future__ import annotations

import json
from typing import Any

from gossip.entry import Entry
from gossip.replication import INLINE_LIMIT
from gossip.simnet import SimNode, Simulation
from gossip.wire import EntryNews, encoded_size
from gossipbench.posts import SERVICE, Post, Series, summarize_posts
from gossipbench.report import cell, log

KEY = f"service/{SERVICE}"
JOIN_TIMEOUT_S = 30.0


def build(seed: int, n: int) -> Simulation:
    """N agents joined through the first one, run until every agent sees every agent alive (as tests/sim)."""
    sim = Simulation(seed)
    first = sim.add_node()
    for _ in range(n - 1):
        sim.join(sim.add_node(), first)
    if not sim.run(JOIN_TIMEOUT_S, sim.converged):
        raise RuntimeError(f"seed {seed}: {n} simulated agents did not converge in {JOIN_TIMEOUT_S} s")
    return sim


def service_payload(seq: int, size: int) -> bytes:
    """A Compose service body in canonical JSON (sorted keys, no spaces), as the API stores it, padded with an
    environment variable to exactly `size` bytes (or as small as it gets)."""
    body: dict[str, Any] = {
        "deploy": {"mode": "replicated", "replicas": 2, "placement": {"constraints": [], "preferences": []},
                   "restart_policy": {"condition": "any", "delay": "5s", "max_attempts": 0, "window": "0s"}},
        "environment": {"SEQ": str(seq), "PAD": ""}, "image": "198.18.0.1:5000/shoal-demo:1",
        "ports": [{"mode": "ingress", "protocol": "tcp", "published": 8080, "target": 8080}]}

    def encode() -> bytes:
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    body["environment"]["PAD"] = "x" * max(0, size - len(encode()))
    return encode()


def travels(entry: Entry) -> str:
    """`inline` if the entry's news fits the gossip budget, else `fetched` (announced, fetched over TCP)."""
    return "inline" if encoded_size(EntryNews(entry)) <= INLINE_LIMIT else "fetched"


def _arrival(node: SimNode, since: int, generation: int) -> float | None:
    for at, event in node.store_events[since:]:
        if event.key == KEY and event.record is not None and event.record.entry.generation >= generation:
            return at
    return None


def sim_post(sim: Simulation, series: Series, payload_bytes: int, seq: int) -> Post:
    origin = series.rng.choice(sim.live())
    marks = [len(n.store_events) for n in sim.nodes]
    payload = service_payload(seq, payload_bytes)
    record = origin.driver.act(lambda core, _now, wall: core.replica.write(
        KEY, payload, note="bench", expect=None, tombstone=False, wall=wall))
    generation, accepted = record.entry.generation, sim.clock.now()
    post = Post(seq, origin.host.addr[0], len(sim.live()), len(payload), travels(record.entry), accepted)

    def everyone() -> bool:
        return all((r := n.driver.core.replica.store.get(KEY)) is not None and r.entry.generation >= generation
                   for n in sim.live())

    sim.run(series.deadline_s, everyone)
    for node, mark in zip(sim.nodes, marks, strict=True):
        at = _arrival(node, mark, generation)
        if not node.host.down and at is not None and at - accepted <= series.deadline_s:
            post.arrivals[node.host.addr[0]] = at - accepted
    return post


def run_sim(seed: int, n: int, payload_sizes: list[int], series: Series) -> dict[str, Any]:
    """Build one simulated cluster, then a series of posts for each payload size, in turn."""
    sim = build(seed, n)
    log(f"sim N={n}: converged at t={sim.clock.now():.2f} s (simulated)")
    out: dict[str, Any] = {}
    seq = 0
    for size in payload_sizes:
        posts: list[Post] = []
        fetches0, sent0 = _fetches(sim), sim.network.sent
        for _ in range(series.posts):
            seq += 1
            posts.append(sim_post(sim, series, size, seq))
            sim.run(series.gap_s)
        summary = summarize_posts(posts)
        log(f"sim N={n} payload {size} B ({'/'.join(summary['paths'])}): p50 {cell(summary['p50_s'], '{:.3f}')} "
            f"s, p99 {cell(summary['p99_s'], '{:.3f}')} s, stragglers {summary['stragglers']}")
        out[str(size)] = {"posts": [p.as_json() for p in posts], "summary": summary,
                          "fetches": _fetches(sim) - fetches0, "datagrams_sent": sim.network.sent - sent0,
                          "largest_datagram_B": sim.network.largest}
    return out


def _fetches(sim: Simulation) -> int:
    return sum(node.driver.core.stats["fetches"] for node in sim.nodes)
