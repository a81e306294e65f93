"""Processes the lab starts and stops: spawn detached, recognise by /proc/PID/cmdline, signal, wait, snapshot.

Role: the process shell shared by the agents, the podman services and the registry. A lab process runs in
its own session (setsid), stdin from /dev/null, stdout+stderr appended to a log, optionally inside a host's
network namespace through `nsenter --net` (which execs into the program, so the spawned pid is the
program's own). `snapshot()` reads every process for power.py.
Boundary: acts on pids handed to it; callers check identity (`cmdline`) before signalling a recorded pid,
since pids get reused and `kill -0` succeeds on zombies (research P4).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from node.lab.power import NsId, Proc, container_of
from node.lab.wait import poll_until

EXEC_WAIT_S = 5.0


def cmdline(pid: int) -> list[str]:
    """The argv of a live process; [] for a zombie, a vanished pid, or one caught mid-exec."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [arg.decode(errors="replace") for arg in raw.split(b"\0")[:-1]]


def find(matches: Callable[[list[str]], bool]) -> int | None:
    """The lowest pid whose command line `matches`, or None."""
    pids = sorted(int(entry.name) for entry in os.scandir("/proc") if entry.name.isdigit())
    return next((pid for pid in pids if (args := cmdline(pid)) and matches(args)), None)


def reap(pid: int) -> None:
    """Collect a process we spawned from this very process, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):  # not our child: init reaps it
        os.waitpid(pid, os.WNOHANG)


def zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def gone(pid: int) -> bool:
    reap(pid)
    return not Path(f"/proc/{pid}").exists() or zombie(pid)


def spawn(argv: Sequence[str], log: Path, env: Mapping[str, str]) -> int:
    """Start argv in a new session, stdin /dev/null, output appended to `log`; return its pid once the exec
    chain (nsenter -> program) is over, so identity checks right after a spawn see the program's cmdline."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    # posix_spawn rather than Popen: the process outlives this command, and a Popen object for a process we
    # never wait on warns ("subprocess is still running") when it is collected.
    pid = os.posix_spawnp(argv[0], list(argv), dict(env), file_actions=actions, setsid=True)
    program = _program(argv)
    poll_until(lambda: _execed(pid, program), EXEC_WAIT_S, interval_s=0.005)
    return pid


def _program(argv: Sequence[str]) -> str:
    """The program nsenter ends up exec'ing: the first argument after nsenter's own options."""
    if Path(argv[0]).name != "nsenter":
        return argv[0]
    return next((arg for arg in argv[1:] if not arg.startswith("-")), argv[0])


def _execed(pid: int, program: str) -> bool:
    """True once `pid` runs `program` (the exec chain is over) or has already exited."""
    args = cmdline(pid)
    return (bool(args) and Path(args[0]).name == Path(program).name) or gone(pid)


def signal_group(pid: int, sig: signal.Signals) -> None:
    """`sig` to the session `pid` leads (its whole process group), or to `pid` alone if it leads none."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def stop(pid: int, is_it: Callable[[int], bool], grace_s: float) -> bool:
    """SIGTERM `pid` if it is still what `is_it` says, SIGKILL its group after `grace_s`; True once it is gone."""
    if not is_it(pid):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if poll_until(lambda: gone(pid) or not is_it(pid), grace_s, interval_s=0.05):
        return True
    if is_it(pid):
        signal_group(pid, signal.SIGKILL)
    return poll_until(lambda: gone(pid) or not is_it(pid), 5.0, interval_s=0.05)


def tail(log: Path, lines: int = 10) -> str:
    """The last lines of a log, indented for an error message."""
    try:
        text = log.read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return f"  ({log} does not exist)"
    return "\n".join(f"  | {line}" for line in text) or f"  ({log} is empty)"


def ns_id(path: str | Path) -> NsId | None:
    """The identity of the namespace behind a /proc/PID/ns/* link or a /run/netns/* mount."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def snapshot() -> list[Proc]:
    """Every live process now: pid, parent, network namespace, podman container (from its cgroup). Zombies
    are left out: they run nothing, and one whose parent died waits for init, which may reap it late."""
    procs = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            cgroup = Path(f"/proc/{pid}/cgroup").read_text()
        except OSError:
            continue  # exited meanwhile
        if fields[0] in ("Z", "X"):
            continue
        procs.append(Proc(pid, int(fields[1]), ns_id(f"/proc/{pid}/ns/net"), container_of(cgroup)))
    return procs


def ancestors(pid: int) -> set[int]:
    """`pid` and every process above it, up to init."""
    found = set()
    while pid > 0 and pid not in found:
        found.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return found


def kill_now(pids: Iterable[int]) -> None:
    """SIGKILL each pid (a power cut): no grace, no order."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
