"""DNS messages in, decisions out: what the agent's responder does with one query (dnslib's only module).

Role: `decide(packet, table)` parses a query and says: answer it (with the reply's bytes), forward it upstream, or
drop it. Names Shoal owns: `<service>` and `<service>.shoal` (any case; the reply keeps the asker's case) get the
service's VIP in an A record (AAAA and other types: no data, so resolvers that ask A and AAAA together succeed);
other names under `.shoal`: NXDOMAIN; any other name is forwarded. Responses (QR set) are dropped, so two
responders can never answer each other in a loop; anything dnslib cannot parse is dropped.
`servfail(query)` answers a query no upstream answered; `matches(query, reply)` checks an upstream reply belongs to
the query (ID, QR, the same question), since a reply is untrusted input too.
Boundary: pure: bytes and a name table in, bytes out; no sockets, no clock.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address

from dnslib import CLASS, OPCODE, QTYPE, RCODE, RR, A, DNSError, DNSHeader, DNSQuestion, DNSRecord

ZONE = b"shoal"
HEADER_BYTES = 12


class Verdict(enum.Enum):
    ANSWER = "answer"  # send `reply`
    FORWARD = "forward"  # not ours: ask the upstream resolver
    DROP = "drop"  # malformed, or not a query: say nothing


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reply: bytes = b""
    reason: str = ""  # what happened, as a counter name: "answered", "nxdomain", "nodata", "malformed", ...


def decide(packet: bytes, table: Mapping[bytes, IPv4Address], *, ttl_s: int, zone: bytes = ZONE) -> Decision:
    """`table`: lowercase service name (bytes) -> VIP."""
    query = _parse(packet)
    if query is None:
        return Decision(Verdict.DROP, reason="malformed")
    if query.header.qr:
        return Decision(Verdict.DROP, reason="not_a_query")
    if query.header.opcode != OPCODE.QUERY:
        return _reply(query, RCODE.NOTIMP, "notimp")
    if len(query.questions) != 1:  # every resolver asks one question; RFC 9619 makes it the rule
        return _reply(query, RCODE.FORMERR, "formerr")
    question: DNSQuestion = query.questions[0]
    labels = tuple(label.lower() for label in question.qname.label)
    if labels[-1:] == (zone,):
        name = labels[:-1]
        if not name:
            return _reply(query, RCODE.NOERROR, "nodata")  # the zone itself exists; it has no address
        if len(name) == 1 and name[0] in table:
            return _records(query, question, table[name[0]], ttl_s)
        return _reply(query, RCODE.NXDOMAIN, "nxdomain")
    if len(labels) == 1 and labels[0] in table:
        return _records(query, question, table[labels[0]], ttl_s)
    return Decision(Verdict.FORWARD, reason="forwarded")


def servfail(packet: bytes) -> bytes | None:
    """SERVFAIL for this query (upstream silent, too many in flight); None if it cannot be parsed."""
    query = _parse(packet)
    if query is None or query.header.qr:
        return None
    return bytes(_skeleton(query, RCODE.SERVFAIL, authoritative=False).pack())


def matches(packet: bytes, reply: bytes) -> bool:
    """Is `reply` a response to the query `packet`: same ID, QR set, same question (name compared case-blind)?"""
    query, answer = _parse(packet), _parse(reply)
    if query is None or answer is None or not answer.header.qr or answer.header.id != query.header.id:
        return False
    return [_key(q) for q in answer.questions] == [_key(q) for q in query.questions]


def _parse(packet: bytes) -> DNSRecord | None:
    if len(packet) < HEADER_BYTES:
        return None
    try:
        return DNSRecord.parse(packet)
    except DNSError:  # what dnslib raises for malformed input (a fuzz test holds it to that)
        return None


def _key(question: DNSQuestion) -> tuple[tuple[bytes, ...], int, int]:
    return tuple(label.lower() for label in question.qname.label), question.qtype, question.qclass


def _records(query: DNSRecord, question: DNSQuestion, vip: IPv4Address, ttl_s: int) -> Decision:
    if question.qclass != CLASS.IN or question.qtype not in (QTYPE.A, QTYPE.ANY):
        return _reply(query, RCODE.NOERROR, "nodata")
    reply = _skeleton(query, RCODE.NOERROR)
    reply.add_answer(RR(question.qname, QTYPE.A, CLASS.IN, ttl_s, A(str(vip))))
    return Decision(Verdict.ANSWER, bytes(reply.pack()), "answered")


def _reply(query: DNSRecord, rcode: int, reason: str) -> Decision:
    return Decision(Verdict.ANSWER, bytes(_skeleton(query, rcode).pack()), reason)


def _skeleton(query: DNSRecord, rcode: int, *, authoritative: bool = True) -> DNSRecord:
    """A reply with the query's ID, opcode, RD flag and first question (as asked: resolvers that randomise the
    case of names check it comes back), recursion available (other names are forwarded). Not dnslib's reply(),
    which copies the query's whole flag word (rcode bits included) and invents a question when there is none."""
    header = DNSHeader(id=query.header.id, qr=1, opcode=query.header.opcode, aa=int(authoritative),
                       rd=query.header.rd, ra=1, rcode=rcode)
    return DNSRecord(header, questions=list(query.questions[:1]))
