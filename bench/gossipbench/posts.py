"""Dissemination: how long one write takes from accepted to held by every agent, for Serf and for Shoal.

A series is `posts` writes, one at a time, each at a randomly chosen agent. A post's time is the slowest agent's
arrival minus the moment the write was accepted (the client's clock when the call returned; one machine, one
clock). Arrival times come from the agents themselves, not from when the bench happened to look:
  Serf   a user event (`event`, non-coalesced, what `serf event` sends); every agent's event handler appends
         `<$EPOCHREALTIME> <token>` to a file, the bench reads the files;
  Shoal  POST /v1/services; GET /v1/services/NAME on every agent shows `generation` and `received_at`, the
         agent's wall clock when it first held that generation; polled every poll_s until it shows the post's.
A post some agent still lacks after deadline_s is a straggler. The next post starts gap_s after the previous
one completed (or hit its deadline), so posts never coalesce. Every loop is bounded by a count or a deadline.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gossipbench.fleet import Fleet, SerfFleet, ShoalFleet
from gossipbench.procfs import CLK_TCK, cpu_ticks
from gossipbench.report import log, percentile


@dataclass
class Post:
    seq: int
    origin: str
    agents: int
    payload_bytes: int
    path: str
    """How it travelled: `event` (Serf), `inline` (in gossip datagrams) or `fetched` (announced, then fetched
    over TCP); `api` when the real agents do not say."""
    accepted_at: float | None = None
    """Unix seconds (simulated seconds in the simulator) when the write was accepted."""
    arrivals: dict[str, float] = field(default_factory=dict)
    """Agent name -> seconds from accepted to holding the write (the origin's may be slightly negative)."""
    error: str | None = None

    @property
    def complete(self) -> bool:
        return self.error is None and len(self.arrivals) == self.agents

    @property
    def all_s(self) -> float:
        """Seconds until the last agent held it; infinite for a straggler or a failed post."""
        return max(self.arrivals.values()) if self.complete else math.inf

    def as_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["all_s"] = None if math.isinf(self.all_s) else self.all_s
        body["arrivals"] = {k: round(v, 4) for k, v in sorted(self.arrivals.items())}
        return body


def summarize_posts(posts: list[Post]) -> dict[str, Any]:
    """p50/p99/max over posts of the slowest agent's time (a straggler counts as slower than any), the median
    agent's time, and the straggler count. Nearest rank: the p99 of 20 posts is the slowest post."""
    timed = [p for p in posts if p.error is None]
    worst = [p.all_s for p in timed]
    medians = [statistics.median(p.arrivals.values()) for p in timed if p.arrivals]

    def finite(x: float | None) -> float | None:
        return None if x is None or math.isinf(x) else x

    return {"posts": len(timed), "failed_posts": len(posts) - len(timed),
            "stragglers": sum(1 for p in timed if not p.complete),
            "agents_missed": sum(p.agents - len(p.arrivals) for p in timed),
            "p50_s": finite(percentile(worst, 50)), "p99_s": finite(percentile(worst, 99)),
            "max_s": finite(max(worst, default=None)), "median_agent_p50_s": percentile(medians, 50),
            "payload_bytes": sorted({p.payload_bytes for p in posts}),
            "paths": sorted({p.path for p in posts})}


@dataclass
class Series:
    """How a series is paced: `posts` writes, each waited for up to deadline_s, then gap_s apart."""

    posts: int
    deadline_s: float
    gap_s: float
    poll_s: float
    rng: random.Random


async def run_series(series: Series, one: Callable[[int, int], Awaitable[Post]], fleet: Fleet, label: str,
                     into: dict[str, Any]) -> None:
    """Run the posts of one real-agent series (`one(seq, origin index)` does a post). Fills `into` with the posts,
    their summary and the CPU the agents used meanwhile (in cores), also when interrupted half-way."""
    posts: list[Post] = []
    ticks0 = [cpu_ticks(a.pid) if a.pid else None for a in fleet.agents]
    started = time.monotonic()
    failures = 0
    try:
        for seq in range(1, series.posts + 1):
            post = await one(seq, series.rng.randrange(fleet.size))
            posts.append(post)
            shown = "-" if math.isinf(post.all_s) else f"{post.all_s:.3f}"
            log(f"{label} post {seq}/{series.posts} via {post.origin}: all {shown} s, "
                f"{len(post.arrivals)}/{fleet.size} agents{' ERROR ' + post.error if post.error else ''}")
            failures = failures + 1 if post.error else 0
            if failures >= 3:
                log(f"{label}: three posts in a row failed; series stopped")
                break
            await asyncio.sleep(series.gap_s)
    finally:
        window = time.monotonic() - started
        ticks1 = [cpu_ticks(a.pid) if a.pid else None for a in fleet.agents]
        used = sum(b - a for a, b in zip(ticks0, ticks1, strict=True) if a is not None and b is not None)
        into.update({"posts": [p.as_json() for p in posts], "summary": summarize_posts(posts),
                     "agents_cpu_cores": used / CLK_TCK / window if window > 0 else None,
                     "loadavg_end": os.getloadavg(), "window_s": window})


# ---- Serf: user events, timed by each agent's event handler ---------------------------------------------

EVENT_NAME = "bench"
HANDLER = """#!/bin/bash
# Serf user-event handler of bench/dissemination.py: appends "<arrival, Unix s> <first word of the payload>" to
# DIR/<agent>.events. $EPOCHREALTIME is read first (no fork); the payload (stdin) is read whole.
ts=$EPOCHREALTIME
payload=$(cat)
echo "$ts ${payload%% *}" >> "$1/${SERF_SELF_NAME:-unknown}.events"
"""


def install_handler(workdir: Path) -> tuple[str, Path]:
    """Write the handler script; returns Serf's -event-handler value and the directory arrivals go to."""
    events = workdir / "events"
    events.mkdir(parents=True, exist_ok=True)
    script = workdir / "handler.sh"
    script.write_text(HANDLER)
    script.chmod(0o755)
    return f"user:{EVENT_NAME}={script} {events}", events


def _event_arrivals(events: Path, names: list[str], token: str) -> dict[str, float]:
    seen: dict[str, float] = {}
    for name in names:
        try:
            lines = (events / f"{name}.events").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            stamp, _, word = line.partition(" ")
            if word == token:
                seen[name] = float(stamp)
                break
    return seen


async def serf_post(fleet: SerfFleet, events: Path, series: Series, payload_bytes: int, seq: int,
                    origin: int) -> Post:
    """One user event at agent `origin`, padded to payload_bytes; arrivals from the handlers' files."""
    names = [a.name for a in fleet.agents]
    token = f"p{seq}-{os.getpid()}"
    payload = (token + " ").encode().ljust(payload_bytes, b".")
    post = Post(seq, names[origin], fleet.size, len(payload), "event")
    try:
        await fleet.send_event(origin, EVENT_NAME, payload)
    except (OSError, TimeoutError, ValueError) as exc:
        post.error = f"event not accepted: {exc}"
        return post
    accepted = post.accepted_at = time.time()
    deadline = time.monotonic() + series.deadline_s
    while True:
        seen = _event_arrivals(events, names, token)
        if len(seen) == fleet.size or time.monotonic() >= deadline:
            break
        await asyncio.sleep(min(series.poll_s, 0.1))
    post.arrivals = {name: at - accepted for name, at in seen.items() if at - accepted <= series.deadline_s}
    return post


# ---- Shoal: POST /v1/services, then every agent's received_at -------------------------------------------

SERVICE = "bench"
IMAGE = "198.18.0.1:5000/shoal-demo:1"


def manifest(seq: int) -> dict[str, Any]:
    """The Compose manifest of post `seq`: one service whose environment changes with every post."""
    return {"services": {SERVICE: {"image": IMAGE, "environment": {"SEQ": str(seq)}}}}


def canonical_size(body: Any) -> int:
    """Bytes of the canonical JSON (sorted keys, no spaces) of the `spec` GET /v1/services/NAME shows: the
    payload the agent signed and spread."""
    spec = body.get("spec") if isinstance(body, dict) else None
    return len(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()) if spec is not None else 0


def _posted_generation(answer: Any) -> int | None:
    """The generation POST /v1/services says it wrote for our service, if it says."""
    for item in answer.get("services", []) if isinstance(answer, dict) else []:
        if isinstance(item, dict) and item.get("name") == SERVICE and isinstance(item.get("generation"), int):
            return int(item["generation"])
    return None


async def fetch_count(fleet: ShoalFleet) -> int:
    """Fetches all agents have made so far (their `fetches` counter): how many announced records went by TCP."""
    counters = await asyncio.gather(*(fleet.counters(a.index) for a in fleet.agents))
    return sum(int(c.get("fetches", 0)) for c in counters if c)


def _held(body: Any) -> tuple[int, float] | None:
    """(generation, received_at) from GET /v1/services/NAME, if the answer has them."""
    if not isinstance(body, dict):
        return None
    generation, received = body.get("generation"), body.get("received_at")
    if not isinstance(generation, int) or not isinstance(received, int | float):
        return None
    return generation, float(received)


async def shoal_post(fleet: ShoalFleet, series: Series, seq: int, origin: int) -> Post:
    """POST the manifest at agent `origin`; poll every agent until it holds the new generation."""
    names = [a.name for a in fleet.agents]
    body = manifest(seq)
    post = Post(seq, names[origin], fleet.size, 0, "api")
    status, answer = await fleet.post_json(origin, "/v1/services", body)
    accepted = time.time()
    if status != 200:
        post.error = f"POST /v1/services: {status} {str(answer)[:300]}"
        return post
    post.accepted_at = accepted
    shown = await fleet.get_json(origin, f"/v1/services/{SERVICE}")
    mine = _held(shown)
    if mine is None:
        post.error = f"GET /v1/services/{SERVICE} at the origin shows no generation and received_at: {shown}"
        return post
    generation = _posted_generation(answer) or mine[0]
    post.payload_bytes = canonical_size(shown)
    deadline = time.monotonic() + series.deadline_s
    pending = set(range(fleet.size))
    newer = 0
    while pending:
        start = time.monotonic()
        chosen = sorted(pending)
        answers = await asyncio.gather(*(fleet.get_json(i, f"/v1/services/{SERVICE}") for i in chosen))
        for i, answer in zip(chosen, answers, strict=True):
            held = _held(answer)
            if held is not None and held[0] >= generation:
                newer += held[0] > generation
                post.arrivals[names[i]] = held[1] - accepted
                pending.discard(i)
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(max(0.0, start + series.poll_s - time.monotonic()))
    late = [n for n, s in post.arrivals.items() if s > series.deadline_s]
    for name in late:
        del post.arrivals[name]
    if newer:
        post.error = f"{newer} agents showed a newer generation than {generation}: the posts overlapped"
    return post
