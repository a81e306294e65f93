"""Podman for lab hosts, as data: each host's config files, environment and command lines.

Role: every decision the lab makes about podman. Host hI gets a podman of its own, kept apart from the other
hosts and from the machine's podman as a separate machine's would be: config, storage, run state, locks
(lock_type="file": the default SHM locks are machine-wide, research P3) and network configs all live in hI/ and
reach podman through CONTAINERS_CONF, CONTAINERS_STORAGE_CONF and CONTAINERS_REGISTRIES_CONF. The builder of the
demo images gets the same shape in builder/.
Boundary: pure; hostpodman.py and registryd.py write these files and run these commands.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from node.lab.plan import Cmd

# Podman's default network ("podman") in every host. The agent makes its own network `shoal` on the host's
# subnet 198.19.I.0/24, and podman refuses a second network on a subnet one of its networks already has
# ("subnet 198.19.2.0/24 is already used on the host or by another config"), so the default network lives
# elsewhere: 198.19.255.0/24 is inside the lab's reserved block, is no host's subnet (hosts stop at 244), and is
# never routed between hosts, so every host can use the same one.
DEFAULT_NETWORK_SUBNET = "198.19.255.0/24"
NOFILE_CAP = 1_048_576  # the kernel's default nr_open; host-install.sh caps the same way
NPROC_CAP = 4096  # per container: plenty for a service, small enough to stop a fork bomb
UNIX_PATH_MAX = 107  # sun_path holds 108 bytes including the NUL
CONFIG_VARS = ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "CONTAINERS_REGISTRIES_CONF")
# Either one turns the podman CLI into a remote client (research P2): the service could not start, and a
# `podman rm` meant for one host would go to whichever socket the operator's shell points at.
REMOTE_VARS = ("CONTAINER_HOST", "CONTAINER_CONNECTION")
OVERLAYFS_TYPE = "overlay"
_CONTAINER_ID = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class PodmanPaths:
    """Where one podman instance (a lab host's, or the builder's) keeps everything; all under `root`."""

    root: Path

    @property
    def containers_conf(self) -> Path:
        return self.root / "containers.conf"

    @property
    def storage_conf(self) -> Path:
        return self.root / "storage.conf"

    @property
    def registries_conf(self) -> Path:
        return self.root / "registries.conf"

    @property
    def graphroot(self) -> Path:
        """Images, containers and podman's database: what survives a reboot."""
        return self.root / "storage"

    @property
    def runroot(self) -> Path:
        """Storage's run state (mount counts, locks): a real host keeps it on tmpfs, gone after a reboot."""
        return self.root / "run"

    @property
    def tmp_dir(self) -> Path:
        """libpod's run state; podman "refreshes" (a reboot happened) when its `alive` file is missing."""
        return self.root / "tmp"

    @property
    def volumes(self) -> Path:
        return self.root / "volumes"

    @property
    def networks(self) -> Path:
        return self.root / "networks"

    @property
    def socket(self) -> Path:
        return self.root / "podman.sock"

    @property
    def log(self) -> Path:
        return self.root / "podman.log"

    @property
    def pid_file(self) -> Path:
        return self.root / "podman.pid"

    @property
    def url(self) -> str:
        """What CONTAINER_HOST (or `podman --url`) takes to reach this podman's API service."""
        return f"unix://{self.socket}"

    def volatile(self) -> tuple[Path, Path]:
        """What a reboot clears: the run state of storage and of libpod."""
        return (self.runroot, self.tmp_dir)


def _q(value: object) -> str:
    """A TOML basic string (JSON's escapes are TOML's for everything a path holds)."""
    return json.dumps(str(value))


def default_ulimits(nofile_hard: int, nproc_hard: int) -> tuple[str, str]:
    """Container ulimits no higher than the hard limits podman runs under (negative = unlimited): without
    CAP_SYS_RESOURCE, runc cannot raise a limit above them ("error setting rlimit type 7"), and it needs both
    nofile and nproc set (research §2)."""
    nofile = NOFILE_CAP if nofile_hard < 0 else min(nofile_hard, NOFILE_CAP)
    nproc = NPROC_CAP if nproc_hard < 0 else min(nproc_hard, NPROC_CAP)
    return (f"nofile={nofile}:{nofile}", f"nproc={nproc}:{nproc}")


