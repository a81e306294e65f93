"""Anti-entropy for the replicated store: what two nodes compare and what each then sends. Pure.

An exchange (run over mutual TLS by gossip.cluster, in memory by gossip.simnet) goes: swap `Summary`s (bucket
hashes, one datagram's worth however big the store is) → list (key, digest) of the differing buckets, in pages
of at most PAGE_BYTES → `plan` which keys to pull, push, or drop → move the records. A node whose last sync is
older than the peer's tombstone-collection horizon is *stale*: a key it holds that the peer lacks, written
before that horizon, was deleted and collected while it was away, so it drops the key instead of pushing it
back to life (the full re-sync of DESIGN.md §4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gossip.codec import pack_value, read_bytes, read_list, read_uint
from gossip.entry import DIGEST_BYTES, valid_key
from gossip.errors import WireError
from gossip.store import BUCKETS, Store, Summary

PAGE_BYTES = 1100
"""Key-digest pages stay within a datagram's size, like every digest we exchange."""

KeyDigest = tuple[str, bytes]


@dataclass(frozen=True, slots=True)
class SyncPlan:
    pull: tuple[str, ...]
    push: tuple[str, ...]
    drop: tuple[str, ...]


def differing_buckets(mine: Summary, theirs: Summary) -> list[int]:
    return [b for b in range(BUCKETS) if mine.buckets[b] != theirs.buckets[b]]


def stale_horizon(mine: Summary, theirs: Summary) -> int | None:
    """The peer's collection horizon if we have not synced since it collected tombstones, else None."""
    return theirs.collected_ms if mine.synced_ms < theirs.collected_ms else None


def plan(store: Store, mine: Sequence[KeyDigest], theirs: Sequence[KeyDigest], horizon_ms: int | None) -> SyncPlan:
    own, other = dict(mine), dict(theirs)
    pull = tuple(k for k, d in other.items() if own.get(k) != d)
    push, drop = [], []
    for key, digest in own.items():
        if other.get(key) == digest:
            continue
        record = store.get(key)
        if key not in other and horizon_ms is not None and record is not None \
                and record.entry.stamp.wall_ms <= horizon_ms:
            drop.append(key)
        else:
            push.append(key)
    return SyncPlan(pull, tuple(push), tuple(drop))


def page(digests: Sequence[KeyDigest], after: str | None) -> tuple[list[KeyDigest], str | None]:
    """The key digests after key `after` (None: from the start) that fit PAGE_BYTES; and the next cursor."""
    start = 0
    if after is not None:
        start = next((i + 1 for i, (k, _) in enumerate(digests) if k == after), len(digests))
    out: list[KeyDigest] = []
    used = 8
    for key, digest in digests[start:]:
        cost = len(key.encode()) + DIGEST_BYTES + 4
        if out and used + cost > PAGE_BYTES:
            return out, out[-1][0]
        out.append((key, digest))
        used += cost
    return out, None


# ---- encoding -----------------------------------------------------------------------------------------


def encode_summary(s: Summary) -> list[object]:
    return [b"".join(s.buckets), s.collected_ms, s.synced_ms]


def decode_summary(raw: Any) -> Summary:
    if not isinstance(raw, list) or len(raw) != 3:
        raise WireError("summary must be [buckets, collected_ms, synced_ms]")
    blob = read_bytes(raw[0], BUCKETS * DIGEST_BYTES, exact=BUCKETS * DIGEST_BYTES)
    buckets = tuple(blob[i:i + DIGEST_BYTES] for i in range(0, len(blob), DIGEST_BYTES))
    return Summary(buckets, read_uint(raw[1]), read_uint(raw[2]))


def encode_digests(items: Sequence[KeyDigest]) -> list[object]:
    return [[k, d] for k, d in items]


def decode_digests(raw: Any) -> list[KeyDigest]:
    out = []
    for item in read_list(raw, PAGE_BYTES // 10, "key digests"):
        if not isinstance(item, list) or len(item) != 2 or not valid_key(item[0]):
            raise WireError("a key digest is [key, digest]")
        out.append((item[0], read_bytes(item[1], DIGEST_BYTES, exact=DIGEST_BYTES)))
    return out


def encoded_summary_size(s: Summary) -> int:
    return len(pack_value(encode_summary(s)))


def resurrects(store: Store, key: str, wall_ms: int, peer_stale: bool) -> bool:
    """Would taking this record from a stale peer bring back a key we deleted and collected since?"""
    return peer_stale and store.get(key) is None and wall_ms <= store.collected_ms
