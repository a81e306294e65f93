"""Ruleset -> the nft script that replaces Shoal's own table atomically; golden-file tested.

Role: `render(ruleset)` is `table inet shoal` + `delete table inet shoal` + the full definition, one script
that `nft -f` applies as one transaction: it works whether or not the table exists, and no other table is
touched (never `flush ruleset`: it would wipe netavark's NAT, research/lab.md P10). The table's comment
carries a fingerprint of the definition, so apply's caller can tell from a listing whether the table is
already what it wants without re-applying it.
Boundary: pure text; nft runs only in apply.py. Set and chain names are never nft keywords (lab.md P8).
"""

from __future__ import annotations

import hashlib
import re

from netpolicy.model import TABLE_FAMILY, TABLE_NAME, Ruleset

CLUSTER_SET = "cluster_subnets"
CLUSTER_NAT_CHAIN = "cluster_nat"
# Before netavark's masquerade (priority srcnat): the first NAT binding made for a connection wins, so a null
# binding here keeps the container's own source address. An `accept` would not: later nat chains still run.
CLUSTER_NAT_PRIORITY = "srcnat - 10"

_TABLE = f"{TABLE_FAMILY} {TABLE_NAME}"
_FINGERPRINT = re.compile(r'comment "shoal fingerprint ([0-9a-f]{16})"')


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
    """The fingerprint in `nft list table` output, or None (no table, or not written by render())."""
    match = _FINGERPRINT.search(listing or "")
    return match.group(1) if match else None


def _body(ruleset: Ruleset) -> list[str]:
    """The table's contents, one block after another; the policy issue adds its sets and chains here."""
    return [*_cluster_set(ruleset), *_cluster_nat_chain()]


def _cluster_set(ruleset: Ruleset) -> list[str]:
    # An empty set is valid nft, but `elements = { }` is not: leave the line out.
    elements = [f"\t\telements = {{ {', '.join(map(str, ruleset.cluster_subnets))} }}"] \
        if ruleset.cluster_subnets else []
    return [f"\tset {CLUSTER_SET} {{", "\t\ttype ipv4_addr", "\t\tflags interval", *elements, "\t}"]


def _cluster_nat_chain() -> list[str]:
    """Traffic from a cluster container to a cluster container keeps its source address (DESIGN §7a)."""
    return [
        f"\tchain {CLUSTER_NAT_CHAIN} {{",
        f"\t\ttype nat hook postrouting priority {CLUSTER_NAT_PRIORITY}; policy accept;",
        f"\t\tip saddr @{CLUSTER_SET} ip daddr @{CLUSTER_SET} snat ip to ip saddr",
        "\t}",
    ]


def _digest(body: list[str]) -> str:
    return hashlib.blake2b("\n".join(body).encode(), digest_size=8).hexdigest()
