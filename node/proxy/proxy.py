"""The embedded L4 proxy: listeners that follow a table, set in one call.

Role: `await proxy.update(table)` makes the listeners match the table: it diffs (table.py), opens listeners for
new addresses, swaps routes in place for changed ones, and closes listeners whose address left (their open
connections drain). A listener that cannot open (the VIP is not on `lo` yet, the port is taken) is logged,
counted, and retried with backoff on the clock; it never raises out of `update`. A sweep on the clock closes
idle connections. `snapshot()` returns counters per route as plain data. Boundary: runs on whatever event loop
runs it (the composition root picks uvloop); knows nothing of gossip, services or probes: the agent builds the
table from observed state and calls `update`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from gossip.clock import Clock, Handle
from node.proxy.config import ProxyConfig
from node.proxy.listener import IDLE_SWEEPS, Admit, Listener
from node.proxy.model import Address, Route
from node.proxy.stats import RouteStats
from node.proxy.table import diff

log = logging.getLogger("shoal.proxy")
SETTLE_TURNS = 100  # loop turns that leaving the block waits, at most, for cancelled connect attempts to end


class Proxy:
    """`async with Proxy(clock=...) as proxy:` owns every listener, connection and connect attempt; leaving the
    block closes them all."""

    def __init__(self, *, clock: Clock, config: ProxyConfig | None = None, admit: Admit | None = None) -> None:
        """`admit(client_ip, service)` is asked before each connection is forwarded; None admits all (and
        skips the call, which matters at thousands of new connections a second)."""
        self._clock = clock
        self._config = config or ProxyConfig()
        self._admit = admit
        self._listeners: dict[Address, Listener] = {}
        self._retired: set[Listener] = set()  # closed listeners whose connections still drain
        self._group: asyncio.TaskGroup | None = None
        self._lock = asyncio.Lock()  # one update at a time: each diffs against the previous one's result
        self._sweep: Handle | None = None  # the next idle sweep
        self._expiry: Handle | None = None  # the next connect-deadline check

    async def __aenter__(self) -> Proxy:
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        self._schedule_sweep()
        self._schedule_expiry()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        for handle in (self._sweep, self._expiry):
            if handle is not None:
                handle.cancel()
        servers = []
        for listener in [*self._listeners.values(), *self._retired]:
            if listener.server is not None:
                servers.append(listener.server)
            listener.close()
            for client in list(listener.clients):
                if client.connect is not None:
                    client.connect.cancel()
                client.abort()
        listeners = [*self._listeners.values(), *self._retired]
        self._listeners.clear()
        self._retired.clear()
        for server in servers:
            await server.wait_closed()
        # Cancelled connect attempts end a loop turn or two later (each closes its socket as it ends): wait for
        # them, so none outlives the block. Bounded, so that a bug here cannot hang shutdown.
        for _ in range(SETTLE_TURNS):
            if not any(listener.connecting for listener in listeners):
                break
            await asyncio.sleep(0)
        assert self._group is not None
        await self._group.__aexit__(*exc_info)

    async def update(self, table: Mapping[tuple[str, int], Route]) -> frozenset[Address]:
        """Make the listeners match `table` (listen address -> route). Returns the addresses of the table that
        are not listening (their open failed; each is retried in the background)."""
        wanted = {Address(*address): route for address, route in table.items()}
        async with self._lock:
            change = diff({a: listener.route for a, listener in self._listeners.items()}, wanted)
            for address in change.closed:
                self._retire(self._listeners.pop(address))
            for address in change.rerouted:
                self._listeners[address].reroute(wanted[address])
            for address in change.opened:
                listener = self._listener(address, wanted[address])
                self._listeners[address] = listener
                await self._open(listener)
            if not change.empty:
                log.info("proxy table applied", extra={"fields": {
                    "opened": len(change.opened), "closed": len(change.closed), "rerouted": len(change.rerouted),
                    "listeners": len(self._listeners)}})
            return frozenset(a for a, listener in self._listeners.items() if listener.server is None)

    def snapshot(self) -> tuple[RouteStats, ...]:
        """Counters of every route in the table, by listen address."""
        now = self._clock.now()
        return tuple(self._listeners[a].stats(now) for a in sorted(self._listeners))

    def _listener(self, address: Address, route: Route) -> Listener:
        assert self._group is not None, "use the Proxy inside `async with`"
        return Listener(address, route, config=self._config, now=self._clock.now, admit=self._admit)

    def _retire(self, listener: Listener) -> None:
        listener.close()
        if listener.clients or listener.connecting:
            self._retired.add(listener)
        log.info("listener closed", extra={"fields": {
            "listen": _fmt(listener.address), "service": listener.route.service, "draining": len(listener.clients)}})

    async def _open(self, listener: Listener) -> None:
        try:
            await listener.open()
        except OSError as exc:
            failures = listener.counters.listen_failures
            delay = min(self._config.listen_retry_s * 2 ** (failures - 1), self._config.listen_retry_max_s)
            level = logging.WARNING if failures == 1 else logging.DEBUG  # said once; the snapshot keeps count
            log.log(level, "cannot listen; will retry", extra={"fields": {
                "listen": _fmt(listener.address), "service": listener.route.service, "error": exc,
                "retry_in_s": delay, "failures": failures}})
            listener.retry = self._clock.call_at(self._clock.now() + delay, lambda: self._reopen_soon(listener))
            return
        log.log(logging.INFO if listener.counters.listen_failures else logging.DEBUG, "listening", extra={
            "fields": {"listen": _fmt(listener.address), "service": listener.route.service}})

    def _reopen_soon(self, listener: Listener) -> None:
        listener.retry = None
        if self._listeners.get(listener.address) is listener and self._group is not None:
            self._group.create_task(self._reopen(listener))

    async def _reopen(self, listener: Listener) -> None:
        async with self._lock:
            if self._listeners.get(listener.address) is listener and listener.server is None:
                await self._open(listener)

    def _schedule_sweep(self) -> None:
        period = self._config.idle_timeout_s / IDLE_SWEEPS
        self._sweep = self._clock.call_at(self._clock.now() + period, self._run_sweep)

    def _run_sweep(self) -> None:
        for listener in [*self._listeners.values(), *self._retired]:
            listener.sweep()
        self._retired = {listener for listener in self._retired if listener.clients or listener.connecting}
        self._schedule_sweep()


    def _schedule_expiry(self) -> None:
        # A quarter of the timeout: an attempt is cut between 1x and 1.25x connect_timeout_s after it began.
        period = self._config.connect_timeout_s / 4
        self._expiry = self._clock.call_at(self._clock.now() + period, self._run_expiry)

    def _run_expiry(self) -> None:
        now = self._clock.now()
        for listener in [*self._listeners.values(), *self._retired]:
            listener.expire(now)
        self._schedule_expiry()


def _fmt(address: Address) -> str:
    return f"[{address.ip}]:{address.port}" if ":" in address.ip else f"{address.ip}:{address.port}"
