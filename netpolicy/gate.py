"""The Ruleset as a yes/no answer per connection: what the proxy asks before it forwards (DESIGN §7a), and a
model of the forward filter render.py writes, for tests and tools.

Role: `Gate.of(ruleset)` indexes the grants once (per ruleset change), so each question costs a parse of the
caller's address and a few set lookups:
- `admits(client_ip, service, port)`: a connection to a service's address (its VIP) at `port`. The caller's
  address must match one of the service's grants, exactly as the forward filter would judge a direct
  connection from that address to one of its replicas. An address that is no known replica matches only CIDR
  grants; an IPv6 caller matches nothing.
- `admits_ingress(client_ip, service)`: a connection to one of the service's published ports. Open to everyone
  unless the service has an ingress allow-list; then only to addresses inside it. (Published ports are ingress
  for every caller, containers included: a caller reaching another node's published port arrives there with
  its host's address, so only this rule judges all callers alike.)
- `forwards(src, dst, port)`: what the forward filter does with a new TCP connection: traffic to addresses
  outside this host's container subnet passes untouched; a member may open proxied connections to this host's
  endpoint ports; anything else to a container of this host needs a grant of its service; the rest is dropped.
Boundary: pure; no I/O, no clock. Unknown services admit nobody (fail closed).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from netpolicy.model import Ruleset, SourceKind


@dataclass(frozen=True, slots=True)
class _Check:
    """One grant, ready to test: the source's addresses (a set) or network (a CIDR), and its ports."""

    addresses: frozenset[IPv4Address]
    network: IPv4Network | None
    ports: frozenset[int] | None  # None: every port

    def matches(self, source: IPv4Address, port: int) -> bool:
        if self.ports is not None and port not in self.ports:
            return False
        return source in self.network if self.network is not None else source in self.addresses


@dataclass(frozen=True, slots=True)
class Gate:
    checks: Mapping[str, tuple[_Check, ...]]  # service -> its grants
    ingress: Mapping[str, tuple[IPv4Network, ...]]  # service -> its allow-list (absent: open)
    own_subnet: IPv4Network | None
    members: frozenset[IPv4Address]
    endpoint_ports: frozenset[tuple[IPv4Address, int]]
    local: Mapping[IPv4Address, str]  # this host's container address -> its service

    @classmethod
    def of(cls, ruleset: Ruleset) -> Gate:
        sets = {s.source: frozenset(s.addresses) for s in ruleset.sets}
        checks: dict[str, list[_Check]] = defaultdict(list)
        for grant in ruleset.grants:
            cidr = grant.source.kind is SourceKind.CIDR
            checks[grant.service].append(_Check(
                addresses=frozenset() if cidr else sets[grant.source],
                network=grant.source.network if cidr else None,
                ports=frozenset(grant.ports) if grant.ports else None))
        return cls(checks={service: tuple(found) for service, found in checks.items()},
                   ingress={i.service: i.allow for i in ruleset.ingress},
                   own_subnet=ruleset.own_subnet,
                   members=frozenset(ruleset.members),
                   endpoint_ports=frozenset((e.address, port) for e in ruleset.local for port in e.ports),
                   local={e.address: e.service for e in ruleset.local})

    def admits(self, client_ip: str, service: str, port: int) -> bool:
        """May `client_ip` open a connection to `service` at its port `port` (through the service's VIP)?"""
        source = _ipv4(client_ip)
        return source is not None and self._granted(source, service, port)

    def admits_ingress(self, client_ip: str, service: str) -> bool:
        """May `client_ip` open a connection to one of `service`'s published ports?"""
        allow = self.ingress.get(service)
        if allow is None:
            return True
        source = _ipv4(client_ip)
        return source is not None and any(source in network for network in allow)

    def forwards(self, src: str, dst: str, port: int) -> bool:
        """Does the forward filter pass a new TCP connection src -> dst:port (a model of the rendered chains)?"""
        source, destination = _ipv4(src), _ipv4(dst)
        if destination is None or self.own_subnet is None or destination not in self.own_subnet:
            return True  # not addressed to this host's containers: not ours to judge
        if source is None:
            return False
        if source in self.members and (destination, port) in self.endpoint_ports:
            return True  # proxied: the sending node's proxy already asked admits()
        service = self.local.get(destination)
        return service is not None and self._granted(source, service, port)

    def _granted(self, source: IPv4Address, service: str, port: int) -> bool:
        return any(check.matches(source, port) for check in self.checks.get(service, ()))


def _ipv4(text: str) -> IPv4Address | None:
    try:
        return IPv4Address(text)
    except ValueError:
        return None
