"""The replicator's checks and choices, driven directly: what it believes, what it fetches, what it spreads."""

from __future__ import annotations

from collections import Counter

from gossip.broadcast import BroadcastQueue
from gossip.entry import Change, Entry, Record, Version, change_of, record_of
from gossip.envelope import Authenticator
from gossip.hlc import Stamp
from gossip.replication import (
    ANNOUNCE_WAIT_S,
    FETCH_RETRY_S,
    INLINE_LIMIT,
    VERIFY_WAIT_S,
    Fetch,
    Replicator,
    StoreEvent,
)
from gossip.signing import SigningKey, TrustAnchor, create_ca, issue_node_cert
from gossip.store import MemoryBackend, Store
from gossip.wire import Address, CertNeed, CertOffer, EntryAnnounce, EntryNews, Message, encoded_size

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
        self.sent: list[tuple[Address, list[Message]]] = []
        self.stats: Counter[str] = Counter()
        self.replica = Replicator(store=Store(MemoryBackend()), local=ME, cert=MY_CERT, key=MY_KEY,
                                  auth=self.auth, broadcasts=self.queue, stats=self.stats,
                                  emit=self.effects.append, gossip_now=lambda: None,
                                  send=lambda addr, primary, dest: self.sent.append((addr, primary)))

    def news(self, entry: Entry, now: float = 0.0) -> None:
        self.on(EntryNews(entry), now)

    def on(self, message: Message, now: float = 0.0) -> None:
        self.replica.on_message(message, PEER, SRC, now, NOW)


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


def test_an_entry_by_an_author_we_have_not_met_waits_for_its_key_then_is_fetched_with_its_certificate() -> None:
    h = Harness()
    stranger = peer_entry(author=STRANGER, signer=STRANGER_KEY)
    h.news(stranger)
    assert h.effects == [] and h.replica.store.get("service/web") is None  # held, not believed, not fetched
    assert h.sent == [(SRC, [CertNeed(STRANGER)])]  # the relay is asked for the author's certificate
    h.replica.recheck(VERIFY_WAIT_S - 0.1, NOW)
    assert h.effects == []
    h.replica.recheck(VERIFY_WAIT_S, NOW)
    assert h.effects == [Fetch(SRC, ("service/web",))]
    h.news(stranger)  # a copy arriving while the fetch is in flight
    h.replica.recheck(VERIFY_WAIT_S + FETCH_RETRY_S - 0.1, NOW)
    assert len(h.effects) == 1  # asks for nothing more
    assert h.replica.fetched([record_of(stranger)], {}, NOW) == 0  # no certificate: still unknown
    assert h.stats["drop_entry_unknown_author"] == 1
    assert h.replica.fetched([record_of(stranger)], {STRANGER: STRANGER_CERT}, NOW) == 1
    assert h.replica.store.certs[STRANGER] == STRANGER_CERT  # kept, to hand on with the record


def test_a_held_entry_is_accepted_as_soon_as_membership_teaches_its_authors_key() -> None:
    h = Harness()
    stranger = peer_entry(author=STRANGER, signer=STRANGER_KEY)
    forged = peer_entry("service/api", author=STRANGER, signer=PEER_KEY)
    h.news(stranger)
    h.news(forged)
    h.auth.learn(STRANGER_CERT, NOW)  # e.g. the stranger pinged us with its certificate attached
    h.replica.recheck(0.5, NOW)
    assert h.replica.store.get("service/web") is not None and h.replica.store.get("service/api") is None
    assert h.stats["drop_entry_forged"] == 1 and not any(isinstance(e, Fetch) for e in h.effects)


def test_held_entries_are_fetched_in_a_few_batches_not_one_request_each() -> None:
    h = Harness()
    relays = [(f"198.18.0.{i}", 7946) for i in range(20, 25)]
    for i in range(40):
        entry = peer_entry(f"service/s{i}", author=STRANGER, signer=STRANGER_KEY)
        h.replica.on_message(EntryNews(entry), PEER, relays[i % 5] if i >= 20 else relays[0], 0.0, NOW)
    h.replica.recheck(VERIFY_WAIT_S, NOW)
    fetches = [e for e in h.effects if isinstance(e, Fetch)]
    assert len(fetches) == 2 and len(fetches[0].keys) == 24  # the relay that sent the most, first


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
    h.on(EntryAnnounce("service/web", peer_entry().version))
    assert h.effects == []
    newer = Entry("service/web", 2, Stamp(int(NOW * 1000)), PEER, False, b"2", "n").signed(PEER_KEY)
    h.on(EntryAnnounce("service/web", newer.version))
    assert h.effects == [Fetch(SRC, ("service/web",))]


