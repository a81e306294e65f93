"""A service's network policy in x-shoal: `allow` rules and the `ingress` allow-list -> AllowRule, Ingress.

    x-shoal:
      allow:                                     # beyond the service's networks, admit...
        - from: {service: api}                   # ...every replica of api,
          ports: [80]                            # to port 80 only (default: every port)
        - from: {network: monitoring}            # ...every replica of every service on monitoring
        - from: {cidr: 198.18.0.0/24}            # ...any address in 198.18.0.0/24 (an address is a /32)
      ingress:
        allow: [198.18.0.0/24, 203.0.113.7]      # published ports: only these (default: everyone)

Checked against the service itself (Facts): a rule's ports must be ports it has (a target or expose port),
a network must be declared (or be `default`), an ingress allow-list needs a published port; a service that is
not in the manifest is a warning, since another manifest may deploy it. Lists are sorted and de-duplicated
(their order means nothing). Pure; docs/policies.md is the user's reference.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from dataclasses import dataclass

from node.manifest.errors import ManifestError, ManifestWarning, child, show
from node.manifest.fields import Notes, as_list, as_port, as_str, read_object
from node.manifest.keys import ALLOW_RULE, FROM, INGRESS
from node.manifest.limits import MAX_ALLOW_RULES, MAX_INGRESS, MAX_NAME_CHARS, MAX_PORTS
from node.manifest.model import AllowRule, Ingress
from node.manifest.names import DEFAULT_NETWORK, NAME, NAME_RULE, NETWORK_NAME, NETWORK_RULE

_KINDS = ("service", "network", "cidr")
_CIDR = "an IPv4 network like 198.18.0.0/24 or an address like 198.18.0.7"


@dataclass(frozen=True, slots=True)
class Facts:
    """What the policy readers check against, from the rest of the service and the manifest."""

    ports: frozenset[int] = frozenset()  # the service's target and expose ports
    published: bool = False  # it publishes at least one port
    declared: Collection[str] | None = None  # the top-level networks; None (a payload): any well-formed name
    services: Collection[str] | None = None  # the manifest's services; None (a payload): not checked


def read_allow(value: object, field: str, notes: Notes, facts: Facts) -> tuple[AllowRule, ...]:
    rules = {_rule(item, child(field, i), notes, facts)
             for i, item in enumerate(as_list(value, field, max_items=MAX_ALLOW_RULES))}
    return tuple(sorted(rules))


def _rule(value: object, field: str, notes: Notes, facts: Facts) -> AllowRule:
    keys = read_object(value, field, ALLOW_RULE, notes)
    if "from" not in keys:
        raise ManifestError(child(field, "from"), None, "is required: where the traffic comes from, e.g. "
                                                        "from: {service: api}")
    kind, source = _source(keys["from"], child(field, "from"), notes, facts)
    ports: tuple[int, ...] = ()
    if "ports" in keys:
        ports = _ports(keys["ports"], child(field, "ports"), facts)
    return AllowRule(kind, source, ports)


def _source(value: object, field: str, notes: Notes, facts: Facts) -> tuple[str, str]:
    keys = read_object(value, field, FROM, notes)
    if len(keys) != 1:
        raise ManifestError(field, value, f"needs exactly one of {', '.join(_KINDS)}; found "
                                          f"{', '.join(keys) or 'none'} (write one rule per source)")
    ((kind, item),) = keys.items()
    at = child(field, kind)
    if kind == "cidr":
        return kind, read_cidr(item, at)
    if kind == "network":
        name = as_str(item, at, max_chars=MAX_NAME_CHARS, what="a network name")
        if not NETWORK_NAME.fullmatch(name):
            raise ManifestError(at, name, f"network name {show(name)} is not {NETWORK_RULE}")
        if facts.declared is not None and name != DEFAULT_NETWORK and name not in facts.declared:
            allowed = ", ".join(sorted({DEFAULT_NETWORK, *facts.declared}))
            raise ManifestError(at, name, f"network {show(name)} is not declared under the top-level networks; "
                                          f"declare it (networks: {{{name}: {{}}}}) or use one of: {allowed}")
        return kind, name
    name = as_str(item, at, max_chars=MAX_NAME_CHARS, what="a service name")
    if not NAME.fullmatch(name):
        raise ManifestError(at, name, f"service name {show(name)} is not {NAME_RULE}")
    if facts.services is not None and name not in facts.services and notes is not None:
        notes.append(ManifestWarning(at, f"no service {name!r} in this manifest; the rule admits its replicas "
                                         "once a service of that name is deployed"))
    return kind, name


def _ports(value: object, field: str, facts: Facts) -> tuple[int, ...]:
    items = as_list(value, field, max_items=MAX_PORTS)
    if not items:
        raise ManifestError(field, value, "is empty; leave ports out to allow every port")
    ports = set()
    for i, item in enumerate(items):
        port = as_port(item, child(field, i))
        if port not in facts.ports:
            own = ", ".join(map(str, sorted(facts.ports))) or "none"
            raise ManifestError(child(field, i), item, f"{port} is not a port of this service (its target and "
                                                       f"expose ports: {own}); list it under expose, or correct it")
        ports.add(port)
    return tuple(sorted(ports))


def read_ingress(value: object, field: str, notes: Notes, facts: Facts) -> Ingress:
    keys = read_object(value, field, INGRESS, notes)
    if "allow" not in keys:
        raise ManifestError(child(field, "allow"), None, "is required: the addresses that may use the published "
                                                         "ports, e.g. allow: [198.18.0.0/24]")
    if not facts.published:
        raise ManifestError(field, value, "the service publishes no port; an ingress allow-list guards published "
                                          "ports (ports:): publish one, or remove ingress")
    at = child(field, "allow")
    networks = {ipaddress.IPv4Network(read_cidr(item, child(at, i)))
                for i, item in enumerate(as_list(keys["allow"], at, max_items=MAX_INGRESS))}
    return Ingress(tuple(str(n) for n in sorted(networks)))


def read_cidr(value: object, field: str) -> str:
    """An IPv4 network in canonical form; an address is its /32. Host bits set are an error with the fix."""
    text = as_str(value, field, max_chars=64, what=_CIDR)
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ManifestError(field, value, f"{show(value)} is not {_CIDR}") from None
    if network.version != 4:
        raise ManifestError(field, value, f"{show(value)} is IPv6; Shoal's network policies are IPv4 only")
    if str(network.network_address) != text.partition("/")[0]:
        raise ManifestError(field, value, f"{show(value)} has host bits set; did you mean {network}?")
    return str(network)
