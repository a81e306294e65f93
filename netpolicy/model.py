"""What Shoal wants in its own nftables table on one host, as values: the output of compile.py, the input of
render.py (the table) and gate.py (the proxy's admission check).

Role: the cluster's container subnets, between which traffic is routed and never masqueraded (DESIGN §7a), and
the compiled network policy: which sources each service admits (grants), the named address sets those sources
refer to (every replica of a service, every replica on a network), this host's containers with their service
and endpoint ports, the cluster members (whose proxied connections are admitted to endpoint ports) and the
ingress allow-lists of published ports. Every collection is a sorted tuple without duplicates, so equal policies
give equal rulesets and byte-identical scripts.
Boundary: pure values, validated on construction; no nft, and no `node` or `gossip` import.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network
from typing import Any

TABLE_FAMILY = "inet"  # one table for IPv4 and (later) IPv6 rules
TABLE_NAME = "shoal"  # Shoal owns this table and nothing else in the ruleset (research/lab.md P10)
DEFAULT_NETWORK = "default"  # the network of a service that names none (SPEC: Manifest)
# Service and network names (the manifest's rules, united): they become parts of nft set and chain names and
# rule comments, so nothing but these characters may reach the script.
NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")


class SourceKind(StrEnum):
    """What a grant's source names. The values are the manifest's words (`from: {service: web}`)."""

    CIDR = "cidr"
    NETWORK = "network"
    SERVICE = "service"


@dataclass(frozen=True, slots=True, order=True)
class Source:
    """Where admitted traffic comes from: every replica of a service, every replica of every service on a
    network, or any address in an IPv4 network (`name` is then its canonical text, e.g. 198.18.0.0/24)."""

    kind: SourceKind
    name: str

    def __post_init__(self) -> None:
        if self.kind is SourceKind.CIDR:
            if str(network := cidr(self.name)) != self.name:  # one spelling each: 1.2.3.4 is 1.2.3.4/32
                raise ValueError(f"source cidr {self.name!r} is not canonical; write {network}")
        else:
            check_name(self.name, f"{self.kind} source")

    @property
    def network(self) -> IPv4Network:
        """The CIDR source's network (only for kind CIDR)."""
        return IPv4Network(self.name)


@dataclass(frozen=True, slots=True, order=True)
class Grant:
    """`service`'s replicas admit new connections from `source`, to `ports` (TCP) or, when () , to anything."""

    service: str  # the destination
    source: Source
    ports: tuple[int, ...] = ()  # sorted, unique; () = every port and protocol (a shared network, a rule without)

    def __post_init__(self) -> None:
        check_name(self.service, "grant service")
        check_ports(self.ports, f"grant {self.service} <- {self.source.kind} {self.source.name}")


@dataclass(frozen=True, slots=True, order=True)
class AddressSet:
    """The container addresses a service or network source stands for, cluster-wide (an nft named set)."""

    source: Source  # kind SERVICE or NETWORK
    addresses: tuple[IPv4Address, ...] = ()

    def __post_init__(self) -> None:
        if self.source.kind is SourceKind.CIDR:
            raise ValueError(f"a cidr source needs no address set ({self.source.name})")
        check_canonical(self.addresses, f"addresses of {self.source.kind} {self.source.name}")


@dataclass(frozen=True, slots=True, order=True)
class LocalEndpoint:
    """A container on this host: its address, its service, and the ports the proxy connects to on it."""

    address: IPv4Address
    service: str
    ports: tuple[int, ...] = ()  # the service's target and expose ports

    def __post_init__(self) -> None:
        check_name(self.service, "local endpoint service")
        check_ports(self.ports, f"local endpoint {self.address}")


@dataclass(frozen=True, slots=True, order=True)
class Ingress:
    """A service whose published ports admit only these addresses (a service without one admits everyone)."""

    service: str
    allow: tuple[IPv4Network, ...] = ()  # () = nobody

    def __post_init__(self) -> None:
        check_name(self.service, "ingress service")
        check_canonical(self.allow, f"ingress allow-list of {self.service}")


