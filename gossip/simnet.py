"""Deterministic simulation: a fake clock, a seeded in-memory datagram network, and a cluster of real cores.

`SimClock` is a discrete-event scheduler: time jumps to the next event, so minutes of protocol run in
seconds and a seed reproduces a run exactly. `SimNetwork` delivers datagrams with latency, loss and
partitions. `SimHost` gives each node a stall switch (a frozen process: its inputs wait until it resumes).
`Simulation` wires N real `Membership` cores (real Ed25519 signatures and certificates) through the same
`Driver` the agent uses over UDP. Used by the simulation tests and benchmarks.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from gossip.antientropy import differing_buckets, plan, stale_horizon
from gossip.clock import Handle
from gossip.config import GossipConfig
from gossip.driver import Driver, Event
from gossip.entry import Record
from gossip.envelope import Authenticator
from gossip.members import Status
from gossip.replication import StoreEvent
from gossip.signing import SigningKey, TrustAnchor, create_ca, issue_node_cert
from gossip.store import MemoryBackend
from gossip.swim import LocalNode, MemberEvent, Membership
from gossip.transport import Receiver
from gossip.wire import Address, NodeId

WALL_EPOCH = 1_800_000_000.0  # the simulated wall clock starts here (certificates are valid around it)


class _Timer:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class SimClock:
    def __init__(self) -> None:
        self._now = 0.0
        self._heap: list[tuple[float, int, _Timer]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return WALL_EPOCH + self._now

    def call_at(self, when: float, callback: Callable[[], None]) -> Handle:
        timer = _Timer(callback)
        heapq.heappush(self._heap, (max(when, self._now), next(self._order), timer))
        return timer

    def call_later(self, delay: float, callback: Callable[[], None]) -> Handle:
        return self.call_at(self._now + delay, callback)

    def run_until(self, until: float, stop: Callable[[], bool] | None = None) -> bool:
        """Run events up to time `until`; stop early (returning True) once `stop()` holds."""
        while self._heap and self._heap[0][0] <= until:
            when, _, timer = heapq.heappop(self._heap)
            self._now = when
            if not timer.cancelled:
                timer.callback()
                if stop is not None and stop():
                    return True
        self._now = max(self._now, until)
        return stop() if stop is not None else False


@dataclass
class SimNetwork:
    clock: SimClock
    rng: random.Random
    latency_s: tuple[float, float] = (0.0002, 0.002)
    loss: float = 0.0
    hosts: dict[Address, SimHost] = field(default_factory=dict)
    _groups: dict[Address, int] = field(default_factory=dict)
    sent: int = 0
    largest: int = 0

    def partition(self, *groups: set[Address]) -> None:
        """Split the network: hosts in different groups cannot reach each other (others: group 0)."""
        self._groups = {addr: index + 1 for index, group in enumerate(groups) for addr in group}

    def heal(self) -> None:
        self._groups = {}

    def reachable(self, a: Address, b: Address) -> bool:
        return self._groups.get(a, 0) == self._groups.get(b, 0)

    def deliver(self, data: bytes, src: Address, dst: Address) -> None:
        self.sent += 1
        self.largest = max(self.largest, len(data))
        host = self.hosts.get(dst)
        if host is None or not self.reachable(src, dst) or self.rng.random() < self.loss:
            return
        self.clock.call_later(self.rng.uniform(*self.latency_s), lambda: host.inbound(data, src))


class SimHost:
    """One simulated machine: its datagram endpoint, push-pull peer and stall switch."""

    def __init__(self, network: SimNetwork, addr: Address) -> None:
        self.network = network
        self.addr = addr
        self.driver: Driver | None = None
        self.stalled_until = 0.0
        self.down = False
        self._receiver: Receiver | None = None
        network.hosts[addr] = self

    @property
    def local_addr(self) -> Address:
        return self.addr

    def start(self, receiver: Receiver) -> None:
        self._receiver = receiver

    def send(self, data: bytes, addr: Address) -> None:
        if not self.down:
            self.network.deliver(data, self.addr, addr)

    def close(self) -> None:
        self.down = True

    def inbound(self, data: bytes, src: Address) -> None:
        if self.down or self._receiver is None:
            return
        self._when_running(lambda: self._receiver(data, src) if self._receiver else None)

    def exchange(self, addr: Address) -> None:
        """Push-pull: both sides merge each other's member view and then sync their stores (the same plan as
        gossip.cluster's paged exchange, without the paging), one network delay each way."""
        peer = self.network.hosts.get(addr)
        net = self.network
        if peer is None or peer.down or not net.reachable(self.addr, addr) or self.driver is None:
            return
        mine = self.driver.core.snapshot()
        me = self.driver.core.local.cert

        def at_peer() -> None:
            if self.driver is None or peer.driver is None or peer.down or not peer.driver.merge_remote(mine, me):
                return  # a refused certificate fails the TLS handshake: nothing comes back
            theirs, their_cert = peer.driver.core.snapshot(), peer.driver.core.local.cert
            ours, other = self.driver.core.replica, peer.driver.core.replica
            our_sum, their_sum = ours.store.summary(), other.store.summary()
            horizon = ours.horizon_of(their_sum, net.clock.wall())
            buckets = differing_buckets(our_sum, their_sum)
            todo = plan(ours.store, ours.store.digests(buckets), other.store.digests(buckets),
                        stale_horizon(our_sum, horizon))
            pushed, pulled = ours.serve(todo.push), other.serve(todo.pull)
            peer.driver.act(lambda core, _now, wall: core.replica.fetched(*pushed, wall))

            def back() -> None:
                if self.driver is None or self.down:
                    return
                self.driver.merge_remote(theirs, their_cert)

                def finish(core: Membership, _now: float, wall: float) -> None:
                    core.replica.drop(todo.drop)
                    core.replica.fetched(*pulled, wall)
                    core.replica.synced(wall, horizon)

                self.driver.act(finish)

            net.clock.call_later(net.rng.uniform(*net.latency_s), lambda: self._when_running(back))

        net.clock.call_later(net.rng.uniform(*net.latency_s), lambda: peer._when_running(at_peer))

    def fetch(self, addr: Address, keys: tuple[str, ...]) -> None:
        """Fetch records from a peer: its answer arrives one round trip later (nothing if unreachable)."""
        peer, net = self.network.hosts.get(addr), self.network
        if peer is None or peer.down or not net.reachable(self.addr, addr) or self.driver is None:
            return

        def at_peer() -> None:
            if peer.driver is None or peer.down:
                return
            records, certs = peer.driver.core.replica.serve(keys)

            def back() -> None:
                if self.driver is not None and not self.down:
                    self.driver.act(lambda core, _now, wall: core.replica.fetched(records, certs, wall))

            net.clock.call_later(net.rng.uniform(*net.latency_s), lambda: self._when_running(back))

        net.clock.call_later(net.rng.uniform(*net.latency_s), lambda: peer._when_running(at_peer))

    def wrap_clock(self, clock: SimClock) -> _HostClock:
        return _HostClock(clock, self)

    def _when_running(self, action: Callable[[], None]) -> None:
        clock = self.network.clock
        if clock.now() < self.stalled_until:
            clock.call_at(self.stalled_until, lambda: self._when_running(action))
        else:
            action()


