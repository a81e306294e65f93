"""The lab's agent processes: spawn them in their host's netns, find them again, stop them, wait for them.

Role: the process and HTTP shell for agents. An agent runs as `nsenter --net=... python -m node agent`
in its own session, stdout+stderr appended to hI/agent.log; nsenter execs into python, so the spawned
pid is the agent's own and goes to hI/agent.pid.
Boundary: acts only on pids the lab recorded, and only after /proc/PID/cmdline shows that pid is still
the agent of that data dir (pids get reused; `kill -0` also succeeds on zombies). Command lines come
from plan.py, convergence judgements from readiness.py.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import sysconfig
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from node.lab import podmanconf, procs, readiness
from node.lab.errors import LabError
from node.lab.plan import Host, agent_argv, in_netns, init_argv
from node.lab.state import LabDir
from node.lab.wait import poll_until

HTTP_TIMEOUT_S = 1.0  # per request; a host that cannot answer in 1 s on a local bridge is not ready
LEAVE_GRACE_S = 10.0  # SIGTERM lets an agent tell the others it leaves; after this it gets SIGKILL
LOG_TAIL_LINES = 15

# The lab talks to 198.18.0.0/24 on this machine; an operator's http_proxy must not catch that.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def child_env() -> dict[str, str]:
    """Environment for agents: ours, unbuffered, and able to import `node` even when run from a
    checkout that is not installed (a non-editable install finds it in site-packages anyway)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    root = str(Path(__file__).resolve().parents[2])
    installed = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    if root not in installed:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def is_agent(pid: int, data: Path) -> bool:
    """True if `pid` is alive and is the agent of `data` (a zombie's cmdline is empty)."""
    args = procs.cmdline(pid)
    return "agent" in args and ("--data", str(data)) in itertools.pairwise(args)


def running_pid(lab: LabDir, index: int) -> int | None:
    """The recorded pid of host `index`'s agent if that agent still runs."""
    pid = lab.read_pid(index)
    return pid if pid is not None and is_agent(pid, lab.data_dir(index)) else None


def _log_header(log: Path, argv: Sequence[str]) -> None:
    """One line per start, so a log appended across restarts reads as a history. The join token is
    a credential: it stays out of the log (the lab keeps it in its token file, mode 0600)."""
    shown = ["***" if prev == "--token" else arg for prev, arg in itertools.pairwise(["", *argv])]
    text = " ".join(shown)
    with log.open("a") as out:
        out.write(f"--- shoal lab {datetime.now().isoformat(timespec='seconds')}: {text}\n")


def spawn(host: Host, argv: Sequence[str], log: Path, env: Mapping[str, str]) -> int:
    """Start argv in the host's netns, in a new session, output appended to `log`; return its pid."""
    cmd = in_netns(host, argv)
    _log_header(log, cmd)
    return procs.spawn(cmd, log, env)


def start_agent(lab: LabDir, host: Host, labels: Mapping[str, str], join: tuple[str, str] | None) -> int:
    """Spawn `host`'s agent, pointed at its podman, and record its pid."""
    paths = lab.podman(host.index)
    argv = agent_argv(sys.executable, host, str(lab.data_dir(host.index)), str(paths.socket), labels, join)
    pid = spawn(host, argv, lab.log_file(host.index), podmanconf.env(child_env(), paths))
    lab.write_pid(host.index, pid)
    return pid


def init_cluster(lab: LabDir, host: Host) -> str:
    """Run `shoal init` in host 1's data dir; return the join token (the last line of stdout)."""
    argv = in_netns(host, init_argv(sys.executable, host, str(lab.data_dir(host.index))))
    log = lab.log_file(host.index)
    _log_header(log, argv)
    done = subprocess.run(argv, capture_output=True, text=True, env=child_env(), check=False, timeout=120)
    with log.open("a") as out:
        out.write(done.stderr)  # not stdout: it holds the token
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        raise LabError(
            f"`shoal init` for {host.name} failed (exit {done.returncode}):\n{tail(log)}"
        )
    return lines[-1]


