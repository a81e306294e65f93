"""PROXY protocol version 2 header (haproxy doc/proxy-protocol.txt, section 2.2), sent first on an upstream
connection so the replica learns the client's address and the address the client dialled.

Role: one pure function from two socket addresses to the header bytes. Layout: the 12-byte signature, then
version 2 + command PROXY (0x21), then family + transport (0x11 TCP over IPv4, 0x21 TCP over IPv6), then the
length of what follows (big-endian u16: 12 for IPv4, 36 for IPv6), then source address, destination address,
source port, destination port, all in network order. No TLVs. Boundary: no sockets; the relay calls it.
"""

from __future__ import annotations

import ipaddress
import struct

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
VERSION_2_PROXY = 0x21  # high nibble: version 2; low nibble: PROXY (a relayed connection, not LOCAL)
TCP_OVER_IPV4 = 0x11
TCP_OVER_IPV6 = 0x21


def header(source: tuple[str, int], destination: tuple[str, int]) -> bytes:
    """The header for a TCP connection from `source` (the client) to `destination` (the listener's address as
    the client saw it). Mixed families are sent as IPv6, the IPv4 side mapped (::ffff:a.b.c.d), since the
    header has one family for both addresses."""
    src, dst = ipaddress.ip_address(source[0]), ipaddress.ip_address(destination[0])
    ports = struct.pack("!HH", source[1], destination[1])
    if isinstance(src, ipaddress.IPv4Address) and isinstance(dst, ipaddress.IPv4Address):
        body = src.packed + dst.packed + ports
        family = TCP_OVER_IPV4
    else:
        body = _v6(src) + _v6(dst) + ports
        family = TCP_OVER_IPV6
    return SIGNATURE + struct.pack("!BBH", VERSION_2_PROXY, family, len(body)) + body


def _v6(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bytes:
    if isinstance(address, ipaddress.IPv4Address):
        return ipaddress.IPv6Address(b"\x00" * 10 + b"\xff\xff" + address.packed).packed
    return address.packed
