"""Spreads the replicated store through the SWIM core: local writes, news in datagrams, fetches, checks.

Sans-I/O like the rest of the core (gossip.swim owns one `Replicator`). A write is signed by its author,
stored, and queued as news: the whole entry when it is small (`EntryNews`), else an `EntryAnnounce` that makes
receivers `Fetch` the record over TCP from whoever announced it. Every node that learns something new gossips it
on at once, so news spreads epidemically. Nothing is believed unchecked: an entry needs a valid signature by its
author, whose key comes from gossip's Authenticator, from a certificate the relay sends when asked (`CertNeed` /
`CertOffer`; the entry waits meanwhile), or from one our CA issued that travelled with a fetched record; status
entries (`status/<node id>`) only from that node; stamps far in the future are refused. Bad entries are counted
(stats `drop_entry_<reason>`) and dropped.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from gossip.antientropy import peer_horizon
from gossip.broadcast import BroadcastQueue
from gossip.codec import NodeId
from gossip.entry import Entry, Record, Version, record_of
from gossip.envelope import Authenticator
from gossip.errors import CertificateError, PersistError
from gossip.hlc import ClockDrift
from gossip.signing import SigningKey, VerifyKey
from gossip.store import Store, Summary
from gossip.wire import Address, CertNeed, CertOffer, EntryAnnounce, EntryNews, Message, encoded_size

log = logging.getLogger(__name__)

INLINE_LIMIT = 1000
"""Largest EntryNews we gossip whole (a payload of about 880 B: most service specs). It fits a datagram beside a
probe but not beside a certificate (346 B), so it rides the datagrams without one: the fan-out to members that
know us, which is nearly all of them once a cluster has formed. Larger entries are announced and fetched."""
FETCH_RETRY_S = 2.0
"""A key being fetched is not fetched again (from another announcer) until this long has passed."""
STATUS_PREFIX = "status/"
VERIFY_WAIT_S = 2.0
"""How long an entry by an author we have not met waits for the author's key before we fetch it."""
MAX_UNVERIFIED = 1024
ANNOUNCE_WAIT_S = 0.25
"""An announced entry that is also gossiped whole is fetched only if it has not arrived within this."""
CERT_RETRY_S = 1.0
"""An author's certificate is asked for at most once a second (from whichever relay sent its entry)."""
FETCHES_PER_RECHECK = 2
FETCH_BATCH = 64


@dataclass(frozen=True, slots=True)
class Fetch:
    """Fetch the records of `keys` over mutual TLS from the member at `addr` (then call `fetched`)."""

    addr: Address
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StoreEvent:
    """A key's record changed on this node (a new winner, or only its history grew)."""

    key: str
    record: Record | None
    """None when the key was dropped (a full re-sync found it deleted and collected elsewhere)."""
    winner_changed: bool


class Send(Protocol):
    def __call__(self, addr: Address, primary: list[Message], dest: NodeId | None) -> None: ...


