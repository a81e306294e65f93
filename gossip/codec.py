"""The bounded msgpack codec and the strict field readers every decoder in gossip shares.

The only module that imports msgpack. `pack_value` / `unpack_value` turn plain values into bytes and back
with hard caps on every length (a hostile length field cannot make us allocate); the small readers
(`read_uint`, `read_text`, `read_node`, `read_bytes`) type-check one decoded field each and raise `WireError`,
which receive loops count and drop. Why msgpack: 4-6x faster than json here and ~25 % smaller, mature, and
its Unpacker takes hard caps on string, binary, array and map lengths.
"""

from __future__ import annotations

from typing import Any

import msgpack

from gossip.errors import WireError

NodeId = str
"""32 lowercase hex characters (16 random bytes, generated and persisted; never the hostname)."""

MAX_U64 = (1 << 64) - 1


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


def node_id_bytes(node: NodeId) -> bytes:
    try:
        raw = bytes.fromhex(node)
    except ValueError as exc:
        raise WireError(f"node id {node!r} is not hex") from exc
    if len(raw) != 16:
        raise WireError(f"node id {node!r} is not 16 bytes")
    return raw


def read_node(value: object) -> NodeId:
    if not isinstance(value, bytes) or len(value) != 16:
        raise WireError("node id must be 16 bytes")
    return value.hex()


def read_uint(value: object, limit: int = MAX_U64) -> int:
    if type(value) is not int or not 0 <= value <= limit:
        raise WireError(f"expected an unsigned integer up to {limit}")
    return value


def read_text(value: object, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise WireError(f"expected text of at most {limit} characters")
    return value


def read_bytes(value: object, limit: int, *, exact: int | None = None) -> bytes:
    if not isinstance(value, bytes) or len(value) > limit or (exact is not None and len(value) != exact):
        raise WireError(f"expected bytes ({exact if exact is not None else f'at most {limit}'})")
    return value


def read_bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise WireError("expected a boolean")
    return value


def read_list(value: object, limit: int, what: str) -> list[Any]:
    if not isinstance(value, list) or len(value) > limit:
        raise WireError(f"{what} must be a list of at most {limit}")
    return value
