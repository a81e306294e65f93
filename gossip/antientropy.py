"""Anti-entropy for the replicated store: what two nodes compare and what each then sends. Pure.

An exchange (run over mutual TLS by gossip.cluster, in memory by gossip.simnet) goes: swap `Summary`s (bucket
hashes, one datagram's worth however big the store is) → list (key, digest) of the differing buckets, in pages
of at most PAGE_BYTES → `plan` which keys to pull, push, or drop → move the records. A node whose last sync is
older than the peer's tombstone-collection horizon is *stale*: a key it holds that the peer lacks, written
before that horizon, was deleted and collected while it was away, so it drops the key instead of pushing it
back to life (the full re-sync of DESIGN.md §4). After a complete exchange a node adopts the peer's horizon, so
no node takes back, from anyone and by any path, a key written before it (gossip.store.Store.collected).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gossip.codec import pack_value, read_bytes, read_list, read_uint
from gossip.entry import DIGEST_BYTES, valid_key
from gossip.errors import WireError
from gossip.store import BUCKETS, Store, Summary, bucket_of

PAGE_BYTES = 1100
"""Key-digest pages stay within a datagram's size, like every digest we exchange."""

KeyDigest = tuple[str, bytes]


@dataclass(frozen=True, slots=True)
class SyncPlan:
    pull: tuple[str, ...]
    push: tuple[str, ...]
    drop: tuple[str, ...]


STALE_MARGIN_MS = 5 * 60_000
"""A node counts as stale unless it synced this long after the horizon: a tombstone may still have been on its way
(clock skew up to a minute, dissemination, a push-pull period) when it last synced."""


def differing_buckets(mine: Summary, theirs: Summary) -> list[int]:
    return [b for b in range(BUCKETS) if mine.buckets[b] != theirs.buckets[b]]


def peer_horizon(theirs: Summary, wall_ms: int, grace_ms: int, skew_ms: int) -> int | None:
    """The peer's collection horizon, or None if it is implausible: nothing younger than the grace period can
    have been collected, so a later horizon is a wrong clock or a lie, and believing it would drop live keys."""
    return theirs.collected_ms if theirs.collected_ms <= wall_ms - grace_ms + skew_ms else None


def stale_horizon(mine: Summary, horizon: int | None) -> int | None:
    """`horizon` if we have not synced since well after it (we may have missed collected deletions), else None."""
    return horizon if horizon is not None and mine.synced_ms < horizon + STALE_MARGIN_MS else None


def plan(store: Store, mine: Sequence[KeyDigest], theirs: Sequence[KeyDigest], horizon_ms: int | None, *,
         complete: bool = True) -> SyncPlan:
    """What to pull, push and drop. `complete` is False when the peer's listing was cut short: a key missing
    from it proves nothing then, so only keys both sides listed differently are exchanged, and nothing dropped."""
    own, other = dict(mine), dict(theirs)
    pull = tuple(k for k, d in other.items() if own.get(k) != d)
    push, drop = [], []
    for key, digest in own.items():
        if other.get(key) == digest or (key not in other and not complete):
            continue
        record = store.get(key)
        if key not in other and horizon_ms is not None and record is not None \
                and record.entry.stamp.wall_ms <= horizon_ms:
            drop.append(key)
        else:
            push.append(key)
    return SyncPlan(pull, tuple(push), tuple(drop))


def page(digests: Sequence[KeyDigest], after: str | None) -> tuple[list[KeyDigest], str | None]:
    """The key digests after key `after` (None: from the start) that fit PAGE_BYTES; and the next cursor.

    `digests` is in (bucket, key) order. The cursor need not still exist (its record may have been collected
    between two pages): the page resumes at the first key after its place."""
    start = 0
    if after is not None:
        start = bisect.bisect_right([(bucket_of(k), k) for k, _ in digests], (bucket_of(after), after))
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
