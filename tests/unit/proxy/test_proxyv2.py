"""PROXY protocol v2 header bytes against haproxy's doc/proxy-protocol.txt (section 2.2) and a header HAProxy
itself sent (captured in the seriousben/experiment-proxy-protocol README)."""

from __future__ import annotations

import struct

from node.proxy.proxyv2 import header

SIGNATURE = bytes([0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A])  # spec, 2.2


def test_ipv4_header_matches_one_haproxy_sent() -> None:
    # HAProxy's own v2 header for 172.19.0.1:42578 -> 172.19.0.3:80, as a hex dump:
    # 0d 0a 0d 0a 00 0d 0a 51 55 49 54 0a 21 11 00 0c ac 13 00 01 ac 13 00 03 a6 52 00 50
    haproxy = bytes.fromhex("0d0a0d0a000d0a515549540a 2111000c ac130001 ac130003 a652 0050")
    assert header(("172.19.0.1", 42578), ("172.19.0.3", 80)) == haproxy


def test_ipv4_layout_field_by_field() -> None:
    got = header(("127.0.0.1", 50000), ("198.19.0.7", 8080))
    assert got[:12] == SIGNATURE
    assert got[12] == 0x21  # version 2 (high nibble), command PROXY (low nibble)
    assert got[13] == 0x11  # AF_INET (high nibble), STREAM (low nibble)
    assert struct.unpack("!H", got[14:16]) == (12,)  # 2 x 4-byte address + 2 x 2-byte port
    assert got[16:20] == bytes([127, 0, 0, 1]) and got[20:24] == bytes([198, 19, 0, 7])
    assert struct.unpack("!HH", got[24:28]) == (50000, 8080)
    assert len(got) == 16 + 12


def test_ipv6_header_has_family_0x21_and_length_36() -> None:
    got = header(("2001:db8::1", 1234, 0, 0), ("2001:db8::2", 443, 0, 0))  # type: ignore[arg-type]
    assert got[:12] == SIGNATURE and got[12] == 0x21 and got[13] == 0x21
    assert struct.unpack("!H", got[14:16]) == (36,)
    assert got[16:32] == bytes.fromhex("20010db8000000000000000000000001")
    assert got[32:48] == bytes.fromhex("20010db8000000000000000000000002")
    assert struct.unpack("!HH", got[48:52]) == (1234, 443)
    assert len(got) == 52


def test_mixed_families_are_sent_as_ipv4_mapped_ipv6() -> None:
    got = header(("10.1.2.3", 1000), ("::1", 80))
    assert got[13] == 0x21
    assert got[16:32] == bytes.fromhex("00000000000000000000ffff0a010203")
