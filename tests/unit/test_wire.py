"""Wire: every message type round-trips; sizes stay under the datagram bound; the decoder is strict."""

from __future__ import annotations

import pytest

from gossip.entry import Entry, Version
from gossip.errors import WireError
from gossip.hlc import Stamp
from gossip.wire import (
    MAX_DATAGRAM_BYTES,
    MAX_LABELS,
    MAX_LABELS_BYTES,
    MAX_NAME_LEN,
    Ack,
    Alive,
    CertNeed,
    CertOffer,
    Dead,
    EntryAnnounce,
    EntryNews,
    KnowsYou,
    Left,
    Nack,
    Ping,
    PingReq,
    Suspect,
    decode_messages,
    encode_messages,
    labels_size,
    pack_value,
    unpack_value,
)

A, B = "a" * 32, "b" * 32
BIG = (1 << 64) - 1
MESSAGES = [
    Ping(BIG, A), PingReq(7, B, ("198.18.0.12", 7946)), Ack(0), Nack(3),
    Alive(A, BIG, "h1", ("::1", 65535), (("zone", "a"), ("dc", "x"))),
    Suspect(A, 2, B), Dead(B, 9, A), Left(A, 4),
    EntryNews(Entry("service/web", 3, Stamp(BIG, 7), A, False, b"{}", "image a -> b", b"s" * 64)),
    EntryAnnounce("status/" + B, Version(BIG, True, Stamp(5, 0), B, b"d" * 8)),
    EntryAnnounce("service/web", Version(1, False, Stamp(5, 0), B, b"d" * 8), whole=True),
    CertNeed(B), CertOffer(b"\x30" * 346), KnowsYou(),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_type_round_trips(message: object) -> None:
    assert decode_messages(encode_messages([message])) == [message]  # type: ignore[list-item]


def test_largest_alive_fits_in_a_datagram_with_envelope_and_certificate() -> None:
    labels = tuple((f"k{i:02d}", "v" * 17) for i in range(MAX_LABELS))
    assert labels_size(labels) == MAX_LABELS_BYTES
    alive = Alive(A, BIG, "n" * MAX_NAME_LEN, ("ffff::1", 65535), labels)
    body = encode_messages([alive])
    envelope_and_cert = 113 + 600  # header + signature + the largest certificate we accept
    assert len(body) + envelope_and_cert <= MAX_DATAGRAM_BYTES


@pytest.mark.parametrize("raw", [
    [], [[99, 1]], [[1, 1]], [[1, -1, b"a" * 16]], [[1, 1, b"short"]], [[3, "x"]], [["1", 2]],
    [[5, b"a" * 16, 1, "n", [b"\x01\x02\x03", 1], []]], [[5, b"a" * 16, 1, "n", [b"\x7f\0\0\1", 70000], []]],
    [[5, b"a" * 16, 1, "n" * 64, [b"\x7f\0\0\1", 1], []]], [[3, 1]] * 49, "not a list",
    [[5, b"a" * 16, 1, "n", [b"\x7f\0\0\1", 1], [["k" * 60, "v" * 60]] * 3]],
])
def test_decoder_rejects_malformed_bodies(raw: object) -> None:
    with pytest.raises(WireError):
        decode_messages(pack_value(raw))


def test_decoder_refuses_a_length_field_larger_than_the_data_without_allocating() -> None:
    # A bin32 header claiming 4 GiB followed by 3 bytes: must fail fast, not allocate.
    with pytest.raises(WireError):
        unpack_value(b"\xc6\xff\xff\xff\xff abc", max_len=1232)
    with pytest.raises(WireError):
        unpack_value(b"\xdd\xff\xff\xff\xff", max_items=100)


def test_trailing_bytes_are_an_error() -> None:
    with pytest.raises(WireError):
        unpack_value(pack_value([1]) + b"\x00")
