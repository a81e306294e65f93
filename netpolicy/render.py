"""Ruleset -> the nft script that replaces Shoal's own table atomically; golden-file tested.

Role: `render(ruleset)` is `table inet shoal` + `delete table inet shoal` + the full definition, one script
that `nft -f` applies as one transaction: it works whether or not the table exists, and no other table is
touched (never `flush ruleset`: it would wipe netavark's NAT, research/lab.md P10). The table's comment
carries a fingerprint of the definition, so apply's caller can tell from a listing whether the table is
already what it wants without re-applying it.
The table holds the null-binding NAT chain (DESIGN §7a) and, on a host with a container subnet, the policy
filter: a base chain on the forward hook sends IPv4 traffic addressed to this host's containers to
`to_containers`, which accepts established flows and members' proxied connections to endpoint ports, then
dispatches on the destination (a verdict map: container address -> its service's `admit_<service>` chain,
one rule per grant) and drops the rest. Sources are named sets (`svc_<service>`, `net_<network>`), so a
replica that starts or moves changes set elements, never rules. Every decision rule counts (`counter`) and
says why (`comment`): `rule_counters(listing)` reads them back.
Boundary: pure text; nft runs only in apply.py. Set and chain names are never nft keywords (lab.md P8).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from netpolicy.model import TABLE_FAMILY, TABLE_NAME, AddressSet, Grant, Ruleset, Source, SourceKind

CLUSTER_SET = "cluster_subnets"
CLUSTER_NAT_CHAIN = "cluster_nat"
# Before netavark's masquerade (priority srcnat): the first NAT binding made for a connection wins, so a null
# binding here keeps the container's own source address. An `accept` would not: later nat chains still run.
CLUSTER_NAT_PRIORITY = "srcnat - 10"
MEMBERS_SET = "members"
ENDPOINTS_SET = "endpoint_ports"
DISPATCH_MAP = "dispatch"
FORWARD_CHAIN = "forward_filter"
CONTAINERS_CHAIN = "to_containers"
# Before netavark's own forward rules (iptables-nft, priority filter): a drop here is final whatever they say,
# and an accept here still leaves them their say (research/lab.md §3).
FORWARD_PRIORITY = "filter - 10"
PROXIED = "proxied from a member"
DEFAULT_DENY = "default deny"
_SET_PREFIX = {SourceKind.SERVICE: "svc_", SourceKind.NETWORK: "net_"}

_TABLE = f"{TABLE_FAMILY} {TABLE_NAME}"
_FINGERPRINT = re.compile(r'comment "shoal fingerprint ([0-9a-f]{16})"')
_CHAIN = re.compile(r"^\s*chain (\S+) \{")
_COUNTED = re.compile(r'counter packets (\d+) bytes (\d+) .*comment "([^"]*)"')


def render(ruleset: Ruleset) -> str:
    """The whole script, ending in a newline."""
    body = _body(ruleset)
    lines = [
        f"table {_TABLE}",
        f"delete table {_TABLE}",
        f"table {_TABLE} {{",
        f'\tcomment "shoal fingerprint {_digest(body)}"',
        *body,
        "}",
    ]
    return "\n".join(lines) + "\n"


def fingerprint(ruleset: Ruleset) -> str:
    """16 hex digits naming the table's definition; render() writes it into the table's comment."""
    return _digest(_body(ruleset))


def listed_fingerprint(listing: str | None) -> str | None:
    """The fingerprint in `nft list table` output (or in a rendered script), or None (no table, or not written
    by render())."""
    match = _FINGERPRINT.search(listing or "")
    return match.group(1) if match else None


@dataclass(frozen=True, slots=True)
class RuleCounter:
    chain: str
    comment: str  # what the rule admits or drops, e.g. "from network front"
    packets: int
    bytes: int


def rule_counters(listing: str | None) -> tuple[RuleCounter, ...]:
    """The counted rules in `nft list table inet shoal` output, in listing order. Counters restart at zero
    whenever the table is replaced (any change of policy or endpoints)."""
    counted, chain = [], ""
    for line in (listing or "").splitlines():
        if found := _CHAIN.match(line):
            chain = found.group(1)
        elif found := _COUNTED.search(line):
            counted.append(RuleCounter(chain, found.group(3), int(found.group(1)), int(found.group(2))))
    return tuple(counted)


def set_name(source: Source) -> str:
    """The nft set holding a service's or a network's addresses."""
    return _SET_PREFIX[source.kind] + source.name


def admit_chain(service: str) -> str:
    return f"admit_{service}"


def _body(ruleset: Ruleset) -> list[str]:
    """The table's contents, one block after another. Without a container subnet there is nothing to guard:
    only the NAT part (the same text as before policies existed)."""
    nat = [*_cluster_set(ruleset), *_cluster_nat_chain()]
    if ruleset.own_subnet is None:
        return nat
    services = sorted({g.service for g in ruleset.grants} | {e.service for e in ruleset.local})
    return [
        *nat,
        *_set(MEMBERS_SET, "ipv4_addr", map(str, ruleset.members)),
        *_set(ENDPOINTS_SET, "ipv4_addr . inet_service",
              (f"{e.address} . {port}" for e in ruleset.local for port in e.ports)),
        *(line for address_set in ruleset.sets for line in _address_set(address_set)),
        *_set(DISPATCH_MAP, "ipv4_addr : verdict", (f"{e.address} : jump {admit_chain(e.service)}"
                                                   for e in ruleset.local), kind="map"),
        f"\tchain {FORWARD_CHAIN} {{",
        f"\t\ttype filter hook forward priority {FORWARD_PRIORITY}; policy accept;",
        f"\t\tip daddr {ruleset.own_subnet} jump {CONTAINERS_CHAIN}",
        "\t}",
        f"\tchain {CONTAINERS_CHAIN} {{",
        "\t\tct state established,related accept",  # replies, and flows admitted before a rule changed
        f'\t\tip saddr @{MEMBERS_SET} ip daddr . tcp dport @{ENDPOINTS_SET} counter accept comment "{PROXIED}"',
        f"\t\tip daddr vmap @{DISPATCH_MAP}",  # a jump: a service chain that admits nothing returns here
        f'\t\tcounter drop comment "{DEFAULT_DENY}"',
        "\t}",
        *(line for service in services for line in _admit_chain(service, ruleset.grants)),
    ]


def _cluster_set(ruleset: Ruleset) -> list[str]:
    return _set(CLUSTER_SET, "ipv4_addr", map(str, ruleset.cluster_subnets), flags="interval")


def _cluster_nat_chain() -> list[str]:
    """Traffic from a cluster container to a cluster container keeps its source address (DESIGN §7a)."""
    return [
        f"\tchain {CLUSTER_NAT_CHAIN} {{",
        f"\t\ttype nat hook postrouting priority {CLUSTER_NAT_PRIORITY}; policy accept;",
        f"\t\tip saddr @{CLUSTER_SET} ip daddr @{CLUSTER_SET} snat ip to ip saddr",
        "\t}",
    ]


def _address_set(address_set: AddressSet) -> list[str]:
    return _set(set_name(address_set.source), "ipv4_addr", map(str, address_set.addresses))


def _set(name: str, type_: str, elements: Iterable[str], *, kind: str = "set", flags: str = "") -> list[str]:
    items = list(elements)
    # An empty set is valid nft, but `elements = { }` is not: leave the line out.
    return [f"\t{kind} {name} {{", f"\t\ttype {type_}", *([f"\t\tflags {flags}"] if flags else []),
            *([f"\t\telements = {{ {', '.join(items)} }}"] if items else []), "\t}"]


def _admit_chain(service: str, grants: Iterable[Grant]) -> list[str]:
    """What `service`'s containers admit: one rule per grant, in the ruleset's order."""
    return [f"\tchain {admit_chain(service)} {{", *(_grant_rule(g) for g in grants if g.service == service), "\t}"]


def _grant_rule(grant: Grant) -> str:
    source = grant.source
    match = source.name if source.kind is SourceKind.CIDR else f"@{set_name(source)}"
    ports = "" if not grant.ports else f" tcp dport {grant.ports[0]}" if len(grant.ports) == 1 else \
        f" tcp dport {{ {', '.join(map(str, grant.ports))} }}"
    return f'\t\tip saddr {match}{ports} counter accept comment "from {source.kind} {source.name}"'


def _digest(body: list[str]) -> str:
    return hashlib.blake2b("\n".join(body).encode(), digest_size=8).hexdigest()
