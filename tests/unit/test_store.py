"""The store one node holds: optimistic writes, generations across deletes, digests and their pages, tombstone
collection, the stale-peer rule, and persistence in SQLite across a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from gossip.antientropy import (
    PAGE_BYTES,
    STALE_MARGIN_MS,
    SyncPlan,
    decode_digests,
    decode_summary,
    differing_buckets,
    encode_digests,
    encode_summary,
    encoded_summary_size,
    page,
    peer_horizon,
    plan,
    stale_horizon,
)
from gossip.codec import pack_value
from gossip.entry import Entry, record_of
from gossip.hlc import Stamp
from gossip.persist import SqliteBackend
from gossip.signing import SigningKey
from gossip.store import Conflict, MemoryBackend, Store
from gossip.wire import MAX_DATAGRAM_BYTES

ME = "a" * 32
KEY = SigningKey.generate()


def write(store: Store, key: str, payload: bytes = b"p", *, expect: int | None = None, tombstone: bool = False,
          wall_ms: int = 1_000) -> Entry:
    e = store.next_entry(key, author=ME, payload=payload, note="n", tombstone=tombstone, expect=expect,
                         wall_ms=wall_ms).signed(KEY)
    store.merge_entry(e)
    return e


def test_a_write_against_a_stale_generation_is_refused_and_changes_nothing() -> None:
    store = Store(MemoryBackend())
    write(store, "service/web", expect=0)
    write(store, "service/web", b"q", expect=1)
    with pytest.raises(Conflict) as err:
        write(store, "service/web", b"r", expect=1)
    assert err.value.current is not None and err.value.current.entry.generation == 2
    assert store.live("service/web").payload == b"q"  # type: ignore[union-attr]
    with pytest.raises(Conflict):
        write(store, "service/web", expect=0)  # create-only, but it exists


def test_generations_keep_counting_across_a_delete() -> None:
    store = Store(MemoryBackend())
    write(store, "service/web", expect=0)
    tomb = write(store, "service/web", expect=1, tombstone=True)
    assert tomb.generation == 2 and store.live("service/web") is None
    assert write(store, "service/web", expect=0).generation == 3


def test_the_summary_changes_with_any_record_and_only_its_bucket_differs() -> None:
    a, b = Store(MemoryBackend()), Store(MemoryBackend())
    for i in range(50):
        e = write(a, f"service/s{i}")
        b.merge_entry(e)
    assert a.summary() == b.summary()
    write(a, "service/s7", b"changed", expect=1)
    assert len(differing_buckets(a.summary(), b.summary())) == 1


def test_summaries_and_digest_pages_fit_a_datagram_however_large_the_store() -> None:
    store = Store(MemoryBackend())
    for i in range(3000):
        write(store, f"service/{'s' * 100}{i}")
    assert encoded_summary_size(store.summary()) < MAX_DATAGRAM_BYTES
    everything = store.digests(range(64))
    seen, after = [], None
    for _ in range(len(everything)):
        items, after = page(everything, after)
        assert len(pack_value(encode_digests(items))) <= PAGE_BYTES
        seen += decode_digests(encode_digests(items))
        if after is None:
            break
    assert seen == everything
    assert decode_summary(encode_summary(store.summary())) == store.summary()


def test_plan_pulls_what_we_lack_and_pushes_what_they_lack() -> None:
    a, b = Store(MemoryBackend()), Store(MemoryBackend())
    write(a, "service/only-a")
    write(b, "service/only-b")
    shared = write(a, "service/both")
    b.merge_entry(shared)
    write(b, "service/both", b"newer", expect=1)
    buckets = differing_buckets(a.summary(), b.summary())
    todo = plan(a, a.digests(buckets), b.digests(buckets), stale_horizon(a.summary(), b.collected_ms or None))
    assert set(todo.pull) == {"service/only-b", "service/both"}
    assert set(todo.push) == {"service/only-a", "service/both"}
    assert todo.drop == ()


def test_a_stale_node_drops_what_the_peer_collected_instead_of_reviving_it() -> None:
    away, peer = Store(MemoryBackend()), Store(MemoryBackend())
    old = write(peer, "service/gone", wall_ms=1_000)
    away.merge_entry(old)
    away.mark_synced(1_500)
    write(peer, "service/gone", expect=1, tombstone=True, wall_ms=2_000)
    assert peer.collect(wall_ms=10_000, grace_ms=5_000) == ["service/gone"]
    assert peer.collected_ms >= 2_000
    fresh = write(away, "service/made-while-away", wall_ms=9_000)
    horizon = peer_horizon(peer.summary(), wall_ms=10_000, grace_ms=5_000, skew_ms=0)
    assert horizon == peer.collected_ms
    assert stale_horizon(away.summary(), horizon) == horizon
    buckets = differing_buckets(away.summary(), peer.summary())
    todo = plan(away, away.digests(buckets), peer.digests(buckets), horizon)
    assert todo.drop == ("service/gone",)
    assert fresh.key in todo.push
    # A node that synced well after the collection is not stale: it pushes what the peer lacks.
    away.mark_synced(peer.collected_ms + STALE_MARGIN_MS + 1)
    assert stale_horizon(away.summary(), horizon) is None
    # Once a node has adopted the horizon, it takes the collected key back from no one.
    away.adopt_horizon(horizon)
    away.drop(["service/gone"])
    assert away.collected("service/gone", old.stamp.wall_ms) and not away.collected("service/gone", 9_999)


def test_a_horizon_younger_than_the_grace_period_is_not_believed() -> None:
    peer = Store(MemoryBackend())
    peer.adopt_horizon(9_000)  # a wrong clock, or a lie: nothing that young can have been collected
    assert peer_horizon(peer.summary(), wall_ms=10_000, grace_ms=5_000, skew_ms=1_000) is None
    assert peer_horizon(peer.summary(), wall_ms=13_000, grace_ms=5_000, skew_ms=1_000) == 9_000


def test_a_truncated_listing_drops_nothing_and_pushes_only_what_both_listed() -> None:
    mine, peer = Store(MemoryBackend()), Store(MemoryBackend())
    shared = write(mine, "service/both")
    peer.merge_entry(shared)
    write(peer, "service/both", b"newer", expect=1)
    write(mine, "service/maybe-unlisted", wall_ms=500)
    todo = plan(mine, mine.digests(range(64)), peer.digests(range(64)), 10_000, complete=False)
    assert todo == SyncPlan(("service/both",), ("service/both",), ())


def test_a_page_cursor_whose_key_vanished_resumes_at_the_next_key() -> None:
    store = Store(MemoryBackend())
    for i in range(200):
        write(store, f"service/s{i:03}")
    everything = store.digests(range(64))
    first, cursor = page(everything, None)
    assert cursor is not None
    store.drop([cursor])  # collected between two page requests
    rest = store.digests(range(64))
    second, _ = page(rest, cursor)
    assert second[0] == everything[len(first)]


def test_tombstones_within_the_grace_period_are_kept() -> None:
    store = Store(MemoryBackend())
    write(store, "service/web", expect=0, wall_ms=1_000)
    write(store, "service/web", expect=1, tombstone=True, wall_ms=2_000)
    assert store.collect(wall_ms=3_000, grace_ms=5_000) == []
    assert store.get("service/web") is not None and store.collected_ms == 0


def test_sqlite_keeps_records_certs_and_the_clock_across_a_restart(tmp_path: Path) -> None:
    backend = SqliteBackend.in_dir(tmp_path)
    store = Store(backend)
    write(store, "service/web", expect=0, wall_ms=5_000)
    second = write(store, "service/web", b"two", expect=1, wall_ms=5_000)
    store.remember_cert("b" * 32, b"der")
    store.mark_synced(4_000)
    backend.close()
    again = Store(SqliteBackend.in_dir(tmp_path))
    assert again.get("service/web") == store.get("service/web")
    assert again.certs["b" * 32] == b"der" and again.synced_ms == 4_000
    assert again.summary() == store.summary()
    # The clock resumes above everything stored, even if the wall clock went back.
    assert again.next_entry("service/web", author=ME, payload=b"3", note="", tombstone=False, expect=2,
                            wall_ms=1).stamp > second.stamp


def test_a_damaged_row_is_skipped_not_fatal(tmp_path: Path) -> None:
    backend = SqliteBackend.in_dir(tmp_path)
    Store(backend).merge_entry(write(Store(MemoryBackend()), "service/ok"))
    backend._db.execute("INSERT INTO records VALUES ('service/bad', x'c1')")
    backend.close()
    reopened = SqliteBackend.in_dir(tmp_path)
    store = Store(reopened)
    assert store.get("service/ok") is not None and store.get("service/bad") is None
    assert reopened.skipped == 1


def test_knows_tells_current_and_historic_versions_from_new_ones() -> None:
    store = Store(MemoryBackend())
    first = write(store, "service/web")
    second = write(store, "service/web", b"2", expect=1)
    assert store.knows("service/web", first.version) and store.knows("service/web", second.version)
    other = Store(MemoryBackend())
    newer = write(other, "service/web", b"x", wall_ms=9_999)
    assert not store.knows("service/web", newer.version)
    assert store.merge(record_of(newer))[1]


@pytest.mark.parametrize(("key", "payload", "note"), [
    ("Service/Web", b"p", "n"), ("service/" + "x" * 200, b"p", "n"), ("service/web", b"x" * (64 * 1024 + 1), "n"),
    ("service/web", b"p", "n" * 201),
])
def test_a_local_write_no_peer_would_accept_is_refused_before_it_is_stored(key: str, payload: bytes,
                                                                          note: str) -> None:
    store = Store(MemoryBackend())
    with pytest.raises(ValueError):
        store.next_entry(key, author=ME, payload=payload, note=note, tombstone=False, expect=None, wall_ms=1)
    assert len(store) == 0


def test_a_key_at_the_last_generation_refuses_another_write_instead_of_overflowing() -> None:
    store = Store(MemoryBackend())
    store.merge_entry(Entry("service/web", 2**64 - 1, Stamp(1), "b" * 32, False, b"p", "n", b"s" * 64))
    with pytest.raises(ValueError, match="cannot grow"):
        store.next_entry("service/web", author=ME, payload=b"q", note="", tombstone=False, expect=None, wall_ms=2)
