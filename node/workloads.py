"""What this cluster runs: each live service, plus the variants its spec derives (a canary, a blue-green service's
green side), each placed and run as a service of its own.

Pure. A variant is named `<service>.canary` or `<service>.green` (node.rollout.canary / bluegreen): service names
are DNS labels, so a dotted name never collides with a real service. It is read from its service's record, so it
shares that record's generation, and it has no previous spec of its own (a failing variant pauses; it is never
rolled back: abort it, or switch back). Placement, plan, probes and observed state take a variant unchanged; only
traffic (node.traffic) and network policies (node.policies) fold it back into its service (`owner`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from node.desired import ServiceView
from node.manifest.model import ServiceSpec
from node.rollout.bluegreen import green_spec
from node.rollout.canary import canary_spec


def variants(spec: ServiceSpec) -> list[ServiceSpec]:
    """The variants `spec` derives, in a fixed order (a spec has a canary or blue-green sides, not both)."""
    out = []
    if (canary := canary_spec(spec)) is not None:
        out.append(canary)
    sides = spec.x_shoal.blue_green
    if sides is not None:
        out.append(green_spec(spec, sides))
    return out


def workloads(views: Sequence[ServiceView]) -> list[ServiceView]:
    """Every service and, after each, its variants (as views of the service's own record)."""
    out = []
    for view in views:
        out.append(view)
        out.extend(replace(view, spec=spec, previous=None) for spec in variants(view.spec))
    return out


def owner(name: str) -> str:
    """The service a workload belongs to: itself, or the service a variant was derived from."""
    return name.split(".", 1)[0]
