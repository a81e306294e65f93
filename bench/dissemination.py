#!/usr/bin/env python3
"""Desired-state dissemination, Shoal against Serf's user events, side by side in one run.

What is timed: from a write accepted (the client's clock when the call returned) to every agent holding it,
p50/p99 over a series of posts, each at a random agent, one at a time (see gossipbench/posts.py):
  serf        real `serf agent`s on loopback; a non-coalesced user event; arrival = the agent's event
              handler running (its $EPOCHREALTIME), as in research/serf.md
  shoal       real `shoal agent --runtime none` processes on loopback (UDP + mutual TLS); POST /v1/services;
              arrival = the agent's `received_at` for the new generation (GET /v1/services/NAME)
  shoal-sim   N real protocol cores in gossip.simnet.Simulation (simulated network and clock); a local write
              at a random node; arrival = that node's store event. One series per payload size: a payload
              whose news fits a datagram is gossiped inline, a bigger one is announced and fetched over TCP
Serf runs at every N in the table; real Shoal at --sizes; the simulator at --sim-sizes. Agents run in a private
network namespace the bench creates and deletes; every process is stopped by PID, also on Ctrl-C. Needs root,
`serf` and `ip`.

  python bench/dissemination.py                       # the full run: real 20, 50; sim 20, 50, 100 (~5 min)
  python bench/dissemination.py --quick               # smoke run: real 5, sim 20, 5 posts (~40 s)
  python bench/dissemination.py --source /tmp/shoal-src-REV --json /tmp/dissemination.json
                                                      # one commit's gossip/ and node/ (a `git archive`)
Method and figures: docs/bench-dissemination.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gossipbench.fleet import Fleet, SerfFleet, ShoalFleet
from gossipbench.posts import Series, fetch_count, install_handler, run_series, serf_post, shoal_post
from gossipbench.provenance import Shoal, add_agent_options, end_meta, header, start_meta
from gossipbench.report import cell, log, markdown_table, ratio, verdict
from gossipbench.sandbox import Sandbox, preflight, run_sandboxed
from gossipbench.scenarios import AgentExited, Poller, check_exits, measure_join

PORT_BASE = 24000
"""Phase p uses ports PORT_BASE + 1000 p + i (gossip) and + 500 + i (RPC/API)."""
GOAL_P99_S = 1.5
GOAL_N = 100


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="20,50", help="N for real agents, Serf and Shoal (comma-separated, 3..200)")
    ap.add_argument("--sim-sizes", default="20,50,100", help="N for the simulator (Serf runs there too, real)")
    ap.add_argument("--posts", type=int, default=20, help="posts per series (p99 of 20 is the slowest)")
    ap.add_argument("--sim-payloads", default="450,1200",
                    help="simulator payload sizes in B of canonical JSON, one series each; news of at most "
                         "1,000 B (payload up to ~880 B) is gossiped inline, bigger is announced and fetched")
    ap.add_argument("--serf-payload", type=int, default=450, help="Serf event payload B (Serf allows <= 512 "
                                                                    "with the name)")
    ap.add_argument("--deadline", type=float, default=10.0, help="a post not held by all within this is a "
                                                                   "straggler (s)")
    ap.add_argument("--gap", type=float, default=1.0, help="pause between one post's end and the next (s)")
    ap.add_argument("--poll", type=float, default=0.2, help="poll cadence of the agents (s)")
    ap.add_argument("--settle", type=float, default=5.0, help="quiet time after join before the posts (s)")
    ap.add_argument("--systems", default="serf,shoal,sim", help="which to run (serf, shoal, sim)")
    ap.add_argument("--seed", type=int, default=1, help="seeds origins and the simulator")
    ap.add_argument("--json", default=None, metavar="FILE", help="also write the table and raw figures here")
    add_agent_options(ap)
    ap.add_argument("--quick", action="store_true", help="smoke run: real N=5, sim N=20, 5 posts, 2 s settle")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.sim_sizes, args.posts, args.settle = "5", "20", 5, 2.0
    args.size_list = _ints(ap, "--sizes", args.sizes, 3, 200)
    args.sim_size_list = _ints(ap, "--sim-sizes", args.sim_sizes, 3, 1000)
    args.payload_list = _ints(ap, "--sim-payloads", args.sim_payloads, 1, 60_000)
    args.system_list = [s for s in str(args.systems).split(",") if s]
    if any(s not in ("serf", "shoal", "sim") for s in args.system_list):
        ap.error("--systems takes serf, shoal and/or sim")
    if not 1 <= args.posts <= 1000 or not 0 < args.deadline <= 120 or not 0.05 <= args.poll <= 5:
        ap.error("--posts 1..1000, --deadline 0..120 s, --poll 0.05..5 s")
    if not 16 <= args.serf_payload <= 500:
        ap.error("--serf-payload: 16..500 B (Serf refuses events over 512 B with their name)")
    return args


def _ints(ap: argparse.ArgumentParser, flag: str, text: str, lo: int, hi: int) -> list[int]:
    try:
        values = [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        ap.error(f"{flag}: comma-separated integers")
    if any(not lo <= v <= hi for v in values):
        ap.error(f"{flag}: each value must be {lo}..{hi}")
    return values


def series_of(args: argparse.Namespace, salt: int) -> Series:
    return Series(args.posts, args.deadline, args.gap, args.poll, random.Random(args.seed * 1000 + salt))


# ---- the phases -------------------------------------------------------------------------------------------

def run_sims(args: argparse.Namespace, results: list[dict[str, Any]]) -> None:
    sys.path.insert(0, str(Shoal.from_args(args).source))  # the simulator runs the agents' gossip package
    from gossipbench.simposts import run_sim  # imports Shoal's gossip package: only when the simulator runs

    for n in args.sim_size_list:
        started = time.monotonic()
        out = run_sim(args.seed, n, args.payload_list, series_of(args, n))
        for size, res in out.items():
            results.append({"system": "shoal-sim", "N": n, "how": f"simulated, {size} B", **res,
                            "wall_s": time.monotonic() - started})


async def real_phase(fleet: Fleet, args: argparse.Namespace, serf_events: Path | None,
                     res: dict[str, Any]) -> None:
    """Start the fleet, wait until every agent sees all alive, settle, run the posts (into `res`, as they come);
    always stop the fleet."""
    started = time.monotonic()
    series = series_of(args, fleet.size + (1 if fleet.system == "shoal" else 0))
    try:
        res["join"] = await measure_join(fleet, Poller(fleet, args.poll), timeout_s=args.join_timeout,
                                         seed_timeout_s=30.0)
        res["join"].pop("per_agent_s", None)
        if res["join"]["all_s"] is None:
            raise AgentExited(f"not all {fleet.size} agents saw all alive within {args.join_timeout} s")
        log(f"{fleet.system} N={fleet.size}: all see all alive after {res['join']['all_s']:.2f} s; "
            f"settling {args.settle} s")
        await asyncio.sleep(args.settle)
        label = f"{fleet.system} N={fleet.size}"
        if isinstance(fleet, SerfFleet) and serf_events is not None:
            await run_series(series, lambda seq, i: serf_post(fleet, serf_events, series, args.serf_payload, seq, i),
                             fleet, label, res)
        elif isinstance(fleet, ShoalFleet):
            before = await fetch_count(fleet)
            await run_series(series, lambda seq, i: shoal_post(fleet, series, seq, i), fleet, label, res)
            res["fetches"] = await fetch_count(fleet) - before
            res["summary"]["paths"] = ["fetched" if res["fetches"] else "inline"]
        check_exits(fleet)
    except AgentExited as exc:
        res["error"] = str(exc)
        log(f"{fleet.system} N={fleet.size}: ERROR {exc}")
    finally:
        await fleet.close()
        res["logs"] = fleet.log_summary()
        res["wall_s"] = time.monotonic() - started


async def run_real(args: argparse.Namespace, box: Sandbox, results: list[dict[str, Any]]) -> None:
    """Serf at every N of the table, real Shoal at --sizes; one phase at a time, smallest N first."""
    serf_sizes = set(args.size_list) | set(args.sim_size_list if "sim" in args.system_list else [])
    phase = 0
    for n in sorted(serf_sizes | set(args.size_list)):
        for system in ("serf", "shoal"):
            if system not in args.system_list or (system == "shoal" and n not in args.size_list) \
                    or (system == "serf" and n not in serf_sizes):
                continue
            common: dict[str, Any] = {"size": n, "ns": box.ns, "registry": box.registry,
                                      "workdir": box.workdir / f"{system}-N{n}",
                                      "port_base": PORT_BASE + 1000 * phase}
            phase += 1
            events = None
            fleet: Fleet
            if system == "serf":
                handler, events = install_handler(common["workdir"])
                fleet = SerfFleet(binary=args.serf, event_handler=handler, **common)
            else:
                fleet = ShoalFleet(shoal=Shoal.from_args(args), **common)
            log(f"--- {system} N={n}")
            res: dict[str, Any] = {"system": system, "N": n,
                                   "how": "user event" if system == "serf" else "POST /v1/services"}
            results.append(res)
            await real_phase(fleet, args, events, res)


# ---- the report -------------------------------------------------------------------------------------------

def _seconds(summary: dict[str, Any], key: str, deadline: float) -> str:
    value = summary.get(key)
    if value is None and summary.get("stragglers"):
        return f">{deadline:.0f}"
    return cell(value, "{:.3f}")


def table(results: list[dict[str, Any]], deadline: float) -> str:
    order = {"serf": 0, "shoal": 1, "shoal-sim": 2}
    rows = sorted((r for r in results if "summary" in r), key=lambda r: (r["N"], order[r["system"]], r["how"]))
    serf = {r["N"]: r["summary"] for r in rows if r["system"] == "serf"}
    body = []
    for r in rows:
        s, ref = r["summary"], serf.get(r["N"], {})
        own = r["system"] != "serf"
        body.append([str(r["N"]), r["system"], r["how"], "/".join(str(b) for b in s["payload_bytes"]) or "-",
                     "/".join(s["paths"]), str(s["posts"]), _seconds(s, "p50_s", deadline),
                     _seconds(s, "p99_s", deadline), _seconds(s, "max_s", deadline),
                     cell(s["median_agent_p50_s"], "{:.3f}"), str(s["stragglers"]),
                     ratio(s["p50_s"], ref.get("p50_s")) if own else "-",
                     ratio(s["p99_s"], ref.get("p99_s")) if own else "-"])
    header = ["N", "system", "write", "payload B", "path", "posts", "p50 s", "p99 s", "max s",
              "median agent p50 s", f"stragglers (>{deadline:.0f} s)", "p50 / serf", "p99 / serf"]
    return markdown_table(header, body)


def goals(results: list[dict[str, Any]], args: argparse.Namespace) -> list[str]:
    out = []
    for r in sorted(results, key=lambda r: (r["N"], r["system"], r["how"])):
        s = r.get("summary")
        if r["system"] == "serf" or s is None:
            continue
        what = f"{r['system']} N={r['N']} ({r['how']})"
        p99 = s["p99_s"]
        if r["N"] >= GOAL_N:
            out.append(verdict(p99 is not None and p99 <= GOAL_P99_S,
                               f"{what}: p99 {cell(p99, '{:.3f}')} s <= {GOAL_P99_S} s"))
        out.append(verdict(s["stragglers"] == 0 and s["failed_posts"] == 0 and s["posts"] >= args.posts,
                           f"{what}: every agent got every post within {args.deadline:.0f} s "
                           f"({s['stragglers']} posts with stragglers, {s['failed_posts']} failed, "
                           f"{s['posts']}/{args.posts} timed)"))
    if not any(r["system"] == "shoal-sim" and r["N"] >= GOAL_N and "summary" in r for r in results):
        out.append(f"[----] the p99 <= {GOAL_P99_S} s goal is at N={GOAL_N}: no series at that size ran")
    return out


def report(args: argparse.Namespace, results: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    print("\n" + header(meta))
    print(f"{args.posts} posts per series, each at a random agent, {args.gap} s apart; deadline "
          f"{args.deadline} s; agents polled every {args.poll} s (arrival times come from the agents)\n")
    text = table(results, args.deadline)
    print(text)
    for r in results:
        if "error" in r:
            print(f"  {r['system']} N={r['N']}: ERROR {r['error']}")
    verdicts = goals(results, args)
    print("\nGoals (Shoal):")
    print("\n".join("  " + v for v in verdicts))
    print(f"\nduration {meta['duration_s']:.0f} s")
    return {**meta, "args": {k: v for k, v in vars(args).items()}, "table": text, "goals": verdicts,
            "results": results}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    real = [s for s in ("serf", "shoal") if s in args.system_list]
    if real:
        preflight("dissemination", ["ip"] + ([args.serf] if "serf" in real else []))
    meta = start_meta(args, serf="serf" in real, shoal=True)
    log(f"serf {meta['serf_version']}; real N {args.size_list}, sim N {args.sim_size_list}, {args.posts} posts")
    results: list[dict[str, Any]] = []
    status = 0
    try:
        if "sim" in args.system_list:
            run_sims(args, results)
    except KeyboardInterrupt:
        status = 130
    if real and status == 0:
        status = run_sandboxed("shoal-dissem", lambda box: run_real(args, box, results), keep_logs=args.keep_logs)
    end_meta(meta, args)
    if results:
        payload = report(args, results, meta)
        if args.json:
            Path(args.json).write_text(json.dumps(payload, indent=1, default=str))
            log(f"JSON written to {args.json}")
    failed = any("error" in r for r in results) or any(v.startswith("[FAIL]") for v in goals(results, args))
    return status or (1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
