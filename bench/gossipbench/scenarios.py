"""The four measurements, identical for both systems: join, idle cost, crash detection, stall.

Every scenario reads agents only through a Fleet and a Poller, so Serf and Shoal are measured by the same
code at the same cadence. A sweep asks the chosen agents for their views concurrently; each view is
stamped with the moment its own answer arrived. Every loop is bounded by a count or a deadline.
"""

from __future__ import annotations

import asyncio
import functools
import random
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from gossipbench.fleet import Fleet, View
from gossipbench.procfs import cpu_percent, cpu_ticks, rss_kib

Stamped = dict[int, tuple[float, View | None]]


@dataclass
class Poller:
    """Sweeps a fleet's views every interval_s and keeps the sweep durations (the time resolution)."""

    fleet: Fleet
    interval_s: float
    sweep_s: list[float] = field(default_factory=list)

    async def sweep(self, indices: Iterable[int]) -> Stamped:
        chosen = list(indices)
        start = time.monotonic()
        stamped = await asyncio.gather(*(self._stamped(i) for i in chosen))
        self.sweep_s.append(time.monotonic() - start)
        return dict(zip(chosen, stamped, strict=True))

    async def _stamped(self, i: int) -> tuple[float, View | None]:
        view = await self.fleet.view(i)
        return time.monotonic(), view

    async def until(self, indices: Callable[[], list[int]], deadline: float,
                    step: Callable[[Stamped], bool]) -> bool:
        """Sweep until step() says done (True) or the monotonic deadline passes (False)."""
        while time.monotonic() < deadline:
            start = time.monotonic()
            if step(await self.sweep(indices())):
                return True
            await asyncio.sleep(max(0.0, start + self.interval_s - time.monotonic()))
        return False


class AgentExited(RuntimeError):
    """An agent process ended on its own: the run cannot go on meaningfully."""


def check_exits(fleet: Fleet) -> None:
    if gone := fleet.exited():
        raise AgentExited(f"{fleet.system} agent(s) exited: {', '.join(gone)}; the end of {gone[0]}'s log:\n"
                          + fleet.log_tail(gone[0]))


def _all_but(size: int, skip: int) -> list[int]:
    return [i for i in range(size) if i != skip]


def sees_all_alive(view: View | None, names: Iterable[str]) -> bool:
    return view is not None and all(view.get(n) == "alive" for n in names)


async def measure_join(fleet: Fleet, poller: Poller, *, timeout_s: float,
                       seed_timeout_s: float) -> dict[str, Any]:
    """Start the seed, wait until it answers; then t0, spawn the other N-1 (all --join the seed) and time
    until every agent sees all N alive."""
    fleet.prepare()
    fleet.spawn(0)
    if not await fleet.wait_answering(0, seed_timeout_s):
        raise AgentExited(f"{fleet.system} seed did not answer within {seed_timeout_s} s")
    t0 = time.monotonic()
    for i in range(1, fleet.size):
        fleet.spawn(i)
    spawn_s = time.monotonic() - t0
    names = [a.name for a in fleet.agents]
    converged: dict[int, float] = {}
    answered: dict[int, float] = {}

    def step(views: Stamped) -> bool:
        for i, (t, view) in views.items():
            if view is not None:
                answered.setdefault(i, t - t0)
            if sees_all_alive(view, names):
                converged[i] = t - t0
        check_exits(fleet)
        return len(converged) == fleet.size

    done = await poller.until(lambda: [i for i in range(fleet.size) if i not in converged],
                              t0 + timeout_s, step)
    return {"all_s": max(converged.values()) if done else None,
            "p50_s": statistics.median(converged.values()) if converged else None,
            "converged": len(converged), "spawn_s": spawn_s,
            "all_answering_s": max(answered.values()) if len(answered) == fleet.size else None,
            "per_agent_s": {fleet.agents[i].name: round(t, 3) for i, t in sorted(converged.items())}}


async def measure_idle(fleet: Fleet, *, settle_s: float, window_s: float) -> dict[str, Any]:
    """After settle_s of quiet, count what each agent sends and spends over window_s (no polling)."""
    await asyncio.sleep(settle_s)
    pids = {a.index: a.pid for a in fleet.agents}
    api0 = [await fleet.counters(a.index) for a in fleet.agents]
    nft0 = fleet.ns.read_counters()
    ticks0 = {i: cpu_ticks(pid) if pid else None for i, pid in pids.items()}
    ta = time.monotonic()
    await asyncio.sleep(window_s)
    nft1 = fleet.ns.read_counters()
    ticks1 = {i: cpu_ticks(pid) if pid else None for i, pid in pids.items()}
    window = time.monotonic() - ta
    api1 = [await fleet.counters(a.index) for a in fleet.agents]
    check_exits(fleet)
    per: list[dict[str, Any]] = []
    tcp_bytes = 0
    for a in fleet.agents:
        d = nft1[a.gossip_port].minus(nft0[a.gossip_port])
        tcp_bytes += d.tcp_bytes
        t0, t1, pid = ticks0[a.index], ticks1[a.index], pids[a.index]
        before, after = api0[a.index], api1[a.index]
        per.append({"name": a.name, "udp_Bps": d.udp_bytes / window, "udp_pps": d.udp_packets / window,
                    "big_datagrams": d.big_packets,
                    "cpu_pct": cpu_percent(t0, t1, window) if t0 is not None and t1 is not None else None,
                    "rss_mb": (rss_kib(pid) or 0) / 1024 if pid else None,
                    "api_sent_Bps": (after["sent_bytes"] - before["sent_bytes"]) / window
                    if before and after and "sent_bytes" in before else None})
    return {"window_s": window, "per_agent": per, "tcp_Bps_per_agent": tcp_bytes / window / fleet.size}


