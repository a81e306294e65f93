"""The replicator's checks and choices, driven directly: what it believes, what it fetches, what it spreads."""

from __future__ import annotations

from collections import Counter

from gossip.broadcast import BroadcastQueue
from gossip.entry import Entry, record_of
from gossip.envelope import Authenticator
from gossip.hlc import Stamp
from gossip.replication import INLINE_LIMIT, Fetch, Replicator, StoreEvent
from gossip.signing import SigningKey, TrustAnchor, create_ca, issue_node_cert
from gossip.store import MemoryBackend, Store
from gossip.wire import EntryAnnounce, EntryNews, encoded_size

NOW = 1_800_000_000.0
CLUSTER = "c" * 32
CA_KEY, CA_CERT = create_ca(CLUSTER, "t", now_s=NOW - 100)
ME, PEER, STRANGER = "a" * 32, "b" * 32, "d" * 32
MY_KEY, PEER_KEY, STRANGER_KEY = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
MY_CERT = issue_node_cert(CA_KEY, CA_CERT, ME, MY_KEY.public_bytes, now_s=NOW - 50)
PEER_CERT = issue_node_cert(CA_KEY, CA_CERT, PEER, PEER_KEY.public_bytes, now_s=NOW - 50)
STRANGER_CERT = issue_node_cert(CA_KEY, CA_CERT, STRANGER, STRANGER_KEY.public_bytes, now_s=NOW - 50)
SRC = ("198.18.0.12", 7946)


class Harness:
    def __init__(self) -> None:
        self.auth = Authenticator(TrustAnchor(CA_CERT), CLUSTER, window=1024, max_skew_s=60)
        self.auth.learn(PEER_CERT, NOW)
        self.queue = BroadcastQueue(encoded_size)
        self.effects: list[Fetch | StoreEvent] = []
        self.stats: Counter[str] = Counter()
        self.replica = Replicator(store=Store(MemoryBackend()), local=ME, cert=MY_CERT, key=MY_KEY,
                                  auth=self.auth, broadcasts=self.queue, stats=self.stats,
                                  emit=self.effects.append, gossip_now=lambda: None)

    def news(self, entry: Entry) -> None:
        self.replica.on_message(EntryNews(entry), SRC, 0.0, NOW)


def peer_entry(key: str = "service/web", payload: bytes = b"p", *, author: str = PEER,
               signer: SigningKey = PEER_KEY, wall: float = NOW) -> Entry:
    return Entry(key, 1, Stamp(int(wall * 1000)), author, False, payload, "n").signed(signer)


def test_a_signed_entry_from_a_known_member_is_stored_and_spread_on() -> None:
    h = Harness()
    h.news(peer_entry())
    assert h.replica.store.get("service/web") is not None
    assert [type(e) for e in h.effects] == [StoreEvent]
    assert h.queue.take(10_000, 5) == [EntryNews(peer_entry())]


def test_a_forged_entry_is_counted_and_dropped() -> None:
    h = Harness()
    h.news(peer_entry(signer=STRANGER_KEY))
    assert h.replica.store.get("service/web") is None and h.stats["drop_entry_forged"] == 1


def test_an_entry_by_an_author_we_have_not_met_is_fetched_with_its_certificate() -> None:
    h = Harness()
    stranger = peer_entry(author=STRANGER, signer=STRANGER_KEY)
    h.news(stranger)
    assert h.effects == [Fetch(SRC, ("service/web",))]
    h.news(stranger)  # a second copy while the fetch is in flight asks for nothing more
    assert len(h.effects) == 1
    assert h.replica.fetched([record_of(stranger)], {}, NOW) == 0  # no certificate: still unknown
    assert h.stats["drop_entry_unknown_author"] == 1
    assert h.replica.fetched([record_of(stranger)], {STRANGER: STRANGER_CERT}, NOW) == 1
    assert h.replica.store.certs[STRANGER] == STRANGER_CERT  # kept, to hand on with the record


def test_a_certificate_from_another_ca_does_not_vouch_for_an_entry() -> None:
    h = Harness()
    rogue_key, rogue_ca = create_ca(CLUSTER, "t", now_s=NOW - 100)
    rogue_cert = issue_node_cert(rogue_key, rogue_ca, STRANGER, STRANGER_KEY.public_bytes, now_s=NOW - 50)
    stranger = peer_entry(author=STRANGER, signer=STRANGER_KEY)
    assert h.replica.fetched([record_of(stranger)], {STRANGER: rogue_cert}, NOW) == 0
    assert h.stats["drop_entry_untrusted_cert"] == 1


def test_only_a_node_may_write_its_own_status() -> None:
    h = Harness()
    h.news(peer_entry(f"status/{ME}"))
    h.news(peer_entry(f"status/{PEER}"))
    assert h.replica.store.get(f"status/{ME}") is None and h.stats["drop_entry_not_owner"] == 1
    assert h.replica.store.get(f"status/{PEER}") is not None


def test_an_entry_stamped_far_in_the_future_is_refused() -> None:
    h = Harness()
    h.news(peer_entry(wall=NOW + 3600))
    assert h.replica.store.get("service/web") is None and h.stats["drop_entry_future"] == 1


def test_large_entries_are_announced_and_small_ones_travel_whole() -> None:
    h = Harness()
    small = h.replica.write("service/small", b"s" * 100, note="", expect=0, tombstone=False, wall=NOW)
    big = h.replica.write("service/big", b"b" * 2000, note="", expect=0, tombstone=False, wall=NOW)
    sent = h.queue.take(100_000, 5)
    assert EntryNews(small.entry) in sent
    assert EntryAnnounce("service/big", big.entry.version) in sent
    assert all(encoded_size(m) <= INLINE_LIMIT for m in sent)


def test_an_announcement_of_a_version_we_hold_fetches_nothing() -> None:
    h = Harness()
    h.news(peer_entry())
    h.effects.clear()
    h.replica.on_message(EntryAnnounce("service/web", peer_entry().version), SRC, 0.0, NOW)
    assert h.effects == []
    newer = Entry("service/web", 2, Stamp(int(NOW * 1000)), PEER, False, b"2", "n").signed(PEER_KEY)
    h.replica.on_message(EntryAnnounce("service/web", newer.version), SRC, 0.0, NOW)
    assert h.effects == [Fetch(SRC, ("service/web",))]
