"""Wire format: message dataclasses and their compact binary encoding (msgpack).

The only module that imports msgpack. Two layers live here:
- `pack_value` / `unpack_value`: a bounded msgpack codec for plain values (used by TCP frames too);
- the gossip messages (frozen dataclasses) and `encode_body` / `decode_body` for a datagram's body.
Decoding is strict: every length is capped before anything is allocated, every field is type-checked,
and anything unexpected raises `WireError` (which the receive loop counts and drops).
Why msgpack: 4-6x faster than json here and ~25 % smaller, mature, and its Unpacker takes hard caps on
string, binary, array and map lengths, so a hostile length field cannot make us allocate.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from gossip.errors import WireError

#: The largest UDP payload we ever send or accept (IPv6 minimum MTU 1280 - 40 IPv6 - 8 UDP).
MAX_DATAGRAM_BYTES = 1232


def pack_value(value: object) -> bytes:
    """Encode a plain value (None, bool, int, float, str, bytes, list, dict) as msgpack."""
    try:
        return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError) as exc:
        raise WireError(f"cannot encode value: {exc}") from exc


def unpack_value(data: bytes, *, max_len: int = 1 << 20, max_items: int = 100_000) -> Any:
    """Decode one msgpack value with hard caps on every length; trailing bytes are an error."""
    unpacker = msgpack.Unpacker(
        raw=False,
        strict_map_key=True,
        use_list=True,
        max_buffer_size=max(len(data), 1),
        max_str_len=max_len,
        max_bin_len=max_len,
        max_array_len=max_items,
        max_map_len=max_items,
        max_ext_len=0,
    )
    try:
        unpacker.feed(data)
        value = unpacker.unpack()
    except msgpack.OutOfData as exc:
        raise WireError("truncated value") from exc
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise WireError(f"malformed value: {exc}") from exc
    if unpacker.tell() != len(data):
        raise WireError("trailing bytes after value")
    return value


# ---------------------------------------------------------------------------------------------------------
# Gossip messages. A datagram body is a list of messages; each is encoded as [type, field, ...].

NodeId = str
"""32 lowercase hex characters (16 random bytes, generated and persisted; never the hostname)."""

Address = tuple[str, int]

MAX_MESSAGES = 48
MAX_NAME_LEN = 63
MAX_LABELS = 16
MAX_LABELS_BYTES = 320
MAX_CERT_BYTES = 600
MAX_U64 = (1 << 64) - 1


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


Message = Ping | PingReq | Ack | Nack | Alive | Suspect | Dead | Left
MemberNews = Alive | Suspect | Dead | Left

_PING, _PING_REQ, _ACK, _NACK, _ALIVE, _SUSPECT, _DEAD, _LEFT = range(1, 9)


def node_id_bytes(node: NodeId) -> bytes:
    try:
        raw = bytes.fromhex(node)
    except ValueError as exc:
        raise WireError(f"node id {node!r} is not hex") from exc
    if len(raw) != 16:
        raise WireError(f"node id {node!r} is not 16 bytes")
    return raw


def _node(value: object) -> NodeId:
    if not isinstance(value, bytes) or len(value) != 16:
        raise WireError("node id must be 16 bytes")
    return value.hex()


def _uint(value: object, limit: int = MAX_U64) -> int:
    if type(value) is not int or not 0 <= value <= limit:
        raise WireError(f"expected an unsigned integer up to {limit}")
    return value


def _text(value: object, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise WireError(f"expected text of at most {limit} characters")
    return value


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
