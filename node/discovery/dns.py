"""The agent's embedded DNS responder: service names -> VIPs, everything else forwarded (DESIGN §7a).

Role: listen on one address:port over UDP and TCP (the same port); for each query ask answer.decide, then send
its reply, forward it through the injected `Forwarder` (node/discovery/upstream.py in the agent; tests use a fake
upstream on loopback), or drop it. The name table is replaced whole by `update(mapping)`.
Bounds: at most `max_in_flight` forwarded queries at once (beyond that: SERVFAIL at once, so a flood cannot pile
up sockets or tasks), at most `max_tcp` TCP connections (more are closed on accept), each closed after
`tcp_idle_s` without a query; a query larger than a DNS message or malformed is counted and dropped. Nothing a
client sends can end the responder: every per-packet error is counted (`counters`) and logged once.
Boundary: sockets and tasks; what to answer is answer.py's, where to forward is the Forwarder's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import struct
from collections import Counter
from collections.abc import Mapping
from ipaddress import IPv4Address
from types import TracebackType
from typing import Protocol, cast

from node.discovery.answer import Decision, Verdict, decide, servfail

log = logging.getLogger("shoal.dns")

TTL_S = 5  # short: a service's VIP is stable, but a removed service should stop resolving soon
MAX_IN_FLIGHT = 256  # forwarded queries waiting on the upstream at once
MAX_TCP = 64  # concurrent TCP clients; DNS over TCP is the rare fallback for truncated answers
TCP_IDLE_S = 10.0  # RFC 7766 suggests seconds, not minutes, for an idle DNS connection
MAX_UDP_QUERY_BYTES = 4096  # EDNS payload sizes in the wild top out at 4096; a larger "query" is not one
LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")  # RFC 1123 host label, lowercase


class Forwarder(Protocol):
    async def forward(self, query: bytes, *, tcp: bool) -> bytes | None:
        """The upstream's reply to `query`, or None if none came in time."""


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self._server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # 3.11's UDP transport does not subclass it

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self._server.on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP unreachable from a client that left
        self._server.counters["udp_errors"] += 1