def test_a_relay_answers_a_certificate_request_and_the_answer_releases_held_entries() -> None:
    relay, h = Harness(), Harness()
    relay.replica.store.remember_cert(STRANGER, STRANGER_CERT)
    relay.on(CertNeed(STRANGER))
    relay.on(CertNeed("e" * 32))  # one it does not know: no answer
    assert relay.sent == [(SRC, [CertOffer(STRANGER_CERT)])]
    h.news(peer_entry(author=STRANGER, signer=STRANGER_KEY))
    h.on(CertOffer(STRANGER_CERT))
    assert h.replica.store.get("service/web") is not None and h.auth.key_of(STRANGER) is not None
    h.replica.recheck(VERIFY_WAIT_S, NOW)
    assert not any(isinstance(e, Fetch) for e in h.effects)


def test_a_certificate_from_another_ca_teaches_nothing() -> None:
    h = Harness()
    rogue_key, rogue_ca = create_ca(CLUSTER, "t", now_s=NOW - 100)
    h.news(peer_entry(author=STRANGER, signer=STRANGER_KEY))
    h.on(CertOffer(issue_node_cert(rogue_key, rogue_ca, STRANGER, STRANGER_KEY.public_bytes, now_s=NOW - 50)))
    assert h.replica.store.get("service/web") is None and h.stats["drop_entry_untrusted_cert"] == 1


def test_an_author_certificate_is_asked_for_at_most_once_a_second() -> None:
    h = Harness()
    for i in range(5):
        h.news(peer_entry(f"service/s{i}", author=STRANGER, signer=STRANGER_KEY), now=0.1 * i)
    h.news(peer_entry("service/late", author=STRANGER, signer=STRANGER_KEY), now=1.0)
    assert [m for _, m in h.sent] == [[CertNeed(STRANGER)], [CertNeed(STRANGER)]]


def test_an_announcement_of_an_entry_also_gossiped_whole_waits_for_it_before_fetching() -> None:
    h = Harness()
    entry = peer_entry()
    h.on(EntryAnnounce(entry.key, entry.version, whole=True))
    h.replica.recheck(ANNOUNCE_WAIT_S - 0.01, NOW)
    assert h.effects == []
    h.news(entry, now=ANNOUNCE_WAIT_S - 0.01)  # arrives whole in time: nothing to fetch
    h.replica.recheck(ANNOUNCE_WAIT_S, NOW)
    assert not any(isinstance(e, Fetch) for e in h.effects)
    newer = Entry(entry.key, 2, entry.stamp, PEER, False, b"2", "n").signed(PEER_KEY)
    h.on(EntryAnnounce(newer.key, newer.version, whole=True), now=1.0)
    h.replica.recheck(1.0 + ANNOUNCE_WAIT_S, NOW)
    assert [e for e in h.effects if isinstance(e, Fetch)] == [Fetch(SRC, (entry.key,))]


def test_a_key_deleted_and_collected_is_taken_back_from_no_one() -> None:
    h = Harness()
    old = peer_entry(wall=NOW - 3600)
    h.replica.store.adopt_horizon(int((NOW - 60) * 1000))
    h.news(old)
    assert h.replica.fetched([record_of(old)], {}, NOW) == 0
    assert h.replica.store.get("service/web") is None and h.stats["drop_entry_collected"] == 2
    h.news(peer_entry("service/new"))  # written after the horizon: welcome
    assert h.replica.store.get("service/new") is not None


def test_history_items_that_cannot_be_true_are_dropped() -> None:
    h = Harness()
    entry = peer_entry(f"status/{PEER}")
    future = Change(Version(2**63, False, Stamp(2**62), PEER, b"f" * 8), "from the future")
    other = Change(Version(0, False, Stamp(1), STRANGER, b"o" * 8), "by someone else")
    newer = Change(Version(5, False, Stamp(int(NOW * 1000)), PEER, b"n" * 8), "newer than the entry")
    assert h.replica.fetched([Record(entry, (future, other, newer, change_of(entry)))], {}, NOW) == 1
    stored = h.replica.store.get(entry.key)
    assert stored is not None and stored.history == (change_of(entry),)
    assert h.stats["drop_history_items"] == 3