def signal_agent(pid: int, sig: signal.Signals) -> None:
    """SIGTERM goes to the agent alone, so it can leave gracefully and stop its own children; SIGKILL
    goes to its whole process group (the session it leads), as a power cut would."""
    if sig == signal.SIGKILL:
        procs.signal_group(pid, sig)
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def stop(lab: LabDir, indices: Iterable[int], grace_s: float = LEAVE_GRACE_S) -> None:
    """Stop the agents of `indices`: SIGTERM, and SIGKILL those still running after `grace_s`."""
    pids = {i: pid for i in indices if (pid := running_pid(lab, i)) is not None}
    for pid in pids.values():
        signal_agent(pid, signal.SIGTERM)
    if not wait_exited(lab, pids, grace_s):
        kill(lab, pids)


def kill(lab: LabDir, pids: Mapping[int, int]) -> None:
    """SIGKILL the given agents (index -> pid) and wait until they are gone."""
    for index, pid in pids.items():
        if is_agent(pid, lab.data_dir(index)):
            signal_agent(pid, signal.SIGKILL)
    if not wait_exited(lab, pids, 5.0):
        alive = [f"h{i} (pid {pid})" for i, pid in pids.items() if is_agent(pid, lab.data_dir(i))]
        raise LabError(f"agents survived SIGKILL: {', '.join(alive)}")


def wait_exited(lab: LabDir, pids: Mapping[int, int], timeout_s: float) -> bool:
    def gone() -> bool:
        for pid in pids.values():
            procs.reap(pid)
        return not any(is_agent(pid, lab.data_dir(i)) for i, pid in pids.items())

    return poll_until(gone, timeout_s, interval_s=0.05)


def tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    return procs.tail(log, lines)


def _get_json(url: str) -> object:
    with _HTTP.open(url, timeout=HTTP_TIMEOUT_S) as response:
        return json.loads(response.read())


def fetch_view(host: Host) -> readiness.View:
    """What `host`'s agent says about its members, or why it said nothing."""
    try:
        return readiness.View(statuses=readiness.member_statuses(_get_json(f"{host.api_url}/v1/members")))
    except (OSError, ValueError) as exc:  # URLError, timeouts and refused connections are OSErrors
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        return readiness.View(error=str(reason))


def fetch_views(hosts: Sequence[Host]) -> dict[str, readiness.View]:
    """All hosts asked at once, so one silent host costs one timeout, not N."""
    if not hosts:
        return {}
    with ThreadPoolExecutor(max_workers=min(16, len(hosts))) as pool:
        return dict(zip((h.name for h in hosts), pool.map(fetch_view, hosts), strict=True))


def healthy(host: Host) -> bool:
    try:
        body = _get_json(f"{host.api_url}/v1/health")
    except (OSError, ValueError):
        return False
    return isinstance(body, dict) and body.get("status") == "ok"


def _dead_agents(lab: LabDir, hosts: Sequence[Host]) -> list[Host]:
    return [h for h in hosts if running_pid(lab, h.index) is None]


def _failure(lab: LabDir, what: str, hosts: Sequence[Host]) -> LabError:
    logs = "\n".join(f"{h.name}: {lab.log_file(h.index)}\n{tail(lab.log_file(h.index))}" for h in hosts)
    return LabError(f"{what}\n{logs}")


def wait_healthy(lab: LabDir, host: Host, timeout_s: float) -> None:
    """Wait until `host`'s API answers /v1/health; fail at once if its agent exits."""

    def ready() -> bool:
        if _dead_agents(lab, [host]):
            raise _failure(lab, f"the agent of {host.name} exited", [host])
        return healthy(host)

    if not poll_until(ready, timeout_s):
        what = f"{host.name} did not answer {host.api_url}/v1/health within {timeout_s:g} s"
        raise _failure(lab, what, [host])


def wait_converged(lab: LabDir, hosts: Sequence[Host], timeout_s: float) -> None:
    """Wait until every host's /v1/members shows all `hosts` alive; fail at once if an agent exits,
    or at the deadline with what each host sees and the tail of each lagging host's log."""
    names = [h.name for h in hosts]
    views: dict[str, readiness.View] = {}

    def converged() -> bool:
        nonlocal views
        dead = _dead_agents(lab, hosts)
        if dead:
            raise _failure(lab, f"the agent of {', '.join(h.name for h in dead)} exited", dead)
        views = fetch_views(hosts)
        return not readiness.lagging(views, names)

    if not poll_until(converged, timeout_s, interval_s=0.25):
        late = set(readiness.lagging(views, names))
        raise _failure(
            lab,
            f"the lab did not converge within {timeout_s:g} s:\n{readiness.describe(views, names)}",
            [h for h in hosts if h.name in late],
        )
