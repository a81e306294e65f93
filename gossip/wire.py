"""Wire format: the gossip messages (frozen dataclasses) and the encoding of a datagram's body.

A body is a list of messages, each encoded as [type, field, ...] with the bounded codec of gossip.codec.
Decoding is strict: every length is capped before anything is allocated, every field is type-checked,
and anything unexpected raises `WireError` (which the receive loop counts and drops). Desired-state news
(`EntryNews`, `EntryAnnounce`) carries entries of gossip.entry.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gossip.codec import NodeId as NodeId
from gossip.codec import node_id_bytes, pack_value, read_bool, read_bytes, unpack_value
from gossip.codec import read_node as _node
from gossip.codec import read_text as _text
from gossip.codec import read_uint as _uint
from gossip.entry import Entry, Version, decode_entry, decode_version, encode_entry, encode_version, valid_key
from gossip.errors import WireError

#: The largest UDP payload we ever send or accept (IPv6 minimum MTU 1280 - 40 IPv6 - 8 UDP).
MAX_DATAGRAM_BYTES = 1232


# ---------------------------------------------------------------------------------------------------------
# Gossip messages. A datagram body is a list of messages; each is encoded as [type, field, ...].

Address = tuple[str, int]

MAX_MESSAGES = 48
MAX_NAME_LEN = 63
MAX_LABELS = 16
MAX_LABELS_BYTES = 320
MAX_CERT_BYTES = 600


@dataclass(frozen=True, slots=True)
class Ping:
    seq: int
    target: NodeId
    """Who the prober means: a new node at a reused address must not ack for the old one."""


@dataclass(frozen=True, slots=True)
class PingReq:
    seq: int
    target: NodeId
    target_addr: Address


@dataclass(frozen=True, slots=True)
class Ack:
    seq: int


@dataclass(frozen=True, slots=True)
class Nack:
    """An intermediary could not reach the target: the *prober's* path is fine (Lifeguard awareness)."""

    seq: int


@dataclass(frozen=True, slots=True)
class Alive:
    node: NodeId
    incarnation: int
    name: str
    addr: Address
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Suspect:
    node: NodeId
    incarnation: int
    by: NodeId


@dataclass(frozen=True, slots=True)
class Dead:
    node: NodeId
    incarnation: int
    by: NodeId


@dataclass(frozen=True, slots=True)
class Left:
    node: NodeId
    incarnation: int


@dataclass(frozen=True, slots=True)
class EntryNews:
    """A desired-state (or status) entry small enough to ride in a datagram."""

    entry: Entry


@dataclass(frozen=True, slots=True)
class EntryAnnounce:
    """A new version exists: fetch it over TCP from the sender. `whole`: the entry itself is gossiped too (this
    datagram had no room for it), so a receiver may wait a moment for it rather than fetch."""

    key: str
    version: Version
    whole: bool = False


@dataclass(frozen=True, slots=True)
class CertNeed:
    """Asks the sender for the certificate of `node`: it relayed an entry by an author we have not met."""

    node: NodeId


@dataclass(frozen=True, slots=True)
class CertOffer:
    """A member's certificate (DER), for the receiver to check against the cluster CA and learn the key."""

    cert: bytes


@dataclass(frozen=True, slots=True)
class KnowsYou:
    """The sender has checked the certificate we attached and holds our key: stop attaching it (room for news)."""


Message = Ping | PingReq | Ack | Nack | Alive | Suspect | Dead | Left | EntryNews | EntryAnnounce | CertNeed \
    | CertOffer | KnowsYou
MemberNews = Alive | Suspect | Dead | Left

_PING, _PING_REQ, _ACK, _NACK, _ALIVE, _SUSPECT, _DEAD, _LEFT = range(1, 9)
_ENTRY, _ANNOUNCE, _CERT_NEED, _CERT, _KNOWS = range(9, 14)








def _addr_out(addr: Address) -> list[object]:
    return [ipaddress.ip_address(addr[0]).packed, addr[1]]


def _addr(value: object) -> Address:
    if not isinstance(value, list) or len(value) != 2 or not isinstance(value[0], bytes):
        raise WireError("address must be [ip bytes, port]")
    if len(value[0]) not in (4, 16):
        raise WireError("address ip must be 4 or 16 bytes")
    return str(ipaddress.ip_address(value[0])), _uint(value[1], 65535)


def _labels(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list) or len(value) > MAX_LABELS:
        raise WireError(f"labels must be a list of at most {MAX_LABELS} pairs")
    pairs = []
    for pair in value:
        if not isinstance(pair, list) or len(pair) != 2:
            raise WireError("label must be [key, value]")
        pairs.append((_text(pair[0], MAX_NAME_LEN), _text(pair[1], MAX_NAME_LEN)))
    if labels_size(pairs) > MAX_LABELS_BYTES:
        raise WireError(f"labels exceed {MAX_LABELS_BYTES} bytes in total")
    return tuple(pairs)


