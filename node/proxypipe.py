"""The pipe from the agent to its data-plane process: one message per frame, a 4-byte length then a pickle.

Role: `frame(message) -> bytes` and `await receive(reader) -> message | None` (None at the end of the pipe).
Three messages: `Configure` once, first; then `SetTable` and `SetAdmission`, each carrying the whole value
(level-triggered, like node.proxy's `update`), so a restarted process is caught up by the latest of each.
Why pickle: the pipe is private to the agent and the process it started (inherited descriptors, no path, no
network), both run the same code, and the values are the agent's own frozen dataclasses; a schema of its own would
duplicate node.proxy.model and netpolicy.gate field by field. The reader still bounds the frame and checks the
type of what it got.
Boundary: bytes and values; the processes are node.proxyprocess (writer) and node.proxyworker (reader).
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from dataclasses import dataclass

from node.admission import Admission
from node.datapath import Routes
from node.proxy.config import ProxyConfig

HEADER = struct.Struct(">I")
MAX_FRAME = 64 << 20  # a table of thousands of routes pickles to a few MiB; anything larger is a bug


@dataclass(frozen=True, slots=True)
class Configure:
    config: ProxyConfig
    log_level: str  # the agent's, so both processes log alike


@dataclass(frozen=True, slots=True)
class SetTable:
    table: Routes


@dataclass(frozen=True, slots=True)
class SetAdmission:
    admission: Admission


Message = Configure | SetTable | SetAdmission


class PipeError(Exception):
    """The pipe carried something that is not a message: the writer is broken, so the reader stops."""


def frame(message: Message) -> bytes:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    if len(payload) > MAX_FRAME:
        raise PipeError(f"a {type(message).__name__} of {len(payload)} bytes is over the pipe's {MAX_FRAME}")
    return HEADER.pack(len(payload)) + payload


async def receive(reader: asyncio.StreamReader) -> Message | None:
    """The next message; None when the pipe ended cleanly (the agent closed it, or exited)."""
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise PipeError(f"the pipe ended inside a frame header ({len(exc.partial)} bytes)") from None
        return None
    (size,) = HEADER.unpack(header)
    if size > MAX_FRAME:
        raise PipeError(f"a frame of {size} bytes is over the pipe's {MAX_FRAME}")
    try:
        payload = await reader.readexactly(size)
    except asyncio.IncompleteReadError as exc:
        raise PipeError(f"the pipe ended inside a frame ({len(exc.partial)} of {size} bytes)") from None
    try:
        message = pickle.loads(payload)
    except Exception as exc:  # anything unpickling can raise: the frame is not ours
        raise PipeError(f"a frame that does not decode: {exc!r}") from None
    if not isinstance(message, Configure | SetTable | SetAdmission):
        raise PipeError(f"a frame holding a {type(message).__name__}, not a message")
    return message
