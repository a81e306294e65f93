#!/usr/bin/env python3
"""Shoal's gossip against Debian's Serf, side by side in one run, on loopback only.

For each N (default 20 and 50) the bench starts a Serf cluster, measures it and stops it, then does the
same for a Shoal cluster, with the same code and the same polling cadence:
  join    start spawning agents 1..N-1 (the seed already answers) -> every agent sees all N alive
  idle    after a settle, per agent over a window with no polling: UDP bytes/datagrams sent (nft
          counters on each agent's source port), CPU % of one core (/proc utime+stime), RSS
  stall   every 10 s one agent is SIGSTOPped for 2 s; any `dead`/`failed` anyone reports is false
  kills   K sequential SIGKILLs of a random non-seed agent; time until every survivor reports it
          dead (Serf: failed); the victim is restarted with its name and data, so N stays constant
Both run with their default timing (Serf `-profile lan`, Shoal's default LAN class: probe interval 1 s).
Everything runs in a private network namespace the bench creates and deletes. Needs root, `serf`,
`ip` (iproute2) and `nft` (nftables); Shoal's own dependencies provide aiohttp and msgpack.

  python bench/gossip_vs_serf.py --sizes 20,50 --kills 10     # the full run (~15-20 min)
  python bench/gossip_vs_serf.py --quick                      # smoke run: N=5, 2 kills (~2 min)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gossipbench.fleet import Fleet, SerfFleet, ShoalFleet
from gossipbench.provenance import Shoal, add_agent_options, end_meta, header, start_meta
from gossipbench.report import goals, log, percentile, summarize, table
from gossipbench.sandbox import Sandbox, preflight, run_sandboxed
from gossipbench.scenarios import (
    AgentExited,
    Poller,
    measure_idle,
    measure_join,
    measure_kills,
    measure_stall,
)

PORT_BASE = 20000
"""Phase p uses ports PORT_BASE + 1000 p + i (gossip) and + 500 + i (RPC/API): below the ephemeral range,
so nft can tell an agent's port from the client end of a TCP stream."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="20,50", help="comma-separated cluster sizes N (3..400)")
    ap.add_argument("--kills", type=int, default=10, help="sequential SIGKILLs per system and N")
    ap.add_argument("--idle", type=float, default=30.0, help="idle measurement window (s)")
    ap.add_argument("--settle", type=float, default=60.0,
                    help="quiet time after join before the idle window (s); Shoal's first contact with each "
                         "peer carries its certificate, so shorter settles measure warm-up, not idle")
    ap.add_argument("--stall", type=float, default=60.0, help="stall test length (s); 0 skips it")
    ap.add_argument("--stall-period", type=float, default=10.0, help="one SIGSTOP every this many s")
    ap.add_argument("--stall-pause", type=float, default=2.0, help="each SIGSTOP lasts this many s")
    ap.add_argument("--no-serf-stall", dest="serf_stall", action="store_false",
                    help="run the stall test on Shoal only")
    ap.add_argument("--poll", type=float, default=0.2, help="membership poll cadence for both systems (s)")
    ap.add_argument("--gap", type=float, default=2.0, help="pause once steady, before a kill (s)")
    ap.add_argument("--detect-timeout", type=float, default=60.0)
    ap.add_argument("--steady-timeout", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=1, help="seeds victim choice")
    ap.add_argument("--systems", default="serf,shoal", help="which to run (both by default)")
    ap.add_argument("--out", default="/tmp/gossip_vs_serf.json", help="raw figures (JSON)")
    add_agent_options(ap)
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: N=5, 2 kills, 5 s idle, 2 s settle, 20 s stall")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.kills, args.idle, args.settle, args.stall = "5", 2, 5.0, 2.0, 20.0
    args.size_list = [int(x) for x in str(args.sizes).split(",") if x.strip()]
    if not args.size_list or any(not 3 <= n <= 400 for n in args.size_list):
        ap.error("--sizes: each N must be 3..400")
    args.system_list = [s for s in str(args.systems).split(",") if s]
    if any(s not in ("serf", "shoal") for s in args.system_list) or args.kills < 0:
        ap.error("--systems takes serf and/or shoal; --kills must be >= 0")
    return args


def make_fleet(system: str, n: int, phase: int, args: argparse.Namespace, box: Sandbox) -> Fleet:
    common: dict[str, Any] = {"size": n, "ns": box.ns, "registry": box.registry,
                              "workdir": box.workdir / f"{system}-N{n}", "port_base": PORT_BASE + 1000 * phase}
    if system == "serf":
        return SerfFleet(binary=args.serf, **common)
    return ShoalFleet(shoal=Shoal.from_args(args), **common)


async def datagram_figures(fleet: Fleet, kills: list[dict[str, Any]]) -> dict[str, Any]:
    """Datagrams over 1,232 B payload (nft, since the phase began) and the agents' own largest-sent."""
    counters = fleet.ns.read_counters()
    ports = [a.gossip_port for a in fleet.agents]
    seen = [await fleet.counters(a.index) for a in fleet.agents]
    seen += [k.get("victim_counters") for k in kills]
    sizes = [int(c["max_datagram_bytes"]) for c in seen if c and "max_datagram_bytes" in c]
    return {"over_1232_B": sum(counters[p].big_packets for p in ports if p in counters),
            "udp_datagrams": sum(counters[p].udp_packets for p in ports if p in counters),
            "max_payload_B": max(sizes) if sizes else None}


