"""What Shoal wants in its own nftables table on one host, as values: the input of render.py.

Role: today the cluster's container subnets, between which traffic is routed and never masqueraded (DESIGN
§7a); the network-policy issue adds its address sets and filter rules as further fields of `Ruleset`, and
render.py gives each its own set or chain in the same table, so one atomic replace still covers everything.
Boundary: pure values, validated on construction; no nft, and no `node` or `gossip` import.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Network

TABLE_FAMILY = "inet"  # one table for IPv4 and (later) IPv6 rules
TABLE_NAME = "shoal"  # Shoal owns this table and nothing else in the ruleset (research/lab.md P10)


@dataclass(frozen=True, slots=True)
class Ruleset:
    """Everything Shoal's table holds on this host. Build it with `Ruleset.of(...)`, which canonicalises."""

    # Every container subnet in the cluster, this host's included: sorted, with overlapping and adjacent
    # networks merged (an nft interval set refuses overlapping elements: "conflicting intervals specified").
    cluster_subnets: tuple[IPv4Network, ...] = ()

    def __post_init__(self) -> None:
        canonical = tuple(ipaddress.collapse_addresses(self.cluster_subnets))
        if canonical != self.cluster_subnets:
            raise ValueError(f"cluster_subnets must be sorted and merged ({_show(canonical)}), "
                             f"got {_show(self.cluster_subnets)}; use Ruleset.of()")

    @classmethod
    def of(cls, cluster_subnets: Iterable[str | IPv4Network] = ()) -> Ruleset:
        """Parse and canonicalise; ValueError naming the value for anything but an IPv4 network."""
        return cls(cluster_subnets=tuple(ipaddress.collapse_addresses(_network(s) for s in cluster_subnets)))


def _network(value: str | IPv4Network) -> IPv4Network:
    if isinstance(value, IPv4Network):
        return value
    try:
        return IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"cluster subnet {value!r} is not an IPv4 network like 198.19.1.0/24 ({exc})") from None


def _show(networks: Iterable[IPv4Network]) -> str:
    return ", ".join(map(str, networks)) or "none"
