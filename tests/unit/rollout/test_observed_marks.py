"""Observed state carries each replica's rollout verdict and each node's rollout marks; statuses without them keep
their exact bytes, and anything malformed in a peer's payload is refused."""

from __future__ import annotations

import json

import pytest

from node.observed import NodeStatus, ReplicaReport, RolloutMark, decode_status, encode_status

ROW = ReplicaReport("web", 0, "running", ready=True, version="abc", verdict="settled")


def test_verdicts_and_marks_round_trip() -> None:
    status = NodeStatus("podman", (ROW,), marks=(RolloutMark("web", 3, "completed"), RolloutMark("api", 9, "paused")))
    decoded = decode_status(encode_status(status))
    assert decoded is not None and decoded.replicas == (ROW,)
    assert decoded.marks == (RolloutMark("api", 9, "paused"), RolloutMark("web", 3, "completed"))


def test_a_status_without_verdicts_or_marks_keeps_its_bytes() -> None:
    plain = ReplicaReport("web", 0, "running")
    body = json.loads(encode_status(NodeStatus("podman", (plain,))))
    assert "marks" not in body and "verdict" not in body["replicas"][0]


@pytest.mark.parametrize("change", [
    lambda b: b["replicas"][0].update(verdict="great"),
    lambda b: b["replicas"][0].update(verdict=1),
    lambda b: b.update(marks=[["web", 3, "rolled-back"]]),
    lambda b: b.update(marks=[["web", -1, "completed"]]),
    lambda b: b.update(marks=[["web", 3]]),
    lambda b: b.update(marks={"web": 3}),
])
def test_malformed_verdicts_and_marks_are_refused(change: object) -> None:
    body = json.loads(encode_status(NodeStatus("podman", (ROW,), marks=(RolloutMark("web", 3, "completed"),))))
    change(body)  # type: ignore[operator]
    assert decode_status(json.dumps(body).encode()) is None
