"""Signed envelopes: receivers drop unsigned, forged, wrong-cluster, untrusted, replayed and stale datagrams,
and a restarted sender (higher boot) is not taken for a replay."""

from __future__ import annotations

import pytest

from gossip.envelope import Authenticator, cluster_tag, seal
from gossip.errors import SignatureError
from gossip.replay import Verdict, check
from gossip.signing import SigningKey, TrustAnchor, create_ca, issue_node_cert

NOW = 1_800_000_000.0
CLUSTER = "c" * 32
NODE = "a" * 32


@pytest.fixture(scope="module")
def ca() -> tuple[SigningKey, bytes]:
    return create_ca(CLUSTER, "test", now_s=NOW - 100)


@pytest.fixture(scope="module")
def member(ca: tuple[SigningKey, bytes]) -> tuple[SigningKey, bytes]:
    key = SigningKey.generate()
    return key, issue_node_cert(ca[0], ca[1], NODE, key.public_bytes, now_s=NOW - 50)


def receiver(ca: tuple[SigningKey, bytes]) -> Authenticator:
    return Authenticator(TrustAnchor(ca[1]), CLUSTER, window=64, max_skew_s=60)


def datagram(member: tuple[SigningKey, bytes], *, boot: int = 1, seq: int = 1, sent: float = NOW,
             tag: bytes | None = None, cert: bool = True, key: SigningKey | None = None) -> bytes:
    return seal(key or member[0], tag or cluster_tag(CLUSTER), NODE, boot, seq, int(sent * 1000),
                member[1] if cert else b"", b"\x91\x91\x03")


def reason(auth: Authenticator, data: bytes) -> str:
    with pytest.raises(SignatureError) as info:
        auth.open(data, NOW)
    return info.value.reason


def test_a_genuine_datagram_opens_and_teaches_the_sender_key(ca, member) -> None:  # type: ignore[no-untyped-def]
    auth = receiver(ca)
    assert auth.open(datagram(member), NOW).sender == NODE
    assert auth.open(datagram(member, seq=2, cert=False), NOW).seq == 2


def test_unknown_sender_without_certificate_is_dropped(ca, member) -> None:  # type: ignore[no-untyped-def]
    assert reason(receiver(ca), datagram(member, cert=False)) == "unknown_sender"


def test_forged_signature_is_dropped(ca, member) -> None:  # type: ignore[no-untyped-def]
    assert reason(receiver(ca), datagram(member, key=SigningKey.generate())) == "forged"
    tampered = bytearray(datagram(member))
    tampered[-65] ^= 1  # last body byte
    assert reason(receiver(ca), bytes(tampered)) == "forged"


def test_unsigned_or_truncated_datagram_is_malformed(ca, member) -> None:  # type: ignore[no-untyped-def]
    assert reason(receiver(ca), datagram(member)[:-64]) in ("malformed", "forged")
    assert reason(receiver(ca), b"hello") == "malformed"


def test_other_cluster_is_dropped(ca, member) -> None:  # type: ignore[no-untyped-def]
    assert reason(receiver(ca), datagram(member, tag=cluster_tag("d" * 32))) == "wrong_cluster"


def test_certificate_from_another_ca_is_untrusted(ca) -> None:  # type: ignore[no-untyped-def]
    rogue_ca = create_ca(CLUSTER, "rogue", now_s=NOW - 100)
    key = SigningKey.generate()
    rogue = (key, issue_node_cert(rogue_ca[0], rogue_ca[1], NODE, key.public_bytes, now_s=NOW - 50))
    assert reason(receiver(ca), datagram(rogue)) == "untrusted_cert"


def test_replayed_datagram_is_dropped_but_reordering_is_tolerated(ca, member) -> None:  # type: ignore[no-untyped-def]
    auth = receiver(ca)
    auth.open(datagram(member, seq=5), NOW)
    auth.open(datagram(member, seq=3), NOW)
    assert reason(auth, datagram(member, seq=5)) == "replayed"
    assert reason(auth, datagram(member, seq=3)) == "replayed"


def test_restarted_sender_is_fresh_and_its_old_boot_is_stale(ca, member) -> None:  # type: ignore[no-untyped-def]
    auth = receiver(ca)
    auth.open(datagram(member, boot=1, seq=900), NOW)
    assert auth.open(datagram(member, boot=2, seq=1), NOW).boot == 2
    assert reason(auth, datagram(member, boot=1, seq=901)) == "stale"


def test_datagram_stamped_outside_the_skew_window_is_stale(ca, member) -> None:  # type: ignore[no-untyped-def]
    assert reason(receiver(ca), datagram(member, sent=NOW - 61)) == "stale"


def test_replay_window_edges() -> None:
    verdict, window = check(None, 1, 100, 64)
    assert verdict is Verdict.FRESH and window is not None
    assert check(window, 1, 36, 64)[0] is Verdict.STALE  # fell out of the window
    assert check(window, 1, 37, 64)[0] is Verdict.FRESH
    assert check(window, 1, 100, 64)[0] is Verdict.REPLAYED
    verdict, moved = check(window, 1, 1000, 64)
    assert verdict is Verdict.FRESH and moved is not None and moved.top == 1000
