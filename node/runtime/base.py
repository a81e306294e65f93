"""The container runtime boundary: what the reconciler asks of a host's container engine.

Role: one protocol (`Runtime`), the value types that cross it, and the two error kinds the reconciler
tells apart (temporary: retry with backoff; permanent: report the replica failed, retry slowly).
Boundary: no podman here. node/runtime/podman.py adapts podman-py to this protocol, node/runtime/fake.py
is the in-memory double for unit and simulation tests; tests/contract runs one suite against both.
Only containers that carry the `shoal.service` label are Shoal's: a runtime never lists, stops or removes
anything else on the host.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

LABEL_SERVICE = "shoal.service"
LABEL_REPLICA = "shoal.replica"  # the slot index, decimal
LABEL_GENERATION = "shoal.generation"  # the spec generation the container was started from
LABEL_VERSION = "shoal.version"  # hash of the container-relevant fields of the spec (DESIGN §7b)
LABEL_IMAGE = "shoal.image"  # the image reference as the manifest names it
LABEL_RESTARTS = "shoal.restarts"  # how many times this slot was restarted before this container

# Container states as the runtime reports them (podman's, narrowed).
CREATED, RUNNING, EXITED, PAUSED, STOPPING, REMOVING, UNKNOWN = (
    "created", "running", "exited", "paused", "stopping", "removing", "unknown")


class RuntimeFailure(Exception):
    """An operation failed. `temporary` says whether retrying the same call may succeed (engine busy,
    socket not up yet, registry unreachable) or not (image does not exist, invalid spec)."""

    def __init__(self, message: str, *, temporary: bool) -> None:
        super().__init__(message)
        self.temporary = temporary


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """Everything needed to create and start one replica's container."""

    name: str  # unique on the host, e.g. shoal.web.3.1a2b3c4d
    image: str  # fully qualified (registry/repo:tag)
    command: tuple[str, ...] | None  # None = the image's CMD
    env: tuple[tuple[str, str], ...]
    labels: tuple[tuple[str, str], ...]  # sorted; always includes LABEL_SERVICE
    hostname: str  # each replica has its own, e.g. web-3
    network: str | None = None  # the host's Shoal network; None = the engine's default
    dns: tuple[str, ...] = ()  # resolvers to put in the container's resolv.conf
    cpus: float | None = None  # limit; None = unlimited
    memory_bytes: int | None = None  # limit; None = unlimited


@dataclass(frozen=True, slots=True)
class Container:
    """One Shoal container as the runtime sees it now."""

    id: str  # full engine id (what `podman inspect` accepts)
    name: str
    image: str  # the reference it was created from
    labels: tuple[tuple[str, str], ...]  # sorted
    state: str  # one of the states above
    exit_code: int | None = None  # when exited
    started_at: float | None = None  # epoch seconds of the last start, when known
    finished_at: float | None = None  # epoch seconds of the last exit, when known
    address: str | None = None  # its IPv4 address on its network while running

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)


class Runtime(Protocol):
    """A host's container engine. Every method may raise RuntimeFailure; none blocks the event loop."""

    async def ping(self) -> None:
        """Succeeds when the engine answers."""

    async def containers(self) -> list[Container]:
        """Every container labelled LABEL_SERVICE, in any state."""

    async def image_present(self, image: str) -> bool: ...

    async def pull(self, image: str) -> None:
        """Fetch `image` from its registry; RuntimeFailure(temporary=False) if it does not exist."""

    async def run(self, spec: ContainerSpec) -> Container:
        """Create and start a container; the image must be present. A name already taken is replaced only
        if that container is not running; otherwise RuntimeFailure(temporary=False)."""

    async def stop(self, container_id: str, timeout_s: float) -> None:
        """SIGTERM, then SIGKILL after timeout_s; stopping a stopped or missing container is not an error."""

    async def remove(self, container_id: str) -> None:
        """Remove (forcibly); removing a missing container is not an error."""

    async def exec(self, container_id: str, argv: Sequence[str], timeout_s: float) -> int:
        """Run `argv` inside the running container (no stdin, no tty, output discarded) and return its exit code;
        a command that cannot be run is an exit code too (126 not executable, 127 not found, as a shell says).
        TimeoutError when it has not ended within timeout_s (it may go on running inside the container: engines
        do not kill it); RuntimeFailure(temporary=False) when the container is missing or not running."""

    async def ensure_network(self, name: str, subnet: str | None) -> str:
        """Create the bridge network `name` with DNS disabled and `subnet` (None: the engine picks a free one),
        unless it exists; return its subnet. An existing network with another subnet than the one asked for is
        RuntimeFailure(temporary=False), naming both."""

    async def close(self) -> None: ...
