"""The agents of one system (Serf or Shoal) in one cluster: spawn, signal, restart, read their views.

A Fleet owns N agents on 127.0.0.1 inside the bench's namespace, agent 0 being the seed everyone joins.
`view(i)` is agent i's membership as {name: status}, with statuses normalised to Shoal's words
(Serf's `failed` -> `dead`, `leaving` -> `left`); None means the agent did not answer. Every process is
recorded in a ProcessRegistry, so the last-resort cleanup signals exactly the PIDs the bench started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from gossipbench.netns import Namespace
from gossipbench.provenance import Shoal
from gossipbench.serf_rpc import SerfRpc, SerfRpcError

HOST = "127.0.0.1"
REQUEST_TIMEOUT_S = 2.0
SERF_STATUS = {"alive": "alive", "failed": "dead", "leaving": "left", "left": "left"}

View = dict[str, str]


@dataclass
class Agent:
    index: int
    name: str
    gossip_port: int
    control_port: int
    """Serf's RPC port or Shoal's HTTP API port."""
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    paused: bool = False
    starts: int = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None


@dataclass
class ProcessRegistry:
    """Every process the bench started; stop_all() is the cleanup that runs even on Ctrl-C."""

    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        self.procs.append(proc)

    def stop_all(self, grace_s: float = 5.0) -> None:
        """SIGCONT + SIGTERM every live process we started, then SIGKILL what is left after grace_s."""
        live = [p for p in self.procs if p.poll() is None]
        for proc in live:
            _signal(proc, signal.SIGCONT)
            _signal(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for proc in live:
            try:
                proc.wait(timeout=max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal(proc, signal.SIGKILL)
                proc.wait(timeout=5)
        self.procs = [p for p in self.procs if p.poll() is None]


def _signal(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)


class Fleet(ABC):
    """N agents of one system; subclasses say how to start one and how to read its view."""

    system = ""
    exposes_suspect = True
    """Whether view() can report `suspect` (Serf's RPC shows only alive/leaving/left/failed)."""
    env: dict[str, str] | None = None
    """The agents' environment (None: the bench's own)."""
    cwd: Path | None = None
    """The agents' working directory (None: the bench's own)."""

    def __init__(self, *, size: int, ns: Namespace, workdir: Path, registry: ProcessRegistry,
                 port_base: int) -> None:
        self.ns = ns
        self.registry = registry
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.agents = [Agent(i, f"n{i:02d}", port_base + i, port_base + 500 + i, workdir / f"n{i:02d}",
                             workdir / f"n{i:02d}.log") for i in range(size)]

    @property
    def size(self) -> int:
        return len(self.agents)

    @abstractmethod
    def command(self, agent: Agent) -> list[str]:
        """The agent's command line (it runs inside the namespace)."""

    @abstractmethod
    async def view(self, i: int) -> View | None:
        """Agent i's membership {name: alive|suspect|dead|left}, or None if it did not answer."""

    async def counters(self, i: int) -> dict[str, Any] | None:
        """The agent's own traffic counters, where the system exposes them."""
        return None

    def prepare(self) -> None:
        """One-off setup before the seed starts (e.g. a cluster identity); nothing by default."""
        return None

    def spawn(self, i: int) -> None:
        agent = self.agents[i]
        agent.starts += 1
        with agent.log_path.open("ab") as log:
            log.write(f"--- bench: start #{agent.starts} at {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            proc = subprocess.Popen(self.ns.wrap(self.command(agent)), stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, env=self.env, cwd=self.cwd)
        agent.proc = proc
        agent.paused = False
        self.registry.add(proc)

    def exited(self) -> list[str]:
        """Names of agents whose process ended although we did not kill them."""
        return [a.name for a in self.agents if a.proc is not None and a.proc.poll() is not None]

    def kill(self, i: int) -> None:
        """SIGKILL: a crash, with no chance to say goodbye."""
        agent = self.agents[i]
        if agent.proc is not None and agent.proc.poll() is None:
            agent.proc.kill()
            agent.proc.wait(timeout=10)
        agent.proc = None
        self.forget(i)

    def pause(self, i: int) -> None:
        proc = self.agents[i].proc
        if proc is not None:
            _signal(proc, signal.SIGSTOP)
            self.agents[i].paused = True

    def resume(self, i: int) -> None:
        proc = self.agents[i].proc
        if proc is not None:
            _signal(proc, signal.SIGCONT)
            self.agents[i].paused = False

    def forget(self, i: int) -> None:
        """Drop any cached connection to agent i (it died or restarts); nothing by default."""
        return None

    async def wait_answering(self, i: int, timeout_s: float) -> bool:
        """Poll agent i until it serves its view, for at most timeout_s."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if await self.view(i) is not None:
                return True
            proc = self.agents[i].proc
            if proc is None or proc.poll() is not None:
                return False
            await asyncio.sleep(0.05)
        return False

    async def close(self) -> None:
        """Stop this fleet's agents (SIGTERM, then SIGKILL) and close connections."""
        procs = [a.proc for a in self.agents if a.proc is not None]
        sub = ProcessRegistry(procs)
        await asyncio.to_thread(sub.stop_all)
        for i in range(self.size):
            self.forget(i)

    def log_tail(self, name: str, lines: int = 12) -> str:
        """The last lines of an agent's log (why it exited, when it did), indented."""
        agent = next(a for a in self.agents if a.name == name)
        try:
            text = agent.log_path.read_text(errors="replace").splitlines()
        except OSError as exc:
            return f"    (no log: {exc})"
        return "\n".join("    " + line[:300] for line in text[-lines:])

    def log_summary(self) -> dict[str, Any]:
        """Warning/error line counts over all agent logs, and a few sample lines."""
        counts: dict[str, int] = {}
        samples: list[str] = []
        for agent in self.agents:
            try:
                lines = agent.log_path.read_text(errors="replace").splitlines()
            except OSError:
                continue
            for line in lines:
                key = self.classify_log_line(line)
                if key is None:
                    continue
                counts[key] = counts.get(key, 0) + 1
                if not key.startswith("member ") and len(samples) < 12:
                    samples.append(f"{agent.name}: {line[:300]}")
        return {"counts": counts, "samples": samples}

    @abstractmethod
    def classify_log_line(self, line: str) -> str | None:
        """A category for a noteworthy log line, or None."""

    def detection_from_logs(self, victim: str, killed_at: float, timeout_s: float) -> dict[str, Any] | None:
        """When each survivor logged the victim dead (wall clock, ms), if the system logs that precisely."""
        return None


class SerfFleet(Fleet):
    system = "serf"
    exposes_suspect = False

    def __init__(self, *, binary: str, event_handler: str | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.binary = binary
        self.event_handler = event_handler
        """Serf's -event-handler value (`[filter=]command`, run by /bin/sh), if any."""
        self._rpc: dict[int, SerfRpc] = {}

    def command(self, agent: Agent) -> list[str]:
        # Defaults otherwise, in particular -profile=lan (ProbeInterval 1 s, SuspicionMult 4).
        argv = [self.binary, "agent", f"-node={agent.name}", f"-bind={HOST}:{agent.gossip_port}",
                f"-rpc-addr={HOST}:{agent.control_port}", "-log-level=warn"]
        if self.event_handler:
            argv.append(f"-event-handler={self.event_handler}")
        if agent.index != 0:
            argv.append(f"-join={HOST}:{self.agents[0].gossip_port}")
        return argv

    async def send_event(self, i: int, name: str, payload: bytes) -> None:
        """A non-coalesced user event sent at agent i, over its own RPC connection (what `serf event
        -coalesce=false` does); returns once the agent has accepted it."""
        client = await SerfRpc.connect(HOST, self.agents[i].control_port, REQUEST_TIMEOUT_S)
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                await client.event(name, payload, coalesce=False)
        finally:
            client.close()

    async def view(self, i: int) -> View | None:
        try:
            client = self._rpc.get(i)
            if client is None:
                client = await SerfRpc.connect(HOST, self.agents[i].control_port, REQUEST_TIMEOUT_S)
                self._rpc[i] = client
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                members = await client.members()
        except (OSError, SerfRpcError, TimeoutError, ValueError):
            self.forget(i)
            return None
        return {str(m.get("Name")): SERF_STATUS.get(str(m.get("Status")), str(m.get("Status")))
                for m in members}

    def forget(self, i: int) -> None:
        client = self._rpc.pop(i, None)
        if client is not None:
            client.close()

    def classify_log_line(self, line: str) -> str | None:
        if "Refuting a suspect message" in line:
            return "member refuted a suspicion of itself"
        if "[ERR]" in line:
            return "error"
        if "[WARN]" in line:
            return "warning"
        return None


class ShoalFleet(Fleet):
    system = "shoal"

    def __init__(self, *, shoal: Shoal, **kw: Any) -> None:
        super().__init__(**kw)
        self.shoal = shoal.command
        self.env = shoal.env()
        self.cwd = shoal.source  # `python -m` puts the working directory first on sys.path
        self.token = ""
        self._session: aiohttp.ClientSession | None = None

    def prepare(self) -> None:
        """`shoal init` for the seed; its last output line is the join token the others use."""
        seed = self.agents[0]
        out = subprocess.run([*self.shoal, "init", "--data", str(seed.data_dir), "--cluster", "bench",
                              "--name", seed.name], capture_output=True, text=True, timeout=60, check=False,
                             env=self.env, cwd=self.cwd)
        if out.returncode != 0 or not out.stdout.strip():
            raise RuntimeError(f"shoal init failed ({out.returncode}): {out.stderr.strip()}")
        self.token = out.stdout.strip().splitlines()[-1]

    def command(self, agent: Agent) -> list[str]:
        # No --config: Shoal's default gossip profile is the LAN class (probe interval 1 s).
        argv = [*self.shoal, "agent", "--data", str(agent.data_dir), "--name", agent.name,
                "--bind", f"{HOST}:{agent.gossip_port}", "--api", f"{HOST}:{agent.control_port}",
                "--runtime", "none", "--log-level", "warning"]
        if agent.index != 0:
            argv += ["--join", f"{HOST}:{self.agents[0].gossip_port}", "--token", self.token]
        return argv

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, force_close=False)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S))
        return self._session

    async def get_json(self, i: int, path: str) -> Any:
        """Agent i's JSON answer to GET path, or None (no answer, not 200, not JSON)."""
        url = f"http://{HOST}:{self.agents[i].control_port}{path}"
        try:
            async with self._client().get(url) as resp:
                if resp.status != 200:
                    return None
                return await resp.json()
        except (aiohttp.ClientError, TimeoutError, ValueError, OSError):
            return None

    async def post_json(self, i: int, path: str, body: Any) -> tuple[int, Any]:
        """POST a JSON body to agent i: (status, parsed answer or its text); status 0 if it did not answer."""
        url = f"http://{HOST}:{self.agents[i].control_port}{path}"
        try:
            async with self._client().post(url, json=body) as resp:
                text = await resp.text()
                try:
                    return resp.status, json.loads(text)
                except ValueError:
                    return resp.status, text
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return 0, str(exc)

    async def view(self, i: int) -> View | None:
        body = await self.get_json(i, "/v1/members")
        if not isinstance(body, list):
            return None
        return {str(m.get("name")): str(m.get("status")) for m in body if isinstance(m, dict)}

    async def counters(self, i: int) -> dict[str, Any] | None:
        body = await self.get_json(i, "/v1/agent")
        counters = body.get("counters") if isinstance(body, dict) else None
        return counters if isinstance(counters, dict) else None

    async def close(self) -> None:
        await super().close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def detection_from_logs(self, victim: str, killed_at: float, timeout_s: float) -> dict[str, Any] | None:
        """Seconds from the kill to each survivor's first `member dead member=VICTIM` log line: the same
        detection as the polls see, without the polling's resolution or load."""
        marker = f'msg="member dead" member={victim} '
        seen: dict[str, float] = {}
        for agent in self.agents:
            if agent.name == victim:
                continue
            try:
                lines = agent.log_path.read_text(errors="replace").splitlines()
            except OSError:
                continue
            for line in lines:
                if marker not in line:
                    continue
                at = _log_time(line.split(" ", 1)[0])
                if at is not None and killed_at <= at <= killed_at + timeout_s:
                    seen[agent.name] = at - killed_at
                    break
        complete = len(seen) == self.size - 1
        return {"all_s": max(seen.values()) if complete else None,
                "first_s": min(seen.values()) if seen else None, "logged_by": len(seen)}

    _LEVEL = re.compile(r"level=(\w+)")
    _MSG = re.compile(r'msg="([^"]*)"')

    def classify_log_line(self, line: str) -> str | None:
        if line.startswith("Traceback"):
            return "traceback"
        level = self._LEVEL.search(line)
        if level is None or level.group(1) not in ("warning", "error", "critical"):
            return None
        msg = self._MSG.search(line)
        text = msg.group(1) if msg else ""
        return text if text.startswith("member ") else level.group(1)


def _log_time(stamp: str) -> float | None:
    """Shoal's log timestamp (`2026-11-25T09:13:13.479Z`, UTC) as Unix seconds."""
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None
