"""The agent's lifecycle: with the identity node.startup obtained, run gossip and the API, remember peers for the
next start, and leave gracefully on shutdown. With a container runtime it also runs the reconciler (its share of
the placement, once it has rejoined, held back where a rollout's batch has not opened), the route keeper, the
probes of its replicas and the data plane (proxy, DNS, service addresses), judges its replicas for rollouts,
writes a rollback its view calls for, and publishes its status.

Built by node.main (the composition root), which hands it a clock and randomness; it owns no globals.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from gossip.clock import Clock, Handle
from gossip.cluster import Cluster, Settings
from gossip.driver import Event
from gossip.entry import Record
from gossip.errors import GossipError
from gossip.identity import Identity, next_boot
from gossip.members import MemberState, Status
from gossip.persist import SqliteBackend
from gossip.replication import StoreEvent
from gossip.snapshot import Snapshot, load_snapshot, save_snapshot
from gossip.store import Conflict, Store
from gossip.wire import Address
from node.api import ApiServer
from node.config import AgentConfig
from node.dataplane import Dataplane, Inputs
from node.desired import SERVICE_PREFIX, ServiceView, Unreadable, commit, read_service, revision, service_key
from node.nodes import NODE_PREFIX, NodeSettings
from node.nodes import decode as decode_settings
from node.observed import (
    STATUS_PREFIX,
    NodeStatus,
    ReplicaReport,
    decode_status,
    encode_status,
    needs_publish,
    status_key,
)
from node.policykeeper import Counters as PolicyCounters
from node.policykeeper import PolicyKeeper
from node.probes import Change, Prober, Target, Transition
from node.probes.prober import ProbeFn
from node.reconcile import Reconciler, Report
from node.reconcile import Settings as ReconcileSettings
from node.rejoin import Rejoin
from node.rollout import RollbackWrite
from node.rollout_writes import plan_rollback_write
from node.rolloutkeeper import RolloutKeeper
from node.routekeeper import Converge, RouteKeeper
from node.routekeeper import Inputs as RouteInputs
from node.runtime.base import Runtime
from node.schedule import PLACEABLE, Share, share_from
from node.startup import AgentError, advertise_address, obtain_identity
from node.views import live
from node.workloads import workloads

log = logging.getLogger("shoal.agent")

SETTLE_TIMEOUT_S = 10.0
"""How long a starting agent waits to rejoin before it places replicas on its own view anyway (a whole cluster
restarting at once must still come up)."""


class Agent:
    def __init__(self, *, config: AgentConfig, identity: Identity, clock: Clock, rng: random.Random,
                 runtime: Runtime | None = None, converge: Converge | None = None,
                 dataplane: Dataplane | None = None, probe: ProbeFn | None = None,
                 counters: PolicyCounters | None = None,
                 settle_network: Callable[[str], Awaitable[object]] | None = None) -> None:
        self.config = config
        self.identity = identity
        self._clock = clock
        self._snapshot = load_snapshot(config.data_dir)
        self._dirty = asyncio.Event()
        settings = Settings(bind=config.bind, advertise=advertise_address(config), labels=config.labels,
                            boot=next_boot(config.data_dir), incarnation=self._snapshot.incarnation + 1)
        save_snapshot(config.data_dir, Snapshot(settings.incarnation, self._snapshot.peers))
        self._backend = SqliteBackend.in_dir(config.data_dir)
        self.cluster = Cluster(identity=identity, config=config.gossip, settings=settings, clock=clock,
                               rng=rng, on_event=self._on_event, store=self._backend)
        self._api = ApiServer(self, *config.api)
        self._received: dict[str, tuple[int, float]] = {}
        """key -> (generation, epoch s when this node first held it); only what arrived since start."""
        self._statuses: dict[str, tuple[int, NodeStatus | None]] = {}  # node id -> (generation, decoded)
        self._services: dict[str, tuple[int, ServiceView | None]] = {}  # key -> (generation, decoded)
        self._joined = asyncio.Event()
        """Set once this agent has exchanged state with a member (or knows none to ask): until then its view of
        members and statuses is its own alone, and placement on it would put every replica here."""
        remembered = [p for p in self._snapshot.peers if p not in config.join]
        rng.shuffle(remembered)
        self._rejoin = Rejoin([*config.join, *remembered], clock.now())  # the seeds first, then remembered peers
        dns = (config.dns_address,) if dataplane is not None else ()
        self.reconciler = Reconciler(runtime, self._gated_share, self._publish_replicas, clock.wall,
                                     ReconcileSettings(subnet=config.subnet, dns=dns),
                                     ready=self._settled, settle=settle_network) if runtime is not None else None
        self.routes = RouteKeeper(self._route_inputs, converge) if converge is not None and runtime else None
        self.dataplane = dataplane if runtime is not None else None
        self.prober = Prober(clock=clock, probe=probe, on_change=self._on_probe) \
            if probe is not None and self.reconciler is not None else None
        self._last_reports: tuple[Sequence[Report], str] = ((), "")
        self.policies = PolicyKeeper(identity.node_id, config.service_range if dataplane is not None else None,
                                     counters, self.dataplane.admit_by if self.dataplane is not None else None)
        self.rollouts = RolloutKeeper()
        self._rejudge: Handle | None = None  # the timer for the next verdict that only time changes

    @property
    def name(self) -> str:
        return self.identity.node_name

    @property
    def node_id(self) -> str:
        return self.identity.node_id

    def members(self) -> list[MemberState]:
        return self.cluster.members()

    def join_token(self) -> str | None:
        token = self.identity.token
        return str(token) if token else None

    def counters(self) -> dict[str, Any]:
        counters: dict[str, Any] = self.cluster.counters()
        counters["awareness"] = self.cluster.core.awareness
        counters["incarnation"] = self.cluster.core.incarnation
        return counters

    @property
    def store(self) -> Store:
        return self.cluster.store

    def write(self, key: str, payload: bytes, *, note: str, expect: int | None, tombstone: bool = False) -> Record:
        return self.cluster.write(key, payload, note=note, expect=expect, tombstone=tombstone)

    def statuses(self) -> dict[str, NodeStatus]:
        """Every node's last published status, decoded once per generation (a malformed one is skipped)."""
        out = {}
        for record in self.cluster.store.scan(STATUS_PREFIX):
            node = record.key.removeprefix(STATUS_PREFIX)
            cached = self._statuses.get(node)
            if cached is None or cached[0] != record.entry.generation:
                decoded = None if record.entry.tombstone else decode_status(record.entry.payload)
                if decoded is None and not record.entry.tombstone:
                    log.warning("unreadable node status", extra={"fields": {"node": node}})
                cached = (record.entry.generation, decoded)
                self._statuses[node] = cached
            if cached[1] is not None:
                out[node] = cached[1]
        return out

    def services(self) -> list[ServiceView]:
        """The live services, each decoded once per generation: placement, probes, the data plane and the
        policies all read them on every event. An unreadable one is left out (logged once, on arrival)."""
        out, fresh = [], {}
        for record in self.cluster.store.scan(SERVICE_PREFIX):
            cached = self._services.get(record.key)
            if cached is None or cached[0] != record.entry.generation:
                try:
                    cached = (record.entry.generation, read_service(record))
                except Unreadable:
                    cached = (record.entry.generation, None)
            fresh[record.key] = cached
            if cached[1] is not None:
                out.append(cached[1])
        self._services = fresh
        return out

    def node_settings(self) -> dict[str, NodeSettings]:
        return {r.key.removeprefix(NODE_PREFIX): decode_settings(r) for r in self.cluster.store.scan(NODE_PREFIX)}

    def _route_inputs(self) -> RouteInputs:
        own = self.reconciler.subnet if self.reconciler is not None else None
        return self.policies.route_inputs(own, self._joined.is_set(), self.members(), self.statuses(),
                                          lambda: [v.spec for v in self.services()])

    async def policy_counters(self) -> list[dict[str, object]]:
        return await self.policies.counters()

    def workloads(self) -> list[ServiceView]:
        """The live services and the variants they derive (canaries, green sides), each run as its own."""
        return workloads(self.services())

    def share(self) -> Share:
        """This node's part of the placement, from its current view (pure functions over the store)."""
        return share_from(self.identity.node_id, self.members(), self.statuses(), self.node_settings(),
                          self.workloads())

    def _gated_share(self) -> Share:
        """The reconciler's share: the placement, less what the rollout gate holds back on this view. Writes the
        rollbacks the gate calls for (each only if the store still holds the generation it rolls back)."""
        views, members, statuses = self.workloads(), self.members(), self.statuses()
        placed = share_from(self.identity.node_id, members, statuses, self.node_settings(), views)
        steps = self.rollouts.gate(self.node_id, [revision(v) for v in views], placed.assignment.by_slot,
                                   list(live(statuses, members).values()))
        for write in steps.rollbacks:
            self._write_rollback(write)
        return replace(placed, held=steps.held)

    def _write_rollback(self, rollback: RollbackWrite) -> None:
        record = self.cluster.store.get(service_key(rollback.service))
        try:
            commit([plan_rollback_write(rollback, record)], self.write)
        except Conflict:  # another node's identical write, or a newer spec, got there first: nothing to do
            return
        log.warning("rolling back", extra={"fields": {"service": rollback.service, "note": rollback.note}})

    def received_at(self, key: str) -> float | None:
        record, seen = self.cluster.store.get(key), self._received.get(key)
        return seen[1] if record is not None and seen is not None and seen[0] == record.entry.generation else None

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set, then leave the cluster gracefully."""
        async with self.cluster:
            await self._api.start()
            try:
                if self.reconciler is None:  # a container node publishes once its engine and network are up
                    self._publish_status(NodeStatus(runtime=self.config.runtime))
                log.info("agent started", extra={"fields": {
                    "node": self.name, "id": self.identity.node_id, "gossip": _fmt(self.config.bind),
                    "advertise": _fmt(self.cluster.core.local.addr), "api": _fmt(self.config.api)}})
                async with asyncio.TaskGroup() as tasks:
                    rejoin = tasks.create_task(self._keep_joined(stop))
                    persist = tasks.create_task(self._persist_peers(stop))
                    if self.reconciler is not None:
                        tasks.create_task(self.reconciler.run(stop))
                    if self.routes is not None:
                        tasks.create_task(self.routes.run(stop))
                    if self.dataplane is not None:
                        tasks.create_task(self.dataplane.run(stop, self._dataplane_inputs))
                    if self.prober is not None:
                        tasks.create_task(self.prober.run(stop))
                    await stop.wait()
                    rejoin.cancel()
                    persist.cancel()
                self._arm_rejudge(None)  # nothing is judged once the reconciler has stopped
                log.info("leaving the cluster", extra={"fields": {"node": self.name}})
                await self.cluster.leave()
                self._save_snapshot()
            finally:
                await self._api.close()
        self._backend.close()  # after the cluster has stopped: nothing writes any more

    async def _keep_joined(self, stop: asyncio.Event) -> None:
        """Join the seeds (flags, then remembered peers), and keep trying those no known member holds yet, so a
        cluster that came back up split finds itself whole (node.rejoin)."""
        while not stop.is_set():
            await self._rejoin_pass()
            next_at = self._rejoin.next_at()
            if next_at is None:  # all reached, held by a known member (even this node) or given up; or there were
                self._joined.set()  # none (a new cluster's first node): nothing left to hear from
                return
            try:
                await asyncio.wait_for(stop.wait(), max(0.0, next_at - self._clock.now()))
            except TimeoutError:
                continue

    async def _rejoin_pass(self) -> None:
        """Push-pull with each address due (up to three answers, as a join); set `_joined` once any member has
        answered. An address a member turned out to hold during the pass is skipped: gossip has it."""
        alive = bool(self._alive_peers())
        if alive:
            self._joined.set()
        due = self._rejoin.due(self._clock.now(), self._known_addresses(), alone=not alive)
        answered = 0
        for addr in due:
            if answered >= 3:
                break
            if addr in self._known_addresses():
                continue
            if await self.cluster.join([addr]):
                self._rejoin.reached(addr)
                self._joined.set()
                answered += 1
            else:
                self._rejoin.failed(addr, self._clock.now())
        if due and not answered and not self._joined.is_set():
            log.warning("no member answered; retrying", extra={"fields": {"seeds": len(due)}})

    async def _persist_peers(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._dirty.wait()
            self._dirty.clear()
            self._save_snapshot()
            await asyncio.sleep(2.0)  # coalesce bursts of membership changes into one write

    def _save_snapshot(self) -> None:
        # the peers not reached yet too: an agent restarted while its cluster is split still knows the other side
        peers = tuple(dict.fromkeys([*(m.addr for m in self._alive_peers()), *self._rejoin.pending]))
        if not peers:
            peers = self._snapshot.peers  # keep the last known peers rather than forgetting them all
        self._snapshot = Snapshot(self.cluster.core.incarnation, peers)
        try:
            save_snapshot(self.config.data_dir, self._snapshot)
        except OSError as exc:
            log.warning("cannot save snapshot", extra={"fields": {"error": exc}})

    def _known_addresses(self) -> set[Address]:
        """Where gossip knows a member (this node included), in any status: no need to go looking there."""
        return {m.addr for m in self.cluster.members()}

    def _alive_peers(self) -> list[MemberState]:
        me = self.identity.node_id
        return [m for m in self.cluster.members() if m.node != me and m.status == Status.ALIVE]

    def _on_event(self, event: Event) -> None:
        if self.reconciler is not None:
            self.reconciler.poke()  # membership, desired state and statuses all feed placement
        if self.routes is not None:
            self.routes.poke()  # routes follow members and statuses; the policies in the table, services too
        if self.dataplane is not None:
            self.dataplane.poke()  # routes follow services, readiness in statuses, and membership
        if isinstance(event, StoreEvent):
            if event.winner_changed:
                self._on_store_change(event.key, event.record)
            return
        m = event.member
        level = logging.WARNING if event.kind in ("suspect", "dead") else logging.INFO
        log.log(level, f"member {event.kind}", extra={"fields": {
            "member": m.name, "id": m.node, "address": _fmt(m.addr), "incarnation": m.incarnation}})
        self._dirty.set()

    async def _settled(self) -> None:
        """Until the agent has rejoined (bounded), placement would see only this node: wait."""
        try:
            await asyncio.wait_for(self._joined.wait(), SETTLE_TIMEOUT_S)
        except TimeoutError:
            log.warning("no member answered yet; placing replicas on this node's own view",
                        extra={"fields": {"after_s": SETTLE_TIMEOUT_S}})

    def _publish_replicas(self, reports: Sequence[Report], digest: str) -> None:
        """Publish what runs here; a running replica is ready once its readiness probe passes (or it has none)."""
        self._last_reports = (reports, digest)
        if self.prober is not None:
            self.prober.update(self._targets(reports))
        subnet = self.reconciler.subnet if self.reconciler is not None else None
        revisions = {v.name: revision(v) for v in self.workloads()}
        rows, due = self.rollouts.judge([_report(r, self._ready(r)) for r in reports], revisions, self._clock.now())
        self._arm_rejudge(due)
        self._publish_status(NodeStatus(self.config.runtime, rows, subnet or "", digest, self.rollouts.marks))

    def _arm_rejudge(self, due: float | None) -> None:
        """Judge again when time alone would settle or fail a replica, and let the gate see it."""
        if self._rejudge is not None:
            self._rejudge.cancel()
            self._rejudge = None
        if due is not None:
            self._rejudge = self._clock.call_at(due, self._on_rejudge)

    def _on_rejudge(self) -> None:
        self._rejudge = None
        self._publish_replicas(*self._last_reports)
        if self.reconciler is not None:
            self.reconciler.poke()

    def _ready(self, report: Report) -> bool:
        c = report.row.container
        if not report.ready or c is None:
            return False
        return self.prober is None or self.prober.ready(c.id)

    def _targets(self, reports: Sequence[Report]) -> list[Target]:
        """The running replicas to probe, each with its service's current spec."""
        specs = {v.name: v.spec for v in self.workloads()}
        return [Target(c.id, c.address, specs[r.row.key.service]) for r in reports
                if (c := r.row.container) is not None and r.ready and r.row.key.service in specs]

    def _on_probe(self, change: Change) -> None:
        log.info("probe " + change.transition.value, extra={"fields": {
            "service": change.service, "container": change.container_id[:12], "probe": change.kind.value,
            "detail": change.detail}})
        if change.transition is Transition.RESTART_WANTED and self.reconciler is not None:
            self.reconciler.restart(change.container_id, f"{change.kind.value} probe failed: {change.detail}")
        self._publish_replicas(*self._last_reports)  # readiness is part of the status

    def _dataplane_inputs(self) -> Inputs:
        services = self.services()
        live = [m.node for m in self.members() if m.status in PLACEABLE]
        own = [self.cluster.core.local.addr[0], "127.0.0.1"]
        return Inputs([v.spec for v in services], self.statuses(), live, own)

    def _publish_status(self, status: NodeStatus) -> None:
        own = self.cluster.store.live(status_key(self.identity.node_id))
        if needs_publish(own.payload if own else None, status):
            self.cluster.publish_status(encode_status(status), note="status")

    def _on_store_change(self, key: str, record: Record | None) -> None:
        if record is None:
            log.info("desired state changed", extra={"fields": {"key": key, "generation": "dropped"}})
            self._received.pop(key, None)
            return
        generation = record.entry.generation
        if key.startswith(STATUS_PREFIX):  # observed state changes are routine
            log.debug("node status changed", extra={"fields": {"key": key, "generation": generation}})
        else:
            log.info("desired state changed", extra={"fields": {"key": key, "generation": generation}})
        if self._received.get(key, (0, 0.0))[0] != generation:
            self._received[key] = (generation, self._clock.wall())
        if key.startswith(SERVICE_PREFIX):
            try:
                read_service(record)
            except Unreadable as exc:  # the API lists the others; say once, here, why this one is missing
                log.warning("unreadable service spec", extra={"fields": {"error": exc}})


def _report(report: Report, ready: bool) -> ReplicaReport:
    row, c, ident = report.row, report.row.container, report.row.identity
    return ReplicaReport(
        service=row.key.service, replica=row.key.replica, state=row.state, container=c.id if c else "",
        image=report.image, ready=ready, restarts=ident.counters.restarts if ident else 0, since=report.since,
        version=ident.version if ident else "", generation=ident.generation if ident else 0,
        address=(c.address or "") if c else "", error=row.error)


def _fmt(addr: Address) -> str:
    return f"{addr[0]}:{addr[1]}"


__all__ = ["Agent", "AgentError", "GossipError", "obtain_identity"]
