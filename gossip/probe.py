"""SWIM's failure detector (§3, with Lifeguard §3): one probe per interval, ping then ping-req via k members,
and the verdict; plus relaying other members' ping-reqs. Free of I/O like the rest of the core.

The shuffled round robin bounds the time until every member is probed (SWIM §4.3). What to send, how to
suspect and what the members are is the `ProbeHost`'s business (gossip.swim.Membership).
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import Protocol

from gossip.awareness import Awareness
from gossip.config import GossipConfig
from gossip.members import MemberState, Status
from gossip.timers import Timers
from gossip.wire import Ack, Address, Message, Nack, NodeId, Ping, PingReq


class ProbeHost(Protocol):
    def member(self, node: NodeId) -> MemberState | None: ...

    def live_members(self) -> list[MemberState]: ...

    def send(self, addr: Address, primary: list[Message], dest: NodeId | None, *,
             buddy: NodeId | None = None) -> None: ...

    def suspect(self, target: MemberState) -> None: ...

    def acked_by(self, node: NodeId) -> None:
        """`node` answered a ping that carried our certificate: it holds our key now."""

    def may_not_know_us(self, node: NodeId) -> None:
        """`node` did not answer: perhaps it restarted and forgot our key; attach our certificate again."""


@dataclass(slots=True)
class _Probe:
    target: NodeId
    started: float
    expected_nacks: int = 0
    nacks: int = 0


@dataclass(slots=True)
class _Relay:
    requester: Address
    requester_id: NodeId
    seq: int


class ProbeOrder:
    """Shuffled round robin over the live members; newcomers go in at a random place still to come."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._order: list[NodeId] = []
        self._at = 0

    def add(self, node: NodeId) -> None:
        self._order.insert(self._rng.randint(self._at, len(self._order)), node)

    def next(self, host: ProbeHost) -> MemberState | None:
        for _ in range(2):
            while self._at < len(self._order):
                member = host.member(self._order[self._at])
                self._at += 1
                if member is not None and member.status in (Status.ALIVE, Status.SUSPECT):
                    return member
            self._order = [m.node for m in host.live_members()]
            self._rng.shuffle(self._order)
            self._at = 0
        return None


class Prober:
    def __init__(self, *, config: GossipConfig, host: ProbeHost, timers: Timers, awareness: Awareness,
                 rng: random.Random) -> None:
        self._config = config
        self._host = host
        self._timers = timers
        self._awareness = awareness
        self._rng = rng
        self._order = ProbeOrder(rng)
        self._probes: dict[int, _Probe] = {}
        self._relays: dict[int, _Relay] = {}
        self._seq = 0

    def start(self, now: float) -> None:
        self._timers.set("probe", now + self._rng.random() * self._config.probe_interval_s, self._probe)

    def add(self, node: NodeId) -> None:
        self._order.add(node)

    def on_ack(self, seq: int, sender: NodeId) -> None:
        if (probe := self._probes.pop(seq, None)) is not None:
            if probe.target == sender:
                self._host.acked_by(sender)
            self._awareness.apply(-1)
            self._timers.cancel(f"probe-timeout:{seq}")
            self._timers.cancel(f"probe-final:{seq}")
        elif (relay := self._relays.pop(seq, None)) is not None:
            self._timers.cancel(f"relay:{seq}")
            self._host.send(relay.requester, [Ack(relay.seq)], relay.requester_id)

    def on_nack(self, seq: int) -> None:
        if (probe := self._probes.get(seq)) is not None:
            probe.nacks += 1

    def on_ping_req(self, req: PingReq, sender: NodeId, src: Address, now: float) -> None:
        """Probe `req.target` for `sender`: forward its ack, or tell it we could not reach the target."""
        own = self._next_seq()
        self._relays[own] = _Relay(src, sender, req.seq)
        self._host.send(req.target_addr, [Ping(own, req.target)], req.target)
        self._timers.set(f"relay:{own}", now + self._config.probe_timeout_s,
                         functools.partial(self._relay_expired, own))

    def _relay_expired(self, own: int, now: float) -> None:
        if (relay := self._relays.pop(own, None)) is not None:
            self._host.send(relay.requester, [Nack(relay.seq)], relay.requester_id)

    def _probe(self, now: float) -> None:
        self._timers.set("probe", now + self._awareness.scale(self._config.probe_interval_s), self._probe)
        target = self._order.next(self._host)
        if target is None:
            return
        seq = self._next_seq()
        self._probes[seq] = _Probe(target.node, now)
        buddy = target.node if target.status == Status.SUSPECT else None  # Lifeguard's buddy system
        self._host.send(target.addr, [Ping(seq, target.node)], target.node, buddy=buddy)
        self._timers.set(f"probe-timeout:{seq}", now + self._awareness.scale(self._config.probe_timeout_s),
                         functools.partial(self._probe_indirect, seq))

    def _probe_indirect(self, seq: int, now: float) -> None:
        probe = self._probes.get(seq)
        target = self._host.member(probe.target) if probe else None
        if probe is None or target is None:
            return
        # Ping it once more, certificate attached (like memberlist's TCP fallback ping, for our own reason: a
        # target that restarted since it last heard from us drops our certificate-less pings as unknown).
        self._host.may_not_know_us(target.node)
        self._host.send(target.addr, [Ping(seq, target.node)], target.node)
        helpers = [m for m in self._host.live_members() if m.node != target.node and m.status == Status.ALIVE]
        for helper in self._rng.sample(helpers, min(self._config.indirect_checks, len(helpers))):
            self._host.send(helper.addr, [PingReq(seq, target.node, target.addr)], helper.node)
            probe.expected_nacks += 1
        # The indirect window is as long as the direct one (memberlist: 0.5 s + 0.5 s = the interval).
        round_s = min(2 * self._config.probe_timeout_s, self._config.probe_interval_s)
        deadline = probe.started + self._awareness.scale(round_s)
        self._timers.set(f"probe-final:{seq}", max(deadline, now), functools.partial(self._probe_failed, seq))

    def _probe_failed(self, seq: int, now: float) -> None:
        probe = self._probes.pop(seq, None)
        if probe is None:
            return
        # Helpers that did not even nack suggest *we* are the problem (Lifeguard): slow down.
        missed = probe.expected_nacks - probe.nacks if probe.expected_nacks else 1
        self._awareness.apply(max(0, missed))
        target = self._host.member(probe.target)
        if target is not None and target.status == Status.ALIVE:
            self._host.suspect(target)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq
