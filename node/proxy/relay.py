"""The data path: one client connection relayed to one replica connection, bytes in both directions.

Role: two asyncio Protocols per proxied connection. `Downstream` faces the client, `Upstream` the replica; each
writes what it receives straight into the other's transport (no copy loop, no task per direction). Flow control:
when a side's write buffer passes its high-water mark, its `pause_writing` pauses reading on the *other* side
and `resume_writing` resumes it, so a slow reader holds back a fast writer and memory stays bounded. Half-close
is relayed (EOF from one side becomes `write_eof` toward the other); the pair closes when both directions are
done or either side is lost. Boundary: no endpoint choice, no counters beyond bytes, no policy: `Site` (the
listener) decides whether and where to connect; this module only moves bytes.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from node.proxy.model import Address
from node.proxy.stats import Counters

if TYPE_CHECKING:
    from node.proxy.connect import Connect


class Site(Protocol):
    """What a client connection needs from the listener that accepted it."""

    def arrive(self, client: Downstream) -> None: ...

    def depart(self, client: Downstream) -> None: ...


class Downstream(asyncio.Protocol):
    __slots__ = ("connect", "counters", "early", "endpoint", "eof", "idle_sweeps", "seen", "site", "transport",
                 "upstream")

    def __init__(self, site: Site, counters: Counters) -> None:
        self.site = site
        self.counters = counters
        self.transport: asyncio.Transport | None = None
        self.upstream: Upstream | None = None  # set once a replica answered (Upstream.link)
        self.early = b""  # client bytes read before the replica answered
        self.endpoint: Address | None = None  # set once connected: whose open count this connection holds
        self.connect: Connect | None = None  # the connect attempts, while they run
        self.seen = False  # bytes moved since the last idle sweep
        self.idle_sweeps = 0  # consecutive sweeps that found no bytes moved
        self.eof = False  # EOF received from the client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio's, hence the ignore. (Not typing.cast: a Python-level call,
        # and this runs for every connection.)
        self.transport = transport  # type: ignore[assignment]
        # Pauses reading until a replica answers, or closes us. (uvloop starts reading after this returns
        # whatever we asked, so data_received also holds early bytes back: see `early`.)
        self.site.arrive(self)

    def data_received(self, data: bytes) -> None:
        self.seen = True
        self.counters.bytes_from_clients += len(data)
        upstream = self.upstream
        if upstream is not None:
            upstream.transport.write(data)
        else:  # still connecting: hold this chunk and read no more until the replica answers
            self.early += data
            if self.transport is not None:
                self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.eof = True
        upstream = self.upstream
        if upstream is None:
            return True  # still connecting: link() passes the EOF on
        if upstream.eof:  # both directions done: close (buffered bytes are still flushed first)
            upstream.transport.close()
            return False
        upstream.transport.write_eof()
        return True  # keep sending the replica's answer to the half-closed client

    def pause_writing(self) -> None:
        upstream = self.upstream
        if upstream is not None:
            upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        upstream = self.upstream
        if upstream is not None:
            upstream.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.connect is not None:
            self.connect.cancel()
        upstream = self.upstream
        if upstream is not None:
            upstream.transport.close()
            # Unlink: with Upstream.client pointing back here the pair is a reference cycle, which only the cyclic
            # GC frees (a collection per few dozen connections at thousands a second, and longer pauses as pairs
            # age into older generations). Unlinked, refcounting frees both as soon as the replica side is lost.
            # Nothing reads this after our connection_lost: the replica side's callbacks use `client`, and its
            # connection_lost only speaks for a client that is still linked to it.
            self.upstream = None
        self.site.depart(self)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop both sides now, buffered bytes and all (idle timeout, shutdown)."""
        upstream = self.upstream
        if upstream is not None:
            upstream.transport.abort()
        if self.transport is not None:
            self.transport.abort()


class Upstream(asyncio.Protocol):
    __slots__ = ("client", "eof", "header", "linked", "paused", "transport")

    def __init__(self, client: Downstream, header: bytes) -> None:
        self.client = client
        self.header = header  # PROXY v2 header to send first, or b"" (sent by link())
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set before any other callback
        self.eof = False  # EOF received from the replica
        self.linked = False  # the connect attempt succeeded and the client's bytes flow here
        self.paused = False  # our write buffer is over its high-water mark: the client's reading is paused

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # as in Downstream.connection_made

    def link(self, transport: asyncio.Transport, buffer_bytes: int) -> None:
        """The connect attempt succeeded (called by the connecting coroutine, which on uvloop may run before
        connection_made): send the PROXY header, then what the client sent meanwhile, then relay."""
        self.transport = upstream = transport
        upstream.set_write_buffer_limits(high=buffer_bytes)  # before the first write, so it applies to it
        self.linked = True
        client = self.client
        client.upstream = self
        if self.header:
            upstream.write(self.header)
        if client.early:
            upstream.write(client.early)  # may pass the high-water mark: then pause_writing set self.paused
            client.early = b""
        down = client.transport
        if down is None:
            return
        # Either side may have finished sending before we got here; pass each EOF on, and close once both have.
        if client.eof and self.eof:
            upstream.close()
            down.close()
        elif client.eof:
            upstream.write_eof()
        else:
            if not self.paused:
                down.resume_reading()
            if self.eof:
                down.write_eof()

    def data_received(self, data: bytes) -> None:
        client = self.client
        client.seen = True
        client.counters.bytes_to_clients += len(data)
        if client.transport is not None:
            client.transport.write(data)

    def eof_received(self) -> bool:
        self.eof = True
        client = self.client
        if client.transport is None or not self.linked:
            return True  # link() passes the EOF on
        if client.eof:
            client.transport.close()
            return False
        client.transport.write_eof()
        return True

    def pause_writing(self) -> None:
        self.paused = True
        if self.client.transport is not None:
            self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        if self.client.transport is not None:
            self.client.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        # Only a linked replica connection speaks for the client; one abandoned half way (its connect timed out
        # as it completed) just goes, and the attempt loop moves on.
        client = self.client
        if self.linked and client.upstream is self and client.transport is not None:
            client.transport.close()  # after flushing what the replica sent
