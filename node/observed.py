"""Observed state: what each node reports about itself, under `status/<node id>` in the replicated store.

Pure. Only the node itself writes its status (gossip refuses any other author) and each publish is its next
generation, so peers compare per-node versions. A status names the node's runtime, its container subnet
(DESIGN §7a: peers route to it), the digest of its placement inputs (so diverging views show in `shoal node
inspect`), the replicas it runs (each with the owner's rollout verdict on it, node.rollout.watch) and the rollout
outcomes it has seen (`marks`: a generation completed or paused, which makes that outcome durable cluster-wide
without a coordinator). Payloads from peers are untrusted: decode_status bounds and checks every field and answers
None for anything malformed (the caller counts and drops it).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

from gossip.replication import STATUS_PREFIX as STATUS_PREFIX

MAX_REPLICAS_REPORTED = 400  # a 64 KiB payload holds about this many rows; the rest are summarised away
_STATES = frozenset({"pending", "starting", "running", "exited", "failed", "removing"})
VERDICTS = frozenset({"", "watching", "settled", "failed"})  # node.rollout.model.Verdict's values, "" = none yet
MARK_PHASES = frozenset({"completed", "paused"})  # the rollout outcomes a node publishes (node.rollout.model.Phase)
_TEXT = 256


@dataclass(frozen=True, slots=True)
class ReplicaReport:
    """One replica as its node reports it (a row of `shoal ps`, less the node)."""

    service: str
    replica: int
    state: str
    container: str = ""  # engine id; "" while pending
    image: str = ""
    ready: bool = False
    restarts: int = 0
    since: float = 0.0  # epoch s: started (running), finished (exited/failed), or first seen pending
    version: str = ""
    generation: int = 0
    address: str = ""  # container IP while running
    error: str = ""
    verdict: str = ""  # the owner's rollout verdict on this replica: watching | settled | failed ("" = not judged)


@dataclass(frozen=True, slots=True, order=True)
class RolloutMark:
    """A rollout outcome this node has seen: generation `generation` of `service` completed or paused."""

    service: str
    generation: int
    phase: str  # completed | paused


@dataclass(frozen=True, slots=True)
class NodeStatus:
    runtime: str
    replicas: tuple[ReplicaReport, ...] = ()
    subnet: str = ""
    digest: str = ""
    marks: tuple[RolloutMark, ...] = ()  # sorted; at most one per service (its newest generation's outcome)


def status_key(node_id: str) -> str:
    return STATUS_PREFIX + node_id


def _report_json(r: ReplicaReport) -> dict[str, object]:
    body: dict[str, object] = {
        "service": r.service, "replica": r.replica, "state": r.state, "container": r.container, "image": r.image,
        "ready": r.ready, "restarts": r.restarts, "since": round(r.since, 3), "version": r.version,
        "generation": r.generation, "address": r.address, "error": r.error}
    if r.verdict:  # written only when set, so statuses without rollouts keep their bytes
        body["verdict"] = r.verdict
    return body


def encode_status(status: NodeStatus) -> bytes:
    body: dict[str, object] = {"runtime": status.runtime,
                               "replicas": [_report_json(r) for r in status.replicas[:MAX_REPLICAS_REPORTED]]}
    if status.subnet:
        body["subnet"] = status.subnet
    if status.digest:
        body["digest"] = status.digest
    if status.marks:
        body["marks"] = [[m.service, m.generation, m.phase] for m in sorted(status.marks)[:MAX_REPLICAS_REPORTED]]
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def decode_status(payload: bytes) -> NodeStatus | None:
    """A peer's status, or None if it is not one this version can trust (wrong types, out of range)."""
    try:
        body = json.loads(payload)
        if not isinstance(body, dict) or not isinstance(body.get("runtime"), str):
            return None
        rows = body.get("replicas", [])
        if not isinstance(rows, list) or len(rows) > MAX_REPLICAS_REPORTED:
            return None
        replicas = tuple(_report(row) for row in rows)
        subnet = _subnet(body.get("subnet", ""))
        digest = _text(body.get("digest", ""))
        marks = _marks(body.get("marks", []))
    except (ValueError, TypeError, RecursionError):
        return None
    return NodeStatus(body["runtime"][:_TEXT], replicas, subnet, digest, marks)


def _report(row: object) -> ReplicaReport:
    if not isinstance(row, dict):
        raise ValueError("a replica row is not an object")
    state = _text(row.get("state"))
    if state not in _STATES:
        raise ValueError(f"unknown state {state!r}")
    return ReplicaReport(
        service=_text(row.get("service")), replica=_int(row.get("replica")), state=state,
        container=_text(row.get("container", "")), image=_text(row.get("image", "")),
        ready=row.get("ready") is True, restarts=_int(row.get("restarts", 0)), since=_float(row.get("since", 0)),
        version=_text(row.get("version", "")), generation=_int(row.get("generation", 0)),
        address=_address(row.get("address", "")), error=_text(row.get("error", "")),
        verdict=_choice(row.get("verdict", ""), VERDICTS))


def _marks(rows: object) -> tuple[RolloutMark, ...]:
    if not isinstance(rows, list) or len(rows) > MAX_REPLICAS_REPORTED:
        raise ValueError("marks is not a bounded list")
    marks = []
    for row in rows:
        if not isinstance(row, list) or len(row) != 3:
            raise ValueError("a mark is not [service, generation, phase]")
        marks.append(RolloutMark(_text(row[0]), _int(row[1]), _choice(row[2], MARK_PHASES)))
    return tuple(sorted(marks))


def _choice(value: object, allowed: frozenset[str]) -> str:
    text = _text(value)
    if text not in allowed:
        raise ValueError(f"unknown value {text!r}")
    return text


def _text(value: object) -> str:
    if not isinstance(value, str) or len(value) > _TEXT:
        raise ValueError("not a short string")
    return value


def _int(value: object) -> int:
    if type(value) is not int or not 0 <= value < 2**63:
        raise ValueError("not a non-negative integer")
    return value


def _float(value: object) -> float:
    if type(value) not in (int, float) or not 0 <= float(value) < 1e11:  # type: ignore[arg-type]
        raise ValueError("not a time")
    return float(value)  # type: ignore[arg-type]


def _address(value: object) -> str:
    """A container's IPv4 address, or "" (none yet): the proxy connects to it and policies match it."""
    text = _text(value)
    return str(ipaddress.IPv4Address(text)) if text else ""


def _subnet(value: object) -> str:
    text = _text(value)
    return str(ipaddress.IPv4Network(text)) if text else ""


def needs_publish(current: bytes | None, status: NodeStatus) -> bool:
    """Publish only what differs from the last status this node stored (a restart reloads it)."""
    return current != encode_status(status)
