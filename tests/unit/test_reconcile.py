"""The reconciler against the fake runtime: exact engine calls for start, pull, restart, replace, scale-down,
backoff after failures, and what it publishes. Time is a settable clock; no sleeps beyond the drain (0 here)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from node.manifest import Deploy, RestartPolicy, ServiceSpec
from node.placement.model import Assignment
from node.reconcile import Reconciler, Report, Settings
from node.replica import SlotKey, Wanted
from node.runtime.base import Container
from node.runtime.fake import FakeRuntime
from node.schedule import Share

IMAGE = "198.18.0.1:5000/shoal-demo:1"
WEB = ServiceSpec(name="web", image=IMAGE, deploy=Deploy(replicas=2, restart_policy=RestartPolicy("any", 0.0)))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def share_of(spec: ServiceSpec, replicas: Sequence[int], generation: int = 1) -> Share:
    wanted = tuple(Wanted(SlotKey(spec.name, i), spec, generation) for i in replicas)
    assignment = Assignment(by_slot={(spec.name, i): "me" for i in replicas})
    return Share(wanted, frozenset(), frozenset(), "digest", assignment)


class Harness:
    def __init__(self, share: Share, **fake: object) -> None:
        self.clock = Clock()
        self.share = share
        self.runtime = FakeRuntime(clock=self.clock, registry=[IMAGE, "198.18.0.1:5000/shoal-demo:2"],
                                   **fake)  # type: ignore[arg-type]
        self.published: list[tuple[list[Report], str]] = []
        self.reconciler = Reconciler(self.runtime, lambda: self.share, self._publish, self.clock,
                                     Settings(drain_s=0.0, stop_timeout_s=1.0))

    def _publish(self, reports: Sequence[Report], digest: str) -> None:
        self.published.append((list(reports), digest))

    async def settle(self, passes: int = 6) -> None:
        """Run passes until no action is in flight (each pass awaits the tasks it started)."""
        await self.reconciler.prepare(asyncio.Event())
        for _ in range(passes):
            await self.reconciler.reconcile_once()
            while self.reconciler._tasks:
                await asyncio.gather(*self.reconciler._tasks, return_exceptions=True)

    def states(self) -> list[tuple[str, str]]:
        return sorted((str(r.row.key), r.row.state) for r in self.published[-1][0])

    async def containers(self) -> list[tuple[str, str]]:
        return sorted((c.name, c.state) for c in await self.runtime.containers())


def run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def test_first_pass_pulls_once_and_starts_every_slot() -> None:
    async def scenario() -> None:
        h = Harness(share_of(WEB, [0, 1]))
        await h.settle()
        assert h.runtime.ops().count("pull") == 1  # two slots, one pull
        assert [s for _, s in await h.containers()] == ["running", "running"]
        assert h.states() == [("web.0", "running"), ("web.1", "running")]
        assert all(r.ready and r.image == IMAGE for r in h.published[-1][0])
        ops = h.runtime.ops()
        await h.settle()
        assert set(h.runtime.ops()[len(ops):]) <= {"containers", "ping", "ensure_network"}  # converged: only looks
    run(scenario())


def test_a_crashed_container_is_restarted_with_its_count() -> None:
    async def scenario() -> None:
        h = Harness(share_of(WEB, [0]))
        await h.settle()
        (first,) = await h.runtime.containers()
        h.clock.now += 30
        h.runtime.exit(first.id, 137)
        await h.settle()
        (second,) = await h.runtime.containers()
        assert second.id != first.id and second.state == "running"
        assert second.label("shoal.restarts") == "1"
    run(scenario())


def test_a_new_image_replaces_stop_first() -> None:
    async def scenario() -> None:
        h = Harness(share_of(WEB, [0]))
        await h.settle()
        (old,) = await h.runtime.containers()
        h.share = share_of(replace(WEB, image="198.18.0.1:5000/shoal-demo:2"), [0], generation=2)
        await h.settle()
        (new,) = await h.runtime.containers()
        assert new.image.endswith("shoal-demo:2") and new.state == "running"
        ops = h.runtime.ops()
        assert ops.index("stop") < ops.index("run", ops.index("stop"))  # the old stopped before the new ran
        assert old.id not in {c.id for c in await h.runtime.containers()}
    run(scenario())


def test_scale_down_drains_and_removes_only_surplus_slots() -> None:
    async def scenario() -> None:
        h = Harness(share_of(WEB, [0, 1, 2]))
        await h.settle()
        h.share = share_of(WEB, [0])
        await h.settle()
        names = [n for n, _ in await h.containers()]
        assert len(names) == 1 and names[0].startswith("shoal.web.0.")
    run(scenario())


def test_a_missing_image_fails_the_slot_and_backs_off() -> None:
    async def scenario() -> None:
        spec = replace(WEB, image="198.18.0.1:5000/nope:1")
        h = Harness(share_of(spec, [0]))
        await h.settle(passes=3)
        assert h.runtime.ops().count("pull") == 1  # backed off: no retry before retry_at
        (report,) = h.published[-1][0]
        assert report.row.state == "failed" and "nope" in report.row.error
        h.clock.now += 6  # past the first permanent backoff (5 s)
        await h.settle(passes=1)
        assert h.runtime.ops().count("pull") == 2
    run(scenario())


def test_a_temporary_run_failure_is_retried() -> None:
    async def scenario() -> None:
        h = Harness(share_of(WEB, [0]))
        h.runtime.fail_next("run", temporary=True)
        await h.settle(passes=2)
        assert await h.containers() == []
        h.clock.now += 1.5
        await h.settle(passes=2)
        assert [s for _, s in await h.containers()] == ["running"]
    run(scenario())


def test_a_restarted_agent_adopts_what_runs() -> None:
    async def scenario() -> None:
        h = Harness(share_of(WEB, [0, 1]))
        await h.settle()
        before = h.runtime.ops().count("run")
        again = Reconciler(h.runtime, lambda: h.share, h._publish, h.clock, Settings(drain_s=0.0))
        await again.reconcile_once()
        assert not again._tasks
        assert h.runtime.ops().count("run") == before
    run(scenario())


def test_an_action_that_ends_while_the_engine_lists_is_not_planned_again() -> None:
    """The listing may predate the action's effect; the slot stays busy for that pass (no double start)."""
    async def scenario() -> None:
        h = Harness(share_of(WEB, [0]))
        await h.reconciler.prepare(asyncio.Event())
        await h.reconciler.reconcile_once()  # launches the start of web.0, still in flight
        assert h.reconciler._tasks
        real = h.runtime.containers

        async def stale_listing() -> list[Container]:
            before = await real()  # read before the start lands...
            await asyncio.gather(*h.reconciler._tasks)  # ...which then completes during the listing
            return before

        h.runtime.containers = stale_listing  # type: ignore[method-assign]
        await h.reconciler.reconcile_once()
        h.runtime.containers = real  # type: ignore[method-assign]
        await h.settle()
        assert h.runtime.ops().count("run") == 1
        assert [s for _, s in await h.containers()] == ["running"]
    run(scenario())


