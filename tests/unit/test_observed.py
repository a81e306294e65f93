"""A node's own status: canonical bytes, published only when it differs from what the node last stored."""

from __future__ import annotations

from node.observed import NodeStatus, encode_status, needs_publish, status_key


def test_status_bytes_are_canonical_and_name_the_runtime() -> None:
    assert encode_status(NodeStatus("none")) == b'{"replicas":[],"runtime":"none"}'
    assert status_key("a" * 32) == "status/" + "a" * 32


def test_a_restart_with_the_same_status_publishes_nothing_new() -> None:
    status = NodeStatus("podman")
    assert needs_publish(None, status)
    assert not needs_publish(encode_status(status), status)
    assert needs_publish(encode_status(NodeStatus("none")), status)
