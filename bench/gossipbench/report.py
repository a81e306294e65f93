"""Turn raw per-system results into summary figures, the side-by-side table and the goal verdicts.

Percentiles are nearest-rank: p99 of 10 kills is the slowest kill, never an interpolation below it.
Ratios are shoal / serf, so below 1 means Shoal is faster, cheaper or smaller.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Result = dict[str, Any]
GOAL_DETECT_P99_S = 8.0
GOAL_IDLE_BPS = 2000.0
GOAL_DATAGRAM_BYTES = 1232


def log(message: str) -> None:
    """A progress line on stderr (the tables go to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    xs = sorted(values)
    if not xs:
        return None
    rank = max(1, math.ceil(pct / 100.0 * len(xs)))
    return xs[rank - 1]


def _col(per: list[dict[str, Any]], key: str) -> list[float]:
    return [float(p[key]) for p in per if p.get(key) is not None]


def summarize(res: Result) -> dict[str, Any]:
    """The figures the table shows, from one system's raw result at one N."""
    s: dict[str, Any] = {}
    join = res.get("join") or {}
    s["join_all_s"], s["join_p50_s"] = join.get("all_s"), join.get("p50_s")
    s["join_answering_s"] = join.get("all_answering_s")
    kills = [k for k in res.get("kills") or [] if "victim" in k]
    detect = [float(k["all_s"]) for k in kills if k.get("all_s") is not None]
    s["kills"], s["kills_missed"] = len(kills), sum(1 for k in kills if k.get("all_s") is None)
    s["detect_p50_s"], s["detect_p99_s"] = percentile(detect, 50), percentile(detect, 99)
    if s["kills_missed"]:
        s["detect_p99_s"] = None  # a kill some survivor never reported dead: p99 is unbounded
    s["detect_first_p50_s"] = percentile([float(k["first_s"]) for k in kills if k.get("first_s")], 50)
    s["kill_other_dead"] = sum(len(k.get("other_dead_reports", [])) for k in kills)
    s["rejoin_p50_s"] = percentile([float(k["rejoin_s"]) for k in kills if k.get("rejoin_s")], 50)
    idle = res.get("idle") or {}
    per = idle.get("per_agent") or []
    for key, name in (("udp_Bps", "udp_Bps"), ("udp_pps", "udp_pps"), ("cpu_pct", "cpu_pct"),
                      ("rss_mb", "rss_mb"), ("api_sent_Bps", "api_sent_Bps")):
        col = _col(per, key)
        s[f"{name}_p50"] = statistics.median(col) if col else None
        s[f"{name}_max"] = max(col) if col else None
    s["cpu_pct_total"] = sum(_col(per, "cpu_pct")) if per else None
    s["tcp_Bps"] = idle.get("tcp_Bps_per_agent")
    if s["udp_Bps_max"] is not None and s["tcp_Bps"] is not None:
        s["idle_Bps_worst"] = s["udp_Bps_max"] + s["tcp_Bps"]
    else:
        s["idle_Bps_worst"] = None
    stall = res.get("stall") or {}
    s["stall_false_dead"] = stall.get("false_dead_reports")
    s["stall_suspect"] = stall.get("suspect_reports")
    dg = res.get("datagrams") or {}
    s["big_datagrams"], s["max_datagram_B"] = dg.get("over_1232_B"), dg.get("max_payload_B")
    s["sweep_p50_s"] = (res.get("sweeps") or {}).get("p50_s")
    s["sweep_p99_s"] = (res.get("sweeps") or {}).get("p99_s")
    logged = [k.get("from_logs") or {} for k in kills]
    if kills and all(lg.get("all_s") is not None for lg in logged):
        s["detect_log_p50_s"] = percentile([float(lg["all_s"]) for lg in logged], 50)
        s["detect_log_p99_s"] = percentile([float(lg["all_s"]) for lg in logged], 99)
    else:
        s["detect_log_p50_s"] = s["detect_log_p99_s"] = None
    return s


@dataclass(frozen=True)
class Row:
    label: str
    key: str
    fmt: str
    ratio: bool = True


ROWS = [
    Row("join: all N see N alive (s)", "join_all_s", "{:.2f}"),
    Row("join: median agent (s)", "join_p50_s", "{:.2f}"),
    Row("join: last agent answering (s)", "join_answering_s", "{:.2f}"),
    Row("crash detection p50, all survivors (s)", "detect_p50_s", "{:.2f}"),
    Row("crash detection p99, all survivors (s)", "detect_p99_s", "{:.2f}"),
    Row("crash detection p50, first survivor (s)", "detect_first_p50_s", "{:.2f}"),
    Row("crash detection p50, all survivors, agent logs (s)", "detect_log_p50_s", "{:.2f}", ratio=False),
    Row("crash detection p99, all survivors, agent logs (s)", "detect_log_p99_s", "{:.2f}", ratio=False),
    Row("crashes (SIGKILL) timed", "kills", "{}", ratio=False),
    Row("kills never seen dead by all", "kills_missed", "{}", ratio=False),
    Row("false dead during kills (reports)", "kill_other_dead", "{}", ratio=False),
    Row("restarted victim seen alive by all p50 (s)", "rejoin_p50_s", "{:.2f}"),
    Row("stall 2 s/10 s: false dead (reports)", "stall_false_dead", "{}", ratio=False),
    Row("stall 2 s/10 s: suspect (reports; Serf: not exposed)", "stall_suspect", "{}", ratio=False),
    Row("idle UDP B/s per agent p50 (IP bytes)", "udp_Bps_p50", "{:.0f}"),
    Row("idle UDP B/s per agent max", "udp_Bps_max", "{:.0f}"),
    Row("idle UDP datagrams/s per agent p50", "udp_pps_p50", "{:.2f}"),
    Row("idle TCP B/s per agent (total/N)", "tcp_Bps", "{:.0f}"),
    Row("idle CPU % of a core per agent p50", "cpu_pct_p50", "{:.2f}"),
    Row("idle CPU % per agent max", "cpu_pct_max", "{:.2f}"),
    Row("idle CPU % all agents", "cpu_pct_total", "{:.1f}"),
    Row("RSS MB per agent p50", "rss_mb_p50", "{:.1f}"),
    Row("RSS MB per agent max", "rss_mb_max", "{:.1f}"),
    Row("datagrams with payload > 1232 B (whole run)", "big_datagrams", "{}", ratio=False),
    Row("largest datagram payload B (agent counter)", "max_datagram_B", "{}", ratio=False),
    Row("poll sweep p50 (s)", "sweep_p50_s", "{:.3f}"),
    Row("poll sweep p99 (s)", "sweep_p99_s", "{:.3f}"),
]


def cell(value: Any, fmt: str) -> str:
    """A table cell: the value formatted, or `-` when there is none."""
    return "-" if value is None else fmt.format(value)


def ratio(a: Any, b: Any) -> str:
    if not isinstance(a, int | float) or not isinstance(b, int | float) or b == 0:
        return "-"
    return f"{a / b:.2f}"


def table(n: int, serf: dict[str, Any], shoal: dict[str, Any]) -> str:
    """One markdown table: rows are metrics, columns serf | shoal | shoal/serf."""
    body = [[r.label, cell(serf.get(r.key), r.fmt), cell(shoal.get(r.key), r.fmt),
             ratio(shoal.get(r.key), serf.get(r.key)) if r.ratio else "-"] for r in ROWS]
    return markdown_table([f"N={n}", "serf", "shoal", "shoal/serf"], body)


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    """A markdown table with aligned columns: the first left-aligned, the others right-aligned (figures)."""
    widths = [max(len(row[c]) for row in [header, *body]) for c in range(len(header))]
    lines = ["| " + " | ".join(h.ljust(widths[c]) if c == 0 else h.rjust(widths[c])
                               for c, h in enumerate(header)) + " |",
             "|" + "|".join(("-" * (w + 1) + ":") if c else ("-" * (w + 2))
                            for c, w in enumerate(widths)) + "|"]
    for row in body:
        lines.append("| " + " | ".join(v.ljust(widths[c]) if c == 0 else v.rjust(widths[c])
                                       for c, v in enumerate(row)) + " |")
    return "\n".join(lines)


def verdict(ok: bool, text: str) -> str:
    """A goal's line: PASS or FAIL, then the figure it was judged on."""
    return f"[{'PASS' if ok else 'FAIL'}] {text}"


def goals(sizes: dict[int, dict[str, dict[str, Any]]]) -> list[str]:
    """The issue's goals, each with PASS/FAIL and the figure it was judged on."""
    out: list[str] = []

    def check(ok: bool, text: str) -> None:
        out.append(verdict(ok, text))

    for n, pair in sorted(sizes.items()):
        sh, sf = pair.get("shoal", {}), pair.get("serf", {})
        p99, serf_p99 = sh.get("detect_p99_s"), sf.get("detect_p99_s")
        if n >= 50:
            check(p99 is not None and p99 <= GOAL_DETECT_P99_S,
                  f"N={n}: detection p99 {cell(p99, '{:.2f}')} s <= {GOAL_DETECT_P99_S} s")
        check(p99 is not None and (serf_p99 is None or p99 <= serf_p99),
              f"N={n}: detection p99 not slower than Serf ({cell(p99, '{:.2f}')} vs "
              f"{cell(serf_p99, '{:.2f}')} s)")
        fd = sh.get("stall_false_dead")
        check(fd == 0, f"N={n}: 0 false dead under 2 s stalls (got {cell(fd, '{}')})")
        worst = sh.get("idle_Bps_worst")
        check(worst is not None and worst <= GOAL_IDLE_BPS,
              f"N={n}: idle <= {GOAL_IDLE_BPS:.0f} B/s per agent (worst agent UDP + TCP share "
              f"{cell(worst, '{:.0f}')} B/s)")
        big, biggest = sh.get("big_datagrams"), sh.get("max_datagram_B")
        check(big == 0 and (biggest is None or biggest <= GOAL_DATAGRAM_BYTES),
              f"N={n}: no datagram over {GOAL_DATAGRAM_BYTES} B (nft: {cell(big, '{}')} over; "
              f"largest by counter {cell(biggest, '{}')} B)")
    return out
