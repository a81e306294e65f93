"""A rollout world for the simulation: real gossip cores (gossip.simnet), each with a model agent that runs the
pure rollout (node.rollout) on its own lagging view, over a fake engine with seeded, random timings.

Each agent, every 0.1-0.4 s: reads the service record and the statuses of the members it sees alive from its own
store, places the slots by rendezvous hashing over those members, runs `decide`, writes a rollback if told to,
steers its containers as plan would with the gate's `held` slots (stop-first), judges its replicas with `watch`
and publishes its status (verdicts and marks) through gossip. Containers start, become ready, crash or never get
ready after random delays, by the fate of their version. `Truth` records what really happens, for the invariants:
a replacement is *in flight* from the moment an owner stops a running older replica for the new version until the
new replica's owner judges it settled; a batch may begin only after every earlier batch has settled.
The service record's payload is the agent's own (node.desired.encode_payload / read_service: the spec, and the
previous spec with the generation it precedes).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from gossip.entry import Record
from gossip.members import Status
from gossip.simnet import SimNode, Simulation
from node.desired import encode_payload, read_service, revision
from node.manifest import ServiceSpec
from node.observed import NodeStatus, ReplicaReport, RolloutMark, decode_status, encode_status, status_key
from node.replica import SlotKey, version
from node.rollout import Phase, Previous, Revision, Verdict, Watch, assess, decide, watch

KEY = "service/web"
SEEN = (Status.ALIVE, Status.SUSPECT)
TICK_S = (0.1, 0.4)  # between an agent's passes (the reconciler polls every second and wakes on events)
START_S = (0.1, 0.5)  # image present: create and start
READY_S = (0.1, 0.6)  # from running to ready, for a version that works
CRASH_S = (0.05, 0.2)  # from running to exited, for a version that crashes
STOP_S = (0.1, 0.4)  # drain and stop
RESTART_DELAY_S = 0.5
GOOD, CRASH, NEVER_READY = "good", "crash", "never-ready"


def payload(spec: ServiceSpec, previous: Previous | None) -> bytes:
    return encode_payload(spec, previous)[0]


def read_revision(record: Record) -> Revision:
    view = read_service(record)
    assert view is not None, "the simulation never deletes the service"
    return revision(view)


@dataclass
class Box:
    """One container of the fake engine."""

    slot: int
    version: str
    state: str  # starting | running | exited | removing
    since: float
    restarts: int = 0
    ready: bool = False


@dataclass
class Truth:
    """What really happened, cluster-wide, and every broken invariant (collected, asserted by the test)."""

    parallelism: dict[str, int]  # version -> the parallelism of the generation that rolls to it
    slots: int
    in_flight: dict[str, set[int]] = field(default_factory=dict)
    most_in_flight: dict[str, int] = field(default_factory=dict)
    settled: dict[str, set[int]] = field(default_factory=dict)
    replaced: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def begin(self, target: str, slot: int, now: float) -> None:
        flying = self.in_flight.setdefault(target, set())
        flying.add(slot)
        self.replaced[target] = self.replaced.get(target, 0) + 1
        limit = self.parallelism[target] or self.slots
        self.most_in_flight[target] = max(self.most_in_flight.get(target, 0), len(flying))
        if len(flying) > limit:
            self.violations.append(f"t={now:.2f}: {len(flying)} replacements to {target} in flight: {sorted(flying)}")
        early = [s for s in range(slot // limit * limit) if s not in self.settled.get(target, set())]
        if early:
            self.violations.append(f"t={now:.2f}: slot {slot} began before earlier batches settled: {early}")

    def settle(self, target: str, slot: int) -> None:
        self.settled.setdefault(target, set()).add(slot)
        self.in_flight.get(target, set()).discard(slot)

    def abandon(self, slots: set[int]) -> None:
        """The owner died: its replacements in flight end with it (the slot's new owner starts it afresh)."""
        for flying in self.in_flight.values():
            flying -= slots


class Agent:
    def __init__(self, world: World, node: SimNode, rng: random.Random) -> None:
        self.world, self.node, self.rng = world, node, rng
        self.boxes: dict[int, list[Box]] = {}
        self.busy: set[int] = set()
        self.watches: dict[tuple[int, str], Watch] = {}
        self.marks: dict[str, RolloutMark] = {}
        self.published = b""
        self._statuses: dict[str, tuple[int, NodeStatus | None]] = {}
        self._placed: tuple[frozenset[str], list[int]] = (frozenset(), [])

    @property
    def now(self) -> float:
        """Wall time, as container start times and reports carry it."""
        return self.world.sim.clock.wall()

    def adopt(self, spec: ServiceSpec, ran_s: float = 100.0) -> None:
        """Start out running `spec` on this node's slots, long ready and settled (as after a completed rollout)."""
        v, since = version(spec), self.now - ran_s
        for slot in self.mine(self.live()):
            self.boxes[slot] = [Box(slot, v, "running", since, ready=True)]
            self.watches[(slot, v)] = Watch(v, since, 0, since, Verdict.SETTLED)

    def later(self, delay: tuple[float, float], action: Callable[[], None]) -> None:
        def guarded() -> None:
            if not self.node.host.down:
                action()
        self.world.sim.clock.call_later(self.rng.uniform(*delay), guarded)

    def tick(self) -> None:
        if self.node.host.down:
            return
        self.step()
        self.later(TICK_S, self.tick)

    # ---- the view ------------------------------------------------------------------------------------------

    def live(self) -> frozenset[str]:
        return frozenset(node for node, status in self.node.view().items() if status in SEEN)

    def statuses(self, live: frozenset[str]) -> list[NodeStatus]:
        found = []
        for node in sorted(live):
            record = self.node.record(status_key(node))
            if record is None:
                continue
            cached = self._statuses.get(node)
            if cached is None or cached[0] != record.entry.generation:
                cached = (record.entry.generation, decode_status(record.entry.payload))
                self._statuses[node] = cached
            if cached[1] is not None:
                found.append(cached[1])
        return found

    def mine(self, live: frozenset[str]) -> list[int]:
        if self._placed[0] != live:
            me, ranked = self.node.node, sorted(live)
            owned = [s for s in range(self.world.truth.slots) if max(ranked, key=lambda n: _hrw(s, n)) == me]
            self._placed = (live, owned)
        return self._placed[1]

    # ---- one pass --------------------------------------------------------------------------------------------

    def step(self) -> None:
        record = self.node.record(KEY)
        if record is None:
            return
        revision = self.world.revision(record)
        live = self.live()
        view = self.statuses(live)
        mine = self.mine(live)
        step = decide(revision, range(self.world.truth.slots), view, mine)
        if step.rollback is not None and record.entry.generation == step.rollback.expect:
            self.node.write(KEY, payload(step.rollback.spec, step.rollback.previous), expect=step.rollback.expect,
                            note=step.rollback.note)
            self.world.rollback_writes += 1
        if step.mark is not None:
            self.marks[step.mark.service] = step.mark
        self.steer(revision, step.held, mine)
        self.publish(revision)

    def steer(self, revision: Revision, held: frozenset[SlotKey], mine: list[int]) -> None:
        target = revision.version
        for slot in sorted(set(self.boxes) | set(mine)):
            boxes = self.boxes.setdefault(slot, [])
            if slot in self.busy:
                continue
            boxes[:] = [b for b in boxes if b.state != "exited" or b.version == target]  # old exited: removed
            if slot not in mine:
                for b in boxes:
                    self.retire(b)
                continue
            current = [b for b in boxes if b.version == target and b.state != "removing"]
            old = [b for b in boxes if b.version != target and b.state == "running"]
            if any(b.state == "running" for b in current):
                for b in old:
                    self.retire(b)
            elif old and SlotKey("web", slot) in held:
                continue
            elif old:  # stop-first: the new replica starts on the pass after the old one is gone
                self.world.truth.begin(target, slot, self.now)
                for b in old:
                    self.retire(b)
            elif not any(b.state == "starting" for b in current):
                self.start(slot, target, current)

    def start(self, slot: int, target: str, current: list[Box]) -> None:
        exited = [b for b in current if b.state == "exited"]
        restarts = 0
        if exited:
            if self.now < exited[-1].since + RESTART_DELAY_S:
                return
            restarts = exited[-1].restarts + 1
            for b in exited:
                self.boxes[slot].remove(b)
        box = Box(slot, target, "starting", self.now, restarts)
        self.boxes[slot].append(box)
        self.busy.add(slot)
        self.later(START_S, lambda: self.running(box))

    def running(self, box: Box) -> None:
        if box.state != "starting":  # retired while starting
            return
        self.busy.discard(box.slot)
        box.state, box.since = "running", self.now
        fate = self.world.fates[box.version]
        if fate == GOOD:
            self.later(READY_S, lambda: self.ready(box))
        elif fate == CRASH:
            self.later(CRASH_S, lambda: self.exited(box))

    def ready(self, box: Box) -> None:
        if box.state == "running":
            box.ready = True

    def exited(self, box: Box) -> None:
        if box.state == "running":
            box.state, box.since, box.ready = "exited", self.now, False

    def retire(self, box: Box) -> None:
        if box.state == "removing":
            return
        box.state, box.ready = "removing", False
        self.busy.add(box.slot)

        def gone() -> None:
            if box in self.boxes[box.slot]:
                self.boxes[box.slot].remove(box)
            self.busy.discard(box.slot)
        self.later(STOP_S, gone)

    def publish(self, revision: Revision) -> None:
        rows, watched = [], {}
        for slot, boxes in sorted(self.boxes.items()):
            for b in boxes:
                report = ReplicaReport("web", slot, b.state, ready=b.ready, restarts=b.restarts, since=b.since,
                                       version=b.version, generation=revision.generation)
                w = watch(self.watches.get((slot, b.version)), report, revision.pacing, self.now)
                if w is not None:
                    watched[(slot, b.version)] = w
                    if w.verdict is Verdict.SETTLED:
                        self.world.truth.settle(b.version, slot)
                rows.append(replace(report, verdict=w.verdict.value if w else ""))
        self.watches = watched
        body = encode_status(NodeStatus("podman", tuple(rows), marks=tuple(sorted(self.marks.values()))))
        if body != self.published:
            self.published = body
            self.node.driver.act(lambda core, _now, wall: core.replica.publish_status(body, "status", wall))


class World:
    def __init__(self, sim: Simulation, slots: int, fates: dict[str, str], parallelism: dict[str, int]) -> None:
        self.sim, self.fates = sim, fates
        self.truth = Truth(parallelism, slots)
        self.rollback_writes = 0
        self._revisions: dict[tuple[int, bytes], Revision] = {}
        self.agents = {n.node: Agent(self, n, random.Random(sim.rng.random())) for n in sim.nodes}
        for agent in self.agents.values():
            agent.later(TICK_S, agent.tick)

    def deploy(self, spec: ServiceSpec) -> None:
        """Generation 1 of the service, already running everywhere."""
        self.sim.nodes[0].write(KEY, payload(spec, None), expect=0, note="created")
        for agent in self.agents.values():
            agent.adopt(spec)

    def revision(self, record: Record) -> Revision:
        key = (record.entry.generation, record.entry.version.digest)
        if key not in self._revisions:
            self._revisions[key] = read_revision(record)
        return self._revisions[key]

    def live_agents(self) -> list[Agent]:
        return [a for a in self.agents.values() if not a.node.host.down]

    def crash(self, agent: Agent) -> None:
        self.sim.crash(agent.node)
        self.truth.abandon(set(agent.boxes))

    def phases(self) -> set[tuple[int, Phase]]:
        """(generation, phase) as each live agent's own view assesses it."""
        seen = set()
        for a in self.live_agents():
            record = a.node.record(KEY)
            if record is not None:
                revision = self.revision(record)
                live = a.live()
                seen.add((revision.generation, assess(revision, range(self.truth.slots), a.statuses(live)).phase))
        return seen

    def running(self, target: ServiceSpec) -> set[int]:
        """Slots whose replica of `target` truly runs ready on a live node."""
        v = version(target)
        return {b.slot for a in self.live_agents() for boxes in a.boxes.values() for b in boxes
                if b.version == v and b.state == "running" and b.ready}

    def boxes_of(self, target: ServiceSpec) -> int:
        v = version(target)
        return sum(b.version == v for a in self.live_agents() for boxes in a.boxes.values() for b in boxes)


def _hrw(slot: int, node: str) -> bytes:
    return hashlib.blake2b(f"web:{slot}:{node}".encode(), digest_size=8).digest()

