"""The Prober on a virtual-time loop: probes run at exact times, transitions reach the callback at exact times,
tasks follow the replicas, and a hanging or broken probe is cut, counted and survived."""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from gossip.clock import LoopClock
from gossip.simnet import SimClock
from node.manifest.model import Healthcheck, TcpSocket
from node.probes.model import Check, Kind, Outcome, Target
from node.probes.prober import Change, Prober
from node.probes.state import Transition
from node.probes.timing import sleep_until
from tests.unit.probes.helpers import FAIL, OK, UNKNOWN, probe, service, target
from tests.unit.probes.vloop import run_virtual

pytestmark = pytest.mark.timeout(30)
READY, UNREADY, RESTART = Transition.BECAME_READY, Transition.BECAME_UNREADY, Transition.RESTART_WANTED
HANG = "hang"  # a scripted probe that never returns by itself
Step = Outcome | str | tuple[float, Outcome]  # an outcome, HANG, or (seconds it takes, outcome)


@dataclass
class ScriptedProbe:
    """The Prober's `probe` function: per (container, kind), outcomes in order, the last one repeating. Records
    (time, container, kind) of every call and the most probes ever in flight at once."""

    clock: LoopClock
    scripts: dict[tuple[str, Kind], deque[Step]] = field(default_factory=dict)
    calls: list[tuple[float, str, Kind]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    cancelled: list[tuple[float, str, Kind]] = field(default_factory=list)

    def script(self, container_id: str, kind: Kind, *steps: Step) -> None:
        self.scripts[(container_id, kind)] = deque(steps)

    def times(self, container_id: str, kind: Kind) -> list[float]:
        return [at for at, c, k in self.calls if (c, k) == (container_id, kind)]

    async def __call__(self, check: Check, target: Target) -> Outcome:
        key = (target.container_id, check.kind)
        self.calls.append((self.clock.now(), *key))
        script = self.scripts.get(key) or deque([OK])
        step = script.popleft() if len(script) > 1 else script[0]
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if step == HANG:
                await asyncio.get_running_loop().create_future()
            if isinstance(step, tuple):
                await sleep_until(self.clock, self.clock.now() + step[0])
                step = step[1]
            assert isinstance(step, Outcome)
            return step
        except asyncio.CancelledError:
            self.cancelled.append((self.clock.now(), *key))
            raise
        finally:
            self.in_flight -= 1


@dataclass
class Rig:
    clock: LoopClock
    probe: ScriptedProbe
    prober: Prober
    changes: list[tuple[float, str, Kind, Transition]] = field(default_factory=list)

    async def until(self, when: float) -> None:
        await sleep_until(self.clock, when)


def scenario(body: Callable[[Rig], Awaitable[None]], *, max_in_flight: int = 32,
             on_change: Callable[[Change], None] | None = None,
             probe_fn: Callable[[ScriptedProbe], Callable[[Check, Target], Awaitable[Outcome]]] | None = None) -> Rig:
    """Run `body` against a running Prober on a virtual-time loop (time 0 at the start), then stop it."""
    out: list[Rig] = []

    async def main() -> None:
        clock = LoopClock(asyncio.get_running_loop())
        scripted = ScriptedProbe(clock)
        changes: list[tuple[float, str, Kind, Transition]] = []

        def record(change: Change) -> None:
            changes.append((change.at_s, change.container_id, change.kind, change.transition))
            if on_change is not None:
                on_change(change)

        prober = Prober(clock=clock, probe=probe_fn(scripted) if probe_fn else scripted, on_change=record,
                        max_in_flight=max_in_flight)
        rig = Rig(clock, scripted, prober, changes)
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            group.create_task(prober.run(stop))
            await body(rig)
            stop.set()
        out.append(rig)

    run_virtual(main)
    return out[0]


READINESS = service(readiness=probe(TcpSocket(8080), period_s=10.0, initial_delay_s=5.0, failure_threshold=3))
LIVENESS = service(liveness=probe(TcpSocket(8080), period_s=10.0, failure_threshold=3))


def test_readiness_probes_run_after_the_initial_delay_then_every_period_and_transitions_reach_the_callback() -> None:
    async def body(rig: Rig) -> None:
        rig.probe.script("c1", Kind.READINESS, OK, OK, FAIL, FAIL, FAIL, OK)
        rig.prober.update([target("c1", READINESS)])
        assert rig.prober.ready("c1") is False  # not ready before its first success
        await rig.until(60.5)
        assert rig.prober.ready("c1") is True

    rig = scenario(body)
    assert rig.probe.times("c1", Kind.READINESS) == [5.0, 15.0, 25.0, 35.0, 45.0, 55.0]
    assert rig.changes == [(5.0, "c1", Kind.READINESS, READY), (45.0, "c1", Kind.READINESS, UNREADY),
                           (55.0, "c1", Kind.READINESS, READY)]


def test_a_liveness_failure_wants_a_restart_once_and_ends_that_containers_liveness_probing() -> None:
    spec = service(readiness=probe(TcpSocket(8080), period_s=10.0), liveness=probe(TcpSocket(8080), period_s=10.0))

    async def body(rig: Rig) -> None:
        rig.probe.script("c1", Kind.LIVENESS, OK, FAIL, FAIL, FAIL, OK)
        rig.prober.update([target("c1", spec)])
        await rig.until(100.5)
        health = rig.prober.health("c1")
        assert health is not None and health.restart_wanted and health.ready

    rig = scenario(body)
    assert rig.probe.times("c1", Kind.LIVENESS) == [0.0, 10.0, 20.0, 30.0]
    assert rig.changes == [(0.0, "c1", Kind.READINESS, READY), (30.0, "c1", Kind.LIVENESS, RESTART)]
    assert len(rig.probe.times("c1", Kind.READINESS)) == 11  # readiness goes on: 0, 10, ..., 100


def test_the_replacement_container_is_probed_afresh() -> None:
    async def body(rig: Rig) -> None:
        rig.probe.script("old", Kind.LIVENESS, FAIL)
        rig.prober.update([target("old", LIVENESS)])
        await rig.until(25.5)
        rig.prober.update([target("new", LIVENESS)])  # the caller restarted it: a new container id
        await rig.until(50.5)

    rig = scenario(body)
    assert rig.changes == [(20.0, "old", Kind.LIVENESS, RESTART)]
    assert rig.probe.times("new", Kind.LIVENESS) == [25.5, 35.5, 45.5]
    assert rig.prober.health("old") is None


def test_a_healthcheck_starts_one_interval_in_and_ignores_failures_in_its_start_period() -> None:
    spec = service(healthcheck=Healthcheck(test=("CMD", "true"), interval_s=2.0, retries=3, start_period_s=5.0))

    async def body(rig: Rig) -> None:
        rig.probe.script("c1", Kind.HEALTHCHECK, FAIL)
        rig.prober.update([target("c1", spec)])
        await rig.until(20.5)

    rig = scenario(body)
    assert rig.probe.times("c1", Kind.HEALTHCHECK) == [2.0, 4.0, 6.0, 8.0, 10.0]  # counted from 6 s on
    assert rig.changes == [(10.0, "c1", Kind.HEALTHCHECK, RESTART)]


def test_a_probe_that_hangs_is_cut_at_its_timeout_and_counts_as_a_failure() -> None:
    spec = service(readiness=probe(TcpSocket(8080), period_s=10.0, timeout_s=2.5, failure_threshold=1))

    async def body(rig: Rig) -> None:
        rig.probe.script("c1", Kind.READINESS, OK, HANG, OK)
        rig.prober.update([target("c1", spec)])
        await rig.until(20.5)

    rig = scenario(body)
    assert rig.probe.cancelled == [(12.5, "c1", Kind.READINESS)]
    assert rig.changes == [(0.0, "c1", Kind.READINESS, READY), (12.5, "c1", Kind.READINESS, UNREADY),
                           (20.0, "c1", Kind.READINESS, READY)]
    assert rig.prober.counters["failure"] == 1 and rig.prober.counters["success"] == 2


def test_a_probe_longer_than_its_period_is_followed_at_once_never_overlapped() -> None:
    spec = service(readiness=probe(TcpSocket(8080), period_s=10.0, timeout_s=30.0))

    async def body(rig: Rig) -> None:
        rig.probe.script("c1", Kind.READINESS, (12.0, OK), (3.0, OK), OK)
        rig.prober.update([target("c1", spec)])
        await rig.until(40.5)
        assert rig.probe.most_in_flight == 1

    rig = scenario(body)
    assert rig.probe.times("c1", Kind.READINESS) == [0.0, 12.0, 22.0, 32.0]


def test_replicas_that_go_away_have_their_probes_cancelled_and_their_state_dropped() -> None:
    async def body(rig: Rig) -> None:
        rig.probe.script("c2", Kind.READINESS, OK, HANG)
        rig.prober.update([target("c1", READINESS), target("c2", READINESS)])
        await rig.until(16.0)
        rig.prober.update([target("c1", READINESS)])  # c2's hanging probe (started at 15) is cancelled now
        await rig.until(40.5)
        assert rig.prober.health("c2") is None and rig.prober.ready("c2") is False

    rig = scenario(body)
    assert rig.probe.cancelled == [(16.0, "c2", Kind.READINESS)]
    assert rig.probe.times("c2", Kind.READINESS) == [5.0, 15.0]
    assert rig.probe.times("c1", Kind.READINESS) == [5.0, 15.0, 25.0, 35.0]


def test_a_replica_added_later_waits_its_own_initial_delay() -> None:
    async def body(rig: Rig) -> None:
        rig.prober.update([target("c1", READINESS)])
        await rig.until(7.0)
        rig.prober.update([target("c1", READINESS), target("c2", READINESS)])
        await rig.until(20.5)

    rig = scenario(body)
    assert rig.probe.times("c2", Kind.READINESS) == [12.0]
    assert rig.probe.times("c1", Kind.READINESS) == [5.0, 15.0]


def test_at_most_max_in_flight_probes_run_at_once() -> None:
    spec = service(readiness=probe(TcpSocket(8080), period_s=100.0, timeout_s=5.0))

    async def body(rig: Rig) -> None:
        for i in range(5):
            rig.probe.script(f"c{i}", Kind.READINESS, (1.0, OK))
        rig.prober.update([target(f"c{i}", spec) for i in range(5)])
        await rig.until(10.0)

    rig = scenario(body, max_in_flight=2)
    assert rig.probe.most_in_flight == 2
    assert sorted(at for at, _, _ in rig.probe.calls) == [0.0, 0.0, 1.0, 1.0, 2.0]
    assert all(t == READY for *_, t in rig.changes) and len(rig.changes) == 5


def test_unknown_outcomes_change_nothing() -> None:
    spec = service(readiness=probe(TcpSocket(8080), period_s=1.0, failure_threshold=1))

    async def body(rig: Rig) -> None:
        rig.probe.script("c1", Kind.READINESS, OK, UNKNOWN, UNKNOWN, UNKNOWN, OK)
        rig.prober.update([target("c1", spec)])
        await rig.until(10.5)

    rig = scenario(body)
    assert rig.changes == [(0.0, "c1", Kind.READINESS, READY)]
    assert rig.prober.counters["unknown"] == 3


def test_a_probe_function_that_raises_is_counted_as_unknown_and_probing_goes_on() -> None:
    def flaky(scripted: ScriptedProbe) -> Callable[[Check, Target], Awaitable[Outcome]]:
        async def run(check: Check, target: Target) -> Outcome:
            if len(scripted.calls) == 1:
                scripted.calls.append((scripted.clock.now(), target.container_id, check.kind))
                raise ValueError("a bug in a runner")
            return await scripted(check, target)
        return run

    async def body(rig: Rig) -> None:
        rig.prober.update([target("c1", READINESS)])
        await rig.until(30.5)

    rig = scenario(body, probe_fn=flaky)
    assert rig.prober.counters["errors"] == 1 and rig.prober.counters["unknown"] == 1
    assert rig.probe.times("c1", Kind.READINESS) == [5.0, 15.0, 25.0]
    assert rig.changes == [(5.0, "c1", Kind.READINESS, READY)]


def test_a_callback_that_raises_is_counted_and_probing_goes_on() -> None:
    def explode(change: Change) -> None:
        raise RuntimeError("caller bug")

    async def body(rig: Rig) -> None:
        rig.probe.script("c1", Kind.READINESS, OK, FAIL, FAIL, FAIL, OK)
        rig.prober.update([target("c1", READINESS)])
        await rig.until(50.5)

    rig = scenario(body, on_change=explode)
    assert [t for *_, t in rig.changes] == [READY, UNREADY, READY]
    assert rig.prober.counters["callback_errors"] == 3


def test_a_changed_check_keeps_the_verdict_and_uses_the_new_timing_at_once() -> None:
    faster = service(readiness=probe(TcpSocket(8080), period_s=2.0, initial_delay_s=5.0, failure_threshold=3))

    async def body(rig: Rig) -> None:
        rig.prober.update([target("c1", READINESS)])
        await rig.until(20.0)
        assert rig.prober.ready("c1")
        rig.prober.update([target("c1", faster)])
        await rig.until(25.5)
        assert rig.prober.ready("c1")

    rig = scenario(body)
    assert rig.probe.times("c1", Kind.READINESS) == [5.0, 15.0, 20.0, 22.0, 24.0]
    assert rig.changes == [(5.0, "c1", Kind.READINESS, READY)]


def test_a_replica_without_a_readiness_probe_is_ready_at_once_and_reports_nothing() -> None:
    async def body(rig: Rig) -> None:
        rig.prober.update([target("c1", service()), target("c2", LIVENESS)])
        await rig.until(15.0)
        assert rig.prober.ready("c1") and rig.prober.ready("c2")
        health = rig.prober.health("c2")
        assert health is not None and health.details == ((Kind.LIVENESS, "ok"),)

    rig = scenario(body)
    assert rig.changes == [] and rig.probe.times("c1", Kind.READINESS) == []


def test_stop_ends_every_probe_task_even_one_that_hangs() -> None:
    async def body(rig: Rig) -> None:
        rig.probe.script("c1", Kind.READINESS, HANG)
        rig.prober.update([target("c1", service(readiness=probe(TcpSocket(1), timeout_s=1000.0)))])
        await rig.until(3.0)

    rig = scenario(body)
    assert rig.probe.cancelled == [(3.0, "c1", Kind.READINESS)]


def test_a_prober_needs_at_least_one_probe_in_flight() -> None:
    async def never(check: Check, target: Target) -> Outcome:
        raise AssertionError

    with pytest.raises(ValueError, match="max_in_flight"):
        Prober(clock=SimClock(), probe=never, on_change=lambda change: None, max_in_flight=0)


def test_counts_per_container_are_independent() -> None:
    async def body(rig: Rig) -> None:
        rig.probe.script("a", Kind.READINESS, OK, FAIL, FAIL, FAIL)
        rig.probe.script("b", Kind.READINESS, FAIL, FAIL, OK)
        rig.prober.update([target("a", READINESS), target("b", READINESS)])
        await rig.until(40.5)

    rig = scenario(body)
    per: dict[str, list[tuple[float, Transition]]] = defaultdict(list)
    for at, container, _, transition in rig.changes:
        per[container].append((at, transition))
    assert per == {"a": [(5.0, READY), (35.0, UNREADY)], "b": [(25.0, READY)]}


def test_a_replica_dropped_right_after_it_was_added_is_never_probed_and_breaks_nothing() -> None:
    """update() may run between the moment a task is made and its first step: whatever the interleaving."""

    async def body(rig: Rig) -> None:
        for turns in range(4):
            rig.prober.update([target("c1", READINESS)])
            for _ in range(turns):
                await asyncio.sleep(0)  # virtual loop: lets the prober's tasks take exactly `turns` steps
            rig.prober.update([])
            await rig.until(rig.clock.now() + 1.0)
        rig.prober.update([target("c2", READINESS)])
        await rig.until(rig.clock.now() + 5.5)

    rig = scenario(body)
    assert [c for _, c, _ in rig.probe.calls] == ["c2"]
    assert rig.prober.counters["errors"] == 0
