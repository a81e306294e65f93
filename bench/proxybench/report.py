"""bench/proxy.py's report: wrk's output parsed, medians per config, ratios to HAProxy (of the medians, and within
each repetition), and how often each of issue 5's goals held. Pure but for reading wrk's files and printing."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path


def wrk_requests(path: Path) -> int:
    m = re.search(r"(\d+) requests in", path.read_text()) if path.exists() else None
    return int(m.group(1)) if m else 0


UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}
UNIT_MIB = {"B": 1 / 1048576, "KB": 1 / 1024, "MB": 1.0, "GB": 1024.0}


def parse_wrk(path: Path) -> dict[str, float | None]:
    text = path.read_text() if path.exists() else ""
    out: dict[str, float | None] = {"rps": None, "mibps": None, "p50": None, "p99": None, "errors": 0.0}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", text):
        out["rps"] = float(m.group(1))
    if m := re.search(r"Transfer/sec:\s+([\d.]+)([KMG]?B)", text):
        out["mibps"] = float(m.group(1)) * UNIT_MIB[m.group(2)]
    for pct in ("50", "99"):
        if m := re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
            out["p" + pct] = float(m.group(1)) * UNIT_MS[m.group(2)]
    errors = 0
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        errors += sum(int(x) for x in m.groups())
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        errors += int(m.group(1))
    out["errors"] = float(errors)
    return out


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def report(results: Path, configs: list[str], reps: int, meta: dict[str, object]) -> None:
    rows: dict[str, dict[str, float | None]] = {}
    per_run: dict[str, list[dict[str, dict[str, float | None]]]] = {}
    for config in configs:
        runs = [{t: parse_wrk(results / f"{rep}_{config}_{t}.txt") for t in ("rps", "conn", "big")}
                for rep in range(1, reps + 1)]
        per_run[config] = runs
        rows[config] = {
            "rps": median([r["rps"]["rps"] for r in runs]), "p50": median([r["rps"]["p50"] for r in runs]),
            "p99": median([r["rps"]["p99"] for r in runs]), "conn": median([r["conn"]["rps"] for r in runs]),
            "conn_p99": median([r["conn"]["p99"] for r in runs]), "mibps": median([r["big"]["mibps"] for r in runs]),
            "errors": sum((r[t]["errors"] or 0.0) for r in runs for t in r)}
    (results / "results.json").write_text(json.dumps({"medians": rows, "runs": per_run, "meta": meta}, indent=1))
    ref = rows.get("haproxy-tcp", {})

    def ratio(config: str, key: str) -> str:
        a, b = rows[config][key], ref.get(key)
        return f"{a / b:.2f}" if a and b else "n/a"

    def ms(v: float | None) -> str:
        return "n/a" if v is None else (f"{v * 1000:.0f} us" if v < 1 else f"{v:.2f} ms")

    def num(v: float | None) -> str:
        return "n/a" if v is None else f"{v:,.0f}"

    pythons = f"{meta['python']}" + (f", shoal-base on {meta['base_python']}" if meta.get("base_python") else "")
    print(f"\n{meta['date']}, commit {meta['commit']}, shoal on {pythons}, kernel {meta['kernel']}, "
          f"{meta['cpus']} CPUs; medians of {reps} interleaved runs\n")
    print("| config | req/s (keep-alive, c64) | p50 | p99 | conn/s (Connection: close, c64) | conn p99 "
          "| MiB/s (1 MiB, c16) | ratio to HAProxy (req/s; conn/s; MiB/s; p99) | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|")
    for config in configs:
        r = rows[config]
        ratios = "; ".join(ratio(config, k) for k in ("rps", "conn", "mibps", "p99"))
        print(f"| {config} | {num(r['rps'])} | {ms(r['p50'])} | {ms(r['p99'])} | {num(r['conn'])} | "
              f"{ms(r['conn_p99'])} | {num(r['mibps'])} | {ratios} | {num(r['errors'])} |")
    print("\nper run (req/s k; conn/s k; MiB/s):")
    for config in configs:
        cells = [f"{(r['rps']['rps'] or 0) / 1000:.1f}; {(r['conn']['rps'] or 0) / 1000:.2f}; "
                 f"{r['big']['mibps'] or 0:.0f}" for r in per_run[config]]
        print(f"  {config}: " + " | ".join(cells))
    paired(per_run, configs)


def goal(ratio: float, metric: int) -> bool:
    """Issue 5's goal for metric 0 (req/s >= 1.0x), 1 (conn/s >= 0.6x) or 2 (keep-alive p99 <= 1.0x HAProxy's)."""
    return ratio >= 1.0 if metric == 0 else ratio >= 0.6 if metric == 1 else ratio <= 1.0


def paired(per_run: dict[str, list[dict[str, dict[str, float | None]]]], configs: list[str]) -> None:
    """Each config against HAProxy within the same repetition, then the median of those ratios: a slow spell of
    the machine lands on both sides of a ratio taken within one repetition, not on one side of a ratio of
    medians."""
    ref = per_run.get("haproxy-tcp")
    if not ref:
        return
    print("\nratio to HAProxy within each repetition (req/s; conn/s; keep-alive p99), then their median:")
    for config in configs:
        if config == "haproxy-tcp":
            continue
        triples: list[list[float | None]] = []
        for mine, theirs in zip(per_run[config], ref, strict=True):
            pairs = ((mine["rps"]["rps"], theirs["rps"]["rps"]), (mine["conn"]["rps"], theirs["conn"]["rps"]),
                     (mine["rps"]["p99"], theirs["rps"]["p99"]))
            triples.append([a / b if a and b else None for a, b in pairs])
        cells = " | ".join("; ".join("n/a" if v is None else f"{v:.2f}" for v in t) for t in triples)
        mid = "; ".join("n/a" if m is None else f"{m:.2f}" for m in (median([t[i] for t in triples]) for i in range(3)))
        print(f"  {config}: {cells}  ->  median {mid}")
        # How often each goal held, repetition by repetition: a goal at the noise's edge shows as about half.
        held = [len([r for t in triples if (r := t[i]) is not None and goal(r, i)]) for i in range(3)]
        print(f"  {config}: goals held in {held[0]}/{len(triples)} (req/s >= 1.0x), {held[1]}/{len(triples)} "
              f"(conn/s >= 0.6x), {held[2]}/{len(triples)} (p99 <= 1.0x) repetitions")
