"""A private podman for the contract suite: its own config, storage, network namespace, image and registry.

Role: `podman_env()` builds everything the podman variant of the runtime contract needs and tears it down again;
`PodmanEnv.podman(...)` runs the CLI against the same state (to set up and to inspect behind the adapter's back).
Boundary: touches nothing of the machine's podman (/var/lib/containers, /run/libpod, /dev/shm locks) or the lab:
CONTAINERS_CONF/CONTAINERS_STORAGE_CONF/CONTAINERS_REGISTRIES_CONF point at files in one temp dir, locks are
files there (lab.md P3), and the service, registry and every CLI call run in a network namespace of our own,
entered with nsenter (lab.md P1), so bridges and firewall rules never reach the root namespace. Teardown stops
only the processes started here, by pid.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from node.lab.wait import poll_until
from node.runtime.service import ensure_service

IMAGE = "localhost/shoal-contract:1"
REGISTRY_PORT = 5000  # free by construction: the namespace is new, nothing else listens in it
DEFAULT_SUBNET = "198.19.250.0/24"
SUBNET_POOL = "198.19.240.0/21"  # where the engine picks a network's subnet when none is given
APPLETS = ("sh", "sleep", "hostname", "env", "cat", "echo", "true", "false", "kill", "grep", "test", "ls")
SERVICE_STOP_S = 15.0  # the podman service takes a few seconds to exit on SIGTERM (registry-trust.md §3)


@dataclass(frozen=True)
class PodmanEnv:
    root: Path
    netns: str
    socket: Path
    env: dict[str, str]  # the whole environment for the service and every CLI call
    network_backend: str
    registry: str  # host:port, insecure, inside the namespace

    @property
    def nsenter(self) -> tuple[str, ...]:
        return ("nsenter", f"--net=/run/netns/{self.netns}")

    def podman(self, *args: str, check: bool = True, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
        """The podman CLI on this env's state, inside its namespace."""
        done = subprocess.run([*self.nsenter, "podman", *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout_s, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return done

    def cni_state_dirs(self) -> list[Path]:
        """CNI's host-local IPAM keeps leases in /var/lib/cni/networks/<network>, outside any config we set."""
        base = Path("/var/lib/cni/networks")
        return [base / name for name in self.network_names()] if self.network_backend == "cni" else []

    def network_names(self) -> list[str]:
        out = self.podman("network", "ls", "--format", "{{.Name}}", check=False).stdout
        return [line for line in out.split() if line]


def available() -> str | None:
    """Why the podman variant cannot run here, or None if it can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, podman's rootful storage)"
    missing = [tool for tool in ("podman", "runc", "nsenter", "ip", "docker-registry", "curl")
               if shutil.which(tool) is None]
    if missing:
        return f"needs {', '.join(missing)} (apt-get install podman runc docker-registry curl util-linux iproute2)"
    if _busybox() is None:
        return "needs a static busybox (apt-get install busybox-static)"
    return None


@contextlib.contextmanager
def podman_env() -> Iterator[PodmanEnv]:
    """Build the private podman; on exit remove its containers, stop what it started and delete it all."""
    root = Path(tempfile.mkdtemp(prefix="shoal-ct-", dir="/tmp"))
    netns = f"shoal-ct-{os.getpid()}"
    backend = os.environ.get("SHOAL_CT_NETWORK_BACKEND") or _network_backend()
    env = _write_config(root, netns, backend)
    penv = PodmanEnv(root=root, netns=netns, socket=root / "podman.sock", env=env, network_backend=backend,
                     registry=f"127.0.0.1:{REGISTRY_PORT}")
    pids: list[int] = []
    try:
        subprocess.run(["ip", "netns", "add", netns], check=True, capture_output=True)
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True, capture_output=True)
        _import_image(penv)
        pids.append(_start_registry(penv))
        _await_registry(penv)
        penv.podman("push", "--tls-verify=false", IMAGE, f"{penv.registry}/shoal-contract:1")
        pid = ensure_service(penv.socket, env=env, prefix=penv.nsenter, log_path=root / "service.log")
        assert pid is not None, f"something already answers on the fresh socket {penv.socket}"
        pids.append(pid)
        yield penv
    finally:
        _teardown(penv, pids)


def _busybox() -> Path | None:
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        if Path(candidate).exists():
            return Path(candidate)
    return None


def _network_backend() -> str:
    """netavark where installed (what the lab and DESIGN §7a assume), else CNI; SHOAL_CT_NETWORK_BACKEND overrides."""
    return "netavark" if Path("/usr/lib/podman/netavark").exists() else "cni"


def _ulimits() -> str:
    """Containers may not ask for more than this process's hard limits (no CAP_SYS_RESOURCE here, lab.md §2);
    nproc is capped like lab.sh does, so a fork bomb in a test container stays small."""
    nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 1048576)
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 4096)
    return f'"nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"'


def _write_config(root: Path, netns: str, backend: str) -> dict[str, str]:
    for sub in ("storage", "run", "tmp", "networks", "volumes", "registry"):
        (root / sub).mkdir()
    (root / "containers.conf").write_text(f"""\
[containers]
default_ulimits = [ {_ulimits()} ]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{root}/tmp/events.log"
tmp_dir = "{root}/tmp"
lock_type = "file"
static_dir = "{root}/storage/libpod"
volume_path = "{root}/volumes"
[network]
network_backend = "{backend}"
network_config_dir = "{root}/networks"
default_network = "{netns}"
default_subnet = "{DEFAULT_SUBNET}"
default_subnet_pools = [ {{ "base" = "{SUBNET_POOL}", "size" = 24 }} ]
""")
    (root / "storage.conf").write_text(f"""\
[storage]
driver = "overlay"
graphroot = "{root}/storage"
runroot = "{root}/run"
""")
    (root / "registries.conf").write_text(f"""\
[[registry]]
location = "127.0.0.1:{REGISTRY_PORT}"
insecure = true
""")
    env = {key: value for key, value in os.environ.items() if key != "CONTAINER_HOST"}  # lab.md P2
    env |= {"CONTAINERS_CONF": f"{root}/containers.conf", "CONTAINERS_STORAGE_CONF": f"{root}/storage.conf",
            "CONTAINERS_REGISTRIES_CONF": f"{root}/registries.conf"}
    return env


def _import_image(penv: PodmanEnv) -> None:
    """A 2 MB image from the static busybox: the binary plus applet symlinks, CMD a long sleep."""
    busybox = _busybox()
    assert busybox is not None
    tar_path = penv.root / "rootfs.tar"
    with tarfile.open(tar_path, "w") as tar:
        for directory in ("bin", "tmp", "etc", "proc", "sys", "dev"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox, arcname="bin/busybox")
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    penv.podman("import", "--change", 'CMD ["sleep", "3600"]', "--change", "ENV PATH=/bin", str(tar_path), IMAGE)


def _start_registry(penv: PodmanEnv) -> int:
    config = penv.root / "registry" / "config.yml"
    config.write_text(f"""\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {penv.root}/registry/data
http:
  addr: 127.0.0.1:{REGISTRY_PORT}
""")
    log = penv.root / "registry" / "registry.log"
    actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
               (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT, 0o600),
               (os.POSIX_SPAWN_DUP2, 1, 2)]
    argv = [*penv.nsenter, "docker-registry", "serve", str(config)]
    program = shutil.which(argv[0])
    assert program is not None
    return os.posix_spawn(program, argv, penv.env, file_actions=actions, setsid=True)


def _await_registry(penv: PodmanEnv, timeout_s: float = 10.0) -> None:
    url = f"http://{penv.registry}/v2/"

    def answers() -> bool:
        done = subprocess.run([*penv.nsenter, "curl", "-sf", "-m", "1", url], capture_output=True, check=False)
        return done.returncode == 0

    if not poll_until(answers, timeout_s, interval_s=0.05):
        log = (penv.root / "registry" / "registry.log").read_text(errors="replace")[-500:]
        raise AssertionError(f"registry on {url} not answering after {timeout_s} s: {log}")


def _teardown(penv: PodmanEnv, pids: list[int]) -> None:
    """Best effort, every step even if one fails: containers, our processes, leftovers, mounts, netns, dir."""
    netns_exists = Path(f"/run/netns/{penv.netns}").exists()
    cni_dirs: list[Path] = []
    if netns_exists and (penv.root / "storage").exists():
        with contextlib.suppress(subprocess.TimeoutExpired, AssertionError):
            cni_dirs = penv.cni_state_dirs()
            penv.podman("rm", "-a", "-f", "-t", "0", check=False)
    for pid in reversed(pids):
        _stop(pid)
    if netns_exists:
        _kill_netns_leftovers(penv.netns)
        subprocess.run(["ip", "netns", "del", penv.netns], capture_output=True, check=False)
    _unmount_under(penv.root)
    for directory in cni_dirs:
        shutil.rmtree(directory, ignore_errors=True)
    shutil.rmtree(penv.root, ignore_errors=True)


def _stop(pid: int) -> None:
    """SIGTERM, wait (it is our child: waitpid both waits and reaps), SIGKILL after SERVICE_STOP_S."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if poll_until(lambda: _reaped(pid), SERVICE_STOP_S, interval_s=0.05):
        return
    with contextlib.suppress(ProcessLookupError, ChildProcessError):
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _reaped(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:  # already reaped (or not ours): gone either way
        return True


def _kill_netns_leftovers(netns: str) -> None:
    """Whatever still runs in our namespace (a conmon whose container `rm` missed) was started by this env."""
    out = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, check=False).stdout
    for pid in (int(p) for p in out.split()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _unmount_under(root: Path) -> None:
    """Overlay and shm mounts of the private storage, deepest first; lazily, so a busy one cannot block us."""
    prefix = f"{root}/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for point in sorted(points, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
