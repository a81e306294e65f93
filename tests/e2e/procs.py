"""A tiny harness for real agent processes on loopback: free ports, spawn, poll the API with deadlines,
and stop only what it started (by PID)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.lab.wait import poll_until


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (the agent binds both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(port)


def shoal(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "node", *args], capture_output=True, text=True, timeout=60,
                          **kwargs)


def wait_for(condition: Callable[[], bool], timeout: float, what: str | Callable[[], str]) -> float:
    """Poll `condition` until it holds; returns the seconds it took, fails the test at the deadline saying
    `what` it waited for (a callable is asked then, so it can describe the state it found)."""
    start = time.monotonic()
    if not poll_until(condition, timeout, interval_s=0.1):
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what() if callable(what) else what}")
    return time.monotonic() - start


@dataclass
class AgentProc:
    name: str
    data: Path
    port: int
    api: int
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.data.parent / f"{self.name}.log"

    def start(self, *extra: str) -> None:
        args = [sys.executable, "-m", "node", "agent", "--data", str(self.data), "--name", self.name,
                "--bind", f"127.0.0.1:{self.port}", "--api", f"127.0.0.1:{self.api}", "--runtime", "none",
                *extra]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.api}{path}", timeout=2) as response:
            return json.load(response)

    def statuses(self) -> dict[str, str]:
        try:
            return {m["name"]: m["status"] for m in self.get("/v1/members")}
        except (OSError, urllib.error.URLError, ValueError):
            return {}

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