class DnsServer:
    """`async with DnsServer(...) as dns:` binds, serves, and on exit closes every socket and task it made."""

    def __init__(self, address: str, port: int, *, forwarder: Forwarder, ttl_s: int = TTL_S,
                 max_in_flight: int = MAX_IN_FLIGHT, max_tcp: int = MAX_TCP, tcp_idle_s: float = TCP_IDLE_S) -> None:
        self._address, self._port = address, port
        self._forwarder = forwarder
        self._ttl_s, self._max_in_flight, self._max_tcp, self._tcp_idle_s = ttl_s, max_in_flight, max_tcp, tcp_idle_s
        self._table: dict[bytes, IPv4Address] = {}
        self._udp: _Udp | None = None
        self._tcp: asyncio.Server | None = None
        self._group: asyncio.TaskGroup | None = None
        self._exit = contextlib.AsyncExitStack()
        self._forwards: set[asyncio.Task[None]] = set()
        self._connections: set[asyncio.Task[None]] = set()
        self.counters: Counter[str] = Counter()
        self._logged: set[str] = set()

    # -- the caller's side -------------------------------------------------------------------------------------

    def update(self, mapping: Mapping[str, IPv4Address | str]) -> list[str]:
        """Replace the table: service name -> VIP. Names that are not a DNS label and addresses that are not IPv4
        are left out (and returned), never half-applied."""
        table: dict[bytes, IPv4Address] = {}
        rejected: list[str] = []
        for name, vip in mapping.items():
            try:
                address = vip if isinstance(vip, IPv4Address) else IPv4Address(vip)
            except ValueError:
                address = None
            if not isinstance(name, str) or not LABEL.fullmatch(name.lower()) or address is None:
                rejected.append(repr(name))
                continue
            table[name.lower().encode()] = address
        self._table = table
        if rejected:
            self.counters["table_rejected"] += len(rejected)
            log.warning("names left out of DNS", extra={"fields": {"entries": ", ".join(sorted(rejected))}})
        return rejected

    @property
    def bound(self) -> tuple[str, int]:
        """The address and port served (the port the kernel chose when 0 was asked)."""
        return self._address, self._port

    async def __aenter__(self) -> DnsServer:
        loop = asyncio.get_running_loop()
        try:
            transport, protocol = await loop.create_datagram_endpoint(lambda: _Udp(self),
                                                                      local_addr=(self._address, self._port))
            self._exit.callback(transport.close)
            self._udp = protocol
            self._port = transport.get_extra_info("sockname")[1]
            self._tcp = await asyncio.start_server(self._serve_tcp, self._address, self._port)
            self._exit.push_async_callback(self._close_tcp)
            self._group = await self._exit.enter_async_context(asyncio.TaskGroup())
            self._exit.callback(self._cancel_forwards)  # runs before the group waits for its tasks
        except BaseException:
            await self._exit.aclose()
            raise
        log.info("dns responder listening", extra={"fields": {"address": self._address, "port": self._port}})
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._group = None  # no new forwards from here on
        await self._exit.aclose()

    # -- UDP ---------------------------------------------------------------------------------------------------

    def on_datagram(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.counters["udp_queries"] += 1
        if len(data) > MAX_UDP_QUERY_BYTES:
            self._count("oversized")
            return
        decision = self._decide(data)
        if decision.verdict is Verdict.ANSWER:
            self._send_udp(decision.reply, addr)
        elif decision.verdict is Verdict.FORWARD:
            self._start_forward(data, lambda reply: self._send_udp(reply, addr))

    def _send_udp(self, reply: bytes, addr: tuple[str | object, ...]) -> None:
        if self._udp is not None and self._udp.transport is not None and not self._udp.transport.is_closing():
            self._udp.transport.sendto(reply, addr)

    # -- TCP ---------------------------------------------------------------------------------------------------

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if len(self._connections) >= self._max_tcp or task is None or self._group is None:
            self._count("tcp_refused")
            writer.close()
            return
        self._connections.add(task)
        self.counters["tcp_connections"] += 1
        try:
            while True:
                query = await self._read_framed(reader)
                if query is None:
                    return
                self.counters["tcp_queries"] += 1
                reply = await self._answer_tcp(query)
                if reply is not None:
                    writer.write(struct.pack("!H", len(reply)) + reply)
                    await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            return  # the client went away mid-message
        finally:
            self._connections.discard(task)
            writer.close()

    async def _read_framed(self, reader: asyncio.StreamReader) -> bytes | None:
        """The next length-prefixed message, or None at a clean end or after tcp_idle_s of silence."""
        try:
            async with asyncio.timeout(self._tcp_idle_s):
                head = await reader.readexactly(2)
                (size,) = struct.unpack("!H", head)
                return await reader.readexactly(size)
        except TimeoutError:
            self._count("tcp_idle_closed")
            return None
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                self._count("malformed")
            return None

    async def _answer_tcp(self, query: bytes) -> bytes | None:
        decision = self._decide(query)
        if decision.verdict is Verdict.ANSWER:
            return decision.reply
        if decision.verdict is Verdict.DROP:
            return None
        if len(self._forwards) >= self._max_in_flight:
            self._count("overloaded")
            return servfail(query)
        done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        def deliver(reply: bytes) -> None:
            if not done.done():  # this connection may have been cancelled (closed) meanwhile
                done.set_result(reply)

        self._start_forward(query, deliver, tcp=True)
        return await done

    # -- shared ------------------------------------------------------------------------------------------------

    def _decide(self, packet: bytes) -> Decision:
        try:
            decision = decide(packet, self._table, ttl_s=self._ttl_s)
        except Exception as exc:  # a parser bug on hostile input: count it, say it once, keep serving
            self._count("errors", repr(exc))
            return Decision(Verdict.DROP, reason="errors")
        self._count(decision.reason)
        return decision

    def _start_forward(self, query: bytes, send: _Send, *, tcp: bool = False) -> None:
        if self._group is None:
            return  # shutting down
        if len(self._forwards) >= self._max_in_flight:
            self._count("overloaded")
            reply = servfail(query)
            if reply is not None:
                send(reply)
            return
        task = self._group.create_task(self._forward(query, send, tcp))
        self._forwards.add(task)
        task.add_done_callback(self._forwards.discard)

    async def _forward(self, query: bytes, send: _Send, tcp: bool) -> None:
        """Never raises (but for cancellation): a failure here would end every task of the group."""
        try:
            reply = await self._forwarder.forward(query, tcp=tcp)
            if reply is None:
                self._count("upstream_failed")
                reply = servfail(query)
            if reply is not None:
                send(reply)
        except Exception as exc:  # a forwarder bug: the client hears nothing, the responder keeps serving
            self._count("errors", repr(exc))

    def _cancel_forwards(self) -> None:
        for task in self._forwards:
            task.cancel()

    async def _close_tcp(self) -> None:
        if self._tcp is not None:
            self._tcp.close()
            connections = list(self._connections)
            for task in connections:  # Python 3.11's Server.close leaves open connections open
                task.cancel()
            await asyncio.gather(*connections, return_exceptions=True)
            await self._tcp.wait_closed()

    def _count(self, reason: str, detail: str | None = None) -> None:
        self.counters[reason] += 1
        if detail is not None and reason not in self._logged:
            self._logged.add(reason)
            log.warning("dns query not served", extra={"fields": {"reason": reason, "detail": detail}})


class _Send(Protocol):
    def __call__(self, reply: bytes, /) -> object: ...