def containers_conf(paths: PodmanPaths, ulimits: Sequence[str]) -> str:
    """containers.conf for one instance. With CONTAINERS_CONF set, podman reads no other containers.conf
    (not the machine's, nor its drop-ins), so everything that matters is here."""
    limits = ", ".join(_q(limit) for limit in ulimits)
    return f"""\
# Written by `shoal lab` for {paths.root}; read through CONTAINERS_CONF (podman then reads no other containers.conf).
[containers]
default_ulimits = [{limits}]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = {_q(paths.tmp_dir / "events.log")}
lock_type = "file"
tmp_dir = {_q(paths.tmp_dir)}
static_dir = {_q(paths.graphroot / "libpod")}
volume_path = {_q(paths.volumes)}

[network]
network_backend = "netavark"
network_config_dir = {_q(paths.networks)}
default_subnet = {_q(DEFAULT_NETWORK_SUBNET)}
"""


def storage_conf(paths: PodmanPaths, driver: str) -> str:
    return f"""\
# Written by `shoal lab` for {paths.root}; read through CONTAINERS_STORAGE_CONF.
[storage]
driver = {_q(driver)}
graphroot = {_q(paths.graphroot)}
runroot = {_q(paths.runroot)}
"""


def registries_conf(insecure: Iterable[str]) -> str:
    """registries.conf marking the lab registry plain HTTP. podman also reads the machine's
    /etc/containers/registries.conf.d/*.conf on top of this file; the lab always names images in full."""
    blocks = "".join(f"\n[[registry]]\nlocation = {_q(location)}\ninsecure = true\n" for location in insecure)
    return f"# Written by `shoal lab`; read through CONTAINERS_REGISTRIES_CONF.\n{blocks}"


def env(base: Mapping[str, str], paths: PodmanPaths) -> dict[str, str]:
    """`base` pointed at this instance's config, without the variables that make podman a remote client."""
    out = {key: value for key, value in base.items() if key not in REMOTE_VARS}
    out["CONTAINERS_CONF"] = str(paths.containers_conf)
    out["CONTAINERS_STORAGE_CONF"] = str(paths.storage_conf)
    out["CONTAINERS_REGISTRIES_CONF"] = str(paths.registries_conf)
    return out


def service_argv(paths: PodmanPaths) -> Cmd:
    """The API service; --time=0: it never exits for being idle."""
    return ("podman", "system", "service", "--time=0", paths.url)


def is_service(args: Sequence[str], paths: PodmanPaths) -> bool:
    """True if a command line is this instance's API service (the pid in podman.pid may have been reused)."""
    return len(args) >= 3 and Path(args[0]).name == "podman" and args[1:3] == ["system", "service"] and (
        paths.url in args
    )


def remove_all_argv() -> Cmd:
    """Remove every container at once: no grace (-t 0), running or not."""
    return ("podman", "rm", "--all", "--force", "--time", "0")


def stop_all_argv() -> Cmd:
    """After a power cut: podman believes its containers still run; stopping them makes it release what it
    holds for them (addresses in its IPAM database, container network namespaces, rootfs mounts)."""
    return ("podman", "stop", "--all", "--time", "0")


def storage_driver(mountinfo: str, path: Path) -> str:
    """overlay, unless `path` lies on an overlayfs (a CI job inside a container), where podman's overlay
    driver cannot mount and vfs (a full copy per container) is the fallback."""
    best, fstype = "", ""
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        point = fields[4].replace("\\040", " ")
        after = line.split(" - ", 1)[1].split()
        inside = str(path) == point or str(path).startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best) and after:
            best, fstype = point, after[0]
    return "vfs" if fstype == OVERLAYFS_TYPE else "overlay"


def socket_problem(paths: PodmanPaths) -> str | None:
    """Why the API socket cannot live at its path (a unix socket path is at most 107 bytes), or None."""
    length = len(str(paths.socket).encode())
    if length <= UNIX_PATH_MAX:
        return None
    return (
        f"the podman socket path {paths.socket} is {length} bytes, over the {UNIX_PATH_MAX} a unix socket allows; "
        "use a shorter SHOAL_LAB_DIR"
    )


def container_ids(names: Iterable[str]) -> set[str]:
    """Container ids among the directory names of <graphroot>/<driver>-containers/."""
    return {name for name in names if _CONTAINER_ID.fullmatch(name)}


def runtime_leftovers(ids: Iterable[str], cgroup_roots: Iterable[Path]) -> list[Path]:
    """What runc and cgroupfs keep outside the lab dir for containers that died without podman noticing (a
    power cut): runc's state dir /run/runc/<id>, and the container's cgroup in every hierarchy. A reboot
    clears both; the lab removes them, deepest first. Only ids of this host's own storage are ever passed."""
    found: list[Path] = []
    for cid in sorted(ids):
        found.append(Path("/run/runc") / cid)
        found += [root / "libpod_parent" / f"libpod-{cid}" for root in cgroup_roots]
    return found
