"""Small builders shared by the probe tests: specs with probes, checks, outcomes."""

from __future__ import annotations

from dataclasses import replace

from node.manifest.model import Exec, Healthcheck, HttpGet, Probe, ServiceSpec, ShoalSettings, TcpSocket
from node.probes.model import Check, Kind, Outcome, Result, Target

OK = Outcome(Result.SUCCESS, "ok")
FAIL = Outcome(Result.FAILURE, "failed")
UNKNOWN = Outcome(Result.UNKNOWN, "engine not answering")


def check(kind: Kind = Kind.READINESS, *, period_s: float = 10.0, timeout_s: float = 1.0, failure: int = 3,
          success: int = 1, delay_s: float = 0.0, grace_s: float = 0.0) -> Check:
    return Check(kind=kind, action=TcpSocket(8080), period_s=period_s, timeout_s=timeout_s, failure_threshold=failure,
                 success_threshold=success, initial_delay_s=delay_s, grace_s=grace_s)


def probe(action: HttpGet | TcpSocket | Exec | None = None, **timing: float) -> Probe:
    return Probe(action=action or TcpSocket(8080), **timing)  # type: ignore[arg-type]


def service(name: str = "web", *, readiness: Probe | None = None, liveness: Probe | None = None,
            healthcheck: Healthcheck | None = None) -> ServiceSpec:
    spec = ServiceSpec(name=name, image="198.18.0.1:5000/shoal-demo:1")
    return replace(spec, healthcheck=healthcheck, x_shoal=ShoalSettings(readiness=readiness, liveness=liveness))


def target(container_id: str, spec: ServiceSpec, address: str | None = "198.19.1.2") -> Target:
    return Target(container_id=container_id, address=address, spec=spec)