class Replicator:
    def __init__(self, *, store: Store, local: NodeId, cert: bytes, key: SigningKey, auth: Authenticator,
                 broadcasts: BroadcastQueue, stats: Counter[str], emit: Callable[[Fetch | StoreEvent], None],
                 gossip_now: Callable[[], None], send: Send, grace_ms: int = 7 * 24 * 3600 * 1000) -> None:
        self.store = store
        self._grace_ms = grace_ms
        self._local = local
        self._key = key
        self._own_key = VerifyKey.from_bytes(key.public_bytes)
        self._auth = auth
        self._broadcasts = broadcasts
        self.stats = stats
        self._emit = emit
        self._gossip_now = gossip_now
        self._send = send
        self._asked: dict[NodeId, float] = {}  # author -> when we may ask for its certificate again
        self._pending: dict[str, float] = {}
        self._unverified: dict[str, tuple[Entry, Address, float]] = {}
        self._awaited: dict[str, tuple[Version, Address, float]] = {}  # announced, the whole entry on its way
        self._author_keys: dict[bytes, VerifyKey] = {}  # by certificate DER: building a key object costs
        store.remember_cert(local, cert)

    # ---- local writes --------------------------------------------------------------------------------

    def write(self, key: str, payload: bytes, *, note: str, expect: int | None, tombstone: bool,
              wall: float) -> Record:
        """Sign and store a local write, and start spreading it (raises store.Conflict, nothing written)."""
        entry = self.store.next_entry(key, author=self._local, payload=payload, note=note, tombstone=tombstone,
                                      expect=expect, wall_ms=_ms(wall)).signed(self._key)
        record, _ = self.store.merge_entry(entry)
        self._announce(entry, "e:")
        self._emit(StoreEvent(key, record, True))
        return record

    def publish_status(self, payload: bytes, note: str, wall: float) -> Record:
        """This node's own observed state (versioned by this node alone: the next generation, always)."""
        return self.write(STATUS_PREFIX + self._local, payload, note=note, expect=None, tombstone=False, wall=wall)

    # ---- news from datagrams -------------------------------------------------------------------------

    def on_message(self, message: Message, sender: NodeId, src: Address, now: float, wall: float) -> None:
        if isinstance(message, CertNeed):
            der = self._auth.cert_of(message.node) or self.store.certs.get(message.node)
            if der is not None:
                self._send(src, [CertOffer(der)], sender)
            return
        if isinstance(message, CertOffer):
            self._learn_member(message.cert, wall)
            return
        if isinstance(message, EntryAnnounce):
            if self.store.knows(message.key, message.version):
                return
            if not message.whole:
                self._fetch(src, [message.key], now)
            else:
                self._await(message, src, now)
            return
        if not isinstance(message, EntryNews):
            return
        entry = message.entry
        if self.store.knows(entry.key, entry.version) or not self._owner_ok(entry):
            return
        verify_key = self._author_key(entry)
        if verify_key is None:
            self._hold(entry, src, now)
            self._ask_cert(entry.author, sender, src, now)
            return
        self._accept_verified(record_of(entry), verify_key, wall)

    def _await(self, message: EntryAnnounce, src: Address, now: float) -> None:
        awaited = self._awaited.get(message.key)
        if awaited is not None and awaited[0] >= message.version:
            return
        if awaited is None and len(self._awaited) >= MAX_UNVERIFIED:
            return  # the next announcement, or push-pull, brings it
        self._awaited[message.key] = (message.version, src, awaited[2] if awaited else now + ANNOUNCE_WAIT_S)

    def _hold(self, entry: Entry, src: Address, now: float) -> None:
        """An entry whose author we have not met: wait a moment for the author's key to arrive by membership
        gossip (every member shows its certificate to each peer it talks to), rather than have every node fetch
        every newcomer's first entries at once (N² TLS handshakes when a cluster forms)."""
        held = self._unverified.get(entry.key)
        if held is not None and held[0].version >= entry.version:
            return
        if held is None and len(self._unverified) >= MAX_UNVERIFIED:
            self._fetch(src, [entry.key], now)  # too many waiting: fetch this one (its certificate comes along)
            return
        self._unverified[entry.key] = (entry, src, held[2] if held else now + VERIFY_WAIT_S)

    def _ask_cert(self, author: NodeId, sender: NodeId, src: Address, now: float) -> None:
        """Ask the relay for the author's certificate: one small datagram each way instead of a TLS fetch."""
        if self._asked.get(author, 0.0) > now:
            return
        if len(self._asked) >= MAX_UNVERIFIED:
            self._asked = {a: t for a, t in self._asked.items() if t > now}
        self._asked[author] = now + CERT_RETRY_S
        self.stats["cert_needs"] += 1
        self._send(src, [CertNeed(author)], sender)

    def _learn_member(self, der: bytes, wall: float) -> None:
        try:
            cert = self._auth.learn(der, wall)
        except CertificateError:
            self.stats["drop_entry_untrusted_cert"] += 1
            return
        self.store.remember_cert(cert.node_id, der)
        self._asked.pop(cert.node_id, None)
        self._accept_held(cert.node_id, wall)

    def _accept_held(self, author: NodeId, wall: float) -> None:
        for key, (entry, _, _) in list(self._unverified.items()):
            if entry.author == author and (verify_key := self._author_key(entry)) is not None:
                del self._unverified[key]
                self._accept_verified(record_of(entry), verify_key, wall)

    def _accept_verified(self, record: Record, verify_key: VerifyKey, wall: float) -> bool:
        """Merge a record whose entry carries its author's signature (the history is checked in `accept`)."""
        if not record.entry.verify(verify_key):
            self.stats["drop_entry_forged"] += 1
            return False
        return self.accept(record, wall)

    def recheck(self, now: float, wall: float) -> None:
        """Accept held entries whose authors we now know; forget awaited versions that arrived whole; fetch, in a
        few batched requests, what waited long enough (a fetch reply also carries the authors' certificates)."""
        due: dict[Address, list[str]] = {}
        for key, (entry, src, deadline) in list(self._unverified.items()):
            verify_key = self._author_key(entry)
            if verify_key is not None:
                del self._unverified[key]
                self._accept_verified(record_of(entry), verify_key, wall)
            elif deadline <= now:
                due.setdefault(src, []).append(key)
        for key, (version, src, deadline) in list(self._awaited.items()):
            if self.store.knows(key, version):
                del self._awaited[key]
            elif deadline <= now:
                due.setdefault(src, []).append(key)
        for src, keys in sorted(due.items(), key=lambda item: -len(item[1]))[:FETCHES_PER_RECHECK]:
            batch = keys[:FETCH_BATCH]  # the rest stay due for the next recheck
            for key in batch:
                self._unverified.pop(key, None)
                self._awaited.pop(key, None)
            self._fetch(src, batch, now)

    # ---- records over TCP (fetch replies, anti-entropy) ----------------------------------------------

    def serve(self, keys: Iterable[str]) -> tuple[list[Record], dict[NodeId, bytes]]:
        """Our records for `keys` and the certificates of their authors, for a peer to check."""
        records = [r for k in keys if (r := self.store.get(k)) is not None]
        certs = {r.entry.author: der for r in records if (der := self.store.certs.get(r.entry.author))}
        return records, certs

    def fetched(self, records: Iterable[Record], certs: dict[NodeId, bytes], wall: float) -> int:
        """Merge records a peer sent (checking each author's certificate and signature); returns how many
        changed our store."""
        changed = 0
        for record in records:
            self._pending.pop(record.key, None)
            entry = record.entry
            if not self._owner_ok(entry):
                continue
            verify_key = self._author_key(entry) or self._learn_author(entry, certs.get(entry.author))
            if verify_key is None:
                self.stats["drop_entry_unknown_author"] += 1
            else:
                changed += self._accept_verified(record, verify_key, wall)
        return changed

    def drop(self, keys: Iterable[str]) -> None:
        """Forget keys a full re-sync found deleted (and collected) by the rest of the cluster."""
        for key in keys:
            if self.store.get(key) is not None:
                self.store.drop([key])
                self.stats["entries_dropped_resync"] += 1
                self._emit(StoreEvent(key, None, True))

    def horizon_of(self, theirs: Summary, wall: float) -> int | None:
        """A peer's collection horizon if plausible (gossip.antientropy.peer_horizon), else None, counted."""
        horizon = peer_horizon(theirs, _ms(wall), self._grace_ms, self.store.max_drift_ms)
        if horizon is None:
            self.stats["store_horizon_implausible"] += 1
        return horizon

    def collect(self, wall: float) -> None:
        """Collect tombstones past their grace period (DESIGN.md §4)."""
        self.store.collect(_ms(wall), self._grace_ms)

    def synced(self, wall: float, horizon_ms: int | None) -> None:
        """A complete exchange ended: adopt the peer's (plausible) collection horizon and note the sync."""
        if horizon_ms is not None:
            self.store.adopt_horizon(horizon_ms)
        self.store.mark_synced(_ms(wall))

    def fetch_failed(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._pending.pop(key, None)

    # ---- merging -------------------------------------------------------------------------------------

    def accept(self, record: Record, wall: float) -> bool:
        """Merge a verified record; spread what it taught us. Returns whether the store changed."""
        try:
            self.store.observe(record.entry.stamp, _ms(wall))
        except ClockDrift:
            self.stats["drop_entry_future"] += 1
            return False
        if self.store.collected(record.key, record.entry.stamp.wall_ms):
            self.stats["drop_entry_collected"] += 1  # deleted, and the tombstone collected, while its holder was away
            return False
        record = self._checked_history(record, _ms(wall))
        before = self.store.get(record.key)
        try:
            merged, changed = self.store.merge(record)
        except PersistError as exc:
            self.stats["store_write_failed"] += 1
            log.error("cannot persist %s: %s", record.key, exc)
            return False
        if not changed:
            return False
        self.stats["entries_merged"] += 1
        winner = before is None or merged.entry.version != before.entry.version
        if winner:
            self._announce(merged.entry, "e:")
        elif any(c.version == record.entry.version for c in merged.history):
            self.stats["entries_lost_conflict"] += 1
            self._announce(record.entry, "h:")  # the loser spreads too, so every history shows it
        self._emit(StoreEvent(record.key, merged, winner))
        return True

    # ---- helpers -------------------------------------------------------------------------------------

    def _checked_history(self, record: Record, wall_ms: int) -> Record:
        """History items are not signed: keep only those that could be true (none newer than the entry they came
        with, none stamped in the future, on a status key none by another author), so a member cannot evict a
        key's real history or freeze its gossip with versions from the far future."""
        entry, limit = record.entry, wall_ms + self.store.max_drift_ms
        owner = entry.key[len(STATUS_PREFIX):] if entry.key.startswith(STATUS_PREFIX) else None
        kept = tuple(c for c in record.history if c.version <= entry.version and c.version.stamp.wall_ms <= limit
                     and (owner is None or c.version.author == owner))
        if len(kept) != len(record.history):
            self.stats["drop_history_items"] += len(record.history) - len(kept)
            return Record(entry, kept)
        return record

    def _announce(self, entry: Entry, slot: str) -> None:
        news = EntryNews(entry)
        if encoded_size(news) > INLINE_LIMIT:
            self._broadcasts.queue(slot + entry.key, EntryAnnounce(entry.key, entry.version))
        else:  # whole where it fits; announced from datagrams too full for it (receivers wait, then fetch)
            self._broadcasts.queue(slot + entry.key, news, fallback=EntryAnnounce(entry.key, entry.version, True))
        self._gossip_now()

    def _fetch(self, addr: Address, keys: list[str], now: float) -> None:
        wanted = tuple(k for k in keys if self._pending.get(k, 0.0) <= now)
        if len(self._pending) >= MAX_UNVERIFIED:  # expired entries are only a dedupe memory: prune them
            self._pending = {k: t for k, t in self._pending.items() if t > now}
            if len(self._pending) >= MAX_UNVERIFIED:
                self.stats["fetch_shed"] += 1
                return
        if wanted:
            for key in wanted:
                self._pending[key] = now + FETCH_RETRY_S
            self.stats["fetches"] += 1
            self._emit(Fetch(addr, wanted))

    def _owner_ok(self, entry: Entry) -> bool:
        if entry.key.startswith(STATUS_PREFIX) and entry.key[len(STATUS_PREFIX):] != entry.author:
            self.stats["drop_entry_not_owner"] += 1
            return False
        return True

    def _author_key(self, entry: Entry) -> VerifyKey | None:
        if entry.author == self._local:
            return self._own_key
        key = self._auth.key_of(entry.author)
        if key is not None:
            der = self._auth.cert_of(entry.author)
            if der is not None:
                self.store.remember_cert(entry.author, der)  # so we can hand it on with the record
            return key
        return self._learn_author(entry, self.store.certs.get(entry.author))

    def _learn_author(self, entry: Entry, der: bytes | None) -> VerifyKey | None:
        """The author's key from a certificate our CA issued, valid when the entry was written."""
        if der is None:
            return None
        try:
            cert = self._auth.trust.verify_node_cert(der, now_s=entry.stamp.wall_ms / 1000)
        except CertificateError:
            self.stats["drop_entry_untrusted_cert"] += 1
            return None
        if cert.node_id != entry.author:
            return None
        self.store.remember_cert(entry.author, der)
        if der not in self._author_keys:
            if len(self._author_keys) >= 4096:
                self._author_keys.clear()
            self._author_keys[der] = VerifyKey.from_bytes(cert.public_key)
        return self._author_keys[der]


def _ms(wall: float) -> int:
    return int(wall * 1000)
