"""Framed request/response over asyncio TCP streams (TLS) between agents: join now, push-pull later.

Role: carry `{"op", "body"}` requests and `{"ok", "body" | "error", "code"}` responses, one at a time, several
per connection. Frame = 4-byte big-endian length + pack_value(map); the length is checked against
`max_frame_bytes` before the body is read, so a hostile header cannot make us wait for or allocate 4 GiB.
Boundary: routing and limits only; handlers (joining.py, sync) decide, tls.py builds the contexts.
Errors: a handler's exception becomes an error response (RequestRefused: its message; anything else: a
counted internal error); a malformed frame, a timeout or too many requests closes the connection.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from gossip.codec import pack_value, unpack_value
from gossip.errors import GossipError, WireError
from gossip.identity import is_id

log = logging.getLogger(__name__)
_HEADER_BYTES = 4
#: How long a closing connection may take to exchange TLS close_notify before it is aborted.
_CLOSE_GRACE_S = 1.0


class StreamError(GossipError):
    """The connection failed, timed out, closed early or sent a bad frame: retry, perhaps another peer."""


class RemoteError(GossipError):
    """The peer answered a request with an error; `code` is a short machine-readable reason."""

    def __init__(self, op: str, error: str, code: str) -> None:
        super().__init__(error)
        self.op = op
        self.error = error
        self.code = code


class RequestRefused(GossipError):
    """Raised by a handler to refuse a request: the message is sent back to the client as is."""

    def __init__(self, message: str, code: str = "refused") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """Bounds that keep one server safe from slow, greedy or hostile peers."""

    #: A push-pull page of the desired state must fit; anything larger is refused unread.
    max_frame_bytes: int = 8 << 20
    #: Longest list or map in a frame (msgpack allocates a declared list before filling it).
    max_items: int = 100_000
    #: Anti-entropy talks to one peer per period, so a few hundred concurrent streams is already a flood.
    max_connections: int = 256
    #: The join takes two requests; a push-pull one for members, then the store's summary, digest pages (up to
    #: 400) and chunks of records (64 keys each): 1024 covers a re-sync of ~10,000 differing keys; more is a
    #: client that never lets go (the idle and read timeouts bound it in time as well).
    max_requests_per_connection: int = 1024
    #: How long an open connection may wait between requests.
    idle_timeout_s: float = 30.0
    #: How long a frame body, a write or a TLS handshake may take once started.
    read_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.max_frame_bytes < 1 << 32:
            raise ValueError("max_frame_bytes must fit the 4-byte frame header")
        if min(self.max_items, self.max_connections, self.max_requests_per_connection) < 1:
            raise ValueError("stream limits must be positive")
        if min(self.idle_timeout_s, self.read_timeout_s) <= 0:
            raise ValueError("stream timeouts must be positive")


@dataclass(frozen=True, slots=True)
class Peer:
    """The client of one connection; `node_id` is set only from a client certificate the CA verified."""

    node_id: str | None
    address: tuple[str, int]
    cert_der: bytes | None
    #: Shared by the requests of one connection (the join's nonce lives here between its two requests).
    connection_state: dict[str, Any] = field(compare=False)


Handler = Callable[[Peer, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(slots=True)
class StreamStats:
    """Counters for operators and tests (mutable: the server increments them)."""

    connections: int = 0
    rejected_connections: int = 0
    requests: int = 0
    refused: int = 0
    failures: int = 0
    malformed_frames: int = 0
    timeouts: int = 0


def encode_frame(value: dict[str, Any], *, max_frame_bytes: int) -> bytes:
    payload = pack_value(value)
    if len(payload) > max_frame_bytes:
        raise WireError(f"frame of {len(payload)} bytes exceeds the {max_frame_bytes}-byte limit")
    return len(payload).to_bytes(_HEADER_BYTES, "big") + payload


async def read_frame(
    reader: asyncio.StreamReader,
    *,
    limits: StreamLimits,
    header_timeout_s: float | None,
    body_timeout_s: float | None,
) -> dict[str, Any] | None:
    """The next frame as a map, or None when the peer closed cleanly between frames."""
    try:
        async with asyncio.timeout(header_timeout_s):
            header = await reader.readexactly(_HEADER_BYTES)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise WireError("connection closed inside a frame header") from exc
        return None
    length = int.from_bytes(header, "big")
    if not 0 < length <= limits.max_frame_bytes:
        raise WireError(f"frame length {length} outside 1..{limits.max_frame_bytes}")
    try:
        async with asyncio.timeout(body_timeout_s):
            payload = await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise WireError("connection closed inside a frame") from exc
    value = unpack_value(payload, max_len=limits.max_frame_bytes, max_items=limits.max_items)
    if not isinstance(value, dict):
        raise WireError("a frame must hold a map")
    return value


async def _close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        async with asyncio.timeout(_CLOSE_GRACE_S):
            await writer.wait_closed()
    except (TimeoutError, OSError):
        # A peer that never answers TLS close_notify must not hold the connection open.
        writer.transport.abort()


def _error(message: str, code: str) -> dict[str, Any]:
    return {"ok": False, "error": message, "code": code}


def _address_of(writer: asyncio.StreamWriter) -> tuple[str, int]:
    peername = writer.get_extra_info("peername")
    return (str(peername[0]), int(peername[1])) if peername else ("", 0)


def _peer_of(writer: asyncio.StreamWriter) -> Peer:
    address = _address_of(writer)
    ssl_object = writer.get_extra_info("ssl_object")
    if ssl_object is None:
        return Peer(None, address, None, {})
    cert_der = ssl_object.getpeercert(binary_form=True)
    # The dict form is empty unless OpenSSL verified the certificate against the cluster CA.
    verified = ssl_object.getpeercert() or {}
    subject = dict(pair for rdn in verified.get("subject", ()) for pair in rdn)
    node_id = subject.get("commonName")
    return Peer(node_id if is_id(node_id) else None, address, cert_der, {})


def _parse_request(frame: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    op, body = frame.get("op"), frame.get("body", {})
    if not isinstance(op, str) or not isinstance(body, dict):
        raise WireError("a request is {'op': str, 'body': map}")
    return op, body


class StreamServer:
    """Listens for TLS connections and answers requests by op name with registered handlers."""

    def __init__(self, limits: StreamLimits | None = None) -> None:
        self.limits = limits or StreamLimits()
        self.stats = StreamStats()
        self._routes: dict[str, tuple[Handler, bool]] = {}  # op -> (handler, require_peer_cert)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    def route(self, op: str, handler: Handler, *, require_peer_cert: bool = True) -> None:
        """Answer `op` with `handler`; by default only for clients with a verified node certificate."""
        if op in self._routes:
            raise ValueError(f"op {op!r} already has a handler")
        self._routes[op] = (handler, require_peer_cert)

    async def start(self, host: str, port: int, ssl_ctx: ssl.SSLContext | None) -> tuple[str, int]:
        """Start listening; returns the bound address (useful with port 0)."""
        if self._server is not None:
            raise RuntimeError("server already started")
        self._closing = False
        handshake_s = self.limits.read_timeout_s if ssl_ctx is not None else None
        self._server = await asyncio.start_server(
            self._on_connect, host, port, ssl=ssl_ctx, ssl_handshake_timeout=handshake_s
        )
        return self.address

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("server is not listening")
        sockname = self._server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    async def close(self) -> None:
        """Stop listening and end every open connection."""
        if self._server is None:
            return
        self._closing = True
        self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if self._closing or task is None or len(self._tasks) >= self.limits.max_connections:
            self.stats.rejected_connections += 1
            await _close_writer(writer)
            return
        self._tasks.add(task)
        self.stats.connections += 1
        try:
            await self._serve(reader, writer, _peer_of(writer))
        except asyncio.CancelledError:
            # Only close() cancels these tasks, and asyncio (3.11) would log a cancelled connection task as an
            # unhandled error: the cancellation ends here, once the connection is closed below.
            if not self._closing:
                raise
        finally:
            self._tasks.discard(task)
            await _close_writer(writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer) -> None:
        limits = self.limits
        for _ in range(limits.max_requests_per_connection):
            try:
                frame = await read_frame(
                    reader, limits=limits, header_timeout_s=limits.idle_timeout_s,
                    body_timeout_s=limits.read_timeout_s,
                )  # fmt: skip
                if frame is None:
                    return
                op, body = _parse_request(frame)
                response = await self._dispatch(peer, op, body)
                async with asyncio.timeout(limits.read_timeout_s):
                    writer.write(response)
                    await writer.drain()
            except WireError as exc:
                self.stats.malformed_frames += 1
                log.debug("closing %s: %s", peer.address, exc)
                return
            except TimeoutError:
                self.stats.timeouts += 1
                return
            except OSError as exc:  # reset or TLS failure: nothing left to answer
                log.debug("connection from %s failed: %s", peer.address, exc)
                return

    async def _dispatch(self, peer: Peer, op: str, body: dict[str, Any]) -> bytes:
        self.stats.requests += 1
        handler, require_peer_cert = self._routes.get(op, (None, False))
        if handler is None:
            self.stats.refused += 1
            return self._encode(_error(f"unknown op {op!r}", "unknown_op"))
        if require_peer_cert and peer.node_id is None:
            self.stats.refused += 1
            message = f"op {op!r} requires a client certificate issued by this cluster's CA"
            return self._encode(_error(message, "unauthenticated"))
        try:
            result = await handler(peer, body)
            return self._encode({"ok": True, "body": result})
        except RequestRefused as exc:
            self.stats.refused += 1
            return self._encode(_error(str(exc), exc.code))
        except Exception:
            # A bug in one handler must cost one request, never the server: count it, log it, answer.
            self.stats.failures += 1
            log.exception("handler for %r failed (peer %s)", op, peer.address)
            return self._encode(_error(f"internal error while handling {op!r}", "internal"))

    def _encode(self, response: dict[str, Any]) -> bytes:
        return encode_frame(response, max_frame_bytes=self.limits.max_frame_bytes)


class StreamClient:
    """One connection to a peer's StreamServer; requests go one at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, timeout_s: float,
                 limits: StreamLimits) -> None:  # fmt: skip
        self._reader, self._writer = reader, writer
        self._timeout_s, self._limits = timeout_s, limits
        self._broken = False
        self.address = _address_of(writer)

    @property
    def peer_cert_der(self) -> bytes | None:
        """The certificate the server presented (DER), verified or not: see tls.bootstrap_context."""
        ssl_object = self._writer.get_extra_info("ssl_object")
        return None if ssl_object is None else ssl_object.getpeercert(binary_form=True)

    async def request(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        """Send one request and return the response body; RemoteError if the peer refused it."""
        if self._broken:
            raise StreamError(f"connection to {self._where} is closed")
        frame = encode_frame({"op": op, "body": body}, max_frame_bytes=self._limits.max_frame_bytes)
        self._broken = True  # until a whole response has arrived
        try:
            async with asyncio.timeout(self._timeout_s):
                self._writer.write(frame)
                await self._writer.drain()
                response = await read_frame(
                    self._reader, limits=self._limits, header_timeout_s=None, body_timeout_s=None
                )
        except TimeoutError as exc:
            raise StreamError(f"{self._where} did not answer {op!r} within {self._timeout_s} s") from exc
        except (OSError, WireError) as exc:
            raise StreamError(f"{self._where} failed during {op!r}: {exc}") from exc
        if response is None:
            raise StreamError(f"{self._where} closed the connection during {op!r}")
        self._broken = False
        return _parse_response(op, response, self._where)

    @property
    def _where(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"

    async def close(self) -> None:
        self._broken = True
        await _close_writer(self._writer)

    async def __aenter__(self) -> StreamClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _parse_response(op: str, response: dict[str, Any], where: str) -> dict[str, Any]:
    ok, body = response.get("ok"), response.get("body")
    if ok is True and isinstance(body, dict):
        return body
    error, code = response.get("error"), response.get("code", "error")
    if ok is False and isinstance(error, str) and isinstance(code, str):
        raise RemoteError(op, error, code)
    raise StreamError(f"{where} sent a malformed response to {op!r}")


async def open_stream(
    address: tuple[str, int],
    ssl_ctx: ssl.SSLContext | None,
    timeout_s: float,
    *,
    limits: StreamLimits | None = None,
) -> StreamClient:
    """Connect (TCP + TLS handshake within `timeout_s`); StreamError if the peer cannot be reached."""
    host, port = address
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=ssl_ctx, ssl_handshake_timeout=timeout_s if ssl_ctx else None
            )
    except (OSError, TimeoutError) as exc:
        raise StreamError(f"cannot connect to {host}:{port}: {exc or type(exc).__name__}") from exc
    return StreamClient(reader, writer, timeout_s=timeout_s, limits=limits or StreamLimits())
