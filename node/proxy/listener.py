"""One listen address: its socket, its current route, and the gate and connect attempts of every client it accepts.

Role: the shell around one route. On a new client it applies the limits in order (listener full, admission
hook, no endpoint) and otherwise pauses the client's reading and connects upstream, trying the next endpoint of
the rotation on a refusal or timeout, up to `connect_attempts`. A route change swaps the route and rotation in
place: open connections, whichever endpoint they use, carry on (drain); only new connections see the new route.
Boundary: endpoint choice is select.py's, stepping a connect attempt connect.py's, byte moving relay.py's; the
Proxy owns listeners' lifetimes.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from functools import partial
from typing import Any

from gossip.clock import Handle
from node.proxy import proxyv2
from node.proxy.config import ProxyConfig
from node.proxy.connect import Connect
from node.proxy.model import Address, Route
from node.proxy.relay import Downstream, Upstream
from node.proxy.select import Rotation
from node.proxy.stats import Counters, EndpointStats, RouteStats

log = logging.getLogger("shoal.proxy")

Admit = Callable[[str, str, Address], bool]
"""admit(client_ip, service, listen address) -> whether to forward this connection (network policies decide:
a VIP listener's port is the service's own port, a node-address listener is a published port)."""
IDLE_SWEEPS = 4  # sweeps run every idle_timeout_s / IDLE_SWEEPS; a client quiet for this many is closed


def listening_socket(address: Address, backlog: int) -> socket.socket:
    """Bind and listen now, so a failure (address not on this host yet, port taken) is known at once."""
    family = socket.AF_INET6 if ":" in address.ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # Re-opening a port whose old connections linger in TIME_WAIT must not fail.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class Listener:
    def __init__(self, address: Address, route: Route, *, config: ProxyConfig, now: Callable[[], float],
                 admit: Admit | None) -> None:
        self.address = address
        self.route = route
        self.rotation = Rotation(route.endpoints)
        self.counters = Counters()
        self.clients: set[Downstream] = set()
        self.connecting: set[Downstream] = set()  # clients whose connect attempt is running (to its outcome)
        self.server: asyncio.AbstractServer | None = None
        self.error: str | None = "not opened yet"
        self.retry: Handle | None = None  # a pending re-open after a failure
        self._config, self._now, self._admit = config, now, admit
        self._loop = asyncio.get_running_loop()

    def reroute(self, route: Route) -> None:
        self.route = route
        self.rotation = self.rotation.with_endpoints(route.endpoints)

    async def open(self) -> None:
        """Start accepting; raises OSError (counted, recorded) when the socket cannot be bound."""
        try:
            sock = listening_socket(self.address, self._config.backlog)
        except OSError as exc:
            self.counters.listen_failures += 1
            self.error = f"{type(exc).__name__}: {exc.strerror or exc}"
            raise
        try:
            # The factory is a partial, not a method: one Python call fewer per connection.
            self.server = await asyncio.get_running_loop().create_server(partial(Downstream, self, self.counters),
                                                                         sock=sock,
                                                                         backlog=self._config.backlog)
        except BaseException:
            sock.close()
            raise
        self.error = None

    def close(self) -> None:
        """Stop accepting. Open connections are left to finish (drain)."""
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None
        if self.server is not None:
            self.server.close()
            self.server = None

    def arrive(self, client: Downstream) -> None:
        transport = client.transport
        assert transport is not None
        counters, route = self.counters, self.route
        if len(self.clients) >= self._config.max_connections:
            counters.closed_full += 1
            transport.close()
        elif self._admit is not None and not self._admitted(transport, route.service):
            counters.denied += 1
            transport.close()
        elif not route.endpoints:
            counters.closed_no_endpoint += 1
            transport.close()  # FIN at once: a client with nowhere to go must not hang
        else:
            self.clients.add(client)
            self.connecting.add(client)
            counters.accepted += 1
            transport.pause_reading()  # nothing to forward to until a replica answers (uvloop ignores this here)
            # Needed even when buffer_bytes is the usual 64 KiB: uvloop's own default low-water mark is 16 bytes
            # (64 // 4, missing its * 1024), not the quarter of the high-water mark that flow control relies on.
            transport.set_write_buffer_limits(high=self._config.buffer_bytes)
            header = b""
            if route.proxy_protocol:
                header = proxyv2.header(transport.get_extra_info("peername"), transport.get_extra_info("sockname"))
            client.connect = connect = Connect(header, partial(self._outcome, client))
            self._attempt(client, connect)

    def _admitted(self, transport: asyncio.Transport, service: str) -> bool:
        assert self._admit is not None
        peer = transport.get_extra_info("peername")
        try:
            return bool(peer) and self._admit(peer[0], service, self.address)
        except Exception:  # a broken hook denies rather than crashes the accept path
            log.exception("admission hook failed; connection refused", extra={"fields": {"service": service}})
            return False

    def depart(self, client: Downstream) -> None:
        # A client that leaves while connecting stays in `connecting` until its attempt's outcome (the
        # cancellation its connection_lost asked for) arrives: until then a socket of ours is still open.
        self.clients.discard(client)
        endpoint = client.endpoint
        if endpoint is not None:
            client.endpoint = None
            open_by = self.counters.open_by_endpoint
            left = open_by.get(endpoint, 1) - 1
            if left > 0:
                open_by[endpoint] = left
            else:
                open_by.pop(endpoint, None)

    def _attempt(self, client: Downstream, connect: Connect) -> None:
        """Start the client's next connect attempt, on an endpoint it has not tried; close it if none is left."""
        rotation = self.rotation  # re-read: a route change while we retry applies to the next attempt
        now, tried = self._now(), connect.tried
        endpoint = rotation.pick(now, tried) if len(tried) < self._config.connect_attempts else None
        if endpoint is None:
            self._done_connecting(client)
            self.counters.closed_no_endpoint += 1
            client.close()
            return
        if tried:
            self.counters.retries += 1
        tried.append(endpoint.address)
        # The deadline is enforced by expire(), run from one periodic timer, rather than by a timer per attempt:
        # at thousands of new connections a second, a timer each (asyncio.timeout) costs more.
        connect.start(self._loop.create_connection(partial(Upstream, client, connect.header), endpoint.ip,
                                                   endpoint.port),
                      endpoint.address, rotation, now + self._config.connect_timeout_s)

    def _outcome(self, client: Downstream, connect: Connect, result: Any, exc: BaseException | None) -> None:
        """One attempt ended: link the pair, or try the next endpoint, or stop (the client left, or a bug)."""
        try:
            if exc is None:
                transport, upstream = result
                self._linked(client, upstream, transport)
                return
            endpoint, rotation = connect.endpoint, connect.rotation
            assert endpoint is not None and rotation is not None
            if isinstance(exc, OSError):
                self._failed(rotation, endpoint, exc)
                self._attempt(client, connect)
            elif isinstance(exc, asyncio.CancelledError):
                down = client.transport
                if connect.expired and down is not None and not down.is_closing():
                    self._failed(rotation, endpoint, TimeoutError())
                    self._attempt(client, connect)
                else:  # the client went away, or the proxy is shutting down
                    self._done_connecting(client)
            else:
                raise exc
        except Exception:  # a bug here must cost one client connection, not the proxy
            log.exception("connecting upstream failed", extra={"fields": {"service": self.route.service}})
            self._done_connecting(client)
            client.abort()
            if exc is None:
                result[0].abort()  # the replica side too, if it was connected: nothing will relay it now

    def expire(self, now: float) -> None:
        """Cut short the connect attempts whose deadline passed (each then tries the next endpoint)."""
        for client in self.connecting:
            connect = client.connect
            if connect is not None and connect.deadline <= now and not connect.expired and connect.cancel():
                connect.expired = True

    def _done_connecting(self, client: Downstream) -> None:
        client.connect = None
        self.connecting.discard(client)

    def _linked(self, client: Downstream, upstream: Upstream, transport: asyncio.Transport) -> None:
        connect = client.connect
        assert connect is not None and connect.endpoint is not None
        endpoint = connect.endpoint
        self._done_connecting(client)
        down = client.transport
        assert down is not None
        if down.is_closing():  # the client went away (or we shut down) as the replica answered
            transport.close()
            return
        if transport.is_closing():  # the replica hung up at once: the client sees the same
            client.close()
            return
        client.endpoint = endpoint
        open_by = self.counters.open_by_endpoint
        open_by[endpoint] = open_by.get(endpoint, 0) + 1
        upstream.link(transport, self._config.buffer_bytes)  # resumes the client's reading

    def _failed(self, rotation: Rotation, endpoint: Address, exc: BaseException) -> None:
        self.counters.connect_failures += 1
        if rotation.failed(endpoint, self._now(), self._config.cool_down_s):
            log.warning("cannot connect to endpoint; it sits out a cool-down", extra={"fields": {
                "service": self.route.service, "endpoint": f"{endpoint.ip}:{endpoint.port}",
                "error": type(exc).__name__, "cool_down_s": self._config.cool_down_s}})

    def sweep(self) -> None:
        """One idle check: close clients that moved no bytes for IDLE_SWEEPS sweeps in a row."""
        for client in list(self.clients):
            if client.connect is not None:
                continue  # still connecting: the connect deadline bounds that
            if client.seen:
                client.seen, client.idle_sweeps = False, 0
                continue
            client.idle_sweeps += 1
            if client.idle_sweeps >= IDLE_SWEEPS:
                self.counters.closed_idle += 1
                client.abort()

    def _buffered(self) -> int:
        total = 0
        for client in self.clients:
            upstream = client.upstream
            for transport in (client.transport, upstream.transport if upstream is not None else None):
                if transport is not None and not transport.is_closing():
                    total += transport.get_write_buffer_size()
        return total

    def stats(self, now: float) -> RouteStats:
        c, rotation = self.counters, self.rotation
        down = set(rotation.down(now))
        endpoints = [EndpointStats(a, w, c.open_by_endpoint.get(a, 0), a in down)
                     for a, w in zip(rotation.addresses, rotation.weights, strict=True)]
        endpoints += [EndpointStats(a, None, n, False) for a, n in sorted(c.open_by_endpoint.items())
                      if a not in rotation.addresses]
        return RouteStats(
            listen=self.address, service=self.route.service, listening=self.server is not None,
            listen_error=self.error, open=len(self.clients), buffered_bytes=self._buffered(), accepted=c.accepted,
            bytes_from_clients=c.bytes_from_clients, bytes_to_clients=c.bytes_to_clients,
            connect_failures=c.connect_failures, retries=c.retries, closed_no_endpoint=c.closed_no_endpoint,
            closed_full=c.closed_full, closed_idle=c.closed_idle, denied=c.denied,
            listen_failures=c.listen_failures, endpoints=tuple(endpoints))
