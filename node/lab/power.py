"""Which processes a lab host runs: what a power cut of that host kills.

Role: from a snapshot of the machine's processes, pick those of one host: every process in the host's network
namespace (its agent, its podman service, the conmon of each container, anything `lab exec` left running),
everything descended from them (a container's processes are children of its conmon but live in the
container's own network namespace), and every process in the cgroup of one of the host's containers (found
even when its conmon is already gone).
Boundary: pure; procs.py takes the snapshot and sends the signals.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

NsId = tuple[int, int]
"""A namespace's identity: (st_dev, st_ino) of its nsfs inode, the same through /proc/PID/ns/net and /run/netns/X."""

_LIBPOD_CGROUP = re.compile(r"/libpod-([0-9a-f]{64})(?:\.scope)?(?:/|$)")


@dataclass(frozen=True)
class Proc:
    """One process as /proc showed it."""

    pid: int
    ppid: int
    netns: NsId | None = None  # None: unreadable (it exited, or a kernel thread)
    container: str | None = None  # the podman container id its cgroup names, if any


def container_of(cgroup: str) -> str | None:
    """The container id a /proc/PID/cgroup text names: /libpod_parent/libpod-<id> with cgroupfs (the lab's
    cgroup manager), .../libpod-<id>.scope with systemd."""
    for line in cgroup.splitlines():
        match = _LIBPOD_CGROUP.search(line.split(":", 2)[-1])
        if match:
            return match.group(1)
    return None


def of_host(procs: Iterable[Proc], netns: NsId, containers: Iterable[str], spare: Iterable[int] = ()) -> set[int]:
    """Pids of the host's processes: in its netns, in one of its containers' cgroups, or descended from such
    a process. `spare` (the caller and its ancestors, so `lab exec h1 -- shoal lab stop h1` survives to
    finish) is never chosen."""
    table = list(procs)
    ours = set(containers)
    chosen = {p.pid for p in table if p.netns == netns or (p.container is not None and p.container in ours)}
    children: dict[int, list[int]] = {}
    for p in table:
        children.setdefault(p.ppid, []).append(p.pid)
    todo = list(chosen)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in chosen:
                chosen.add(child)
                todo.append(child)
    return chosen - set(spare)


def netns_of(procs: Iterable[Proc], pids: Iterable[int]) -> set[NsId]:
    """The network namespaces the given processes live in."""
    wanted = set(pids)
    return {p.netns for p in procs if p.pid in wanted and p.netns is not None}
