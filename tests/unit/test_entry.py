"""Entries and records: the merge is a deterministic join (commutative, associative, idempotent), deletes win
at equal generation, signatures bind every field, and the decoder refuses anything malformed."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gossip.codec import pack_value, unpack_value
from gossip.entry import (
    HISTORY_LIMIT,
    Entry,
    Record,
    decode_entry,
    decode_record,
    encode_entry,
    encode_record,
    merge,
    record_of,
)
from gossip.errors import WireError
from gossip.hlc import Stamp
from gossip.signing import SigningKey, VerifyKey

KEY = SigningKey.generate()
AUTHORS = ["a" * 32, "b" * 32, "c" * 32]


def entry(gen: int, wall: int = 1000, author: str = AUTHORS[0], tombstone: bool = False,
          payload: bytes = b"p", key: str = "service/web") -> Entry:
    return Entry(key, gen, Stamp(wall), author, tombstone, b"" if tombstone else payload, f"g{gen}").signed(KEY)


entries = st.builds(entry, st.integers(1, 4), st.integers(0, 3), st.sampled_from(AUTHORS), st.booleans(),
                    st.sampled_from([b"x", b"y"]))
records = st.lists(entries, min_size=1, max_size=4).map(
    lambda es: _fold([record_of(e) for e in es]))


def _fold(rs: list[Record]) -> Record:
    out = rs[0]
    for r in rs[1:]:
        out = merge(out, r)
    return out


@given(records, records)
def test_merge_is_commutative(a: Record, b: Record) -> None:
    assert merge(a, b) == merge(b, a)


@given(records, records, records)
def test_merge_is_associative(a: Record, b: Record, c: Record) -> None:
    assert merge(merge(a, b), c) == merge(a, merge(b, c))


@given(records)
def test_merge_is_idempotent(a: Record) -> None:
    assert merge(a, a) == a


@given(st.lists(entries, min_size=1, max_size=30))
def test_history_keeps_the_newest_versions_and_the_winner(es: list[Entry]) -> None:
    record = _fold([record_of(e) for e in es])
    assert record.entry.version == max(e.version for e in es)
    assert len(record.history) <= HISTORY_LIMIT
    assert record.history[0].version == record.entry.version
    assert list(record.history) == sorted(record.history, key=lambda c: c.version, reverse=True)


def test_higher_generation_wins_over_a_later_stamp() -> None:
    assert merge(record_of(entry(2, wall=1)), record_of(entry(1, wall=999))).entry.generation == 2


def test_a_delete_wins_over_an_edit_of_the_same_generation_whatever_their_stamps() -> None:
    edit, delete = entry(3, wall=2000, author=AUTHORS[2]), entry(3, wall=1000, tombstone=True)
    assert merge(record_of(edit), record_of(delete)).entry.tombstone
    assert merge(record_of(delete), record_of(edit)).entry.tombstone


def test_a_recreation_outranks_the_tombstone_it_follows() -> None:
    assert not merge(record_of(entry(3, tombstone=True)), record_of(entry(4))).entry.tombstone


def test_at_equal_generation_the_later_stamp_then_the_author_decides() -> None:
    assert merge(record_of(entry(2, wall=5)), record_of(entry(2, wall=6))).entry.stamp == Stamp(6)
    a, b = entry(2, author=AUTHORS[0]), entry(2, author=AUTHORS[1])
    assert merge(record_of(a), record_of(b)).entry.author == AUTHORS[1]


def test_the_losing_edit_of_a_conflict_is_marked_lost_in_history() -> None:
    a, b = entry(2, wall=5, payload=b"a"), entry(2, wall=6, payload=b"b")
    record = merge(merge(record_of(entry(1)), record_of(a)), record_of(b))
    assert [record.lost(c) for c in record.history] == [False, True, False]


def test_a_signature_covers_every_field() -> None:
    good = entry(1)
    verify = VerifyKey.from_bytes(KEY.public_bytes)
    assert good.verify(verify)
    for forged in (Entry(good.key, 2, good.stamp, good.author, False, good.payload, good.note, good.signature),
                   Entry(good.key, 1, good.stamp, good.author, False, b"evil", good.note, good.signature),
                   Entry("service/other", 1, good.stamp, good.author, False, good.payload, good.note,
                         good.signature)):
        assert not forged.verify(verify)
    assert not good.verify(VerifyKey.from_bytes(SigningKey.generate().public_bytes))


def test_records_round_trip_through_the_codec() -> None:
    record = merge(record_of(entry(1)), record_of(entry(2, tombstone=True)))
    assert decode_record(unpack_value(pack_value(encode_record(record)))) == record


@pytest.mark.parametrize(("index", "value"), [
    (0, "Service/Web"), (0, "noslash"), (0, "service/" + "x" * 200), (1, -1), (4, b"short"), (5, 1),
    (6, b"x" * (64 * 1024 + 1)), (7, "n" * 201), (8, b"sig"),
])
def test_the_entry_decoder_refuses_malformed_fields(index: int, value: object) -> None:
    raw = encode_entry(entry(1))
    raw[index] = value
    with pytest.raises(WireError):
        decode_entry(raw)


def test_a_tombstone_with_a_payload_is_refused() -> None:
    raw = encode_entry(entry(1, tombstone=True))
    raw[6] = b"smuggled"
    with pytest.raises(WireError):
        decode_entry(raw)


values = st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=70)
                      | st.text(max_size=20), lambda inner: st.lists(inner, max_size=10), max_leaves=30)


@given(values)
def test_the_record_decoder_only_ever_raises_wire_errors(raw: object) -> None:
    with contextlib.suppress(WireError):
        decode_record(raw)


@given(st.lists(values, min_size=9, max_size=9))
def test_the_entry_decoder_only_ever_raises_wire_errors(raw: list[object]) -> None:
    with contextlib.suppress(WireError):
        decode_entry(raw)
