"""The replicated key-value store one node holds: records by key, local writes, merges, digests, tombstones.

Pure state plus a `StoreBackend` it writes through (SQLite in the agent, memory in the simulator), so a
restart loses nothing. Local writes are optimistic: they name the generation they read (`expect`) and fail
with `Conflict` when the key has moved on. Remote records are merged (gossip.entry.merge). The digest is a
summary of BUCKETS bucket hashes (each the XOR of its records' hashes, kept up to date on every change), small
enough for one datagram however large the store grows; anti-entropy compares it, then lists keys of the
buckets that differ, page by page. Tombstones older than the grace period are collected; `collected_ms`
records how far, so a peer that has not synced since then knows it must re-sync fully (gossip.antientropy).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from gossip.codec import MAX_U64, NodeId
from gossip.entry import (
    DIGEST_BYTES,
    HISTORY_LIMIT,
    MAX_KEY_LEN,
    MAX_NOTE_LEN,
    MAX_PAYLOAD_BYTES,
    Entry,
    Record,
    Version,
    merge,
    record_of,
    valid_key,
)
from gossip.hlc import HybridClock, Stamp

BUCKETS = 64
_EMPTY = bytes(DIGEST_BYTES)


class Conflict(Exception):
    """A write named a generation the key no longer has; `current` is what the store holds now."""

    def __init__(self, key: str, expected: int, current: Record | None) -> None:
        have = "absent" if current is None or current.entry.tombstone else f"generation {current.entry.generation}"
        super().__init__(f"{key}: expected generation {expected}, the store holds {have}")
        self.key = key
        self.expected = expected
        self.current = current


@dataclass(frozen=True, slots=True)
class Image:
    """Everything a backend persisted: records, authors' certificates and a few counters."""

    records: tuple[Record, ...] = ()
    certs: tuple[tuple[NodeId, bytes], ...] = ()
    meta: tuple[tuple[str, int], ...] = ()


class StoreBackend(Protocol):
    def load(self) -> Image: ...

    def save_record(self, record: Record) -> None: ...

    def delete_record(self, key: str) -> None: ...

    def save_cert(self, node: NodeId, der: bytes) -> None: ...

    def save_meta(self, name: str, value: int) -> None: ...


@dataclass
class MemoryBackend:
    """Keeps what was 'persisted' in memory, so a simulated agent can restart from it."""

    records: dict[str, Record] = field(default_factory=dict)
    certs: dict[NodeId, bytes] = field(default_factory=dict)
    meta: dict[str, int] = field(default_factory=dict)

    def load(self) -> Image:
        return Image(tuple(self.records.values()), tuple(self.certs.items()), tuple(self.meta.items()))

    def save_record(self, record: Record) -> None:
        self.records[record.key] = record

    def delete_record(self, key: str) -> None:
        self.records.pop(key, None)

    def save_cert(self, node: NodeId, der: bytes) -> None:
        self.certs[node] = der

    def save_meta(self, name: str, value: int) -> None:
        self.meta[name] = value


@dataclass(frozen=True, slots=True)
class Summary:
    """The store's digest: bucket hashes plus the collection horizon and the last full sync."""

    buckets: tuple[bytes, ...]
    collected_ms: int
    synced_ms: int


def live_generation(record: Record | None) -> int:
    """What a write's expectation is compared with: a live record's generation, 0 when absent or deleted."""
    return 0 if record is None or record.entry.tombstone else record.entry.generation


def next_generation(record: Record | None) -> int:
    """Generations keep counting across deletes, so a re-created key outranks its own tombstone."""
    return (record.entry.generation if record else 0) + 1


def _check_write(key: str, payload: bytes, note: str) -> None:
    """A local write must be one every peer's decoder accepts, or it would be stored here and refused everywhere."""
    if not valid_key(key):
        raise ValueError(f"{key!r} is not a valid entry key (kind/name, at most {MAX_KEY_LEN} characters)")
    if len(payload) > MAX_PAYLOAD_BYTES or len(note) > MAX_NOTE_LEN:
        raise ValueError(f"{key}: payload over {MAX_PAYLOAD_BYTES} B or note over {MAX_NOTE_LEN} characters")


def bucket_of(key: str) -> int:
    return hashlib.blake2b(key.encode(), digest_size=2).digest()[0] % BUCKETS


def _mix(key: str, digest: bytes) -> bytes:
    return hashlib.blake2b(key.encode() + digest, digest_size=DIGEST_BYTES).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


