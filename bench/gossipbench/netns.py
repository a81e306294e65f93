"""A throwaway network namespace for one bench run, and nftables byte counters inside it.

Every agent runs in the namespace (`ip netns exec`), so its loopback, ports and packets belong to this
run alone. The bench process enters the namespace too (setns), so it can poll the agents on 127.0.0.1.
Counters sit on the output hook, one set of rules per agent port: `udp sport P` (bytes and packets the
agent sends, IP bytes = payload + 28), `udp sport P meta length > 1260` (datagrams whose UDP payload is
over 1,232 B) and `tcp sport P` / `tcp dport P` (push-pull and join streams). Deleting the namespace
deletes its nft table with it.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
from dataclasses import dataclass
from typing import Any

CLONE_NEWNET = 0x40000000
TABLE = "gossipbench"
#: IPv4 header (20) + UDP header (8) + 1,232 B payload: the largest datagram the goals allow.
BIG_IP_LENGTH = 1260


@dataclass(frozen=True, slots=True)
class PortCounters:
    """Cumulative counters of one agent port since its rules were installed."""

    udp_bytes: int = 0
    udp_packets: int = 0
    big_packets: int = 0
    tcp_bytes: int = 0
    tcp_packets: int = 0

    def minus(self, earlier: PortCounters) -> PortCounters:
        return PortCounters(self.udp_bytes - earlier.udp_bytes, self.udp_packets - earlier.udp_packets,
                            self.big_packets - earlier.big_packets, self.tcp_bytes - earlier.tcp_bytes,
                            self.tcp_packets - earlier.tcp_packets)


class Namespace:
    """Create, enter and delete one named network namespace (root only)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._home_fd: int | None = None
        self.created = False

    def create(self) -> None:
        """`ip netns add NAME` and bring its loopback up (it starts down)."""
        _run(["ip", "netns", "add", self.name])
        self.created = True
        _run(["ip", "-n", self.name, "link", "set", "lo", "up"])

    def enter(self) -> None:
        """Move this (single-threaded) process into the namespace, keeping a handle on the old one."""
        self._home_fd = os.open("/proc/self/ns/net", os.O_RDONLY)
        _setns(f"/run/netns/{self.name}")
        if os.stat("/proc/self/ns/net").st_ino != os.stat(f"/run/netns/{self.name}").st_ino:
            raise RuntimeError(f"setns into {self.name} did not take effect")

    def leave(self) -> None:
        if self._home_fd is None:
            return
        libc = ctypes.CDLL(None, use_errno=True)
        libc.setns(self._home_fd, CLONE_NEWNET)
        os.close(self._home_fd)
        self._home_fd = None

    def delete(self) -> None:
        """Leave and delete the namespace; safe to call on a half-built one."""
        self.leave()
        if self.created:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=30, check=False)
            self.created = False

    def wrap(self, argv: list[str]) -> list[str]:
        """The command line that runs argv inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def install_counters(self, ports: list[int]) -> None:
        """Replace our nft table with fresh per-port counters (all zero)."""
        lines = [f"table inet {TABLE} {{}}", f"delete table inet {TABLE}", f"table inet {TABLE} {{",
                 "  chain out {", "    type filter hook output priority 0; policy accept;"]
        for port in ports:
            lines += [f'    udp sport {port} counter comment "udp {port}"',
                      f'    udp sport {port} meta length > {BIG_IP_LENGTH} counter comment "big {port}"',
                      f'    tcp sport {port} counter comment "tcp {port}"',
                      f'    tcp dport {port} counter comment "tcp {port}"']
        lines += ["  }", "}"]
        _run(self.wrap(["nft", "-f", "-"]), stdin="\n".join(lines) + "\n")

    def read_counters(self) -> dict[int, PortCounters]:
        """Port -> cumulative counters, from `nft -j list table`."""
        out = _run(self.wrap(["nft", "-j", "list", "table", "inet", TABLE]))
        sums: dict[tuple[str, int], list[int]] = {}
        for item in json.loads(out).get("nftables", []):
            rule = item.get("rule")
            if not isinstance(rule, dict) or "comment" not in rule:
                continue
            kind, port = str(rule["comment"]).split()
            packets, size = _counter(rule)
            acc = sums.setdefault((kind, int(port)), [0, 0])
            acc[0] += packets
            acc[1] += size
        ports = {port for _, port in sums}
        return {p: PortCounters(udp_bytes=sums.get(("udp", p), [0, 0])[1],
                                udp_packets=sums.get(("udp", p), [0, 0])[0],
                                big_packets=sums.get(("big", p), [0, 0])[0],
                                tcp_bytes=sums.get(("tcp", p), [0, 0])[1],
                                tcp_packets=sums.get(("tcp", p), [0, 0])[0]) for p in ports}


def _counter(rule: dict[str, Any]) -> tuple[int, int]:
    for expr in rule.get("expr", []):
        if isinstance(expr, dict) and "counter" in expr:
            c = expr["counter"]
            return int(c.get("packets", 0)), int(c.get("bytes", 0))
    return 0, 0


def _setns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def _run(argv: list[str], stdin: str | None = None) -> str:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:6])} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout
