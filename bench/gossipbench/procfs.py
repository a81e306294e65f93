"""CPU time and resident memory of a process, read from /proc (Linux only).

CPU is utime + stime of all threads in clock ticks (usually 10 ms): over a 30 s window one tick is
0.03 % of a core, so small idle figures are coarse. RSS is VmRSS in KiB.
"""

from __future__ import annotations

import os

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int | None:
    """utime + stime of pid, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def rss_kib(pid: int) -> int | None:
    """VmRSS of pid in KiB, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def cpu_percent(ticks_before: int, ticks_after: int, seconds: float) -> float:
    """Percent of one core used over `seconds`."""
    return 100.0 * (ticks_after - ticks_before) / CLK_TCK / seconds


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()