def labels_size(pairs: Sequence[tuple[str, str]]) -> int:
    """Bytes of label text; bounded so a member's alive news always fits in a datagram."""
    return sum(len(k.encode()) + len(v.encode()) for k, v in pairs)


def _fields(raw: list[Any], count: int) -> list[Any]:
    if len(raw) != count + 1:
        raise WireError(f"message type {raw[0]} takes {count} fields, got {len(raw) - 1}")
    return raw[1:]


def encode_message(msg: Message) -> list[object]:
    match msg:
        case Ping(seq, target):
            return [_PING, seq, node_id_bytes(target)]
        case PingReq(seq, target, addr):
            return [_PING_REQ, seq, node_id_bytes(target), _addr_out(addr)]
        case Ack(seq):
            return [_ACK, seq]
        case Nack(seq):
            return [_NACK, seq]
        case Alive(node, inc, name, addr, labels):
            return [_ALIVE, node_id_bytes(node), inc, name, _addr_out(addr), [list(p) for p in labels]]
        case Suspect(node, inc, by):
            return [_SUSPECT, node_id_bytes(node), inc, node_id_bytes(by)]
        case Dead(node, inc, by):
            return [_DEAD, node_id_bytes(node), inc, node_id_bytes(by)]
        case Left(node, inc):
            return [_LEFT, node_id_bytes(node), inc]
        case EntryNews(entry):
            return [_ENTRY, encode_entry(entry)]
        case EntryAnnounce(key, version, whole):
            return [_ANNOUNCE, key, encode_version(version), whole]
        case CertNeed(node):
            return [_CERT_NEED, node_id_bytes(node)]
        case CertOffer(cert):
            return [_CERT, cert]
        case KnowsYou():
            return [_KNOWS]
    raise WireError(f"cannot encode {type(msg).__name__}")


def decode_message(raw: object) -> Message:
    if not isinstance(raw, list) or not raw or type(raw[0]) is not int:
        raise WireError("message must be a non-empty list starting with its type")
    kind = raw[0]
    if kind == _PING:
        seq, target = _fields(raw, 2)
        return Ping(_uint(seq), _node(target))
    if kind == _PING_REQ:
        seq, target, addr = _fields(raw, 3)
        return PingReq(_uint(seq), _node(target), _addr(addr))
    if kind in (_ACK, _NACK):
        (seq,) = _fields(raw, 1)
        return Ack(_uint(seq)) if kind == _ACK else Nack(_uint(seq))
    if kind == _ALIVE:
        node, inc, name, addr, labels = _fields(raw, 5)
        return Alive(_node(node), _uint(inc), _text(name, MAX_NAME_LEN), _addr(addr), _labels(labels))
    if kind in (_SUSPECT, _DEAD):
        node, inc, by = _fields(raw, 3)
        cls = Suspect if kind == _SUSPECT else Dead
        return cls(_node(node), _uint(inc), _node(by))
    if kind == _LEFT:
        node, inc = _fields(raw, 2)
        return Left(_node(node), _uint(inc))
    if kind == _ENTRY:
        (entry,) = _fields(raw, 1)
        return EntryNews(decode_entry(entry))
    if kind == _ANNOUNCE:
        key, version, whole = _fields(raw, 3)
        if not valid_key(key):
            raise WireError("announced key is not a valid entry key")
        return EntryAnnounce(key, decode_version(version), read_bool(whole))
    if kind == _CERT_NEED:
        (node,) = _fields(raw, 1)
        return CertNeed(_node(node))
    if kind == _CERT:
        (cert,) = _fields(raw, 1)
        return CertOffer(read_bytes(cert, MAX_CERT_BYTES))
    if kind == _KNOWS:
        _fields(raw, 0)
        return KnowsYou()
    raise WireError(f"unknown message type {kind}")


def encode_messages(messages: Sequence[Message]) -> bytes:
    return pack_value([encode_message(m) for m in messages])


def decode_messages(body: bytes) -> list[Message]:
    raw = unpack_value(body, max_len=MAX_DATAGRAM_BYTES, max_items=MAX_MESSAGES * 8)
    if not isinstance(raw, list) or not raw or len(raw) > MAX_MESSAGES:
        raise WireError(f"a datagram carries 1..{MAX_MESSAGES} messages")
    return [decode_message(item) for item in raw]


def encoded_size(msg: Message) -> int:
    """Bytes this message adds to a body list (used to pack piggybacked news under the MTU)."""
    return len(pack_value(encode_message(msg)))
