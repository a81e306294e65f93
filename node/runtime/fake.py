"""FakeRuntime: an in-memory, deterministic container engine with the Runtime protocol's semantics.

Role: the double for unit, component and simulation tests, checked against PodmanRuntime by tests/contract.
Tests steer it: which images are present (`images`) or pullable (`registry`), which calls fail next
(`fail_next`), an engine that is down (`down`), containers that exit on their own (`exit`, or `exits` at start),
containers Shoal does not own (`add_foreign`), what an exec in a container returns (`script_exec`, or `exec_result`
for every container); and they read back every call in order (`calls`).
Boundary: no I/O and no wall clock: timestamps come from the injected `clock` (epoch seconds); ids and addresses
are counters, so two runs of the same test see the same values.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Network, IPv6Network, ip_network

from node.runtime.base import EXITED, LABEL_SERVICE, RUNNING, Container, ContainerSpec, RuntimeFailure

DEFAULT_NETWORK = "podman"  # what a spec without a network joins, as in podman
DEFAULT_SUBNET = "10.88.0.0/16"  # podman's default network
SUBNET_POOL = "10.89.0.0/16"  # podman picks /24s from here when a network is created without a subnet
EXIT_ON_STOP = 143  # 128 + SIGTERM: the fake's containers honour SIGTERM

ExecResult = int | Exception
"""What an exec returns: an exit code, or an exception it raises (TimeoutError() for a command that hangs)."""


@dataclass(frozen=True, slots=True)
class Call:
    """One call the runtime received, e.g. Call("stop", ("<id>", 10.0)) or Call("run", (spec,))."""

    op: str
    args: tuple[object, ...]


class FakeRuntime:
    """Every method may raise RuntimeFailure, as the protocol says; state changes only when a call succeeds."""

    def __init__(self, *, clock: Callable[[], float], images: Iterable[str] = (), registry: Iterable[str] = (),
                 default_subnet: str = DEFAULT_SUBNET, subnet_pool: str = SUBNET_POOL,
                 exits: Callable[[ContainerSpec], int | None] | None = None,
                 exec_result: Callable[[ContainerSpec, tuple[str, ...], float], ExecResult] | None = None) -> None:
        self.clock = clock
        self.images: set[str] = set(images)
        self.registry: set[str] = set(registry)  # references `pull` can fetch
        self.networks: dict[str, str] = {DEFAULT_NETWORK: default_subnet}
        self.calls: list[Call] = []
        self.down = False  # True: every call fails as if the engine's socket were gone
        self._exits = exits  # spec -> exit code for containers whose command returns at once; None: keeps running
        self._pool = ip_network(subnet_pool)
        self._containers: dict[str, Container] = {}  # id -> container, in creation order
        self._specs: dict[str, ContainerSpec] = {}
        self._failures: dict[str, deque[RuntimeFailure]] = {}
        self._serial = 0
        # (spec, argv, timeout_s) -> result of an exec with no script left; None: every command exits 0
        self._exec_result = exec_result
        self._exec_scripts: dict[str, deque[ExecResult]] = {}

    # -- test controls -----------------------------------------------------------------------------------

    def fail_next(self, op: str, *, times: int = 1, temporary: bool = True, message: str | None = None) -> None:
        """The next `times` calls of `op` ("run", "pull", "stop", ...) raise RuntimeFailure and change nothing."""
        text = message or f"injected {'temporary' if temporary else 'permanent'} failure of {op}"
        self._failures.setdefault(op, deque()).extend(RuntimeFailure(text, temporary=temporary)
                                                      for _ in range(times))

    def exit(self, container_id: str, code: int) -> None:
        """The container's process ends with `code` (a crash, or a job finishing)."""
        container = self._containers[container_id]
        if container.state != RUNNING:
            raise ValueError(f"container {container_id} is {container.state}, not running")
        self._containers[container_id] = replace(container, state=EXITED, exit_code=code,
                                                 finished_at=self.clock(), address=None)

    def add_foreign(self, name: str, *, running: bool = True) -> str:
        """A container someone else started on the host (no LABEL_SERVICE): never listed, never replaced."""
        container_id = self._next_id()
        self._containers[container_id] = Container(
            id=container_id, name=name, image="docker.io/library/other:1", labels=(("owner", "someone-else"),),
            state=RUNNING if running else EXITED, exit_code=None if running else 0)
        return container_id

    def script_exec(self, container_id: str, *results: ExecResult) -> None:
        """The next execs in this container return (or raise) `results`, in order; the last one then repeats."""
        if not results:
            raise ValueError("script_exec needs at least one result")
        self._exec_scripts[container_id] = deque(results)

    def spec_of(self, container_id: str) -> ContainerSpec:
        """What the container was run with (podman shows the same through inspect)."""
        return self._specs[container_id]

    def ops(self) -> list[str]:
        """The operations received so far, in order: a compact view of `calls`."""
        return [call.op for call in self.calls]

    # -- the protocol --------------------------------------------------------------------------------------

    async def ping(self) -> None:
        self._enter("ping")

    async def containers(self) -> list[Container]:
        self._enter("containers")
        return [c for c in self._containers.values() if c.label(LABEL_SERVICE) is not None]

    async def image_present(self, image: str) -> bool:
        self._enter("image_present", image)
        return image in self.images

    async def pull(self, image: str) -> None:
        self._enter("pull", image)
        if image not in self.registry:
            raise RuntimeFailure(f"pull {image}: manifest unknown", temporary=False)
        self.images.add(image)

    async def run(self, spec: ContainerSpec) -> Container:
        self._enter("run", spec)
        self._check_runnable(spec)
        self._free_name(spec.name)
        container_id = self._next_id()
        now = self.clock()
        code = self._exits(spec) if self._exits is not None else None
        network = spec.network or DEFAULT_NETWORK
        container = Container(
            id=container_id, name=spec.name, image=spec.image, labels=tuple(sorted(spec.labels)),
            state=RUNNING if code is None else EXITED, exit_code=code, started_at=now,
            finished_at=None if code is None else now,
            address=self._free_address(network) if code is None else None)
        self._containers[container_id] = container
        self._specs[container_id] = spec
        return container

    async def stop(self, container_id: str, timeout_s: float) -> None:
        self._enter("stop", container_id, timeout_s)
        container = self._containers.get(container_id)
        if container is not None and container.state == RUNNING:
            self.exit(container_id, EXIT_ON_STOP)

    async def remove(self, container_id: str) -> None:
        self._enter("remove", container_id)
        self._containers.pop(container_id, None)
        self._specs.pop(container_id, None)

    async def exec(self, container_id: str, argv: Sequence[str], timeout_s: float) -> int:
        self._enter("exec", container_id, tuple(argv), timeout_s)
        container = self._containers.get(container_id)
        if container is None:
            raise RuntimeFailure(f"exec in container {container_id}: no such container", temporary=False)
        if container.state != RUNNING:
            raise RuntimeFailure(f"exec in container {container_id}: it is {container.state}, not running",
                                 temporary=False)
        script = self._exec_scripts.get(container_id)
        if script:
            result = script.popleft() if len(script) > 1 else script[0]
        elif self._exec_result is not None and container_id in self._specs:  # a foreign container has no spec
            result = self._exec_result(self._specs[container_id], tuple(argv), timeout_s)
        else:
            result = 0
        if isinstance(result, Exception):
            raise result
        return result

    async def ensure_network(self, name: str, subnet: str | None) -> str:
        self._enter("ensure_network", name, subnet)
        asked = parse_subnet(subnet) if subnet is not None else None
        existing = self.networks.get(name)
        if existing is not None:
            if asked is not None and asked != ip_network(existing):
                raise RuntimeFailure(f"network {name} exists with subnet {existing}, not the {subnet} asked for",
                                     temporary=False)
            return existing
        chosen = str(asked) if asked is not None else self._free_subnet()
        if any(ip_network(chosen).overlaps(ip_network(s)) for s in self.networks.values()):
            raise RuntimeFailure(f"subnet {chosen} is already used on the host or by another config",
                                 temporary=False)
        self.networks[name] = chosen
        return chosen

    async def close(self) -> None:
        self.calls.append(Call("close", ()))  # never fails: closing only lets go of the client

    # -- internals -----------------------------------------------------------------------------------------

    def _enter(self, op: str, *args: object) -> None:
        """Record the call, then fail it if the engine is down or a failure is queued for it."""
        self.calls.append(Call(op, args))
        if self.down:
            raise RuntimeFailure(f"{op}: podman is not answering (fake engine down)", temporary=True)
        queued = self._failures.get(op)
        if queued:
            raise queued.popleft()

    def _check_runnable(self, spec: ContainerSpec) -> None:
        if LABEL_SERVICE not in dict(spec.labels):
            raise RuntimeFailure(f"run container {spec.name}: no {LABEL_SERVICE} label, so Shoal could never list or "
                                 f"remove it", temporary=False)
        if spec.image not in self.images:
            raise RuntimeFailure(f"run container {spec.name} from {spec.image}: {spec.image}: image not known",
                                 temporary=False)
        if spec.network is not None and spec.network not in self.networks:
            raise RuntimeFailure(f"run container {spec.name}: network {spec.network} not found", temporary=False)

    def _free_name(self, name: str) -> None:
        holder = next((c for c in self._containers.values() if c.name == name), None)
        if holder is None:
            return
        if holder.label(LABEL_SERVICE) is None:
            raise RuntimeFailure(f"name {name} is taken by container {holder.id[:12]}, which Shoal does not own",
                                 temporary=False)
        if holder.state == RUNNING:
            raise RuntimeFailure(f"name {name} is taken by container {holder.id[:12]}, which is running",
                                 temporary=False)
        del self._containers[holder.id]
        self._specs.pop(holder.id, None)

    def _next_id(self) -> str:
        self._serial += 1
        return hashlib.sha256(b"fake-container-%d" % self._serial).hexdigest()

    def _free_address(self, network: str) -> str:
        taken = {c.address for c in self._containers.values()
                 if c.address is not None and (self._specs[c.id].network or DEFAULT_NETWORK) == network}
        hosts = ip_network(self.networks[network]).hosts()
        next(hosts, None)  # .1 is the bridge's gateway, as podman's IPAM reserves it
        for host in hosts:
            if str(host) not in taken:
                return str(host)
        raise RuntimeFailure(f"network {network}: no free address left in {self.networks[network]}", temporary=True)

    def _free_subnet(self) -> str:
        assert isinstance(self._pool, IPv4Network)
        for candidate in self._pool.subnets(new_prefix=24):
            if not any(candidate.overlaps(ip_network(s)) for s in self.networks.values()):
                return str(candidate)
        raise RuntimeFailure(f"no free subnet left in {self._pool}", temporary=False)


def parse_subnet(subnet: str) -> IPv4Network | IPv6Network:
    try:
        return ip_network(subnet, strict=False)
    except ValueError as exc:
        raise RuntimeFailure(f"invalid subnet {subnet!r}: {exc}", temporary=False) from exc
