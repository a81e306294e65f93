"""The agent's view -> netpolicy's inputs: each service's policy from its spec, and each service's container
addresses from the nodes' reports (DESIGN §7a).

Role: the adapter between node's types and netpolicy's (which imports no node module). `policy_of(spec)` reads
a spec's networks, target and expose ports and x-shoal allow/ingress; `endpoints_of(statuses, live)` lists, per
service, the addresses of its replicas on live members (alive or suspect), in any state that has an address:
a starting replica already sends traffic, a draining one still answers. An address outside the subnet its node
advertises is not taken (a node speaks only for its own containers; a bad report must not put a host's address
into a service's set). A variant's replicas (a canary, a green side: node.workloads) count as their service's. Pure.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from ipaddress import IPv4Address, IPv4Network

from netpolicy.model import Source, SourceKind
from netpolicy.policy import Allow, Policy
from node.manifest.model import ServiceSpec
from node.observed import NodeStatus
from node.workloads import owner


def policy_of(spec: ServiceSpec) -> Policy:
    settings = spec.x_shoal
    ingress = settings.ingress
    return Policy(
        service=spec.name,
        networks=spec.networks,
        ports=tuple(sorted({p.target for p in spec.ports} | set(spec.expose))),
        allow=tuple(sorted(Allow(Source(SourceKind(rule.kind), rule.source), rule.ports) for rule in settings.allow)),
        ingress=None if ingress is None else tuple(sorted({IPv4Network(c) for c in ingress.allow})),
    )


def policies_of(specs: Iterable[ServiceSpec]) -> list[Policy]:
    return [policy_of(spec) for spec in specs]


def endpoints_of(statuses: Mapping[str, NodeStatus], live: Collection[str]) -> dict[str, list[str]]:
    """service -> its replicas' container addresses on live members, sorted, each once."""
    found: dict[str, set[str]] = {}
    for node_id, status in statuses.items():
        subnet = _subnet(status.subnet)
        if node_id not in live or subnet is None:
            continue
        for replica in status.replicas:
            if replica.address and _inside(replica.address, subnet):
                found.setdefault(owner(replica.service), set()).add(replica.address)
    return {service: sorted(addresses) for service, addresses in sorted(found.items())}


def _subnet(text: str) -> IPv4Network | None:
    try:
        return IPv4Network(text, strict=True) if text else None
    except ValueError:
        return None


def _inside(address: str, subnet: IPv4Network) -> bool:
    try:
        return IPv4Address(address) in subnet
    except ValueError:
        return False