class _HostClock:
    """The host's view of time: timers that fire during a stall run when the stall ends."""

    def __init__(self, clock: SimClock, host: SimHost) -> None:
        self._clock = clock
        self._host = host

    def now(self) -> float:
        return self._clock.now()

    def wall(self) -> float:
        return self._clock.wall()

    def call_at(self, when: float, callback: Callable[[], None]) -> Handle:
        return self._clock.call_at(when, lambda: self._host._when_running(callback))


@dataclass
class SimNode:
    host: SimHost
    driver: Driver
    events: list[tuple[float, MemberEvent]]
    store_events: list[tuple[float, StoreEvent]]

    @property
    def node(self) -> NodeId:
        return self.driver.core.local.node

    def write(self, key: str, payload: bytes, *, expect: int | None = None, tombstone: bool = False,
              note: str = "") -> Record:
        """A local write on this node, as its API would make it."""
        return self.driver.act(lambda core, _now, wall: core.replica.write(
            key, payload, note=note, expect=expect, tombstone=tombstone, wall=wall))

    def record(self, key: str) -> Record | None:
        return self.driver.core.replica.store.get(key)

    def view(self) -> dict[NodeId, Status]:
        return {m.node: m.status for m in self.driver.core.members()}


class Simulation:
    """N agents of one cluster on a simulated network. `seed` makes every run identical."""

    def __init__(self, seed: int, *, config: GossipConfig | None = None, loss: float = 0.0) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.clock = SimClock()
        self.network = SimNetwork(self.clock, random.Random(self.rng.random()), loss=loss)
        self.config = config or GossipConfig.lan()
        self.ca_key, self.ca_cert = create_ca("5" * 32, "sim", now_s=WALL_EPOCH - 3600)
        self.trust = TrustAnchor(self.ca_cert)
        self.nodes: list[SimNode] = []
        self._boots: dict[int, int] = {}
        self.backends: dict[int, MemoryBackend] = {}

    def add_node(self, index: int | None = None, *, ca: tuple[SigningKey, bytes] | None = None,
                 node_id: NodeId | None = None, key: SigningKey | None = None) -> SimNode:
        """Create (or restart, when `index` is given again) an agent; `ca` forges it with another CA."""
        index = len(self.nodes) if index is None else index
        addr = (f"198.18.{index // 250}.{index % 250 + 1}", 7946)
        key = key or SigningKey.generate()
        node = node_id or f"{index + 1:032x}"
        ca_key, ca_cert = ca or (self.ca_key, self.ca_cert)
        cert = issue_node_cert(ca_key, ca_cert, node, key.public_bytes, now_s=WALL_EPOCH - 60)
        host = SimHost(self.network, addr)
        self._boots[index] = self._boots.get(index, 0) + 1
        local = LocalNode(node, f"n{index + 1}", addr, (), cert)
        auth = Authenticator(self.trust, "5" * 32, window=self.config.replay_window,
                             max_skew_s=self.config.max_clock_skew_s)
        backend = self.backends.setdefault(index, MemoryBackend())  # a restart keeps what was persisted
        core = Membership(config=self.config, local=local, key=key, auth=auth, boot=self._boots[index],
                          incarnation=0, rng=random.Random(self.rng.random()), now=self.clock.now(),
                          backend=backend)
        events: list[tuple[float, MemberEvent]] = []
        store_events: list[tuple[float, StoreEvent]] = []

        def on_event(event: Event) -> None:
            if isinstance(event, MemberEvent):
                events.append((self.clock.now(), event))
            else:
                store_events.append((self.clock.now(), event))

        driver = Driver(core, host, host.wrap_clock(self.clock), host, on_event)
        host.driver = driver
        sim_node = SimNode(host, driver, events, store_events)
        if index < len(self.nodes):
            self.nodes[index] = sim_node
        else:
            self.nodes.append(sim_node)
        driver.start()
        return sim_node

    def join(self, node: SimNode, seed: SimNode) -> None:
        node.host.exchange(seed.host.addr)

    def crash(self, node: SimNode) -> None:
        node.driver.close()

    def run(self, seconds: float, until: Callable[[], bool] | None = None, *, step: float = 0.05) -> bool:
        """Run for `seconds` of simulated time, checking `until` every `step` (it may be costly)."""
        end = self.clock.now() + seconds
        while self.clock.now() < end:
            self.clock.run_until(min(end, self.clock.now() + step))
            if until is not None and until():
                return True
        return until() if until is not None else False

    def live(self) -> list[SimNode]:
        return [n for n in self.nodes if not n.host.down]

    def converged(self, expect: dict[NodeId, Status] | None = None) -> bool:
        """Every live node sees every live node alive (and `expect`'s statuses for the others)."""
        live = {n.node for n in self.live()}
        for n in self.live():
            view = n.view()
            if any(view.get(x) != Status.ALIVE for x in live):
                return False
            if expect and any(view.get(x) != s for x, s in expect.items()):
                return False
        return True