@dataclass(frozen=True, slots=True)
class Ruleset:
    """Everything Shoal's table holds on this host, and what the proxy admits. Build it with compile.py's
    compile_policies (or, for the NAT part alone, `Ruleset.of(...)`); each tuple is sorted and duplicate-free."""

    # Every container subnet in the cluster, this host's included: sorted, with overlapping and adjacent
    # networks merged (an nft interval set refuses overlapping elements: "conflicting intervals specified").
    cluster_subnets: tuple[IPv4Network, ...] = ()
    # This host's container subnet: the destinations the forward filter guards. None: no filter is rendered
    # (a host without containers has nothing to guard); the grants still serve the proxy.
    own_subnet: IPv4Network | None = None
    members: tuple[IPv4Address, ...] = ()  # cluster members' addresses: proxied connections come from these
    sets: tuple[AddressSet, ...] = ()  # one per service or network source some grant names
    grants: tuple[Grant, ...] = ()
    local: tuple[LocalEndpoint, ...] = ()  # containers in own_subnet, each of one service
    ingress: tuple[Ingress, ...] = ()

    def __post_init__(self) -> None:
        canonical = tuple(ipaddress.collapse_addresses(self.cluster_subnets))
        if canonical != self.cluster_subnets:
            raise ValueError(f"cluster_subnets must be sorted and merged ({_show(canonical)}), "
                             f"got {_show(self.cluster_subnets)}; use Ruleset.of()")
        for name in ("members", "sets", "grants", "local", "ingress"):
            check_canonical(getattr(self, name), name)
        for keyed, key in ((self.sets, "source"), (self.local, "address"), (self.ingress, "service")):
            keys = [getattr(item, key) for item in keyed]
            if len(set(keys)) != len(keys):
                raise ValueError(f"each {key} appears once in {type(keyed[0]).__name__} entries")
        named = {s.source for s in self.sets}
        if missing := sorted({g.source for g in self.grants if g.source.kind is not SourceKind.CIDR} - named):
            raise ValueError(f"grants name sources without an address set: {missing[0].kind} {missing[0].name}")

    @classmethod
    def of(cls, cluster_subnets: Iterable[str | IPv4Network] = ()) -> Ruleset:
        """The NAT part alone. Parses and canonicalises; ValueError naming the value for anything but an IPv4
        network."""
        return cls(cluster_subnets=subnets(cluster_subnets))


def subnets(values: Iterable[str | IPv4Network]) -> tuple[IPv4Network, ...]:
    """Cluster subnets: parsed, sorted, merged."""
    return tuple(ipaddress.collapse_addresses(_network(s) for s in values))


def cidr(value: str) -> IPv4Network:
    """An IPv4 network or address (a /32), strict; ValueError naming the value otherwise."""
    try:
        return IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IPv4 network like 198.18.0.0/24 or an address ({exc})") from None


def check_name(value: str, what: str) -> None:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not a service or network name ({NAME.pattern})")


def check_ports(ports: Sequence[int], what: str) -> None:
    check_canonical(ports, f"ports of {what}")
    if any(not 0 < p < 65536 for p in ports):
        raise ValueError(f"ports of {what} must be 1 to 65535, got {list(ports)}")


def check_canonical(values: Sequence[Any], what: str) -> None:
    """Sorted and each once: the form that keeps rendering deterministic."""
    if list(values) != sorted(set(values)):
        raise ValueError(f"{what} must be sorted, each once; got {list(values)[:8]}")


def _network(value: str | IPv4Network) -> IPv4Network:
    if isinstance(value, IPv4Network):
        return value
    try:
        return IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"cluster subnet {value!r} is not an IPv4 network like 198.19.1.0/24 ({exc})") from None


def _show(networks: Iterable[IPv4Network]) -> str:
    return ", ".join(map(str, networks)) or "none"
