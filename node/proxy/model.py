"""The proxy's desired state as data: listen addresses, each mapped to a route (a service and its endpoints).

Role: the one input of `Proxy.update(table)`. A `Table` maps a listen address (a service VIP or one of the
node's own addresses, with a port) to the `Route` that serves it; a route lists the endpoints that are ready
now, local and remote alike, each with a weight. An endpoint that is not ready is simply absent: readiness is
decided by the caller (probes, observed state), never here. Boundary: pure values, validated on construction.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

MAX_WEIGHT = 1_000_000  # far above any canary split (1 vs 99); keeps the rotation's integers small


class Address(NamedTuple):
    """An IP literal (v4 or v6, no names: the data path never resolves) and a TCP port."""

    ip: str
    port: int


def check_address(address: Address) -> None:
    ipaddress.ip_address(address.ip)  # raises ValueError on a name or a malformed literal
    if not 0 < address.port < 65536:
        raise ValueError(f"port out of range: {address.port}")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A ready replica: where to connect, and its share of new connections relative to its route's others."""

    ip: str
    port: int
    weight: int = 1
    address: Address = field(init=False, repr=False, compare=False)  # (ip, port), built once: read per connection

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", Address(self.ip, self.port))
        check_address(self.address)
        if not 0 <= self.weight <= MAX_WEIGHT:
            raise ValueError(f"weight out of range 0..{MAX_WEIGHT}: {self.weight}")


@dataclass(frozen=True, slots=True)
class Route:
    """What a listener forwards to. `proxy_protocol` prefixes each upstream connection with a PROXY v2 header
    carrying the client's address (the replica must expect it: a plain server would read it as garbage)."""

    service: str
    endpoints: tuple[Endpoint, ...] = ()
    proxy_protocol: bool = False

    def __post_init__(self) -> None:
        if not self.service:
            raise ValueError("a route needs a service name")
        addresses = [e.address for e in self.endpoints]
        if len(set(addresses)) != len(addresses):
            raise ValueError(f"{self.service}: an endpoint is listed twice")


Table = Mapping[Address, Route]
