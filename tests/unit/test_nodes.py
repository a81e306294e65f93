"""Node management rules (labels, drain) and the untrusted decoding of node settings and statuses."""

from __future__ import annotations

import pytest

from gossip.entry import Record
from gossip.members import MemberState, Status
from node.nodes import (
    ACTIVE,
    DRAIN,
    NodeNotFound,
    NodeRequestError,
    NodeSettings,
    decode,
    encode,
    node_key,
    parse_label_changes,
    plan_availability,
    plan_labels,
    resolve,
)
from node.observed import NodeStatus, ReplicaReport, decode_status, encode_status


class _Entry:
    def __init__(self, payload: bytes, generation: int = 1, tombstone: bool = False) -> None:
        self.payload, self.generation, self.tombstone = payload, generation, tombstone


class _Record:
    def __init__(self, payload: bytes, generation: int = 1, tombstone: bool = False) -> None:
        self.entry = _Entry(payload, generation, tombstone)


def record(settings: NodeSettings, generation: int = 1) -> Record:
    return _Record(encode(settings), generation)  # type: ignore[return-value]


def member(name: str, node: str) -> MemberState:
    return MemberState(node=node, name=name, addr=("198.18.0.11", 7946), incarnation=1, status=Status.ALIVE,
                       labels=(), since=0.0)


def test_label_changes_set_and_remove() -> None:
    assert parse_label_changes(["disk=ssd", "zone-", "empty="]) == ({"disk": "ssd", "empty": ""}, {"zone"})


@pytest.mark.parametrize("bad", ["nokey", "=v", "-", "a b=c", "bad key=1"])
def test_bad_label_changes_name_the_item(bad: str) -> None:
    with pytest.raises(NodeRequestError) as exc:
        parse_label_changes([bad])
    assert exc.value.field == "labels"


def test_labels_merge_and_a_no_op_writes_nothing() -> None:
    current = record(NodeSettings((("disk", "ssd"),)), generation=3)
    write = plan_labels("n1", current, {"zone": "a"}, {"disk"})
    assert write is not None
    assert (write.key, write.expect) == (node_key("n1"), 3)
    assert decode(_Record(write.payload)) == NodeSettings((("zone", "a"),))  # type: ignore[arg-type]
    assert plan_labels("n1", current, {"disk": "ssd"}, ()) is None


def test_drain_then_activate() -> None:
    drained = plan_availability("n1", None, DRAIN)
    assert drained is not None and drained.expect == 0
    settings = decode(_Record(drained.payload))  # type: ignore[arg-type]
    assert settings.availability == DRAIN
    assert plan_availability("n1", record(settings), DRAIN) is None
    back = plan_availability("n1", record(settings), ACTIVE)
    assert back is not None and decode(_Record(back.payload)).availability == ACTIVE  # type: ignore[arg-type]


@pytest.mark.parametrize("payload", [b"", b"[]", b'{"labels": [], "availability": "active"}',
                                     b'{"labels": {}, "availability": "gone"}', b"\xff"])
def test_malformed_settings_decode_to_defaults(payload: bytes) -> None:
    assert decode(_Record(payload)) == NodeSettings()  # type: ignore[arg-type]


def test_resolve_by_name_id_or_prefix() -> None:
    members = [member("h1", "a1b2c3d4e5f6"), member("h2", "ffeeddccbbaa")]
    assert resolve(members, "h2").node == "ffeeddccbbaa"
    assert resolve(members, "a1b2c3").name == "h1"
    with pytest.raises(NodeNotFound, match="the members are: h1, h2"):
        resolve(members, "h9")


def test_status_round_trip_and_untrusted_rows_are_refused() -> None:
    status = NodeStatus("podman", (ReplicaReport("web", 2, "running", "c1", "img", True, 3, 5.5, "v", 4,
                                                 "198.19.1.2"),), "198.19.1.0/24", "d1")
    assert decode_status(encode_status(status)) == status
    for bad in (b'{"runtime": 1}', b'{"runtime": "podman", "replicas": [{"state": "weird"}]}',
                b'{"runtime": "podman", "replicas": [{"service": "w", "replica": -1, "state": "running"}]}',
                b'{"runtime": "podman", "subnet": "not-a-net"}', b"garbage"):
        assert decode_status(bad) is None
