"""The validated manifest: frozen, slotted, hashable dataclasses with every default filled in.

Only the validators build these from text or payloads; everything else reads them. Defaults follow
Swarm/Compose (moby/swarmkit api/defaults/service.go; Docker's HEALTHCHECK reference) and, for x-shoal probes,
Kubernetes' probe defaults. Durations are float seconds (`_s`), sizes are bytes (`_bytes`), CPUs are CPUs.
Collections are tuples in a canonical order (sorted where the order carries no meaning), so equal
manifests give equal specs and identical payloads.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.manifest.errors import ManifestWarning

REPLICATED, GLOBAL = "replicated", "global"
BLUE, GREEN = "blue", "green"  # x-shoal.blue_green sides
LABEL_PREFIX = "node.labels."


@dataclass(frozen=True, slots=True)
class Port:
    """Published on every node (port `published`), routed by the proxy to a replica's `target` port."""

    published: int
    target: int
    protocol: str = "tcp"  # the proxy is TCP only


@dataclass(frozen=True, slots=True)
class Constraint:
    """One placement constraint: `attribute op value`, e.g. node.labels.disk == ssd."""

    attribute: str  # "node.id", "node.name" or "node.labels.<key>"
    op: str  # "==" or "!="
    value: str

    @property
    def label(self) -> str | None:
        """The label key for node.labels.<key>, else None."""
        return self.attribute.removeprefix(LABEL_PREFIX) if self.attribute.startswith(LABEL_PREFIX) else None

    def matches(self, actual: str | None) -> bool:
        """Does a node whose attribute is `actual` (None: a label it lacks) satisfy this? As Swarm: a missing
        label never equals and always differs."""
        return (actual == self.value) if self.op == "==" else (actual != self.value)

    def __str__(self) -> str:
        return f"{self.attribute} {self.op} {self.value}"


@dataclass(frozen=True, slots=True)
class Placement:
    constraints: tuple[Constraint, ...] = ()
    spread: tuple[str, ...] = ()  # preferences: label keys to spread over, in order (node.labels.<key>)
    max_replicas_per_node: int = 0  # 0 = unlimited, as in Swarm


@dataclass(frozen=True, slots=True)
class UpdateConfig:
    """Rolling update (update_config) or rollback (rollback_config) pacing; Swarm's defaults."""

    parallelism: int = 1  # replicas replaced at once; 0 = all at once
    delay_s: float = 0.0  # between batches
    failure_action: str = "pause"  # update: pause | continue | rollback; rollback: pause | continue
    monitor_s: float = 5.0  # how long after each replacement a failure still counts against the update
    max_failure_ratio: float = 0.0  # failures tolerated, as a fraction of the replicas updated
    order: str = "stop-first"  # or start-first (the new replica starts before the old one stops)


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    condition: str = "any"  # none | on-failure | any
    delay_s: float = 5.0
    max_attempts: int = 0  # 0 = unlimited
    window_s: float = 0.0  # how long a restart must run to count as a success; 0 = at once


@dataclass(frozen=True, slots=True)
class ResourceSet:
    cpus: float | None = None  # None = not set
    memory_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class Resources:
    limits: ResourceSet = ResourceSet()
    reservations: ResourceSet = ResourceSet()


@dataclass(frozen=True, slots=True)
class Deploy:
    mode: str = REPLICATED  # or GLOBAL: one replica per eligible node
    replicas: int = 1  # replicated mode only; kept at 1 (and not shown) for global services
    placement: Placement = Placement()
    update_config: UpdateConfig = UpdateConfig()
    rollback_config: UpdateConfig = UpdateConfig()
    restart_policy: RestartPolicy = RestartPolicy()
    resources: Resources = Resources()


@dataclass(frozen=True, slots=True)
class Healthcheck:
    """The container's own health check (run by podman). test None = the image's HEALTHCHECK command."""

    test: tuple[str, ...] | None = None  # ("CMD", arg...), ("CMD-SHELL", line) or ("NONE",) = disabled
    interval_s: float = 30.0
    timeout_s: float = 30.0
    retries: int = 3
    start_period_s: float = 0.0

    @property
    def disabled(self) -> bool:
        return self.test == ("NONE",)


