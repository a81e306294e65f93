"""The host's resolvers, from /etc/resolv.conf: where the agent's DNS responder forwards names it does not own.

Role: `nameservers(text)` reads `nameserver` lines as glibc does (at most 3, in order; comments start with # or ;;
no line at all means the local host, glibc's default); `upstreams(path, exclude)` adds port 53 and leaves out the
responder's own addresses, so a host whose resolv.conf names the agent cannot make it forward to itself.
Boundary: reads one file; parsing is pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import ip_address
from pathlib import Path

RESOLV_CONF = Path("/etc/resolv.conf")
MAX_NAMESERVERS = 3  # glibc's MAXNS: later lines are ignored by every program on the host, so by us too
DNS_PORT = 53
MAX_BYTES = 64 * 1024  # a resolv.conf is a few lines; never read a huge file into memory


def nameservers(text: str) -> list[str]:
    """The `nameserver` addresses in order, valid IPs only (an IPv6 zone index, fe80::1%eth0, is kept)."""
    found: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2 or words[0] != "nameserver":
            continue
        address = words[1]
        try:
            ip_address(address.split("%", 1)[0])
        except ValueError:
            continue
        found.append(address)
        if len(found) == MAX_NAMESERVERS:
            break
    return found or ["127.0.0.1"]


def upstreams(path: Path = RESOLV_CONF, exclude: Iterable[str] = ()) -> list[tuple[str, int]]:
    """The resolvers to forward to, port 53, without `exclude` (the responder's own addresses). An unreadable file
    counts as empty (glibc's default then: the local host)."""
    try:
        with path.open("rb") as handle:
            text = handle.read(MAX_BYTES).decode("utf-8", "replace")
    except OSError:
        text = ""
    skip = set(exclude)
    return [(address, DNS_PORT) for address in nameservers(text) if address not in skip]
