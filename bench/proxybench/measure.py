"""What bench/proxy.py reads about its processes and this checkout: CPU time from /proc, the interpreter a proxy
runs on, the commit, a tool's version line. Reads only; starts nothing but short-lived queries."""

from __future__ import annotations

import math
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def git_commit() -> str:
    out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "node/proxy", "bench/proxy.py"],
                           capture_output=True, text=True).stdout.strip()
    return out.stdout.strip() + (" + uncommitted node/proxy, bench/proxy.py" if dirty else "")


def interpreter(python: str) -> str:
    """Version and install prefix of the proxy's Python: builds differ (pyenv's default has no PGO/LTO)."""
    code = "import sys; print(sys.version.split()[0], sys.base_prefix)"
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def cpu_us(pid: int) -> tuple[float, float]:
    """utime and stime of process `pid` (all its threads) so far, in microseconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
    return int(fields[11]) * tick_us, int(fields[12]) * tick_us  # fields 14 and 15 of stat(5)


def cpu_idle_s(cpu: int) -> float:
    """Idle time of one CPU so far (/proc/stat), in seconds: whether a test kept the node's CPU busy."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            return int(line.split()[4]) / os.sysconf("SC_CLK_TCK")
    return math.nan


def tree_cpu_us(pid: int) -> tuple[float, float]:
    """utime and stime of `pid` and its live descendants (nginx: the master and its worker), in microseconds."""
    user, system = cpu_us(pid)
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            child_user, child_system = tree_cpu_us(int(child))
            user, system = user + child_user, system + child_system
    return user, system


def first_line(cmd: list[str]) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True)
    return (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else "?"