@dataclass(frozen=True, slots=True)
class HttpGet:
    port: int
    path: str = "/"


@dataclass(frozen=True, slots=True)
class TcpSocket:
    port: int


@dataclass(frozen=True, slots=True)
class Exec:
    command: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Probe:
    """A Shoal probe (x-shoal readiness/liveness); defaults are Kubernetes'."""

    action: HttpGet | TcpSocket | Exec
    period_s: float = 10.0
    timeout_s: float = 1.0
    failure_threshold: int = 3
    success_threshold: int = 1  # must be 1 for liveness, as in Kubernetes
    initial_delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Canary:
    """A variant that receives `weight_percent` of new connections. environment is merged over the service's."""

    weight_percent: float  # 0 < w <= 100
    image: str | None = None  # None = the service's
    command: tuple[str, ...] | None = None
    environment: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class BlueGreen:
    """x-shoal blue_green: the green side (what differs from the service's spec, which is blue) and the live side.
    environment is merged over the service's; `active` is not part of either side's version (node.rollout.bluegreen)."""

    image: str | None = None  # None = the service's
    command: tuple[str, ...] | None = None
    environment: tuple[tuple[str, str], ...] = ()  # sorted by name
    active: str = BLUE

    def __post_init__(self) -> None:
        if self.active not in (BLUE, GREEN):
            raise ValueError(f"active must be {BLUE} or {GREEN}, not {self.active!r}")


@dataclass(frozen=True, slots=True, order=True)
class AllowRule:
    """x-shoal allow: new connections from every replica of a service, from every replica on a network, or
    from an IPv4 network, to some or all of this service's ports (beyond what its networks admit)."""

    kind: str  # "service", "network" or "cidr": the one key under `from`
    source: str  # the service or network name, or the CIDR in canonical form (an address is a /32)
    ports: tuple[int, ...] = ()  # sorted, unique, each a target or expose port; () = every port


@dataclass(frozen=True, slots=True)
class Ingress:
    """x-shoal ingress: who may connect to the service's published ports (without it: everyone)."""

    allow: tuple[str, ...] = ()  # IPv4 networks in canonical form, sorted by address; () = nobody


@dataclass(frozen=True, slots=True)
class ShoalSettings:
    """The service's x-shoal extension."""

    readiness: Probe | None = None
    liveness: Probe | None = None
    canary: Canary | None = None
    blue_green: BlueGreen | None = None  # never together with a canary
    proxy_protocol: bool = False  # proxied connections open with a PROXY v2 header carrying the client's address
    allow: tuple[AllowRule, ...] = ()  # sorted, unique
    ingress: Ingress | None = None  # None: published ports are open to everyone (SPEC's default)


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str  # a DNS label: other services reach this one by it
    image: str
    command: tuple[str, ...] | None = None  # None = the image's CMD
    environment: tuple[tuple[str, str], ...] = ()  # sorted by name
    ports: tuple[Port, ...] = ()  # sorted by published port
    expose: tuple[int, ...] = ()  # sorted, unique
    networks: tuple[str, ...] = ("default",)  # sorted, unique
    deploy: Deploy = Deploy()
    healthcheck: Healthcheck | None = None  # None = the image's, if it has one
    x_shoal: ShoalSettings = ShoalSettings()

    @property
    def mode(self) -> str:
        return self.deploy.mode

    @property
    def replicas(self) -> int:
        return self.deploy.replicas

    @property
    def env(self) -> dict[str, str]:
        return dict(self.environment)


@dataclass(frozen=True, slots=True)
class Manifest:
    services: tuple[ServiceSpec, ...]  # sorted by name
    networks: tuple[str, ...]  # declared top-level network names, sorted
    warnings: tuple[ManifestWarning, ...] = ()

    def service(self, name: str) -> ServiceSpec | None:
        return next((s for s in self.services if s.name == name), None)

