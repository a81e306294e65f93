"""The SWIM + Lifeguard protocol core, free of I/O: bytes and time in, effects out.

`Membership` owns the member table, suspicion and death (Lifeguard timeouts), refutation, piggybacked
dissemination and the push-pull schedule; its `Prober` (gossip.probe) runs the ping / ping-req rounds.
Callers feed it datagrams (`receive`) and the passage of time (`advance`), and drain `outbox` for what to
send. The same core runs over real UDP (gossip.cluster) and inside the deterministic simulator
(gossip.simnet), so the simulation tests the real protocol.
"""

from __future__ import annotations

import functools
import random
from collections import Counter
from dataclasses import dataclass, field

from gossip.awareness import Awareness
from gossip.broadcast import BroadcastQueue
from gossip.config import GossipConfig
from gossip.envelope import OVERHEAD, Authenticator, seal
from gossip.errors import CertificateError, SignatureError, WireError
from gossip.members import MemberState, Merge, Outcome, Status, merge, needs_refute
from gossip.probe import Prober
from gossip.replication import Fetch, Replicator, StoreEvent
from gossip.signing import SigningKey
from gossip.store import Store, StoreBackend
from gossip.suspicion import Suspicion, expected_confirmations, timeout_bounds
from gossip.timers import Timers
from gossip.wire import (
    MAX_DATAGRAM_BYTES,
    Ack,
    Address,
    Alive,
    CertNeed,
    CertOffer,
    Dead,
    EntryAnnounce,
    EntryNews,
    KnowsYou,
    Left,
    MemberNews,
    Message,
    Nack,
    NodeId,
    Ping,
    PingReq,
    Suspect,
    decode_messages,
    encode_messages,
    encoded_size,
)

LIST_SLACK = 3  # msgpack array header for the body list


@dataclass(frozen=True, slots=True)
class LocalNode:
    node: NodeId
    name: str
    addr: Address
    labels: tuple[tuple[str, str], ...]
    cert: bytes


@dataclass(frozen=True, slots=True)
class Send:
    addr: Address
    data: bytes


@dataclass(frozen=True, slots=True)
class Exchange:
    """Run a push-pull anti-entropy exchange with the member at `addr` (over mutual TLS)."""

    addr: Address


@dataclass(frozen=True, slots=True)
class MemberEvent:
    kind: str
    """join | alive | suspect | dead | left | reap | refute"""
    member: MemberState


Effect = Send | Exchange | MemberEvent | Fetch | StoreEvent


@dataclass(slots=True)
class _Peers:
    """What we track about peers beyond SWIM state: who can verify us, and their last boot."""

    knows_me: set[NodeId] = field(default_factory=set)
    boots: dict[NodeId, int] = field(default_factory=dict)
    told: dict[NodeId, float] = field(default_factory=dict)
    """When we last told a peer that we hold its key (KnowsYou)."""