def test_a_replica_failing_liveness_is_stopped_and_restarted_by_its_policy() -> None:
    async def scenario() -> None:
        h = Harness(share_of(WEB, [0, 1]))
        await h.settle()
        victim = next(r.row.container for r in h.published[-1][0] if r.row.key.replica == 0)
        assert victim is not None
        h.reconciler.restart(victim.id, "liveness probe failed")
        h.reconciler.restart(victim.id, "liveness probe failed")  # a second verdict while stopping: ignored
        await h.settle()
        assert h.runtime.ops().count("stop") == 1
        h.clock.now += 60  # past the restart delay and any crash-loop backoff
        await h.settle()
        rows = {r.row.key.replica: r for r in h.published[-1][0]}
        replacement = rows[0].row
        assert replacement.state == "running" and replacement.container is not None
        assert replacement.container.id != victim.id and replacement.identity is not None
        assert replacement.identity.counters.restarts == 1
        assert rows[1].row.identity is not None and rows[1].row.identity.counters.restarts == 0
    run(scenario())


def test_the_host_network_is_settled_once_ready_and_after_every_start() -> None:
    """The engine makes the bridge with the network's first container (and it may exist from before a restart),
    so the hook runs after ensure_network and after each start; a failing hook fails no replica."""
    async def go() -> None:
        h = Harness(share_of(WEB, [0, 1]))
        settled: list[str] = []

        async def settle(subnet: str) -> None:
            settled.append(subnet)
            raise OSError("ip: cannot set the address")

        h.reconciler = Reconciler(h.runtime, lambda: h.share, h._publish, h.clock,
                                  Settings(drain_s=0.0, stop_timeout_s=1.0, subnet="198.19.3.0/24"), settle=settle)
        await h.settle()
        assert settled == ["198.19.3.0/24"] * 3  # prepare, then each of the two starts
        assert h.states() == [("web.0", "running"), ("web.1", "running")]
    run(go())
