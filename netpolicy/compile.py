"""Policies + what this host sees of the cluster -> the Ruleset for this host: pure and deterministic.

Role: turn each service's policy into grants (DESIGN §7a, SPEC "Network policy defaults"): every network of a
service admits every replica on that network, on any port (a shared network connects; no shared network
isolates), and each allow rule admits its source on its ports. Grants of one service from one source merge into
one (a source allowed on every port needs no narrower grant). Service and network sources become named address
sets filled from the endpoints (service -> container addresses, cluster-wide, from observed state); this host's
containers (those in its own subnet) get their service and endpoint ports, for the forward filter's dispatch and
for the proxied connections members may open.
Fail closed on bad observations: an endpoint address that is not IPv4, lies outside every cluster subnet, or is
reported for two services is left out (it then matches no source and reaches no service) and named in
`problems` for the agent's log; so is a member address that is not IPv4.
Boundary: pure; imports only netpolicy's own model.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from netpolicy.model import AddressSet, Grant, Ingress, LocalEndpoint, Ruleset, Source, SourceKind, subnets
from netpolicy.policy import Policy


@dataclass(frozen=True, slots=True)
class Compiled:
    ruleset: Ruleset
    problems: tuple[str, ...] = ()  # observations left out, one line each, sorted


def compile_policies(policies: Iterable[Policy], endpoints: Mapping[str, Iterable[str]], *,
                     own_subnet: str | IPv4Network | None = None,
                     cluster_subnets: Iterable[str | IPv4Network] = (),
                     members: Iterable[str] = ()) -> Compiled:
    """The ruleset for a host whose containers live in `own_subnet` (None: filter nothing here).

    `policies`: one per service in the desired state (ValueError if a service has two). `endpoints`: service ->
    its replicas' container addresses anywhere in the cluster; services without a policy are ignored.
    `cluster_subnets`: every member's container subnet (own_subnet is added). `members`: the members' addresses.
    """
    by_service: dict[str, Policy] = {}
    for policy in policies:
        if by_service.setdefault(policy.service, policy) is not policy:
            raise ValueError(f"service {policy.service} has two policies")
    own = IPv4Network(own_subnet, strict=True) if own_subnet is not None else None
    cluster = subnets([*cluster_subnets, *([own] if own else [])])
    problems: list[str] = []
    addresses = _addresses(endpoints, by_service, cluster, problems)
    grants = _grants(by_service.values())
    on_network: dict[str, set[IPv4Address]] = defaultdict(set)
    for policy in by_service.values():
        for network in policy.networks:
            on_network[network].update(addresses.get(policy.service, ()))
    sources = sorted({g.source for g in grants if g.source.kind is not SourceKind.CIDR})
    sets = tuple(AddressSet(s, tuple(sorted(addresses.get(s.name, ()) if s.kind is SourceKind.SERVICE
                                            else on_network.get(s.name, ())))) for s in sources)
    local = tuple(sorted(LocalEndpoint(address, service, by_service[service].ports)
                         for service, found in addresses.items() for address in found
                         if own is not None and address in own))
    ingress = tuple(sorted(Ingress(p.service, p.ingress) for p in by_service.values() if p.ingress is not None))
    ruleset = Ruleset(cluster_subnets=cluster, own_subnet=own, members=_members(members, problems), sets=sets,
                      grants=grants, local=local, ingress=ingress)
    return Compiled(ruleset, tuple(sorted(problems)))


def _grants(policies: Iterable[Policy]) -> tuple[Grant, ...]:
    """One grant per (service, source): its networks on every port, its rules' ports merged."""
    every: set[tuple[str, Source]] = set()  # admitted on every port
    narrow: dict[tuple[str, Source], set[int]] = defaultdict(set)
    for policy in policies:
        wanted: list[tuple[Source, tuple[int, ...]]] = [(Source(SourceKind.NETWORK, n), ()) for n in policy.networks]
        wanted += [(rule.source, rule.ports) for rule in policy.allow]
        for source, ports in wanted:
            if ports:
                narrow[(policy.service, source)].update(ports)
            else:
                every.add((policy.service, source))
    grants = [Grant(service, source) for service, source in every]
    grants += [Grant(service, source, tuple(sorted(ports))) for (service, source), ports in narrow.items()
               if (service, source) not in every]
    return tuple(sorted(grants))


def _addresses(endpoints: Mapping[str, Iterable[str]], policies: Mapping[str, Policy],
               cluster: tuple[IPv4Network, ...], problems: list[str]) -> dict[str, tuple[IPv4Address, ...]]:
    """service -> its usable container addresses, sorted (services with a policy only)."""
    claims: dict[IPv4Address, set[str]] = defaultdict(set)
    for service in sorted(endpoints):
        if service not in policies:
            continue
        for text in sorted(set(endpoints[service])):
            try:
                address = IPv4Address(text)
            except ValueError:
                problems.append(f"service {service}: endpoint address {text!r} is not IPv4; left out")
                continue
            if not any(address in subnet for subnet in cluster):
                problems.append(f"service {service}: endpoint address {address} is in no cluster container subnet; "
                                "left out")
                continue
            claims[address].add(service)
    out: dict[str, list[IPv4Address]] = defaultdict(list)
    for address, services in sorted(claims.items()):
        if len(services) > 1:
            problems.append(f"address {address} is reported for {', '.join(sorted(services))}; left out of all")
            continue
        out[services.pop()].append(address)
    return {service: tuple(found) for service, found in out.items()}


def _members(members: Iterable[str], problems: list[str]) -> tuple[IPv4Address, ...]:
    found: set[IPv4Address] = set()
    for text in members:
        try:
            found.add(IPv4Address(text))
        except ValueError:
            problems.append(f"member address {text!r} is not IPv4; left out")
    return tuple(sorted(found))
