"""Variants: a second spec derived from a service's (a canary, a blue-green service's green side), and how the
proxy splits new connections between the service's replicas and the variant's.

Pure. A variant is placed and run as a service of its own named `<service><suffix>` (e.g. `web.canary`): a service
name is a DNS label, which has no dots, so a variant's name never collides with a real service, and placement,
plan and observed state take it unchanged. It differs from the service in image, command and environment (merged
over the service's) and in its replica count; everything else (ports, probes, networks, placement, pacing) is the
service's, so its replicas are reached on the same target ports and judged by the same readiness.
Weights: the proxy's smooth weighted round robin (node.proxy.select) splits by per-endpoint integer weights, so a
set's share is spread over its endpoints: with s stable and c variant endpoints and a variant share of p basis
points, each stable endpoint weighs (10000 - p)·c and each variant one p·s, reduced by their gcd.
"""

from __future__ import annotations

import math
from dataclasses import replace

from node.manifest.model import GLOBAL, ServiceSpec
from node.proxy.model import MAX_WEIGHT

BASIS = 10_000  # weights in basis points: a 0.01 % split is the finest the proxy is asked for


def variant_spec(spec: ServiceSpec, suffix: str, *, image: str | None, command: tuple[str, ...] | None,
                 environment: tuple[tuple[str, str], ...], replicas: int | None) -> ServiceSpec:
    """The variant of `spec`; `replicas` None keeps the service's mode and count (a blue-green side)."""
    merged = dict(spec.environment)
    merged.update(environment)
    deploy = spec.deploy
    if replicas is not None:  # a canary: a fixed number of replicas even beside a global service
        placement = deploy.placement
        if deploy.mode == GLOBAL:  # one per node is what global meant; keep that spread for the variant too
            placement = replace(placement, max_replicas_per_node=1)
        deploy = replace(deploy, mode="replicated", replicas=replicas, placement=placement)
    return replace(spec, name=spec.name + suffix, image=image or spec.image,
                   command=command if command is not None else spec.command,
                   environment=tuple(sorted(merged.items())), deploy=deploy,
                   x_shoal=replace(spec.x_shoal, canary=None, blue_green=None))  # a variant has no variant


def split(first: int, second: int, second_percent: float) -> tuple[int, int]:
    """Per-endpoint weights (first set, second set) giving the second set `second_percent` of new connections.
    A set with no ready endpoint gets nothing and the other takes everything (serving beats refusing)."""
    if second == 0:
        return (1 if first else 0, 0)
    if first == 0:
        return (0, 1)
    share = min(BASIS, max(1, round(second_percent * BASIS / 100)))
    a, b = (BASIS - share) * second, share * first
    divisor = math.gcd(a, b)
    a, b = a // divisor, b // divisor
    if max(a, b) > MAX_WEIGHT:  # only with hundreds of endpoints: round, keeping each side's weight >= 1
        scale = MAX_WEIGHT / max(a, b)
        a, b = (max(1, round(a * scale)) if a else 0), (max(1, round(b * scale)) if b else 0)
    return a, b