class Membership:
    def __init__(self, *, config: GossipConfig, local: LocalNode, key: SigningKey, auth: Authenticator,
                 boot: int, incarnation: int, rng: random.Random, now: float, backend: StoreBackend) -> None:
        self.config = config
        self.local = local
        self._key = key
        self._auth = auth
        self._boot = boot
        self._rng = rng
        self._now = now
        self._wall = 0.0
        self.incarnation = incarnation
        self.leaving = False
        self.outbox: list[Effect] = []
        self.stats: Counter[str] = Counter()
        self._members: dict[NodeId, MemberState] = {local.node: self._self_state(now)}
        self._timers = Timers()
        self._broadcasts = BroadcastQueue(encoded_size)
        self._awareness = Awareness(config.awareness_max)
        self._suspicions: dict[NodeId, Suspicion] = {}
        self._peers = _Peers()
        self._prober = Prober(config=config, host=self, timers=self._timers, awareness=self._awareness, rng=rng)
        self._dgram_seq = 0
        store = Store(backend, max_drift_ms=int(config.max_clock_skew_s * 1000))
        self.replica = Replicator(store=store, local=local.node, cert=local.cert, key=key, auth=auth,
                                  broadcasts=self._broadcasts, stats=self.stats, emit=lambda e: self.outbox.append(e),
                                  gossip_now=self._gossip_now, send=self.send,
                                  grace_ms=int(config.tombstone_grace_s * 1000))

    # ---- public surface ------------------------------------------------------------------------------

    def start(self, now: float, wall: float) -> None:
        self._clock(now, wall)
        self._broadcasts.queue(self.local.node, self._self_state(now).alive_news())
        self._prober.start(now)
        self._timers.set("gossip", now + self._rng.random() * self.config.gossip_interval_s, self._gossip)
        self._timers.set("push-pull", now + self._push_pull_delay(), self._push_pull)
        self._timers.set("reap", now + 10.0, self._reap)
        self._timers.set("collect", now + 10.0, self._collect)
        self._timers.set("recheck", now + 0.5, self._recheck)

    def advance(self, now: float, wall: float) -> None:
        self._clock(now, wall)
        self._timers.run_due(now)

    def next_deadline(self) -> float | None:
        return self._timers.next_deadline()

    def members(self) -> list[MemberState]:
        return sorted(self._members.values(), key=lambda m: (m.name, m.node))

    @property
    def awareness(self) -> int:
        return self._awareness.score

    def receive(self, data: bytes, src: Address, now: float, wall: float) -> None:
        """Handle one datagram; anything bad is counted under stats['drop_<reason>'] and dropped."""
        self._clock(now, wall)
        self.stats["recv_datagrams"] += 1
        self.stats["recv_bytes"] += len(data)
        try:
            opened = self._auth.open(data, wall)
            if opened.sender == self.local.node:
                raise SignatureError("from_self")
            messages = decode_messages(opened.body)
        except SignatureError as exc:
            self.stats[f"drop_{exc.reason}"] += 1
            return
        except WireError:
            self.stats["drop_malformed"] += 1
            return
        if self._peers.boots.get(opened.sender) != opened.boot:
            self._peers.boots[opened.sender] = opened.boot
            self._peers.knows_me.discard(opened.sender)  # a restarted peer forgot our key
        if opened.cert:
            self._tell_known(opened.sender, src, now)
        for message in messages:
            self._handle(message, opened.sender, src)

    def snapshot(self) -> list[MemberState]:
        """Our full view, for a push-pull exchange."""
        return list(self._members.values())

    def merge_remote(self, states: list[MemberState], peer_cert: bytes | None, now: float, wall: float) -> bool:
        """Merge a peer's full view (push-pull); a peer's 'dead' only makes us suspect (memberlist).

        `peer_cert` is the certificate the peer showed in the mutual-TLS handshake: both sides now hold
        each other's key, so neither needs to attach its certificate to datagrams for the other. A peer
        whose certificate our CA did not issue is refused whole (TLS refuses it first; this is the backstop)."""
        self._clock(now, wall)
        if peer_cert is not None and not self._learn_peer(peer_cert):
            return False
        for state in states:
            news: MemberNews
            if state.status == Status.ALIVE:
                news = state.alive_news()
            elif state.status == Status.LEFT:
                news = Left(state.node, state.incarnation)
            else:
                if state.node not in self._members and state.node != self.local.node:
                    continue
                news = Suspect(state.node, state.incarnation, self.local.node)
            self._apply(news)
        return True

    def leave(self, now: float, wall: float) -> None:
        """Announce a graceful leave to every live member directly, and keep it queued for gossip."""
        self._clock(now, wall)
        self.leaving = True
        news = Left(self.local.node, self.incarnation)
        self._members[self.local.node] = self._self_state(now, Status.LEFT)
        self._broadcasts.queue(self.local.node, news)
        for member in self.live_members():
            self.send(member.addr, [news], member.node)

    # ---- receiving -----------------------------------------------------------------------------------

    def _handle(self, message: Message, sender: NodeId, src: Address) -> None:
        match message:
            case Ping(seq, target):
                if target == self.local.node:
                    self.send(src, [Ack(seq)], sender)
                else:
                    self.stats["drop_misdirected"] += 1
            case PingReq():
                self._prober.on_ping_req(message, sender, src, self._now)
            case Ack(seq):
                self._prober.on_ack(seq, sender)
            case Nack(seq):
                self._prober.on_nack(seq)
            case Alive() | Suspect() | Dead() | Left():
                self._apply(message)
            case KnowsYou():
                self._peers.knows_me.add(sender)
            case EntryNews() | EntryAnnounce() | CertNeed() | CertOffer():
                self.replica.on_message(message, sender, src, self._now, self._wall)

    # ---- merging news --------------------------------------------------------------------------------

    def _apply(self, news: MemberNews) -> None:
        if news.node == self.local.node:
            self._about_me(news)
            return
        current = self._members.get(news.node)
        result = merge(current, news, self._now)
        if result.outcome is Outcome.CONFIRMED and isinstance(news, Suspect):
            self._confirm(news)
        elif result.outcome is Outcome.APPLIED:
            self._applied(news, current, result)

    def _tell_known(self, sender: NodeId, src: Address, now: float) -> None:
        """The sender attached its certificate, so it thinks we lack its key: say we hold it now (at most once a
        second per sender), so its datagrams to us stop carrying 346 bytes of certificate and carry news."""
        if self._peers.told.get(sender, -1.0) + 1.0 > now:
            return
        if len(self._peers.told) >= 4096:
            self._peers.told.clear()
        self._peers.told[sender] = now
        self.send(src, [KnowsYou()], sender)

    def _learn_peer(self, cert: bytes) -> bool:
        try:
            node_cert = self._auth.learn(cert, self._wall)
        except CertificateError:
            self.stats["drop_untrusted_cert"] += 1
            return False
        self._peers.knows_me.add(node_cert.node_id)
        return True

    def _applied(self, news: MemberNews, before: MemberState | None, result: Merge) -> None:
        state = result.state
        assert state is not None
        self._members[state.node] = state
        self._broadcasts.queue(state.node, news)
        if state.status != Status.SUSPECT:
            self._end_suspicion(state.node)
        if state.status == Status.ALIVE:
            if before is not None:
                # A new incarnation may be a restart that forgot our key: show our certificate again.
                self._peers.knows_me.discard(state.node)
            if before is None or before.status in (Status.DEAD, Status.LEFT):
                self._prober.add(state.node)
            kind = "join" if before is None else "alive" if before.status != Status.ALIVE else ""
        elif state.status == Status.SUSPECT:
            self._start_suspicion(state, news)
            kind = "suspect"
        else:
            kind = state.status.label
        if kind:
            self.outbox.append(MemberEvent(kind, state))
        if state.status != Status.ALIVE:
            self._gossip_now()  # bad news travels at once: detection time is measured until all know

    def _about_me(self, news: MemberNews) -> None:
        if not needs_refute(self.incarnation, news, self.leaving):
            return
        self.incarnation = news.incarnation + 1
        if not isinstance(news, Alive):
            self._awareness.apply(1)  # others think we are slow: we may well be (Lifeguard §3)
        state = self._self_state(self._now)
        self._members[self.local.node] = state
        self._broadcasts.queue(self.local.node, state.alive_news())
        self.stats["refutes"] += 1
        self.outbox.append(MemberEvent("refute", state))
        self._gossip_now()  # the suspicion clock is already running

    # ---- suspicion -----------------------------------------------------------------------------------

    def _start_suspicion(self, state: MemberState, news: MemberNews) -> None:
        n = len(self._members)
        minimum, maximum = timeout_bounds(n, self.config)
        suspicion = Suspicion(state.incarnation, self._now, expected_confirmations(n, self.config),
                              minimum, maximum)
        if isinstance(news, Suspect) and news.by != self.local.node:
            suspicion.confirm(news.by)
        self._suspicions[state.node] = suspicion
        self._arm_suspicion(state.node, suspicion)

    def _confirm(self, news: Suspect) -> None:
        suspicion = self._suspicions.get(news.node)
        if suspicion is None or not suspicion.confirm(news.by):
            return
        self._broadcasts.queue(news.node, news)  # so others count this confirmation too
        self._arm_suspicion(news.node, suspicion)

    def _arm_suspicion(self, node: NodeId, suspicion: Suspicion) -> None:
        self._timers.set(f"suspect:{node}", suspicion.deadline, functools.partial(self._suspicion_expired, node))

    def _end_suspicion(self, node: NodeId) -> None:
        if self._suspicions.pop(node, None) is not None:
            self._timers.cancel(f"suspect:{node}")

    def _suspicion_expired(self, node: NodeId, now: float) -> None:
        suspicion = self._suspicions.pop(node, None)
        state = self._members.get(node)
        if suspicion is None or state is None or state.status != Status.SUSPECT:
            return
        self._apply(Dead(node, state.incarnation, self.local.node))

    # ---- dissemination and anti-entropy --------------------------------------------------------------

    def _gossip(self, now: float) -> None:
        self._timers.set("gossip", now + self.config.gossip_interval_s, self._gossip)
        if not self._broadcasts:
            return
        recent = [m for m in self._members.values() if m.node != self.local.node and (
            m.status in (Status.ALIVE, Status.SUSPECT) or now - m.since < self.config.gossip_to_dead_s)]
        for member in self._rng.sample(recent, min(self.config.gossip_nodes, len(recent))):
            self.send(member.addr, [], member.node)

    def _gossip_now(self) -> None:
        """Run a gossip round now instead of at the next tick (urgent news; the tick then restarts)."""
        self._timers.set("gossip", self._now, self._gossip)

    def _push_pull(self, now: float) -> None:
        """Anti-entropy with one member picked among the alive *and the dead*: exchanging views with a
        member we think dead is how a healed partition finds its way back (Serf's reconnect): each side
        learns the other thinks it dead, refutes, and the next exchanges carry the refutations across."""
        self._timers.set("push-pull", now + self._push_pull_delay(), self._push_pull)
        peers = [m for m in self._members.values()
                 if m.node != self.local.node and m.status in (Status.ALIVE, Status.DEAD)]
        if peers:
            self.outbox.append(Exchange(self._rng.choice(peers).addr))

    def _push_pull_delay(self) -> float:
        period = self.config.push_pull_period_s(len(self._members))
        return period * (0.5 + self._rng.random())  # stagger so the cluster does not sync in lock step

    def _reap(self, now: float) -> None:
        self._timers.set("reap", now + 10.0, self._reap)
        for member in list(self._members.values()):
            gone = member.status in (Status.DEAD, Status.LEFT)
            if gone and now - member.since > self.config.reap_dead_s:
                del self._members[member.node]
                self._auth.forget(member.node)
                self._peers.boots.pop(member.node, None)
                self.outbox.append(MemberEvent("reap", member))

    def _recheck(self, now: float) -> None:
        self._timers.set("recheck", now + 0.25, self._recheck)
        self.replica.recheck(now, self._wall)

    def _collect(self, now: float) -> None:
        self._timers.set("collect", now + 60.0, self._collect)
        self.replica.collect(self._wall)

    # ---- what the prober needs (gossip.probe.ProbeHost) ------------------------------------------------

    def member(self, node: NodeId) -> MemberState | None:
        return self._members.get(node)

    def suspect(self, target: MemberState) -> None:
        self.stats["suspicions_raised"] += 1
        self._apply(Suspect(target.node, target.incarnation, self.local.node))

    def acked_by(self, node: NodeId) -> None:
        self._peers.knows_me.add(node)

    def may_not_know_us(self, node: NodeId) -> None:
        self._peers.knows_me.discard(node)

    # ---- sending -------------------------------------------------------------------------------------

    def send(self, addr: Address, primary: list[Message], dest: NodeId | None, *,
              buddy: NodeId | None = None) -> None:
        cert = b"" if dest in self._peers.knows_me else self.local.cert
        used = OVERHEAD + len(cert) + LIST_SLACK + sum(encoded_size(m) for m in primary)
        news = self._broadcasts.take(MAX_DATAGRAM_BYTES - used, self.config.retransmit_limit(
            len(self._members)), first=buddy)
        if not primary and not news:
            return
        self._dgram_seq += 1
        try:
            data = seal(self._key, self._auth.tag, self.local.node, self._boot, self._dgram_seq,
                        int(self._wall * 1000), cert, encode_messages(primary + news))
        except WireError:  # cannot happen while the budget above is right; never send an oversized one
            self.stats["send_oversize"] += 1
            return
        self.stats["sent_datagrams"] += 1
        self.stats["sent_bytes"] += len(data)
        self.stats["max_datagram_bytes"] = max(self.stats["max_datagram_bytes"], len(data))
        self.outbox.append(Send(addr, data))

    # ---- small helpers -------------------------------------------------------------------------------

    def _clock(self, now: float, wall: float) -> None:
        self._now, self._wall = now, wall

    def live_members(self) -> list[MemberState]:
        return [m for m in self._members.values()
                if m.node != self.local.node and m.status in (Status.ALIVE, Status.SUSPECT)]

    def _self_state(self, now: float, status: Status = Status.ALIVE) -> MemberState:
        local = self.local
        return MemberState(local.node, local.name, local.addr, self.incarnation, status, local.labels, now)