async def run_phase(fleet: Fleet, args: argparse.Namespace, rng: random.Random) -> dict[str, Any]:
    """All measurements of one system at one N, in order join, idle, stall, kills; always stops the fleet."""
    poller = Poller(fleet, args.poll)
    res: dict[str, Any] = {"system": fleet.system, "N": fleet.size}
    started = time.monotonic()
    if fleet.system == "shoal":
        res["shoal_source"] = Shoal.from_args(args).fingerprint()
    try:
        fleet.ns.install_counters([a.gossip_port for a in fleet.agents])
        res["join"] = await measure_join(fleet, poller, timeout_s=args.join_timeout, seed_timeout_s=30.0)
        log(f"{fleet.system} N={fleet.size} join: all {_s(res['join']['all_s'])} s, "
            f"spawn {res['join']['spawn_s']:.2f} s")
        res["idle"] = await measure_idle(fleet, settle_s=args.settle, window_s=args.idle)
        s = summarize(res)
        log(f"{fleet.system} N={fleet.size} idle: UDP {_s(s['udp_Bps_p50'], 0)} B/s/agent, TCP "
            f"{_s(s['tcp_Bps'], 0)} B/s/agent, CPU {_s(s['cpu_pct_p50'])} %, RSS {_s(s['rss_mb_p50'], 1)} MB")
        if args.stall > 0 and (fleet.system == "shoal" or args.serf_stall):
            res["stall"] = await measure_stall(fleet, poller, rng, duration_s=args.stall,
                                               period_s=args.stall_period, pause_s=args.stall_pause)
            log(f"{fleet.system} N={fleet.size} stall: {res['stall']['false_dead_reports']} false dead, "
                f"{res['stall']['suspect_reports']} suspect reports")
        res["kills"] = await measure_kills(fleet, poller, rng, kills=args.kills,
                                           timeout_s=args.detect_timeout,
                                           steady_timeout_s=args.steady_timeout, gap_s=args.gap)
        for k in res["kills"]:
            log(f"{fleet.system} N={fleet.size} kill {k.get('victim', '?')}: all {_s(k.get('all_s'))} s, "
                f"first {_s(k.get('first_s'))} s {k.get('error', '')}")
        res["datagrams"] = await datagram_figures(fleet, res["kills"])
    except AgentExited as exc:
        res["error"] = str(exc)
        log(f"{fleet.system} N={fleet.size}: ERROR {exc}")
    finally:
        res["loadavg_end"] = os.getloadavg()
        sweeps = poller.sweep_s
        res["sweeps"] = {"count": len(sweeps), "p50_s": percentile(sweeps, 50),
                         "p99_s": percentile(sweeps, 99), "max_s": max(sweeps, default=None)}
        await fleet.close()
        res["logs"] = fleet.log_summary()
        for kill in res.get("kills") or []:
            if "victim" in kill:
                kill["from_logs"] = fleet.detection_from_logs(kill["victim"], kill["killed_at_unix"],
                                                              args.detect_timeout)
        res["duration_s"] = time.monotonic() - started
    return res


def _s(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


async def run_all(args: argparse.Namespace, box: Sandbox, results: dict[int, dict[str, Any]]) -> None:
    """Every (N, system) phase in turn; results fill in as phases finish, so Ctrl-C keeps what is done."""
    rng = random.Random(args.seed)
    phase = 0
    for n in args.size_list:
        for system in args.system_list:
            fleet = make_fleet(system, n, phase, args, box)
            phase += 1
            log(f"--- {system} N={n}")
            results.setdefault(n, {})[system] = await run_phase(fleet, args, rng)
            await asyncio.sleep(1.0)


def report(args: argparse.Namespace, results: dict[int, dict[str, Any]], meta: dict[str, Any]) -> None:
    summaries = {n: {sys_: summarize(r) for sys_, r in pair.items()} for n, pair in results.items()}
    print("\n" + header(meta))
    print("defaults on both sides (Serf -profile lan, Shoal LAN class, probe 1 s)")
    for n in sorted(summaries):
        print()
        print(table(n, summaries[n].get("serf", {}), summaries[n].get("shoal", {})))
        for system, r in results[n].items():
            if "error" in r:
                print(f"  {system}: ERROR {r['error']}")
    verdicts = goals(summaries) if all("shoal" in p for p in summaries.values()) else []
    if verdicts:
        print("\nGoals (Shoal):")
        print("\n".join("  " + v for v in verdicts))
    print(f"\nduration {meta['duration_s']:.0f} s; raw figures in {args.out}")
    payload = {**meta, "args": {k: v for k, v in vars(args).items()}, "results": results,
               "summary": summaries, "goals": verdicts}
    Path(args.out).write_text(json.dumps(payload, indent=1, default=str))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    preflight("gossip_vs_serf", ["ip", "nft"] + ([args.serf] if "serf" in args.system_list else []))
    meta = start_meta(args, serf="serf" in args.system_list, shoal="shoal" in args.system_list)
    log(f"serf {meta['serf_version']}; sizes {args.size_list}, {args.kills} kills, idle {args.idle} s")
    results: dict[int, dict[str, Any]] = {}
    status = run_sandboxed("shoal-bench", lambda box: run_all(args, box, results), keep_logs=args.keep_logs)
    end_meta(meta, args, (r["shoal_source"].get("source_sha256") for p in results.values() for r in p.values()
                          if "shoal_source" in r))
    if results:
        report(args, results, meta)
    return status or (1 if any("error" in r for p in results.values() for r in p.values()) else 0)


if __name__ == "__main__":
    sys.exit(main())
