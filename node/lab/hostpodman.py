"""Each lab host's podman at run time: its config files, its API service, a power cut, a reboot, a teardown.

Role: the I/O shell around podmanconf.py (what to write and run) and power.py (which processes are a host's):
  write_config      hI/containers.conf, storage.conf, registries.conf, rewritten only when their text changes
  start_service     `podman system service` on hI/podman.sock, inside the host's netns, pid in hI/podman.pid
  power_off         SIGKILL every process of the host at once, as a power cut would
  boot_clean        what a reboot clears, for a host that is off: podman releases what it held for containers
                    that died under it, then runc's and the cgroups' leftovers, mounts and run dirs go
  teardown          containers removed, service stopped, leftovers killed and unmounted (down, shrink)
Boundary: touches only the host's own dir, its netns, processes power.py attributes to it, and runc/cgroup
entries named by ids found in the host's own storage. Every podman call carries the host's config.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import socket
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from node.lab import podmanconf, power, procs
from node.lab.errors import LabError
from node.lab.plan import Host, in_netns
from node.lab.podmanconf import PodmanPaths
from node.lab.registry import ADDRESS as REGISTRY_ADDRESS
from node.lab.wait import poll_until

SERVICE_START_S = 20.0  # a service answers ~0.3-1 s after exec here; 20 s covers a loaded 2-core CI box
SERVICE_STOP_S = 5.0  # an idle service exits within milliseconds of SIGTERM
PODMAN_CLI_S = 120.0  # `podman rm -af` / `stop -a` on a host with many containers
POWER_OFF_S = 5.0
CGROUP_ROOT = Path("/sys/fs/cgroup")
_PING = b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n"


def _write_if_changed(path: Path, text: str) -> bool:
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return True


def ulimits() -> tuple[str, str]:
    """Container ulimits for this machine: the hard limits this process (and so podman) runs under."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    return podmanconf.default_ulimits(nofile, nproc)


def storage_driver(lab_root: Path) -> str:
    return podmanconf.storage_driver(Path("/proc/self/mountinfo").read_text(), lab_root)


def write_config(paths: PodmanPaths, driver: str) -> bool:
    """Write the instance's three config files; True if any changed (a running service must restart)."""
    paths.root.mkdir(parents=True, exist_ok=True)
    texts = {
        paths.containers_conf: podmanconf.containers_conf(paths, ulimits()),
        paths.storage_conf: podmanconf.storage_conf(paths, driver),
        paths.registries_conf: podmanconf.registries_conf([REGISTRY_ADDRESS]),
    }
    changed = [_write_if_changed(path, text) for path, text in texts.items()]
    return any(changed)


def env(paths: PodmanPaths) -> dict[str, str]:
    return podmanconf.env(os.environ, paths)