async def wait_steady(fleet: Fleet, poller: Poller, timeout_s: float) -> float | None:
    """Seconds until every agent sees every agent alive, or None after timeout_s."""
    names = [a.name for a in fleet.agents]
    start = time.monotonic()
    pending = set(range(fleet.size))

    def step(views: Stamped) -> bool:
        for i, (_, view) in views.items():
            if sees_all_alive(view, names):
                pending.discard(i)
        check_exits(fleet)
        return not pending

    ok = await poller.until(lambda: sorted(pending), start + timeout_s, step)
    return time.monotonic() - start if ok else None


async def one_kill(fleet: Fleet, poller: Poller, victim: int, *, timeout_s: float) -> dict[str, Any]:
    """SIGKILL the victim; time until each survivor reports it dead. Survivors are polled every sweep."""
    name = fleet.agents[victim].name
    before = await fleet.counters(victim)
    survivors = [i for i in range(fleet.size) if i != victim]
    detected: dict[int, float] = {}
    suspected: dict[int, float] = {}
    other_dead: set[tuple[str, str]] = set()
    fleet.kill(victim)
    t_kill = time.monotonic()
    t_kill_wall = time.time()

    def step(views: Stamped) -> bool:
        for i, (t, view) in views.items():
            status = view.get(name) if view else None
            if status == "suspect":
                suspected.setdefault(i, t - t_kill)
            if status == "dead":
                detected.setdefault(i, t - t_kill)
            for other, st in (view or {}).items():
                if st == "dead" and other != name:
                    other_dead.add((fleet.agents[i].name, other))
        check_exits(fleet)
        return len(detected) == len(survivors)

    await poller.until(lambda: survivors, t_kill + timeout_s, step)
    complete = len(detected) == len(survivors)
    return {"victim": name, "killed_at_unix": t_kill_wall,
            "all_s": max(detected.values()) if complete else None,
            "first_s": min(detected.values()) if detected else None,
            "p50_survivor_s": statistics.median(detected.values()) if detected else None,
            "first_suspect_s": min(suspected.values()) if suspected else None,
            "undetected_by": [fleet.agents[i].name for i in survivors if i not in detected],
            "other_dead_reports": sorted(f"{o} saw {s}" for o, s in other_dead),
            "victim_counters": before,
            "per_survivor_s": {fleet.agents[i].name: round(t, 3) for i, t in sorted(detected.items())}}


def victims(rng: random.Random, size: int, count: int) -> list[int]:
    """`count` non-seed agents, each chosen once before any is chosen again (shuffled rounds)."""
    chosen: list[int] = []
    while len(chosen) < count:
        batch = list(range(1, size))
        rng.shuffle(batch)
        chosen += batch
    return chosen[:count]


async def measure_kills(fleet: Fleet, poller: Poller, rng: random.Random, *, kills: int, timeout_s: float,
                        steady_timeout_s: float, gap_s: float) -> list[dict[str, Any]]:
    """`kills` crashes one after another; each victim (never the seed) is restarted with the same name and
    data, and the next kill waits until all N see all N alive again, so N stays constant."""
    results: list[dict[str, Any]] = []
    for victim in victims(rng, fleet.size, kills):
        steady = await wait_steady(fleet, poller, steady_timeout_s)
        if steady is None:
            results.append({"error": f"cluster not steady within {steady_timeout_s} s; kills stopped"})
            break
        await asyncio.sleep(gap_s)
        result = await one_kill(fleet, poller, victim, timeout_s=timeout_s)
        fleet.spawn(victim)
        result["rejoin_s"] = await wait_steady(fleet, poller, steady_timeout_s)
        results.append(result)
    return results


async def measure_stall(fleet: Fleet, poller: Poller, rng: random.Random, *, duration_s: float,
                        period_s: float, pause_s: float) -> dict[str, Any]:
    """Every period_s, SIGSTOP one random agent (never the seed) for pause_s, then SIGCONT. Nobody crashed,
    so any `dead` any agent reports for anyone during the test is a false death."""
    cycles = max(1, round(duration_s / period_s))
    dead: set[tuple[int, str, str]] = set()
    suspect: set[tuple[int, str, str]] = set()
    paused: list[str] = []
    for cycle, victim in enumerate(victims(rng, fleet.size, cycles)):
        paused.append(fleet.agents[victim].name)
        start = time.monotonic()

        def step(views: Stamped, c: int = cycle) -> bool:
            for i, (_, view) in views.items():
                for subject, st in (view or {}).items():
                    if st in ("dead", "suspect"):
                        (dead if st == "dead" else suspect).add((c, fleet.agents[i].name, subject))
            check_exits(fleet)
            return False

        others = functools.partial(_all_but, fleet.size, victim)
        fleet.pause(victim)
        try:
            await poller.until(others, start + pause_s, step)
        finally:
            fleet.resume(victim)
        await poller.until(lambda: list(range(fleet.size)), start + period_s, step)
    return {"cycles": cycles, "paused": paused, "pause_s": pause_s, "period_s": period_s,
            "false_dead_reports": len(dead), "false_dead_subjects": sorted({s for _, _, s in dead}),
            "false_dead_detail": sorted(f"cycle {c}: {o} saw {s} dead" for c, o, s in dead)[:50],
            "suspect_reports": len(suspect) if fleet.exposes_suspect else None}
