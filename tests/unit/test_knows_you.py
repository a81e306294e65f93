"""Certificates on datagrams stop as soon as the receiver says it holds our key (KnowsYou), which leaves room
for news: a 346-byte certificate otherwise crowds desired-state entries out of datagrams while a cluster forms."""

from __future__ import annotations

import random

from gossip.config import GossipConfig
from gossip.envelope import Authenticator, parse
from gossip.signing import SigningKey, TrustAnchor, create_ca, issue_node_cert
from gossip.store import MemoryBackend
from gossip.swim import LocalNode, Membership, Send
from gossip.wire import Ping

NOW = 1_800_000_000.0
CLUSTER = "c" * 32
CA_KEY, CA_CERT = create_ca(CLUSTER, "t", now_s=NOW - 100)


def core(node: str, port: int) -> Membership:
    key = SigningKey.generate()
    cert = issue_node_cert(CA_KEY, CA_CERT, node, key.public_bytes, now_s=NOW - 50)
    auth = Authenticator(TrustAnchor(CA_CERT), CLUSTER, window=1024, max_skew_s=60)
    m = Membership(config=GossipConfig(), local=LocalNode(node, node[:2], ("127.0.0.1", port), (), cert), key=key,
                   auth=auth, boot=1, incarnation=1, rng=random.Random(1), now=0.0, backend=MemoryBackend())
    m.start(0.0, NOW)
    m.outbox.clear()
    return m


def deliver(sender: Membership, receiver: Membership, now: float) -> None:
    sends, sender.outbox[:] = [e for e in sender.outbox if isinstance(e, Send)], []
    for send in sends:
        if send.addr == receiver.local.addr:
            receiver.receive(send.data, sender.local.addr, now, NOW + now)


def ping_cert(a: Membership, b: Membership, seq: int) -> bytes:
    """The certificate a's next ping to b carries (b"" for none)."""
    a.send(b.local.addr, [Ping(seq, b.local.node)], b.local.node)
    return parse(a.outbox[-1].data)[0].cert  # type: ignore[union-attr]


def test_a_peer_that_checked_our_certificate_says_so_and_we_stop_attaching_it() -> None:
    a, b = core("a" * 32, 1), core("b" * 32, 2)
    assert ping_cert(a, b, 1) == a.local.cert
    deliver(a, b, 0.1)  # b learns a's key from the attached certificate, answers the ping and says KnowsYou
    deliver(b, a, 0.2)
    assert ping_cert(a, b, 2) == b""


def test_knows_you_is_said_at_most_once_a_second_per_sender() -> None:
    a, b = core("a" * 32, 1), core("b" * 32, 2)
    for seq in range(1, 4):
        a.send(b.local.addr, [Ping(seq, b.local.node)], b.local.node)  # all three still carry the certificate
    deliver(a, b, 0.1)
    replies = [e for e in b.outbox if isinstance(e, Send)]
    assert len(replies) == 4  # three acks and one KnowsYou
