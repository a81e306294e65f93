"""A service's probes as Checks: x-shoal readiness/liveness as Kubernetes, the Compose healthcheck as Docker."""

from __future__ import annotations

import pytest

from node.manifest import parse_manifest
from node.manifest.model import Exec, Healthcheck, HttpGet, TcpSocket
from node.probes.model import MIN_PERIOD_S, Check, Kind, checks_for, healthcheck_argv
from tests.unit.probes.helpers import probe, service


def test_a_service_without_probes_has_no_checks() -> None:
    assert checks_for(service()) == ()


def test_x_shoal_probes_keep_their_timing_and_thresholds() -> None:
    spec = service(readiness=probe(HttpGet(8080, "/ready"), period_s=2.0, timeout_s=0.5, failure_threshold=2,
                                   success_threshold=3, initial_delay_s=4.0),
                   liveness=probe(TcpSocket(9090), period_s=5.0))
    assert checks_for(spec) == (
        Check(Kind.READINESS, HttpGet(8080, "/ready"), period_s=2.0, timeout_s=0.5, failure_threshold=2,
              success_threshold=3, initial_delay_s=4.0),
        Check(Kind.LIVENESS, TcpSocket(9090), period_s=5.0, timeout_s=1.0, failure_threshold=3, success_threshold=1,
              initial_delay_s=0.0),
    )


def test_healthcheck_is_a_liveness_check_with_dockers_timing() -> None:
    spec = service(healthcheck=Healthcheck(test=("CMD", "wget", "-q", "http://127.0.0.1/"), interval_s=2.0,
                                           timeout_s=3.0, retries=4, start_period_s=10.0))
    assert checks_for(spec) == (
        Check(Kind.HEALTHCHECK, Exec(("wget", "-q", "http://127.0.0.1/")), period_s=2.0, timeout_s=3.0,
              failure_threshold=4, success_threshold=1, initial_delay_s=2.0, grace_s=10.0),
    )
    assert Kind.HEALTHCHECK.restarts and Kind.LIVENESS.restarts and not Kind.READINESS.restarts


@pytest.mark.parametrize(("test", "argv"), [
    (("CMD", "cat", "/tmp/ok"), ("cat", "/tmp/ok")),
    (("CMD-SHELL", "test -f /tmp/ok && echo yes"), ("/bin/sh", "-c", "test -f /tmp/ok && echo yes")),
    (("NONE",), None),  # disabled
    (None, None),  # the image's own HEALTHCHECK: not inspected here, so not run
    (("CMD",), None),
])
def test_healthcheck_test_forms(test: tuple[str, ...] | None, argv: tuple[str, ...] | None) -> None:
    assert healthcheck_argv(test) == argv
    expected = () if argv is None else (Kind.HEALTHCHECK,)
    assert tuple(c.kind for c in checks_for(service(healthcheck=Healthcheck(test=test)))) == expected


def test_a_healthcheck_interval_below_the_floor_is_raised_to_it() -> None:
    [c] = checks_for(service(healthcheck=Healthcheck(test=("CMD", "true"), interval_s=0.001)))
    assert c.period_s == MIN_PERIOD_S and c.initial_delay_s == MIN_PERIOD_S


def test_all_three_from_a_manifest_in_kind_order() -> None:
    manifest = parse_manifest("""
services:
  web:
    image: 198.18.0.1:5000/shoal-demo:1
    healthcheck: {test: "wget -q -O- http://127.0.0.1:8080/", interval: 2s, retries: 3, start_period: 5s}
    x-shoal:
      liveness: {tcp_socket: {port: 8080}, period: 2s, failure_threshold: 3}
      readiness: {http_get: {path: /, port: 8080}, period: 1s, failure_threshold: 2}
""")
    [spec] = manifest.services
    checks = checks_for(spec)
    assert [c.kind for c in checks] == [Kind.READINESS, Kind.LIVENESS, Kind.HEALTHCHECK]
    assert checks[0].action == HttpGet(8080, "/") and checks[0].failure_threshold == 2 and checks[0].period_s == 1.0
    assert checks[2].action == Exec(("/bin/sh", "-c", "wget -q -O- http://127.0.0.1:8080/"))
    assert checks[2].grace_s == 5.0
