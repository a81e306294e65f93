"""Builders for rollout tests: a service at two versions, revisions between them, and node statuses from rows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from node.manifest.model import Deploy, ServiceSpec, UpdateConfig
from node.observed import NodeStatus, ReplicaReport, RolloutMark
from node.replica import version
from node.rollout.model import Previous, Revision

V1 = ServiceSpec(name="web", image="reg/web:1", deploy=Deploy(replicas=5))
V2 = replace(V1, image="reg/web:2")


def spec(image: str = "reg/web:2", replicas: int = 5, **update: object) -> ServiceSpec:
    """The service at `image` with update_config fields overridden (parallelism=2, failure_action="pause", ...)."""
    deploy = replace(V1.deploy, replicas=replicas, update_config=replace(UpdateConfig(), **update))  # type: ignore[arg-type]
    return replace(V1, image=image, deploy=deploy)


def revision(new: ServiceSpec = V2, old: ServiceSpec | None = V1, generation: int = 2,
             rollback_of: int | None = None) -> Revision:
    previous = Previous(generation - 1, old) if old is not None else None
    return Revision(new, generation, previous, rollback_of)


def row(replica: int, spec: ServiceSpec = V2, verdict: str = "settled", *, state: str = "running",
        ready: bool | None = None, restarts: int = 0, since: float = 0.0) -> ReplicaReport:
    """A replica report; ready defaults to `state == running and verdict != failed`."""
    is_ready = ready if ready is not None else state == "running" and verdict != "failed"
    return ReplicaReport(service=spec.name, replica=replica, state=state, ready=is_ready, restarts=restarts,
                         since=since, version=version(spec), generation=1, verdict=verdict)


def old(*replicas: int) -> list[ReplicaReport]:
    """Settled replicas of V1."""
    return [row(i, V1) for i in replicas]


def new(*replicas: int, verdict: str = "settled") -> list[ReplicaReport]:
    return [row(i, V2, verdict) for i in replicas]


def statuses(*rows: Iterable[ReplicaReport], marks: Iterable[RolloutMark] = ()) -> list[NodeStatus]:
    """One node per group of rows (each node reports its own); marks go on the first node."""
    groups = [tuple(group) for group in rows] or [()]
    result = [NodeStatus("podman", group) for group in groups]
    result[0] = replace(result[0], marks=tuple(sorted(marks)))
    return result
