"""Canary (`x-shoal.canary`): a variant of a service that takes `weight` percent of new connections.

Pure. The canary runs ⌈n·weight/100⌉ replicas (at least one) of the canary spec beside the service's n stable
ones (DESIGN §7b), as the derived service `<name>.canary` (node.rollout.variant). Every node's proxy splits new
connections between the two sets by weight, whatever the sets' sizes (weight 1 → 1 in 100 connections).
Raising the weight is a spec change that restarts nothing (x-shoal is not part of a replica's version); only the
canary's replica count may grow. promote makes the canary's image, command and environment the service's own
(the stable replicas then roll to it under update_config, and the canary replicas go); abort drops the canary.
Both are spec -> spec: the API writes the result as the next generation, like any change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from node.manifest.model import GLOBAL, ServiceSpec
from node.proxy.model import Endpoint
from node.rollout.variant import split, variant_spec

SUFFIX = ".canary"


def canary_name(service: str) -> str:
    return service + SUFFIX


def stable_name(name: str) -> str | None:
    """The service a canary's name belongs to; None for a name that is not a canary's."""
    return name.removesuffix(SUFFIX) if name.endswith(SUFFIX) else None


def canary_replicas(stable: int, weight_percent: float) -> int:
    """⌈stable·weight/100⌉, at least one; rounded to 9 places first, so float noise never adds a replica."""
    return max(1, math.ceil(round(stable * weight_percent / 100, 9)))


def canary_spec(spec: ServiceSpec, stable: int | None = None) -> ServiceSpec | None:
    """The canary's own spec, or None if the service has no canary. `stable`: the service's replica count (for a
    global service, its placed slots; defaults to spec.replicas)."""
    canary = spec.x_shoal.canary
    if canary is None:
        return None
    count = stable if stable is not None else (1 if spec.deploy.mode == GLOBAL else spec.replicas)
    return variant_spec(spec, SUFFIX, image=canary.image, command=canary.command, environment=canary.environment,
                        replicas=canary_replicas(count, canary.weight_percent))


def endpoints(spec: ServiceSpec, stable: Sequence[str], canary: Sequence[str], port: int) -> tuple[Endpoint, ...]:
    """A route's endpoints: the service's ready replicas then its canary's (container addresses), weighted so the
    canary set gets its percent of new connections. Without a canary, every endpoint weighs 1."""
    if spec.x_shoal.canary is None:
        return tuple(Endpoint(ip, port) for ip in stable)
    a, b = split(len(stable), len(canary), spec.x_shoal.canary.weight_percent)
    return (*(Endpoint(ip, port, a) for ip in stable), *(Endpoint(ip, port, b) for ip in canary))


def promote(spec: ServiceSpec) -> ServiceSpec:
    """The canary becomes the spec (ValueError if there is none)."""
    canary = spec.x_shoal.canary
    if canary is None:
        raise ValueError(f"service {spec.name} has no canary to promote")
    merged = dict(spec.environment)
    merged.update(canary.environment)
    return replace(spec, image=canary.image or spec.image,
                   command=canary.command if canary.command is not None else spec.command,
                   environment=tuple(sorted(merged.items())), x_shoal=replace(spec.x_shoal, canary=None))


def abort(spec: ServiceSpec) -> ServiceSpec:
    """The spec without its canary (ValueError if there is none); the stable replicas are untouched."""
    if spec.x_shoal.canary is None:
        raise ValueError(f"service {spec.name} has no canary to abort")
    return replace(spec, x_shoal=replace(spec.x_shoal, canary=None))


def with_weight(spec: ServiceSpec, weight_percent: float) -> ServiceSpec:
    """The spec with its canary's weight set (ValueError if there is none; the caller checks 0 < weight <= 100).
    Restarts nothing: only the canary's replica count may change."""
    canary = spec.x_shoal.canary
    if canary is None:
        raise ValueError(f"service {spec.name} has no canary to weigh")
    return replace(spec, x_shoal=replace(spec.x_shoal, canary=replace(canary, weight_percent=float(weight_percent))))
