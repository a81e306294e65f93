"""Cross-host container routes as data: which routes this node wants, and the changes that get it there.

Role: DESIGN §7a, host-gateway routing. Every other live member advertises its container subnet and its address;
this node wants a route to each such subnet via that address. `routing()` decides (refusing subnets that clash,
reported as `Conflict`s for the agent to log), `route_plan()` diffs wanted against the routes present.
Boundary: pure; hostnet.py observes and changes the kernel's table. Every route Shoal programs carries
ROUTE_PROTOCOL, so the agent only ever sees and deletes routes it made, never the operator's or the lab's.
"""

from __future__ import annotations

import bisect
import enum
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

# The routing protocol number ("proto 83", 0x53, 'S') on every route Shoal programs. Unused by the kernel's
# RTPROT_* values (0-18, 42, 99, 186-192) and by /etc/iproute2/rt_protos; `echo "83 shoal" >
# /etc/iproute2/rt_protos.d/shoal.conf` makes `ip route` print it as "proto shoal".
ROUTE_PROTOCOL = 83
# The metric of Shoal's routes. A route is identified by destination and metric, not by protocol, so
# `ip route replace` at metric 0 would take over an operator's (or the lab's) route to the same subnet; at
# its own metric Shoal's route sits beside it, and an operator's route at a lower metric wins.
ROUTE_METRIC = 83


@dataclass(frozen=True, slots=True, order=True)
class PeerNet:
    """What one alive member other than this node advertises: its id, container subnet and address (IP only)."""

    node_id: str
    subnet: str
    address: str


@dataclass(frozen=True, slots=True, order=True)
class Route:
    """A route to `dst` (canonical CIDR) via `gateway`; gateway "" for an observed route without one."""

    dst: str
    gateway: str


class RouteAction(enum.Enum):
    REPLACE = "replace"  # add, or change the gateway of, Shoal's route to dst
    DELETE = "delete"  # remove Shoal's route to dst


@dataclass(frozen=True, slots=True)
class RouteChange:
    action: RouteAction
    route: Route


@dataclass(frozen=True, slots=True, order=True)
class Conflict:
    """A member's subnet that gets no route, and why."""

    node_id: str
    subnet: str
    reason: str

    def __str__(self) -> str:
        return f"no route to {self.subnet} of member {self.node_id}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Routing:
    routes: frozenset[Route]
    conflicts: tuple[Conflict, ...]  # sorted by node id


@dataclass(frozen=True, slots=True)
class _Claim:
    """A peer's subnet and address, parsed."""

    owner: str  # node id
    net: IPv4Network
    gateway: IPv4Address


def wanted_routes(own_subnet: str | None, peers: Iterable[PeerNet]) -> frozenset[Route]:
    """The routes this node wants; `routing()` also says which peers got none and why."""
    return routing(own_subnet, peers).routes


def routing(own_subnet: str | None, peers: Iterable[PeerNet]) -> Routing:
    """A route per peer subnet via the peer's address, except for a subnet that is not a canonical IPv4
    network, overlaps this node's, holds a member's address, or whose gateway lies in this node's subnet (each
    certainly wrong: the claim alone is refused), or overlaps another peer's (both lose theirs: no view can
    tell which is right). The order of `peers` never matters. ValueError if `own_subnet` is not an IPv4 network."""
    own = IPv4Network(own_subnet, strict=True) if own_subnet else None
    claims: list[_Claim] = []
    refused: dict[_Claim | PeerNet, str] = {}
    for peer in sorted(set(peers)):
        claim = _parse(peer)
        if isinstance(claim, str):
            refused[peer] = claim
        else:
            claims.append(claim)
    addresses = sorted((c.gateway, c.owner) for c in claims)
    for claim in claims:
        if reason := _wrong(claim, own, addresses):
            refused[claim] = reason
    refused.update(_overlaps([c for c in claims if c not in refused]))
    routes = frozenset(Route(str(c.net), str(c.gateway)) for c in claims if c not in refused)
    return Routing(routes, tuple(sorted(_conflict(who, reason) for who, reason in refused.items())))


def route_plan(wanted: frozenset[Route], present: frozenset[Route]) -> list[RouteChange]:
    """Deletes of Shoal's routes to subnets no longer wanted, then replaces for each wanted route that is
    missing or has another gateway; both in address order. Empty when nothing differs."""
    wanted_dsts = {r.dst for r in wanted}
    stale = [RouteChange(RouteAction.DELETE, r) for r in sorted(present, key=_order) if r.dst not in wanted_dsts]
    missing = [RouteChange(RouteAction.REPLACE, r) for r in sorted(wanted - present, key=_order)]
    return stale + missing


def _parse(peer: PeerNet) -> _Claim | str:
    """The peer's claim, or why it is unusable."""
    try:
        net = IPv4Network(peer.subnet, strict=True)
    except ValueError:
        return "not a canonical IPv4 network"
    try:
        gateway = IPv4Address(peer.address)
    except ValueError:
        return f"its address {peer.address!r} is not an IPv4 address"
    return _Claim(peer.node_id, net, gateway)


def _wrong(claim: _Claim, own: IPv4Network | None, addresses: list[tuple[IPv4Address, str]]) -> str | None:
    """Why a claim is certainly wrong, whatever the other peers claim: a route to it would capture our own
    containers' traffic, or a member's (its gossip too), or point at our own containers."""
    if own is not None and claim.net.overlaps(own):
        return f"overlaps this node's subnet {own}"
    if own is not None and claim.gateway in own:
        return f"its address {claim.gateway} lies inside this node's subnet {own}"
    index = bisect.bisect_left(addresses, (claim.net.network_address, ""))
    if index < len(addresses) and addresses[index][0] in claim.net:
        address, owner = addresses[index]
        whose = "its own" if owner == claim.owner else f"member {owner}'s"
        return f"contains {whose} address {address}"
    return None


def _overlaps(claims: list[_Claim]) -> dict[_Claim | PeerNet, str]:
    """Claims overlapping another. CIDR blocks nest or are disjoint, so in start order a block overlaps an
    earlier one exactly when it starts before the widest earlier block ends: one sweep, not all pairs."""
    refused: dict[_Claim | PeerNet, str] = {}
    widest: _Claim | None = None
    for claim in sorted(claims, key=lambda c: (c.net.network_address, c.net.prefixlen, c.owner)):
        if widest is not None and claim.net.network_address <= widest.net.broadcast_address:
            refused.setdefault(claim, f"overlaps member {widest.owner}'s subnet {widest.net}")
            refused.setdefault(widest, f"overlaps member {claim.owner}'s subnet {claim.net}")
        if widest is None or claim.net.broadcast_address > widest.net.broadcast_address:
            widest = claim
    return refused


def _conflict(who: _Claim | PeerNet, reason: str) -> Conflict:
    if isinstance(who, PeerNet):
        return Conflict(who.node_id, who.subnet, reason)
    return Conflict(who.owner, str(who.net), reason)


def _order(route: Route) -> tuple[int, int, str]:
    """Address order for routes (canonical dst); an unparsable dst sorts last rather than failing."""
    try:
        net = ipaddress.ip_network(route.dst)
    except ValueError:
        return (1 << 32, 0, route.dst)
    return (int(net.network_address), net.prefixlen, route.gateway)
