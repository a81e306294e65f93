"""The network policy of each service, as the agent hands it over: the input of compile.py.

Role: what the manifest says about one service (DESIGN §7a, SPEC "Network policy defaults"), with no manifest
types: the networks it lives on (a shared network connects, no shared network isolates), its allow rules (from a
service, a network or a CIDR, optionally to some of its ports), its endpoint ports (where proxied connections
arrive: every target and expose port) and its ingress allow-list (None: published ports are open to everyone).
Boundary: pure values, validated on construction; node builds them from its ServiceSpecs (node/policies.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network

from netpolicy.model import DEFAULT_NETWORK, Source, check_canonical, check_name, check_ports


@dataclass(frozen=True, slots=True, order=True)
class Allow:
    """One allow rule: new connections from `source` to `ports` of the service (() = every port)."""

    source: Source
    ports: tuple[int, ...] = ()  # TCP, sorted, unique

    def __post_init__(self) -> None:
        check_ports(self.ports, f"allow rule from {self.source.kind} {self.source.name}")


@dataclass(frozen=True, slots=True)
class Policy:
    service: str
    networks: tuple[str, ...] = (DEFAULT_NETWORK,)  # sorted, unique
    ports: tuple[int, ...] = ()  # endpoint ports: every target port in `ports` and every `expose` port
    allow: tuple[Allow, ...] = ()  # sorted, unique
    ingress: tuple[IPv4Network, ...] | None = None  # who may use its published ports; None = everyone

    def __post_init__(self) -> None:
        check_name(self.service, "service")
        for network in self.networks:
            check_name(network, f"network of {self.service}")
        check_canonical(self.networks, f"networks of {self.service}")
        check_ports(self.ports, f"service {self.service}")
        check_canonical(self.allow, f"allow rules of {self.service}")
        if self.ingress is not None:
            check_canonical(self.ingress, f"ingress allow-list of {self.service}")
