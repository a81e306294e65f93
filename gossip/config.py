"""Gossip tuning: one frozen dataclass with documented defaults and presets.

Units are in the field names. `lan()` mirrors memberlist's DefaultLANConfig (the class Serf runs by default),
so benchmarks compare like with like; `local()` is for many agents on one machine; `sim()` for simulation.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GossipConfig:
    probe_interval_s: float = 1.0
    """One probe per interval (SWIM §3); 1 s is Serf's LAN class and bounds idle traffic to ~2 datagrams/s."""
    probe_timeout_s: float = 0.3
    """Wait this long for a direct ack before asking k members (ping-req), and as long again for them; a
    LAN round trip is ≪ 1 ms. memberlist's 0.5 s (a 1 s round) added 0.5 s to every detection; a slow
    target is only suspected, and refutes, and a slow prober stretches this by its awareness score."""
    indirect_checks: int = 3
    """k members asked to ping-req a silent target (SWIM §3.1); 3 tolerates two bad paths."""
    suspicion_mult: float = 2.0
    """Minimum suspicion timeout = mult · max(1, log10 N) · probe interval (memberlist, Lifeguard §4).
    memberlist/Serf use 4 (6.8 s at N=50). Lifeguard's buddy system, the confirmation count below and a
    refutation gossiped at once let us go lower; see docs/gossip.md for the simulator runs behind 2."""
    suspicion_confirmations: int = 1
    """k: independent confirmations that bring the timeout down to its minimum (Lifeguard §4; memberlist
    uses mult - 2 = 2). Until one arrives a lone accuser needs the long timeout, so a slow accuser cannot
    kill a healthy member quickly; k = 2 doubled the detection tail in the simulator for little gain."""
    suspicion_max_mult: int = 6
    """The timeout starts at max_mult x the minimum and shrinks with independent confirmations (Lifeguard)."""
    awareness_max: int = 8
    """Local health multiplier ceiling: a struggling node probes at most 8x slower (Lifeguard §3)."""
    gossip_interval_s: float = 0.2
    """Fan-out period for queued news; 200 ms spreads a fact to 50 nodes in well under a second."""
    gossip_nodes: int = 3
    """Members sent queued news per gossip round."""
    gossip_to_dead_s: float = 30.0
    """Keep gossiping to a dead member this long, so a falsely dead node hears it and refutes."""
    retransmit_mult: int = 6
    """Each fact is sent mult · ceil(log10(N+1)) times before it leaves the queue. memberlist's 4 leaves a
    (member, fact) pair in a few thousand to push-pull (Serf's N=50 miss); 6 makes that ~1e-6 and costs
    bytes only while there is news."""
    push_pull_interval_s: float = 30.0
    """Full-state anti-entropy over TCP with one random member; scaled up by log2 N past 32 members."""
    reap_dead_s: float = 24 * 3600.0
    """Forget dead/left members after this long (Serf's reconnect_timeout class)."""
    max_clock_skew_s: float = 60.0
    """Datagrams stamped further than this from our wall clock are stale (bounds replays after our restart)."""
    replay_window: int = 1024
    """Sequence numbers tolerated out of order per sender (IPsec-style sliding window)."""
    tcp_timeout_s: float = 10.0
    """Deadline for one push-pull or join exchange."""
    tombstone_grace_s: float = 7 * 24 * 3600.0
    """Keep deletes this long before collecting them: at least the longest partition we tolerate (a node away
    longer re-syncs fully on return; DESIGN.md §4). A week, like Cassandra's gc_grace of ten days."""

    def __post_init__(self) -> None:
        positive = ("probe_interval_s", "probe_timeout_s", "gossip_interval_s", "push_pull_interval_s",
                    "tcp_timeout_s", "max_clock_skew_s", "tombstone_grace_s")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"gossip.{name} must be > 0, got {getattr(self, name)}")
        if self.probe_timeout_s >= self.probe_interval_s:
            raise ValueError("gossip.probe_timeout_s must be below gossip.probe_interval_s")
        for name in ("indirect_checks", "suspicion_mult", "gossip_nodes", "retransmit_mult"):
            if getattr(self, name) < 1:
                raise ValueError(f"gossip.{name} must be >= 1, got {getattr(self, name)}")
        if self.suspicion_max_mult < 1 or self.awareness_max < 1 or self.replay_window < 64:
            raise ValueError("gossip.suspicion_max_mult/awareness_max >= 1 and replay_window >= 64")
        if self.suspicion_confirmations < 0:
            raise ValueError(f"gossip.suspicion_confirmations must be >= 0, got {self.suspicion_confirmations}")

    def retransmit_limit(self, members: int) -> int:
        """How many times one fact is sent by this node (memberlist's retransmitLimit)."""
        return self.retransmit_mult * max(1, math.ceil(math.log10(members + 1)))

    def push_pull_period_s(self, members: int) -> float:
        """Push-pull gets rarer in big clusters, since each exchange carries the whole member list."""
        if members <= 32:
            return self.push_pull_interval_s
        return self.push_pull_interval_s * (math.ceil(math.log2(members) - math.log2(32)) + 1)

    def replace(self, **changes: object) -> GossipConfig:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def lan(cls) -> GossipConfig:
        return cls()

    @classmethod
    def local(cls) -> GossipConfig:
        """Many agents on one machine: round trips are microseconds, CPU is the scarce thing."""
        return cls(probe_timeout_s=0.2, indirect_checks=1, gossip_interval_s=0.1,
                   push_pull_interval_s=15.0, tcp_timeout_s=2.0)


PRESETS = {"lan": GossipConfig.lan, "local": GossipConfig.local}
