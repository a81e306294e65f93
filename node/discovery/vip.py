"""Service VIPs: a stable virtual IPv4 address per service, computed alike on every node from the service names.

Role: `assign_vips(names, vip_range)` -> name -> VIP, a pure function of the *set* of names (DESIGN §7a): no
dict or set order, no PYTHONHASHSEED, no history, so every node that holds the same desired state computes the
same table without asking anyone.
Rule: each service has its own endless sequence of candidate addresses in the range (blake2b of the name and an
attempt number, then a linear walk from there, so the sequence reaches every address). Services are taken in name
order; each takes its first candidate that no service sorting before it has taken.
Stability, exactly: a service's VIP depends only on the names that sort before it. So adding or removing a
service never moves a service that sorts before it. A service sorting after it moves only through a collision:
on adding, when the newcomer takes exactly its address (or a service the newcomer displaced in turn does); on
removing, when one of its earlier candidates was the removed service's address (or one freed by such a move).
With k services in a range of P addresses, each step of such a chain happens with probability about k/P.
Boundary: pure; holding VIPs on `lo` or steering them with nftables is the caller's (docs/discovery.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network

LAB_RANGE = "198.19.0.0/24"  # lab hosts' container subnets are 198.19.i.0/24 from i = 1: .0/24 is free (DESIGN §7a)
LAB_DNS = "198.19.0.53"  # the agents' DNS responder in the lab, on every node's lo
RESERVED_LOW = 9  # the range's first host addresses (.1-.9) are kept for agent addresses, never VIPs
HASHED_CANDIDATES = 8  # then a linear walk: a name's sequence ends up covering the whole range
MAX_HOSTS = 65_536  # a /16 at most: the pool is materialised per call; more services than this is not a use case
_PERSON = b"shoal-vip-v1"  # blake2b personalisation: another use of blake2b on the same names never correlates


@dataclass(frozen=True, slots=True)
class VipRange:
    """The cluster's service range, minus what is never a VIP: the network and broadcast addresses, the first
    `reserved_low` hosts, and `agent_addresses` (the DNS address, wherever it lies in the range)."""

    network: IPv4Network
    agent_addresses: frozenset[IPv4Address] = frozenset()
    reserved_low: int = RESERVED_LOW

    def __post_init__(self) -> None:
        if not isinstance(self.network, IPv4Network):
            raise ValueError(f"service range {self.network}: IPv4 only")
        if self.network.num_addresses > MAX_HOSTS:
            raise ValueError(f"service range {self.network}: at most a /16 ({MAX_HOSTS} addresses)")
        outside = sorted(str(a) for a in self.agent_addresses if a not in self.network)
        if outside:
            raise ValueError(f"agent addresses {', '.join(outside)} are not in the service range {self.network}")
        if self.reserved_low < 0 or not self.pool():
            raise ValueError(f"service range {self.network} leaves no address for services")

    @classmethod
    def parse(cls, cidr: str, agent_addresses: Iterable[str] = (), reserved_low: int = RESERVED_LOW) -> VipRange:
        """From text, e.g. VipRange.parse("198.19.0.0/24", ["198.19.0.53"]); ValueError naming what is wrong."""
        network = ip_network(cidr, strict=True)
        addresses = frozenset(ip_address(a) for a in agent_addresses)
        if not isinstance(network, IPv4Network) or not all(isinstance(a, IPv4Address) for a in addresses):
            raise ValueError(f"service range {cidr}: IPv4 only")
        return cls(network, frozenset(a for a in addresses if isinstance(a, IPv4Address)), reserved_low)

    @classmethod
    def lab(cls) -> VipRange:
        return cls.parse(LAB_RANGE, [LAB_DNS])

    def pool(self) -> list[int]:
        """The addresses a VIP may take, as integers, ascending."""
        first, last = int(self.network.network_address), int(self.network.broadcast_address)
        skip = {int(a) for a in self.agent_addresses}
        return [a for a in range(first + 1 + self.reserved_low, last) if a not in skip]


@dataclass(frozen=True, slots=True)
class VipTable:
    vips: dict[str, IPv4Address]  # service name -> VIP
    unplaced: tuple[str, ...] = ()  # names that found the range full (the last in name order), sorted


def assign_vips(names: Iterable[str], vip_range: VipRange) -> VipTable:
    pool = vip_range.pool()
    taken: set[int] = set()
    vips: dict[str, IPv4Address] = {}
    unplaced: list[str] = []
    for name in sorted(set(names)):
        slot = next((s for s in candidates(name, len(pool)) if s not in taken), None) if len(taken) < len(pool) \
            else None
        if slot is None:
            unplaced.append(name)
            continue
        taken.add(slot)
        vips[name] = IPv4Address(pool[slot])
    return VipTable(vips, tuple(unplaced))


def candidates(name: str, size: int) -> Iterator[int]:
    """Indices into a pool of `size`: HASHED_CANDIDATES from the hash, then every index once, walking up from the
    last hashed one (the walk alone guarantees a free one is found while any is left)."""
    data = name.encode("utf-8", "surrogatepass")
    last = 0
    for attempt in range(HASHED_CANDIDATES):
        digest = hashlib.blake2b(data, digest_size=8, person=_PERSON, salt=attempt.to_bytes(16, "big")).digest()
        last = int.from_bytes(digest, "big") % size
        yield last
    for step in range(1, size + 1):
        yield (last + step) % size
