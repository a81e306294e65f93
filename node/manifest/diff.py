"""describe_changes: one short line saying how a service's spec changed, for logs, events and `shoal deploy`.

Values are shown where they are short and telling (image, mode, replicas, ports); anything else is named
("environment changed"), never shown, since environment values may be secrets. At most MAX_CHARS characters.
"""

from __future__ import annotations

from dataclasses import replace

from node.manifest.model import GLOBAL, BlueGreen, ServiceSpec

MAX_CHARS = 200


def describe_changes(old: ServiceSpec | None, new: ServiceSpec) -> str:
    """'created (image X, 3 replicas)', 'image X -> Y; replicas 3 -> 5; environment changed', or '' if equal."""
    if old is None:
        return _cut(f"created (image {new.image}, {_scale(new)})")
    parts = []
    if old.image != new.image:
        parts.append(f"image {old.image} -> {new.image}")
    if old.mode != new.mode:
        parts.append(f"mode {_scale(old)} -> {_scale(new)}")
    elif new.mode != GLOBAL and old.replicas != new.replicas:
        parts.append(f"replicas {old.replicas} -> {new.replicas}")
    if old.ports != new.ports:
        parts.append(f"ports {_ports(old)} -> {_ports(new)}")
    shoal_old, shoal_new, deploy_old, deploy_new = old.x_shoal, new.x_shoal, old.deploy, new.deploy
    for label, before, after in (
        ("command", old.command, new.command), ("environment", old.environment, new.environment),
        ("expose", old.expose, new.expose), ("networks", old.networks, new.networks),
        ("placement", deploy_old.placement, deploy_new.placement),
        ("update_config", deploy_old.update_config, deploy_new.update_config),
        ("rollback_config", deploy_old.rollback_config, deploy_new.rollback_config),
        ("restart_policy", deploy_old.restart_policy, deploy_new.restart_policy),
        ("resources", deploy_old.resources, deploy_new.resources), ("healthcheck", old.healthcheck, new.healthcheck),
        ("readiness", shoal_old.readiness, shoal_new.readiness), ("liveness", shoal_old.liveness, shoal_new.liveness),
        ("canary", shoal_old.canary, shoal_new.canary),
        ("proxy_protocol", shoal_old.proxy_protocol or None, shoal_new.proxy_protocol or None),
        ("allow", shoal_old.allow or None, shoal_new.allow or None),
        ("ingress", shoal_old.ingress, shoal_new.ingress),
    ):
        if before != after:
            parts.append(f"{label} {'added' if before is None else 'removed' if after is None else 'changed'}")
    parts.extend(_blue_green(shoal_old.blue_green, shoal_new.blue_green))
    if old.name != new.name:
        parts.append(f"name {old.name} -> {new.name}")
    return _cut("; ".join(parts))


def _blue_green(old: BlueGreen | None, new: BlueGreen | None) -> list[str]:
    """'blue_green added', 'blue_green active blue -> green' (a switch), 'blue_green changed' (the green side)."""
    if old == new:
        return []
    if old is None or new is None:
        return [f"blue_green {'added' if old is None else 'removed'}"]
    parts = ["blue_green changed"] if replace(old, active=new.active) != new else []
    if old.active != new.active:
        parts.append(f"blue_green active {old.active} -> {new.active}")
    return parts


def _scale(spec: ServiceSpec) -> str:
    return "global" if spec.mode == GLOBAL else f"{spec.replicas} replica{'' if spec.replicas == 1 else 's'}"


def _ports(spec: ServiceSpec) -> str:
    return ", ".join(f"{p.published}:{p.target}" for p in spec.ports) or "none"


def _cut(text: str) -> str:
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS - 1] + "…"
