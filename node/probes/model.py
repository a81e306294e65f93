"""What to probe and how often: a service's probes as Check values, and the Outcome of one probe run.

Role: turn a ServiceSpec's `x-shoal.readiness`, `x-shoal.liveness` and Compose `healthcheck` into Checks, one per
kind, with one timing model for all three. Kubernetes semantics for the x-shoal probes; Docker's for the
healthcheck, which Shoal runs as a second liveness probe (podman without systemd schedules none here).
Boundary: pure values; no I/O, no clock. node/probes/state.py decides from Outcomes, the runners produce them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from node.manifest.model import Exec, Healthcheck, HttpGet, Probe, ServiceSpec, TcpSocket

# Probing faster than 10/s is load, not information (the x-shoal reader refuses less than this already; a Compose
# healthcheck may say 1ms, which Docker accepts, so it is raised to this floor here).
MIN_PERIOD_S = 0.1
SHELL = ("/bin/sh", "-c")  # how Docker runs a CMD-SHELL health check on Linux


class Kind(enum.Enum):
    """Which probe. READINESS starts not ready; LIVENESS and HEALTHCHECK start alive and, when they fail, ask for
    a restart."""

    READINESS = "readiness"
    LIVENESS = "liveness"
    HEALTHCHECK = "healthcheck"

    @property
    def restarts(self) -> bool:
        """Does a failure of this kind want the container restarted (rather than taken out of rotation)?"""
        return self is not Kind.READINESS


class Result(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN = "unknown"  # no evidence about the container (engine not answering, no address yet): changes nothing


@dataclass(frozen=True, slots=True)
class Outcome:
    """One probe run: its result and a short human reason ("HTTP 503", "timed out after 1.0 s", "exit 1")."""

    result: Result
    detail: str

    @property
    def ok(self) -> bool:
        return self.result is Result.SUCCESS


@dataclass(frozen=True, slots=True)
class Target:
    """A running replica to probe: its container, its address on its network, and its service's spec."""

    container_id: str
    address: str | None  # None: HTTP and TCP probes cannot run (UNKNOWN); exec probes can
    spec: ServiceSpec


@dataclass(frozen=True, slots=True)
class Check:
    """One probe of one kind, with its schedule and thresholds (Kubernetes' names and meanings)."""

    kind: Kind
    action: HttpGet | TcpSocket | Exec
    period_s: float
    timeout_s: float
    failure_threshold: int  # consecutive failures that turn healthy into unhealthy
    success_threshold: int  # consecutive successes that turn unhealthy into healthy
    initial_delay_s: float  # from when the prober first sees the container to its first probe
    grace_s: float = 0.0  # Docker's start_period: failures before the first success are ignored for this long


def checks_for(spec: ServiceSpec) -> tuple[Check, ...]:
    """The service's checks, at most one per kind, in Kind order."""
    found = [from_probe(Kind.READINESS, spec.x_shoal.readiness) if spec.x_shoal.readiness else None,
             from_probe(Kind.LIVENESS, spec.x_shoal.liveness) if spec.x_shoal.liveness else None,
             from_healthcheck(spec.healthcheck) if spec.healthcheck else None]
    return tuple(check for check in found if check is not None)


def from_probe(kind: Kind, probe: Probe) -> Check:
    return Check(kind=kind, action=probe.action, period_s=max(probe.period_s, MIN_PERIOD_S),
                 timeout_s=probe.timeout_s, failure_threshold=probe.failure_threshold,
                 # Kubernetes requires 1 for liveness (the manifest reader enforces it); kept robust here too
                 success_threshold=1 if kind.restarts else probe.success_threshold,
                 initial_delay_s=probe.initial_delay_s)


def from_healthcheck(check: Healthcheck) -> Check | None:
    """Docker's HEALTHCHECK timing: the first check runs one interval after the start, a check longer than timeout
    fails, `retries` consecutive failures make it unhealthy, failures within start_period do not count until the
    first success. None when disabled, or when it is the image's own (test None: the image is not inspected here)."""
    argv = healthcheck_argv(check.test)
    if argv is None:
        return None
    period_s = max(check.interval_s, MIN_PERIOD_S)
    return Check(kind=Kind.HEALTHCHECK, action=Exec(argv), period_s=period_s, timeout_s=check.timeout_s,
                 failure_threshold=check.retries, success_threshold=1, initial_delay_s=period_s,
                 grace_s=check.start_period_s)


def healthcheck_argv(test: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """["CMD", arg...] -> the args; ["CMD-SHELL", line] -> /bin/sh -c line; ["NONE"] or None -> None."""
    if not test:
        return None
    kind, args = test[0], test[1:]
    if kind == "CMD" and args:
        return args
    if kind == "CMD-SHELL" and len(args) == 1:
        return (*SHELL, args[0])
    return None  # NONE, or a shape the manifest reader would have refused
