"""answer.decide as a table: which queries are answered (and how), forwarded or dropped; servfail; matches; and
no input, however hostile, makes it raise."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from dnslib import OPCODE, QTYPE, RCODE, DNSQuestion, DNSRecord
from hypothesis import given
from hypothesis import strategies as st

from node.discovery.answer import Verdict, decide, matches, servfail

TABLE = {b"api": IPv4Address("198.19.0.177"), b"web": IPv4Address("198.19.0.88")}


def ask(name: str, qtype: str = "A") -> DNSRecord:
    return DNSRecord.question(name, qtype)


def reply_to(query: DNSRecord) -> DNSRecord:
    decision = decide(query.pack(), TABLE, ttl_s=5)
    assert decision.verdict is Verdict.ANSWER, decision
    return DNSRecord.parse(decision.reply)


@pytest.mark.parametrize("name", ["api", "api.shoal", "API.Shoal", "api.shoal.", "Web"])
def test_service_names_get_their_vip_with_a_short_ttl_in_the_askers_case(name: str) -> None:
    query = ask(name)
    reply = reply_to(query)
    assert reply.header.id == query.header.id and reply.header.qr == 1 and reply.header.aa == 1
    assert reply.header.rcode == RCODE.NOERROR and reply.header.ra == 1 and reply.header.rd == query.header.rd
    [answer] = reply.rr
    assert str(answer.rdata) == str(TABLE[name.lower().split(".")[0].encode()])
    assert answer.ttl == 5 and answer.rtype == QTYPE.A
    assert answer.rname.label == query.q.qname.label  # 0x20: the name comes back exactly as asked
    assert reply.q == query.q


@pytest.mark.parametrize("qtype", ["AAAA", "MX", "TXT", "SRV"])
def test_other_types_for_a_service_name_are_no_data_not_an_error(qtype: str) -> None:
    reply = reply_to(ask("api.shoal", qtype))
    assert reply.header.rcode == RCODE.NOERROR and reply.rr == []


def test_any_gets_the_a_record() -> None:
    assert [str(rr.rdata) for rr in reply_to(ask("api", "ANY")).rr] == ["198.19.0.177"]


@pytest.mark.parametrize("name", ["nope.shoal", "x.api.shoal", "db.shoal"])
def test_unknown_names_under_shoal_are_nxdomain(name: str) -> None:
    reply = reply_to(ask(name))
    assert reply.header.rcode == RCODE.NXDOMAIN and reply.rr == [] and reply.header.aa == 1


def test_the_zone_itself_exists_with_no_address() -> None:
    reply = reply_to(ask("shoal"))
    assert reply.header.rcode == RCODE.NOERROR and reply.rr == []


@pytest.mark.parametrize("name", ["example.com", "db", "api.example.com", "shoal.example.com", "."])
def test_other_names_are_forwarded(name: str) -> None:
    decision = decide(ask(name).pack(), TABLE, ttl_s=5)
    assert (decision.verdict, decision.reply) == (Verdict.FORWARD, b"")


def test_a_response_is_never_answered() -> None:
    response = ask("api").reply()
    assert decide(response.pack(), TABLE, ttl_s=5).verdict is Verdict.DROP


def test_other_opcodes_are_not_implemented() -> None:
    query = ask("api")
    query.header.opcode = OPCODE.UPDATE
    reply = reply_to(query)
    assert reply.header.rcode == RCODE.NOTIMP and reply.rr == []


def test_two_questions_are_a_format_error_and_none_is_too() -> None:
    query = ask("api")
    query.add_question(DNSQuestion("web"))
    assert reply_to(query).header.rcode == RCODE.FORMERR
    empty = ask("api")
    empty.questions = []
    reply = reply_to(empty)
    assert reply.header.rcode == RCODE.FORMERR and reply.questions == []


def test_rcode_bits_of_the_query_do_not_leak_into_the_reply() -> None:
    query = ask("api")
    query.header.rcode = RCODE.REFUSED
    assert reply_to(query).header.rcode == RCODE.NOERROR


@pytest.mark.parametrize("packet", [b"", b"\x00" * 11, b"\x12\x34" + b"\xff" * 30, ask("api").pack()[:-3]])
def test_malformed_packets_are_dropped(packet: bytes) -> None:
    assert decide(packet, TABLE, ttl_s=5).verdict is Verdict.DROP
    assert servfail(packet) is None


def test_servfail_answers_the_query_not_authoritatively() -> None:
    query = ask("example.com")
    reply = DNSRecord.parse(servfail(query.pack()) or b"")
    assert reply.header.rcode == RCODE.SERVFAIL and reply.header.id == query.header.id and reply.header.aa == 0
    assert reply.q == query.q


def test_matches_needs_the_same_id_and_question_and_a_response() -> None:
    query = ask("Example.com")
    good = query.reply()
    good.q.qname = "example.COM"
    assert matches(query.pack(), good.pack())
    assert not matches(query.pack(), query.pack())  # not a response
    other_id = query.reply()
    other_id.header.id = (query.header.id + 1) % 65536
    assert not matches(query.pack(), other_id.pack())
    assert not matches(query.pack(), ask("example.org").reply().pack())
    assert not matches(query.pack(), b"junk")


@given(st.binary(max_size=600))
def test_no_bytes_make_decide_raise(packet: bytes) -> None:
    decision = decide(packet, TABLE, ttl_s=5)
    assert decision.verdict in Verdict
    servfail(packet)
    matches(packet, packet)


@given(st.data())
def test_no_mutation_of_a_valid_query_makes_decide_raise(data: st.DataObject) -> None:
    packet = bytearray(ask(data.draw(st.sampled_from(["api.shoal", "example.com", "x.y.shoal"]))).pack())
    for _ in range(data.draw(st.integers(1, 6))):
        packet[data.draw(st.integers(0, len(packet) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(packet)))
    decide(bytes(packet[:cut]), TABLE, ttl_s=5)