def service_pid(paths: PodmanPaths) -> int | None:
    """The pid of the instance's API service if one runs: the recorded pid while it still is that service,
    else any process serving that socket (the agent starts a service itself when its socket is silent)."""
    try:
        pid: int | None = int(paths.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        pid = None
    if pid is not None and podmanconf.is_service(procs.cmdline(pid), paths):
        return pid
    return procs.find(lambda args: podmanconf.is_service(args, paths))


def start_service(host: Host, paths: PodmanPaths, base_env: Mapping[str, str]) -> int:
    """Start the host's API service inside its netns (so the networks it sets up land in that host)."""
    paths.socket.unlink(missing_ok=True)  # a dead service's socket would make the new one's bind fail
    pid = procs.spawn(in_netns(host, podmanconf.service_argv(paths)), paths.log, podmanconf.env(base_env, paths))
    tmp = paths.pid_file.with_name(".podman.pid.tmp")
    tmp.write_text(f"{pid}\n")
    os.replace(tmp, paths.pid_file)
    return pid


def answers(paths: PodmanPaths, timeout_s: float = 1.0) -> bool:
    """True when the API service answers GET /_ping on its socket."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(str(paths.socket))
            sock.sendall(_PING)
            head = sock.recv(64)
    except OSError:
        return False
    return head.startswith(b"HTTP/1.") and head[9:12] == b"200"


def count_containers(paths: PodmanPaths, timeout_s: float = 1.0) -> int | None:
    """How many containers (any state) the API service holds; None if it does not answer."""
    request = b"GET /v4.0.0/libpod/containers/json?all=true HTTP/1.0\r\nHost: d\r\n\r\n"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(str(paths.socket))
            sock.sendall(request)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
        listed = json.loads(body) if head[9:12] == b"200" else None
    except (OSError, ValueError):
        return None
    return len(listed) if isinstance(listed, list) else None


def wait_answering(services: Sequence[tuple[Host, PodmanPaths]], timeout_s: float = SERVICE_START_S) -> None:
    """Wait until every host's service answers; fail at once, with its log, if one exits."""
    waiting = list(services)

    def all_answer() -> bool:
        for host, paths in list(waiting):
            if answers(paths):
                waiting.remove((host, paths))
            elif service_pid(paths) is None:
                raise LabError(f"the podman service of {host.name} exited; {paths.log}:\n{procs.tail(paths.log)}")
        return not waiting

    if not poll_until(all_answer, timeout_s, interval_s=0.05):
        names = ", ".join(host.name for host, _ in waiting)
        logs = "\n".join(f"{paths.log}:\n{procs.tail(paths.log)}" for _, paths in waiting)
        raise LabError(f"the podman service of {names} did not answer within {timeout_s:g} s\n{logs}")


def stop_service(paths: PodmanPaths) -> None:
    pid = service_pid(paths)
    if pid is not None and not procs.stop(pid, lambda p: podmanconf.is_service(procs.cmdline(p), paths),
                                          SERVICE_STOP_S):
        raise LabError(f"the podman service {pid} ({paths.socket}) survived SIGKILL")


def run_podman(host: Host, paths: PodmanPaths, argv: Sequence[str], timeout_s: float = PODMAN_CLI_S) -> str | None:
    """Run a podman command line on the host's state inside its netns; None if it worked, else what failed."""
    what = f"`{' '.join(argv)}` on {host.name}"
    try:
        done = subprocess.run(in_netns(host, argv), env=env(paths), capture_output=True, text=True,
                              timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return f"{what} did not finish within {timeout_s:g} s"
    if done.returncode != 0:
        return f"{what} failed (exit {done.returncode}): {done.stderr.strip()}"
    return None


def container_ids(paths: PodmanPaths) -> set[str]:
    """Ids of every container in the host's storage (<graphroot>/<driver>-containers/<id>)."""
    names: list[str] = []
    for store in paths.graphroot.glob("*-containers"):
        with contextlib.suppress(OSError):
            names += [entry.name for entry in os.scandir(store) if entry.is_dir()]
    return podmanconf.container_ids(names)


def processes(host: Host, paths: PodmanPaths) -> set[int]:
    """Pids of every process of the host now (power.py), never this process or its ancestors."""
    netns = procs.ns_id(host.netns_path)
    ids = container_ids(paths)
    if netns is None and not ids:
        return set()
    table = procs.snapshot()
    return power.of_host(table, netns or (-1, -1), ids, spare=procs.ancestors(os.getpid()))


def is_off(host: Host, paths: PodmanPaths) -> bool:
    return not processes(host, paths)


def power_off(host: Host, paths: PodmanPaths) -> int:
    """SIGKILL every process of the host, again until none is left (a dying conmon's last fork, say);
    return how many were killed. Raises LabError naming the survivors."""
    killed: set[int] = set()

    def none_left() -> bool:
        pids = processes(host, paths)
        alive = {pid for pid in pids if not procs.gone(pid)}
        procs.kill_now(alive)
        killed.update(alive)
        return not alive

    if not poll_until(none_left, POWER_OFF_S, interval_s=0.05):
        left = sorted(p for p in processes(host, paths) if not procs.gone(p))
        raise LabError(f"{host.name}: processes survived SIGKILL: {', '.join(map(str, left))}")
    return len(killed)


def _mounts_under(root: Path) -> list[str]:
    prefix = f"{root}/"
    points = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 1:
            point = fields[1].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
            if point.startswith(prefix) or point == str(root):
                points.append(point)
    return points


def unmount_under(root: Path) -> list[str]:
    """Lazily unmount everything mounted at or below `root` (overlay layers, container shm, storage's own bind
    mount), deepest first; return the mount points still there afterwards."""
    for _ in range(3):  # a lazy unmount can uncover a mount that was stacked below it
        points = _mounts_under(root)
        if not points:
            return []
        for point in sorted(points, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    return _mounts_under(root)


def _cgroup_roots() -> list[Path]:
    """Every cgroup hierarchy: /sys/fs/cgroup itself (v2) and each mounted v1 controller below it."""
    roots = [CGROUP_ROOT]
    with contextlib.suppress(OSError):
        roots += [Path(entry.path) for entry in os.scandir(CGROUP_ROOT) if entry.is_dir()]
    return roots


def clear_runtime_leftovers(ids: Iterable[str]) -> list[str]:
    """Remove runc's state and the cgroups of the host's containers `ids` (outside the lab dir; a reboot
    clears them). Podman's own `stop`/`rm` of a container whose processes a power cut killed leaves both, so
    the ids are taken before those run. Return what could not be removed."""
    problems = []
    for path in podmanconf.runtime_leftovers(ids, _cgroup_roots()):
        if not path.exists():
            continue
        try:
            if path.is_relative_to(CGROUP_ROOT):
                path.rmdir()  # a cgroup dir goes with rmdir, and only once no process is in it
            else:
                shutil.rmtree(path)
        except OSError as exc:
            problems.append(f"cannot remove {path}: {exc.strerror}")
    return problems


def boot_clean(host: Host, paths: PodmanPaths) -> list[str]:
    """Clear what a reboot clears, for a host that is off (no process of it runs): podman first releases what
    it still holds for containers that died under it (it believes they run), then runc's state, the cgroups,
    mounts and the run dirs go. The next podman call then "refreshes": those containers show `Created`, as
    after a real reboot with podman 4.3. Returns problems worth reporting; none of them stops a boot."""
    problems: list[str] = []
    ids = container_ids(paths)
    if paths.tmp_dir.exists() and Path(host.netns_path).exists() and paths.graphroot.exists():
        failed = run_podman(host, paths, podmanconf.stop_all_argv())
        if failed:
            problems.append(failed)
    problems += clear_runtime_leftovers(ids)
    left = unmount_under(paths.root)
    if left:
        problems.append(f"still mounted: {', '.join(left)}")
    for directory in paths.volatile():
        shutil.rmtree(directory, ignore_errors=True)
    return problems


def teardown(host: Host, paths: PodmanPaths) -> list[str]:
    """Everything of the host's podman, for `down` and shrink: containers removed (podman releases their
    addresses, mounts and network namespaces), the service stopped, any process left killed, leftovers
    removed and mounts undone. The host dir itself is the caller's to delete. Returns the problems."""
    problems: list[str] = []
    ids = container_ids(paths)
    if Path(host.netns_path).exists() and paths.graphroot.exists() and paths.containers_conf.exists():
        # A host that is off (a power cut) has containers podman believes still run: `rm` alone would leave
        # their network namespaces mounted in /run/netns; `stop` releases them first, as at a boot.
        off = paths.tmp_dir.exists() and not processes(host, paths)
        steps = [podmanconf.stop_all_argv(), podmanconf.remove_all_argv()] if off else [podmanconf.remove_all_argv()]
        problems += [failed for argv in steps if (failed := run_podman(host, paths, argv))]
    try:
        stop_service(paths)
        power_off(host, paths)
    except LabError as exc:
        problems.append(str(exc))
    problems += clear_runtime_leftovers(ids)
    left = unmount_under(paths.root)
    if left:
        problems.append(f"still mounted: {', '.join(left)}")
    return problems
