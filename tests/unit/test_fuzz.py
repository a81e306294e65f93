"""Fuzz the datagram path: no input escapes the receive loop as an exception; bad input is counted."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gossip.config import GossipConfig
from gossip.envelope import HEADER, OVERHEAD, Authenticator, cluster_tag, seal
from gossip.errors import WireError
from gossip.signing import SigningKey, TrustAnchor, create_ca, issue_node_cert
from gossip.store import MemoryBackend
from gossip.swim import LocalNode, Membership
from gossip.wire import MAX_DATAGRAM_BYTES, decode_messages, pack_value

NOW = 1_800_000_000.0
CLUSTER = "c" * 32
CA_KEY, CA_CERT = create_ca(CLUSTER, "fuzz", now_s=NOW - 100)
PEER_KEY = SigningKey.generate()
PEER = "b" * 32
PEER_CERT = issue_node_cert(CA_KEY, CA_CERT, PEER, PEER_KEY.public_bytes, now_s=NOW - 50)


def core() -> Membership:
    key = SigningKey.generate()
    cert = issue_node_cert(CA_KEY, CA_CERT, "a" * 32, key.public_bytes, now_s=NOW - 50)
    auth = Authenticator(TrustAnchor(CA_CERT), CLUSTER, window=1024, max_skew_s=60)
    local = LocalNode("a" * 32, "a", ("127.0.0.1", 1), (), cert)
    m = Membership(config=GossipConfig(), local=local, key=key, auth=auth, boot=1, incarnation=1,
                   rng=random.Random(1), now=0.0, backend=MemoryBackend())
    m.start(0.0, NOW)
    return m


values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=40) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=8), max_leaves=40)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=1400))
def test_random_bytes_never_raise_out_of_receive(data: bytes) -> None:
    m = core()
    m.receive(data, ("127.0.0.1", 9), 1.0, NOW)
    assert m.stats["recv_datagrams"] == 1
    assert sum(v for k, v in m.stats.items() if k.startswith("drop_")) == 1


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(values, max_size=6))
def test_signed_datagrams_with_arbitrary_bodies_never_raise(body: list[object]) -> None:
    """A valid member signing garbage: decoded strictly, dropped and counted, never a crash."""
    m = core()
    payload = pack_value(body)[:MAX_DATAGRAM_BYTES - OVERHEAD - len(PEER_CERT)]  # what fits beside the cert
    data = seal(PEER_KEY, cluster_tag(CLUSTER), PEER, 1, 1, int(NOW * 1000), PEER_CERT, payload)
    m.receive(data, ("127.0.0.1", 9), 1.0, NOW)
    try:
        decode_messages(payload)
    except WireError:
        assert m.stats["drop_malformed"] == 1


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=HEADER.size, max_size=HEADER.size + 200), st.integers(0, HEADER.size - 1),
       st.integers(1, 255))
def test_bit_flips_in_a_genuine_datagram_are_dropped(prefix: bytes, where: int, flip: int) -> None:
    m = core()
    data = bytearray(seal(PEER_KEY, cluster_tag(CLUSTER), PEER, 1, 7, int(NOW * 1000), PEER_CERT,
                          pack_value([[3, 1]])))
    data[where] ^= flip
    m.receive(bytes(data), ("127.0.0.1", 9), 1.0, NOW)
    assert sum(v for k, v in m.stats.items() if k.startswith("drop_")) == 1
