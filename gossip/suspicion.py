"""Lifeguard suspicion timeouts (Dadgar et al. 2017, §4): pure maths plus one record per suspect.

A suspicion starts with a long timeout and shrinks towards the minimum as independent members confirm it,
so a slow-but-alive member has time to refute while a real crash is declared quickly once several agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gossip.config import GossipConfig
from gossip.wire import NodeId


def timeout_bounds(members: int, config: GossipConfig) -> tuple[float, float]:
    """(min, max) suspicion timeout for a cluster of `members` nodes (memberlist's suspicionTimeout)."""
    node_scale = max(1.0, math.log10(max(1, members)))
    minimum = config.suspicion_mult * node_scale * config.probe_interval_s
    return minimum, minimum * config.suspicion_max_mult


def expected_confirmations(members: int, config: GossipConfig) -> int:
    """k: how many independent confirmations take the timeout down to its minimum."""
    return max(0, min(config.suspicion_confirmations, members - 2))


def remaining_timeout(confirmations: int, k: int, minimum: float, maximum: float) -> float:
    """Timeout after `confirmations` independent confirmations: log-scaled from max down to min."""
    if k < 1:
        return minimum
    fraction = math.log(confirmations + 1) / math.log(k + 1)
    return max(minimum, maximum - fraction * (maximum - minimum))


@dataclass(slots=True)
class Suspicion:
    """One open suspicion: when it started, who confirmed it, and the resulting deadline."""

    incarnation: int
    started: float
    k: int
    minimum: float
    maximum: float
    confirmers: set[NodeId] = field(default_factory=set)

    def confirm(self, by: NodeId) -> bool:
        """Record an independent confirmation; False if `by` had already confirmed."""
        if by in self.confirmers or len(self.confirmers) >= self.k:
            return False
        self.confirmers.add(by)
        return True

    @property
    def deadline(self) -> float:
        return self.started + remaining_timeout(len(self.confirmers), self.k, self.minimum, self.maximum)
