"""A service's `x-shoal` extension -> ShoalSettings: readiness and liveness probes, a canary or a blue-green pair,
PROXY protocol, network policy (allow rules and an ingress allow-list, read by policy.py).

x-shoal is Shoal's own namespace, so unknown keys here are errors (no x-* escape hatch). Adding a setting is
three small steps: a field on ShoalSettings (model.py), a row in keys.X_SHOAL, and a reader in READERS below,
keyed by the same name. A reader gets the value, its field path, the warnings list and the Facts of the rest of
the service (its ports, the declared networks) for settings that refer to them.
Probe defaults are Kubernetes' (period 10s, timeout 1s, failure 3, success 1).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from node.manifest.container import read_environment, read_image
from node.manifest.errors import ManifestError, child, show
from node.manifest.fields import Notes, as_args, as_bool, as_int, as_number, as_port, as_str, read_object
from node.manifest.keys import BLUE_GREEN, CANARY, EXEC, HTTP_GET, PROBE, TCP_SOCKET, X_SHOAL
from node.manifest.limits import MAX_PATH_CHARS, MAX_RETRIES
from node.manifest.model import BLUE, GREEN, BlueGreen, Canary, Exec, HttpGet, Probe, ShoalSettings, TcpSocket
from node.manifest.policy import Facts, read_allow, read_ingress
from node.manifest.units import read_duration_s

_PATH = re.compile(r"/[\x21-\x7e]*")  # an absolute path of visible ASCII: it goes into a request line as is
_ACTIONS = ("http_get", "tcp_socket", "exec")
MIN_PERIOD_MS = 100  # probing faster than 10/s is load, not information


def read_x_shoal(value: object, field: str, notes: Notes, facts: Facts | None = None) -> ShoalSettings:
    keys = read_object(value, field, X_SHOAL, notes, null_ok=True)  # absent, or `x-shoal:` (an x-* may be null)
    facts = facts or Facts()
    if "canary" in keys and "blue_green" in keys:
        raise ManifestError(child(field, "blue_green"), keys["blue_green"],
                            "a service cannot have both a canary and blue_green (both split its connections); "
                            "remove one of them")
    return ShoalSettings(**{key: READERS[key](item, child(field, key), notes, facts) for key, item in keys.items()})


def read_probe(value: object, field: str, notes: Notes, *, liveness: bool = False) -> Probe:
    keys = read_object(value, field, PROBE, notes)
    actions = [key for key in _ACTIONS if key in keys]
    if len(actions) != 1:
        raise ManifestError(field, value, f"needs exactly one of {', '.join(_ACTIONS)}; found "
                                          f"{', '.join(actions) or 'none'}")
    default = Probe(action=TcpSocket(1))  # for its defaults only
    probe = Probe(
        action=_action(actions[0], keys[actions[0]], child(field, actions[0]), notes),
        period_s=read_duration_s(keys, "period", field, default.period_s, min_ms=MIN_PERIOD_MS),
        timeout_s=read_duration_s(keys, "timeout", field, default.timeout_s, min_ms=1),
        failure_threshold=as_int(keys.get("failure_threshold", default.failure_threshold),
                                 child(field, "failure_threshold"), 1, MAX_RETRIES),
        success_threshold=as_int(keys.get("success_threshold", default.success_threshold),
                                 child(field, "success_threshold"), 1, MAX_RETRIES),
        initial_delay_s=read_duration_s(keys, "initial_delay", field, default.initial_delay_s),
    )
    if liveness and probe.success_threshold != 1:
        raise ManifestError(child(field, "success_threshold"), probe.success_threshold,
                            "must be 1 for a liveness probe (one success proves it alive), as in Kubernetes")
    return probe


def _action(kind: str, value: object, field: str, notes: Notes) -> HttpGet | TcpSocket | Exec:
    if kind == "http_get":
        keys = read_object(value, field, HTTP_GET, notes)
        path = as_str(keys.get("path", "/"), child(field, "path"), max_chars=MAX_PATH_CHARS, pattern=_PATH,
                      what="an absolute URL path of visible ASCII characters, e.g. /healthz")
        return HttpGet(port=_required_port(keys, field), path=path)
    if kind == "tcp_socket":
        return TcpSocket(port=_required_port(read_object(value, field, TCP_SOCKET, notes), field))
    keys = read_object(value, field, EXEC, notes)
    if "command" not in keys:
        raise ManifestError(child(field, "command"), None, "is required, e.g. command: [cat, /tmp/ready]")
    return Exec(command=as_args(keys["command"], child(field, "command"), min_items=1))


def _required_port(keys: dict[str, object], field: str) -> int:
    if "port" not in keys:
        raise ManifestError(child(field, "port"), None, "is required: the container's port to probe")
    return as_port(keys["port"], child(field, "port"))


def read_canary(value: object, field: str, notes: Notes) -> Canary:
    keys = read_object(value, field, CANARY, notes)
    if "weight" not in keys:
        raise ManifestError(child(field, "weight"), None, "is required: the percent of new connections "
                                                          "(0 < weight <= 100), e.g. weight: 5")
    if not keys.keys() & {"image", "command", "environment"}:
        raise ManifestError(field, value, "a canary changes nothing; give it an image, command or environment")
    return Canary(
        weight_percent=as_number(keys["weight"], child(field, "weight"), 0.0, 100.0, above_lo=True),
        image=read_image(keys["image"], child(field, "image")) if "image" in keys else None,
        command=as_args(keys["command"], child(field, "command")) if "command" in keys else None,
        environment=read_environment(keys.get("environment", {}), child(field, "environment")),
    )


def read_blue_green(value: object, field: str, notes: Notes) -> BlueGreen:
    """The green side (image, command, environment merged over the service's) and the live side (default blue)."""
    keys = read_object(value, field, BLUE_GREEN, notes)
    if not keys.keys() & {"image", "command", "environment"}:
        raise ManifestError(field, value, "the green side would be the blue one; give it an image, command or "
                                          "environment")
    active = keys.get("active", BLUE)
    if active not in (BLUE, GREEN):
        raise ManifestError(child(field, "active"), active, f"{show(active)} is not a side; allowed: {BLUE}, {GREEN}")
    return BlueGreen(
        image=read_image(keys["image"], child(field, "image")) if "image" in keys else None,
        command=as_args(keys["command"], child(field, "command")) if "command" in keys else None,
        environment=read_environment(keys.get("environment", {}), child(field, "environment")),
        active=str(active),
    )


READERS: dict[str, Callable[[object, str, Notes, Facts], Any]] = {  # key -> reader of its value
    "readiness": lambda value, field, notes, _facts: read_probe(value, field, notes),
    "liveness": lambda value, field, notes, _facts: read_probe(value, field, notes, liveness=True),
    "canary": lambda value, field, notes, _facts: read_canary(value, field, notes),
    "blue_green": lambda value, field, notes, _facts: read_blue_green(value, field, notes),
    "proxy_protocol": lambda value, field, _notes, _facts: as_bool(value, field),
    "allow": read_allow,
    "ingress": read_ingress,
}
