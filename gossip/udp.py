"""Real UDP for the gossip core, via asyncio-dgram (the only module that imports it).

`UdpTransport.bound(addr)` is an async context manager owning the socket and its two tasks (in a TaskGroup):
sends go through a bounded queue drained by one task (asyncio-dgram's send waits for the socket to drain),
so the synchronous core never blocks, and a full queue drops and counts, as UDP would; received datagrams
are handed to the receiver callback one at a time, oversized ones dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator

import asyncio_dgram

from gossip.transport import Receiver
from gossip.wire import MAX_DATAGRAM_BYTES, Address

log = logging.getLogger(__name__)

MAX_BACKLOG = 4096
"""Received datagrams allowed to wait for the protocol (~5 MB at most); more are dropped and counted."""


class UdpTransport:
    def __init__(self, stream: asyncio_dgram.aio.DatagramServer, group: asyncio.TaskGroup, *,
                 queue_size: int = 1024) -> None:
        self._stream = stream
        self._group = group
        self._outbox: asyncio.Queue[tuple[bytes, Address]] = asyncio.Queue(queue_size)
        self._tasks: list[asyncio.Task[None]] = []
        self.stats: Counter[str] = Counter()

    @classmethod
    @contextlib.asynccontextmanager
    async def bound(cls, addr: Address) -> AsyncIterator[UdpTransport]:
        stream = await asyncio_dgram.bind(addr)
        try:
            async with asyncio.TaskGroup() as group:
                transport = cls(stream, group)
                try:
                    yield transport
                finally:
                    transport.close()
        finally:
            stream.close()

    @property
    def local_addr(self) -> Address:
        host, port = self._stream.sockname[:2]
        return str(host), int(port)

    def start(self, receiver: Receiver) -> None:
        self._tasks = [self._group.create_task(self._receive(receiver), name="udp-recv"),
                       self._group.create_task(self._send_loop(), name="udp-send")]

    def send(self, data: bytes, addr: Address) -> None:
        try:
            self._outbox.put_nowait((data, addr))
        except asyncio.QueueFull:
            self.stats["udp_send_dropped"] += 1

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def drain(self, timeout_s: float) -> None:
        """Wait (bounded) until queued datagrams have been handed to the kernel, e.g. a leave notice."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._outbox.join()
        except TimeoutError:
            self.stats["udp_drain_timeout"] += 1

    async def _receive(self, receiver: Receiver) -> None:
        while True:
            try:
                data, src = await self._stream.recv()
            except asyncio_dgram.TransportClosed:
                return
            except OSError as exc:  # e.g. ICMP port unreachable reported on the socket
                self.stats["udp_recv_errors"] += 1
                log.debug("udp receive error: %s", exc)
                continue
            if len(data) > MAX_DATAGRAM_BYTES:
                self.stats["drop_oversize"] += 1
                continue
            self._shed_backlog()
            try:
                host, port = src[0], src[1]  # type: ignore[index]
                receiver(data, (str(host), int(port)))
            except Exception:  # a bug in handling one datagram must not stop the receive loop
                self.stats["drop_handler_error"] += 1
                log.exception("datagram handler failed")

    def _shed_backlog(self) -> None:
        """Bound memory under a flood: asyncio-dgram queues every datagram the kernel hands it, unbounded,
        so when more than `MAX_BACKLOG` wait we drop the oldest waiting ones (counted), as a full socket
        buffer would. A flood then costs CPU we can see in the counters, never unbounded memory."""
        backlog: asyncio.Queue[object] | None = getattr(self._stream, "_recvq", None)
        while backlog is not None and backlog.qsize() > MAX_BACKLOG:
            backlog.get_nowait()
            self.stats["drop_backlog"] += 1

    async def _send_loop(self) -> None:
        while True:
            data, addr = await self._outbox.get()
            try:
                await self._stream.send(data, addr)
            except OSError as exc:
                self.stats["udp_send_errors"] += 1
                log.debug("udp send to %s failed: %s", addr, exc)
            except asyncio_dgram.TransportClosed:
                return
            finally:
                self._outbox.task_done()
