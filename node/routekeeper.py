"""Keeps this host's routes to every peer's container subnet (and Shoal's nft table) in step with the cluster.

Role: a small level-triggered loop. Membership, status and desired-state changes poke it; each pass reads the
wanted peers (alive members other than this node that advertise a subnet) and the network policies compiled
for this host (netpolicy: the whole of Shoal's table), and hands them to the injected `converge`
(node.hostnet.converge in the agent, a recorder in tests), which is idempotent. A pass also runs every
`resync_s`, so a route someone deleted by hand comes back. Boundary: decides nothing about routes itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence

from gossip.members import MemberState
from netpolicy.model import Ruleset
from node.observed import NodeStatus
from node.routes import PeerNet
from node.schedule import PLACEABLE
from node.wake import wait_any

log = logging.getLogger("shoal.routes")

Converge = Callable[[str | None, Iterable[PeerNet], Ruleset | None, bool], Awaitable[list[str]]]
Inputs = tuple[str | None, list[PeerNet], Ruleset | None, bool]
"""(this host's container subnet, its peers, Shoal's whole table or None for the null binding alone, and
whether to keep an existing table instead: hostnet.converge's arguments)."""


def peers(me: str, members: Sequence[MemberState], statuses: dict[str, NodeStatus]) -> list[PeerNet]:
    """Members that are not known dead or gone and advertise a subnet, except this node."""
    found = []
    for m in members:
        status = statuses.get(m.node)
        if m.node != me and m.status in PLACEABLE and status is not None and status.subnet:
            found.append(PeerNet(m.node, status.subnet, m.addr[0]))
    return sorted(found)


class RouteKeeper:
    def __init__(self, inputs: Callable[[], Inputs], converge: Converge,
                 resync_s: float = 30.0) -> None:
        self._inputs, self._converge, self._resync_s = inputs, converge, resync_s
        self._wake = asyncio.Event()
        self._last: Inputs | None = None
        self._warned: list[str] = []

    def poke(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()
            await self.sync()
            await wait_any(self._wake, stop, self._resync_s)

    async def sync(self, force: bool = False) -> None:
        current = self._inputs()
        if current[0] is None:  # the host network is not up yet: nothing to route to or from
            return
        try:
            warnings = await self._converge(*current)
        except Exception as exc:
            log.error("cannot program container routes", extra={"fields": {"error": exc}})
            return
        if warnings != self._warned:
            for warning in warnings:
                log.warning("container route not programmed", extra={"fields": {"reason": warning}})
            self._warned = warnings
        if current != self._last:
            log.info("container routes in step", extra={"fields": {
                "own": current[0], "peers": ", ".join(f"{p.subnet} via {p.address}" for p in current[1])}})
            self._last = current
