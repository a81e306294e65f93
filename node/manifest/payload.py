"""ServiceSpec -> its canonical payload: a JSON-serialisable Compose service body with every default written out.

The payload is what is signed and gossiped, and what `shoal` shows back to users, so it is itself a valid
Compose service body, deterministic (the same spec always gives the same dict, and json.dumps(...,
sort_keys=True) the same bytes), and reads back to the same spec: spec_from_payload(s.name,
spec_to_payload(s)) == s. Durations print in Go's style ('1m30s'), memory in the largest exact unit ('64M').
"""

from __future__ import annotations

import json

from node.manifest.model import (
    GLOBAL,
    LABEL_PREFIX,
    BlueGreen,
    Canary,
    Deploy,
    Exec,
    Healthcheck,
    HttpGet,
    Probe,
    ResourceSet,
    ServiceSpec,
    ShoalSettings,
    TcpSocket,
    UpdateConfig,
)
from node.manifest.units import format_bytes, format_seconds


def spec_bytes(spec: ServiceSpec) -> bytes:
    """The canonical payload as compact, key-sorted UTF-8 JSON: what is stored, signed and size-limited."""
    return json.dumps(spec_to_payload(spec), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def spec_to_payload(spec: ServiceSpec) -> dict[str, object]:
    body: dict[str, object] = {"image": spec.image}
    if spec.command is not None:
        body["command"] = list(spec.command)
    body.update({
        "environment": dict(spec.environment),
        "ports": [{"target": p.target, "published": p.published, "protocol": p.protocol, "mode": "ingress"}
                  for p in spec.ports],
        "expose": [str(port) for port in spec.expose],
        "networks": list(spec.networks),
        "deploy": _deploy(spec.deploy),
    })
    if spec.healthcheck is not None:
        body["healthcheck"] = _healthcheck(spec.healthcheck)
    if spec.x_shoal != ShoalSettings():
        body["x-shoal"] = _x_shoal(spec.x_shoal)
    return body


def _deploy(deploy: Deploy) -> dict[str, object]:
    placement: dict[str, object] = {
        "constraints": [str(c) for c in deploy.placement.constraints],
        "preferences": [{"spread": LABEL_PREFIX + label} for label in deploy.placement.spread],
    }
    body: dict[str, object] = {"mode": deploy.mode}
    if deploy.mode != GLOBAL:  # Compose refuses replicas and max_replicas_per_node on a global service
        body["replicas"] = deploy.replicas
        placement["max_replicas_per_node"] = deploy.placement.max_replicas_per_node
    restart = deploy.restart_policy
    body.update({
        "placement": placement,
        "update_config": _update(deploy.update_config),
        "rollback_config": _update(deploy.rollback_config),
        "restart_policy": {"condition": restart.condition, "delay": format_seconds(restart.delay_s),
                           "max_attempts": restart.max_attempts, "window": format_seconds(restart.window_s)},
        "resources": {"limits": _resources(deploy.resources.limits),
                      "reservations": _resources(deploy.resources.reservations)},
    })
    return body


def _update(update: UpdateConfig) -> dict[str, object]:
    return {"parallelism": update.parallelism, "delay": format_seconds(update.delay_s),
            "failure_action": update.failure_action, "monitor": format_seconds(update.monitor_s),
            "max_failure_ratio": update.max_failure_ratio, "order": update.order}


def _resources(amounts: ResourceSet) -> dict[str, object]:
    body: dict[str, object] = {}
    if amounts.cpus is not None:
        body["cpus"] = repr(amounts.cpus)  # a string, as Compose writes it; repr reads back to the same float
    if amounts.memory_bytes is not None:
        body["memory"] = format_bytes(amounts.memory_bytes)
    return body


def _healthcheck(check: Healthcheck) -> dict[str, object]:
    body: dict[str, object] = {} if check.test is None else {"test": list(check.test)}
    body.update({"interval": format_seconds(check.interval_s), "timeout": format_seconds(check.timeout_s),
                 "retries": check.retries, "start_period": format_seconds(check.start_period_s)})
    return body


def _x_shoal(settings: ShoalSettings) -> dict[str, object]:
    body: dict[str, object] = {}
    for key, probe in (("readiness", settings.readiness), ("liveness", settings.liveness)):
        if probe is not None:
            body[key] = _probe(probe)
    if settings.canary is not None:
        body["canary"] = _canary(settings.canary)
    if settings.blue_green is not None:
        body["blue_green"] = _blue_green(settings.blue_green)
    if settings.proxy_protocol:
        body["proxy_protocol"] = True
    if settings.allow:
        body["allow"] = [{"from": {rule.kind: rule.source}, **({"ports": list(rule.ports)} if rule.ports else {})}
                         for rule in settings.allow]
    if settings.ingress is not None:
        body["ingress"] = {"allow": list(settings.ingress.allow)}
    return body


def _probe(probe: Probe) -> dict[str, object]:
    body: dict[str, object]
    match probe.action:
        case HttpGet(port=port, path=path):
            body = {"http_get": {"path": path, "port": port}}
        case TcpSocket(port=port):
            body = {"tcp_socket": {"port": port}}
        case Exec(command=command):
            body = {"exec": {"command": list(command)}}
    return {**body, "period": format_seconds(probe.period_s), "timeout": format_seconds(probe.timeout_s),
            "failure_threshold": probe.failure_threshold, "success_threshold": probe.success_threshold,
            "initial_delay": format_seconds(probe.initial_delay_s)}


def _canary(canary: Canary) -> dict[str, object]:
    return {"weight": canary.weight_percent, **_variant(canary.image, canary.command, canary.environment)}


def _blue_green(sides: BlueGreen) -> dict[str, object]:
    return {"active": sides.active, **_variant(sides.image, sides.command, sides.environment)}


def _variant(image: str | None, command: tuple[str, ...] | None,
             environment: tuple[tuple[str, str], ...]) -> dict[str, object]:
    """What a canary or a green side changes: only the fields it sets."""
    body: dict[str, object] = {}
    if image is not None:
        body["image"] = image
    if command is not None:
        body["command"] = list(command)
    if environment:
        body["environment"] = dict(environment)
    return body
