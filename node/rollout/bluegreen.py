"""Blue-green: a service runs two full sets side by side, and one desired-state change moves all new connections.

Pure. Model (docs/rollouts.md): blue is the service's own spec; green is a variant of it (image, command,
environment) under `x-shoal.blue_green`, run as the derived service `<name>.green` with the same replica count and
mode. `active` names the side the service's VIP and published ports send new connections to; flipping it is one
write of the service record, which each node's proxy applies as soon as it holds it. Neither side's version
depends on `active` (x-shoal is not part of a replica's version), so a switch restarts nothing, and a switch back
is the same write again. Connections already open stay where they are; the inactive side keeps running.
A release edits the inactive side (its replicas roll under update_config while it takes no traffic), then switches.
`BlueGreen` is the manifest's (node.manifest.model, ShoalSettings.blue_green); this module re-exports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from node.manifest.model import BLUE as BLUE
from node.manifest.model import GREEN as GREEN
from node.manifest.model import BlueGreen as BlueGreen
from node.manifest.model import ServiceSpec
from node.proxy.model import Endpoint
from node.rollout.variant import variant_spec

SUFFIX = ".green"


def green_name(service: str) -> str:
    return service + SUFFIX


def green_spec(spec: ServiceSpec, sides: BlueGreen) -> ServiceSpec:
    """The green side's own spec: the service's with green's image, command and environment, same replicas."""
    return variant_spec(spec, SUFFIX, image=sides.image, command=sides.command, environment=sides.environment,
                        replicas=None)


def switch(sides: BlueGreen, to: str | None = None) -> BlueGreen:
    """Make `to` (default: the other side) the live one."""
    target = to if to is not None else (GREEN if sides.active == BLUE else BLUE)
    return replace(sides, active=target)


def endpoints(sides: BlueGreen, blue: Sequence[str], green: Sequence[str], port: int) -> tuple[Endpoint, ...]:
    """A route's endpoints: the live side's ready replicas at weight 1, the other side's at weight 0 (listed, never
    picked). If the live side has no ready replica yet, the other side serves: a switch made too early, or a
    side that failed, costs no connection."""
    serving_green = bool(green) if sides.active == GREEN else not blue
    blue_weight, green_weight = (0, 1) if serving_green else (1, 0)
    return (*(Endpoint(ip, port, blue_weight) for ip in blue), *(Endpoint(ip, port, green_weight) for ip in green))
