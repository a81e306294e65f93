"""Builders shared by the rollout API and CLI tests: a service applied through the fake agent, and the replica
reports two nodes publish (so placement puts slot 0 on one node and slot 1 on the other)."""

from __future__ import annotations

from dataclasses import replace

from gossip.entry import Record
from node import desired
from node.manifest import parse_manifest
from node.observed import NodeStatus, ReplicaReport, encode_status, status_key
from node.replica import version
from tests.unit.desired.fakes import OTHER, SELF, START_MS, FakeAgent

WEB = "services:\n  web:\n    image: reg/web:{image}\n    deploy: {{replicas: 2, update_config: {update}}}\n{extra}"
CANARY = "    x-shoal: {canary: {image: reg/web:9, weight: 5}}\n"
SIDES = "    x-shoal: {blue_green: {image: reg/web:9}}\n"


def text(image: str = "1", update: str = "{}", extra: str = "") -> str:
    return WEB.format(image=image, update=update, extra=extra)


def put(agent: FakeAgent, image: str = "1", update: str = "{}", extra: str = "") -> None:
    manifest = parse_manifest(text(image, update, extra))
    desired.commit(desired.plan_apply(manifest, {"web": agent.store.get("service/web")}), agent.write)


def record(agent: FakeAgent) -> Record:
    found = agent.store.get("service/web")
    assert found is not None
    return found


def report(agent: FakeAgent, rows: dict[int, tuple[str, str, str]], generation: int = 1) -> None:
    """Publish replica rows {slot: (image, state, verdict)}: slot 0 from this node, slot 1 from the other one."""
    spec = desired.existing("web", record(agent)).spec
    for node, slots in ((SELF, [0]), (OTHER, [1])):
        replicas = tuple(
            ReplicaReport("web", i, state, image=f"reg/web:{image}", ready=state == "running" and verdict != "failed",
                          version=version(replace(spec, image=f"reg/web:{image}")), verdict=verdict)
            for i, (image, state, verdict) in rows.items() if i in slots)
        agent.remote_write(status_key(node), generation, encode_status(NodeStatus("podman", replicas)), "status",
                           wall_ms=START_MS, author=node)

