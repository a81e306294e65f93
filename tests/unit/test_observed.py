"""A node's own status: canonical bytes, published only when it differs from what the node last stored."""

from __future__ import annotations

from node.observed import NodeStatus, ReplicaReport, decode_status, encode_status, needs_publish, status_key


def test_status_bytes_are_canonical_and_name_the_runtime() -> None:
    assert encode_status(NodeStatus("none")) == b'{"replicas":[],"runtime":"none"}'
    assert status_key("a" * 32) == "status/" + "a" * 32


def test_a_restart_with_the_same_status_publishes_nothing_new() -> None:
    status = NodeStatus("podman")
    assert needs_publish(None, status)
    assert not needs_publish(encode_status(status), status)
    assert needs_publish(encode_status(NodeStatus("none")), status)


def test_a_replica_address_that_is_not_an_ipv4_address_makes_the_status_unreadable() -> None:
    """The proxy connects to it and policies match it: a peer's bad address is dropped, never a route."""
    good = NodeStatus("podman", (ReplicaReport("web", 0, "running", ready=True, address="198.19.1.5"),))
    assert decode_status(encode_status(good)) == good
    for bad in ("web.example", "198.19.1.5:80", "::1", "1" * 300):
        payload = encode_status(good).replace(b"198.19.1.5", bad.encode())
        assert decode_status(payload) is None, bad