class Store:
    def __init__(self, backend: StoreBackend, *, max_drift_ms: int = 60_000) -> None:
        self._backend = backend
        image = backend.load()
        self._records: dict[str, Record] = {}
        self._digests: dict[str, bytes] = {}  # key -> record digest, kept with the record (pages list them often)
        self._buckets = [_EMPTY] * BUCKETS
        self._keys: list[set[str]] = [set() for _ in range(BUCKETS)]
        for record in image.records:
            self._index(record.key, record)
        self.certs: dict[NodeId, bytes] = dict(image.certs)
        meta = dict(image.meta)
        self.collected_ms = meta.get("collected_ms", 0)
        self.synced_ms = meta.get("synced_ms", 0)
        newest = max((r.entry.stamp for r in self._records.values()), default=Stamp(0))
        self.clock = HybridClock(max(newest, Stamp(meta.get("hlc_ms", 0))), max_drift_ms=max_drift_ms)
        self.max_drift_ms = max_drift_ms

    # ---- reading -------------------------------------------------------------------------------------

    def get(self, key: str) -> Record | None:
        return self._records.get(key)

    def live(self, key: str) -> Entry | None:
        record = self._records.get(key)
        return None if record is None or record.entry.tombstone else record.entry

    def scan(self, prefix: str) -> Iterator[Record]:
        for key in sorted(k for k in self._records if k.startswith(prefix)):
            yield self._records[key]

    def __len__(self) -> int:
        return len(self._records)

    def knows(self, key: str, version: Version) -> bool:
        """True when `version` is the current one or already in the key's history (nothing to fetch)."""
        record = self._records.get(key)
        if record is None:
            return False
        if record.entry.version == version or any(c.version == version for c in record.history):
            return True
        # Older than everything a full history keeps: merging it would change nothing.
        return len(record.history) >= HISTORY_LIMIT and version < record.history[-1].version

    # ---- writing -------------------------------------------------------------------------------------

    def next_entry(self, key: str, *, author: NodeId, payload: bytes, note: str, tombstone: bool,
                   expect: int | None, wall_ms: int) -> Entry:
        """The unsigned entry a local write would store; Conflict if `expect` is stale.

        `expect` is the generation the writer read: 0 means 'the key must not exist (or be deleted)', None
        means unconditional. Generations keep counting across deletes, so a re-created key outranks its own
        tombstone and any copy of the old value a lagging node still holds."""
        _check_write(key, payload, note)
        record = self._records.get(key)
        if record is not None and record.entry.generation >= MAX_U64:
            raise ValueError(f"{key}: generation {record.entry.generation} cannot grow any more")
        if expect is not None and live_generation(record) != expect:
            raise Conflict(key, expect, record)
        generation = next_generation(record)
        return Entry(key, generation, self.clock.tick(wall_ms), author, tombstone, b"" if tombstone else payload,
                     note)

    def merge(self, incoming: Record) -> tuple[Record, bool]:
        """Merge a record (local write or remote news); returns the result and whether anything changed."""
        current = self._records.get(incoming.key)
        merged = merge(current, incoming)
        digest = merged.digest()
        if current is not None and digest == self._digests[incoming.key]:
            return current, False
        self._backend.save_record(merged)  # first: a failed write changes nothing, here or on the wire
        self._index(incoming.key, merged, digest)
        return merged, True

    def merge_entry(self, entry: Entry) -> tuple[Record, bool]:
        return self.merge(record_of(entry))

    def observe(self, stamp: Stamp, wall_ms: int) -> None:
        """Fold a remote stamp into our clock (raises hlc.ClockDrift when it is too far ahead)."""
        self.clock.observe(stamp, wall_ms)

    def remember_cert(self, node: NodeId, der: bytes) -> None:
        if self.certs.get(node) != der:
            self.certs[node] = der
            self._backend.save_cert(node, der)

    def drop(self, keys: Iterable[str]) -> None:
        """Forget records outright (tombstone collection, or a full re-sync's presumed deletions)."""
        for key in keys:
            if key in self._records:
                self._backend.delete_record(key)
                self._index(key, None)

    def collect(self, wall_ms: int, grace_ms: int) -> list[str]:
        """Drop tombstones older than the grace period; returns their keys and moves the horizon."""
        horizon = wall_ms - grace_ms
        old = [r for r in self._records.values() if r.entry.tombstone and r.entry.stamp.wall_ms < horizon]
        if old:
            # The horizon first: claimed early it is harmless; saved late, a crash between would under-report it.
            self.adopt_horizon(max(r.entry.stamp.wall_ms for r in old))
            self.drop(r.key for r in old)
        return [r.key for r in old]

    def adopt_horizon(self, collected_ms: int) -> None:
        """Move the collection horizon: ours, or a peer's learnt in a complete sync (deletions before it may
        have been collected anywhere, so an absent key stamped before it is presumed deleted)."""
        if collected_ms > self.collected_ms:
            self.collected_ms = collected_ms
            self._backend.save_meta("collected_ms", collected_ms)

    def collected(self, key: str, wall_ms: int) -> bool:
        """Would a record of `key` stamped `wall_ms` bring back something deleted and collected? (We lack the
        key, and it was written before the horizon.)"""
        return key not in self._records and wall_ms <= self.collected_ms

    def mark_synced(self, wall_ms: int) -> None:
        self.synced_ms = max(self.synced_ms, wall_ms)
        self._backend.save_meta("synced_ms", self.synced_ms)
        self._backend.save_meta("hlc_ms", self.clock.last.wall_ms)

    # ---- digests -------------------------------------------------------------------------------------

    def summary(self) -> Summary:
        return Summary(tuple(self._buckets), self.collected_ms, self.synced_ms)

    def digests(self, buckets: Iterable[int]) -> list[tuple[str, bytes]]:
        """(key, record digest) for every key in the given buckets, in (bucket, key) order."""
        return [(key, self._digests[key]) for b in sorted(set(buckets)) for key in sorted(self._keys[b])]

    def _index(self, key: str, record: Record | None, digest: bytes | None = None) -> None:
        b = bucket_of(key)
        if key in self._records:
            self._buckets[b] = _xor(self._buckets[b], _mix(key, self._digests.pop(key)))
            self._keys[b].discard(key)
            del self._records[key]
        if record is not None:
            digest = digest or record.digest()
            self._buckets[b] = _xor(self._buckets[b], _mix(key, digest))
            self._keys[b].add(key)
            self._records[key] = record
            self._digests[key] = digest
