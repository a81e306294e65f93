"""The node's data plane: the embedded proxy, the DNS responder and the addresses they answer on, kept in step
with this node's view of the cluster (DESIGN §7, §7a).

Role: the I/O shell around node.traffic. `run(stop)` holds the DNS address on `lo`, opens the DNS responder and
the proxy (a node.datapath.DataPath: by default on this loop; the agent runs it in a process of its own), then
converges whenever it is poked (desired state, membership or a status changed): it computes
node.traffic.plumbing from the agent's inputs, holds every VIP on `lo`, gives the DNS responder the names and
the proxy its table. Level-triggered: pokes only wake it, a burst of them costs one pass, and a pass that fails
(an `ip` command refused) is retried on the next poke or after RETRY_S.
Boundary: decides nothing about placement or readiness (it reads the nodes' reports); the only I/O it does
itself is through the injected `hold` (hostnet.hold_addresses), the DNS responder and the proxy. `admit_by`
passes the network policies (node.admission) on to the proxy as they change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from gossip.clock import Clock
from node.admission import Admission
from node.datapath import DataPath, InlineDataPath, OpenDataPath
from node.discovery.dns import DnsServer, Forwarder
from node.discovery.resolvconf import upstreams
from node.discovery.upstream import Upstream
from node.discovery.vip import VipRange
from node.manifest.model import ServiceSpec
from node.observed import NodeStatus
from node.proxy.config import ProxyConfig
from node.traffic import Plumbing, plumbing
from node.wake import wait_any

log = logging.getLogger("shoal.dataplane")

DNS_PORT = 53
RETRY_S = 5.0  # a pass that failed is tried again this soon even without a poke
RECHECK_S = 30.0  # how often the addresses on lo are checked even when the wanted set did not change


@dataclass(frozen=True, slots=True)
class Inputs:
    """What the data plane reads from the agent's view, each pass."""

    services: Sequence[ServiceSpec]
    statuses: Mapping[str, NodeStatus]
    live: Collection[str]  # member ids alive or suspect: their replicas may serve
    own_ips: Sequence[str]  # where published ports answer: the node's advertised address and loopback


Hold = Callable[[Iterable[str], str], Awaitable[list[str]]]
"""hostnet.hold_addresses: make the /32s on `lo` inside the range (2nd argument) exactly these."""


class Dataplane:
    def __init__(self, *, clock: Clock, vip_range: VipRange, dns_address: str, hold: Hold,
                 dns_port: int = DNS_PORT, proxy_config: ProxyConfig | None = None,
                 forwarder: Forwarder | None = None, data_path: Callable[[], OpenDataPath] | None = None) -> None:
        """`forwarder` answers names outside Shoal's (default: the host's resolvers, from /etc/resolv.conf);
        `data_path` opens the proxy (default: node.proxy on this event loop, with `proxy_config`)."""
        self._inputs: Callable[[], Inputs] = lambda: Inputs((), {}, (), ())
        self._clock, self._range, self._hold = clock, vip_range, hold
        self._dns_address, self._dns_port = dns_address, dns_port
        self._data_path = data_path or (lambda: InlineDataPath(clock=clock, config=proxy_config))
        self._admission: Admission | None = None
        self._forwarder = forwarder
        self._wake = asyncio.Event()
        self._last: Plumbing | None = None
        self._problems: tuple[str, ...] = ()
        self._held: frozenset[str] = frozenset()  # the addresses the last successful hold made exact
        self._held_at = -RECHECK_S
        self.proxy: DataPath | None = None
        self.dns_bound: tuple[str, int] | None = None  # where the DNS responder listens, once it does

    def poke(self) -> None:
        self._wake.set()

    @property
    def plumbing(self) -> Plumbing | None:
        """What the last pass applied (for the API and tests)."""
        return self._last

    def admit_by(self, admission: Admission) -> None:
        """The network policies new connections are checked against (until the first call, none: all pass)."""
        self._admission = admission
        if self.proxy is not None:
            self.proxy.admit_by(admission)

    async def run(self, stop: asyncio.Event, inputs: Callable[[], Inputs]) -> None:
        """Serve until `stop`; `inputs` reads the agent's current view each pass."""
        self._inputs = inputs
        await self._hold_until_done(stop)
        forwarder = self._forwarder or Upstream(upstreams(exclude=[self._dns_address]))
        async with DnsServer(self._dns_address, self._dns_port, forwarder=forwarder) as dns, \
                self._data_path() as proxy:
            if self._admission is not None:
                proxy.admit_by(self._admission)
            self.proxy, self.dns_bound = proxy, dns.bound
            log.info("data plane up", extra={"fields": {"dns": f"{self._dns_address}:{self._dns_port}",
                                                        "service_range": str(self._range.network)}})
            while not stop.is_set():
                self._wake.clear()
                ok = await self._converge(dns, proxy)
                await wait_any(self._wake, stop, RECHECK_S if ok else RETRY_S)
            self.proxy, self.dns_bound = None, None

    async def _converge(self, dns: DnsServer, proxy: DataPath) -> bool:
        given = self._inputs()
        wanted = plumbing(given.services, given.statuses, given.live, self._range, given.own_ips)
        if wanted.problems != self._problems:
            for problem in wanted.problems:
                log.warning("service not fully served", extra={"fields": {"problem": problem}})
            self._problems = wanted.problems
        ok = True
        addresses = frozenset(self._addresses(wanted))
        # Statuses change every few seconds somewhere in a cluster; VIPs only with services. Run `ip` when the
        # set changed, and every RECHECK_S anyway (an operator may have removed one by hand).
        if addresses != self._held or self._clock.now() - self._held_at >= RECHECK_S:
            try:
                changes = await self._hold(addresses, str(self._range.network))
                self._held, self._held_at = addresses, self._clock.now()
                if changes:
                    log.info("service addresses changed", extra={"fields": {"changes": changes}})
            except Exception as exc:  # hold's failures name their commands; the rest still converges, retried
                log.warning("cannot hold service addresses", extra={"fields": {"error": exc}})
                ok = False
        for rejected in dns.update(wanted.vips):
            log.warning("DNS name not served", extra={"fields": {"entry": rejected}})
        await proxy.update(wanted.table)
        self._last = wanted
        return ok

    def _addresses(self, wanted: Plumbing) -> list[str]:
        return [self._dns_address, *(str(vip) for vip in wanted.vips.values())]

    async def _hold_until_done(self, stop: asyncio.Event) -> None:
        """The DNS responder binds its address: hold it (and the VIPs known now) first, until that works."""
        while not stop.is_set():
            given = self._inputs()
            wanted = plumbing(given.services, given.statuses, given.live, self._range, given.own_ips)
            try:
                addresses = frozenset(self._addresses(wanted))
                await self._hold(addresses, str(self._range.network))
                self._held, self._held_at = addresses, self._clock.now()
                return
            except Exception as exc:  # hold's failures name their commands
                log.warning("cannot hold the DNS address", extra={"fields": {"error": exc, "retry_in_s": RETRY_S}})
                await wait_any(self._wake, stop, RETRY_S)
