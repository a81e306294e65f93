"""Prober: runs every running replica's probes on schedule, keeps their state, and reports transitions.

Role: the shell around node/probes/state.py. `update(targets)` says which replicas run now (level-triggered: the
whole set each time); `run(stop)` owns one task per (container, kind) in a TaskGroup, started and cancelled as
replicas come and go. Each task sleeps on the injected clock until its next probe, runs it through the injected
`probe` function (bounded: at most `max_in_flight` at once, each cut at its timeout), feeds the outcome to the
state machine and calls `on_change` with any transition. A liveness failure ends that container's liveness
probing: the restart is the caller's to do, and the new container is probed afresh.
Boundary: no runtime, no network, no placement: the caller maps changes onto observed state and restarts.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from gossip.clock import Clock
from node.probes.model import Check, Kind, Outcome, Result, Target, checks_for
from node.probes.state import ProbeState, Transition, first_probe_at, initial, next_probe_at, observe
from node.probes.timing import sleep_until, within

log = logging.getLogger("shoal.probes")

ProbeFn = Callable[[Check, Target], Awaitable[Outcome]]
MAX_IN_FLIGHT = 32  # probes running at once on this node; each holds a socket or an engine call


@dataclass(frozen=True, slots=True)
class Change:
    """One transition of one replica's probe, with the outcome that tipped it."""

    container_id: str
    service: str
    kind: Kind
    transition: Transition
    detail: str
    at_s: float  # on the prober's clock


@dataclass(frozen=True, slots=True)
class Health:
    """A replica's probe verdicts now."""

    ready: bool  # in rotation: its readiness probe passed (or it has none)
    restart_wanted: bool  # its liveness probe or healthcheck failed
    details: tuple[tuple[Kind, str], ...]  # the last outcome of each probe that ran, in Kind order


_Key = tuple[str, Kind]


class Prober:
    def __init__(self, *, clock: Clock, probe: ProbeFn, on_change: Callable[[Change], None],
                 max_in_flight: int = MAX_IN_FLIGHT) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, not {max_in_flight}")
        self._clock, self._probe, self._on_change = clock, probe, on_change
        self._slots = asyncio.Semaphore(max_in_flight)
        self._targets: dict[str, Target] = {}
        self._seen: dict[str, float] = {}  # container id -> when first seen, on the clock (initial delay, grace)
        self._checks: dict[_Key, Check] = {}  # the check each task runs
        self._states: dict[_Key, ProbeState] = {}
        self._details: dict[_Key, str] = {}
        self._tasks: dict[_Key, asyncio.Task[None]] = {}
        self._group: asyncio.TaskGroup | None = None
        self._wake = asyncio.Event()
        self.counters: Counter[str] = Counter()

    # -- the caller's side -------------------------------------------------------------------------------------

    def update(self, targets: Iterable[Target]) -> None:
        """The replicas running now; a container id seen twice keeps the last target."""
        now = self._clock.now()
        self._targets = {target.container_id: target for target in targets}
        for container_id in self._targets:
            self._seen.setdefault(container_id, now)
        for gone in [c for c in self._seen if c not in self._targets]:
            del self._seen[gone]
        for key in [k for k in self._states if k[0] not in self._targets]:
            del self._states[key]
            self._details.pop(key, None)
        self._wake.set()

    def health(self, container_id: str) -> Health | None:
        """None for a container the prober was not given."""
        target = self._targets.get(container_id)
        if target is None:
            return None
        ready, restart, details = True, False, []
        for check in checks_for(target.spec):
            key = (container_id, check.kind)
            state = self._states.get(key) or initial(check.kind)
            if check.kind is Kind.READINESS:
                ready = state.healthy
            else:
                restart = restart or state.gave_up
            if key in self._details:
                details.append((check.kind, self._details[key]))
        return Health(ready=ready, restart_wanted=restart, details=tuple(details))

    def ready(self, container_id: str) -> bool:
        health = self.health(container_id)
        return health is not None and health.ready

    async def run(self, stop: asyncio.Event) -> None:
        """Probe until `stop` is set; every probe task ends with it."""
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                group.create_task(self._relay(stop))
                while not stop.is_set():
                    self._wake.clear()
                    self._sync()
                    await self._wake.wait()
                for task in self._tasks.values():
                    task.cancel()
        finally:
            self._group = None
            self._tasks.clear()

    # -- the tasks ---------------------------------------------------------------------------------------------

    async def _relay(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    def _sync(self) -> None:
        """Start a task for every wanted (container, check) without one; cancel those no longer wanted."""
        assert self._group is not None
        wanted = {(cid, check.kind): check
                  for cid, target in self._targets.items() for check in checks_for(target.spec)}
        for key, task in list(self._tasks.items()):
            if task.done() or wanted.get(key) != self._checks.get(key):
                task.cancel()
                del self._tasks[key]
                self._checks.pop(key, None)
        for key, check in wanted.items():
            state = self._states.get(key)
            if key in self._tasks or (state is not None and state.gave_up):
                continue  # running, or a liveness verdict already given for this container
            self._states[key] = state.carried() if state is not None else initial(check.kind)
            self._checks[key] = check
            self._tasks[key] = self._group.create_task(self._probe_task(key, check), name=f"probe {key}")

    async def _probe_task(self, key: _Key, check: Check) -> None:
        """One task's whole life; it never raises (but for cancellation): a failure here would end every task of
        the group, and so the probing of every replica."""
        try:
            await self._probe_loop(key, check)
        except Exception as exc:
            self.counters["errors"] += 1
            log.error("probe task failed", extra={"fields": {"container": key[0][:12], "kind": key[1].value,
                                                             "error": repr(exc)}})

    async def _probe_loop(self, key: _Key, check: Check) -> None:
        container_id = key[0]
        seen = self._seen.get(container_id)
        if seen is None:
            return  # dropped by update() between _sync and this task's first step
        at = first_probe_at(check, seen, self._clock.now())
        while True:
            await sleep_until(self._clock, at)
            target = self._targets.get(container_id)
            if target is None:
                return  # gone since; _sync cancels us anyway
            started = self._clock.now()
            outcome = await self._run_one(check, target)
            finished = self._clock.now()
            if key not in self._states:
                return  # the container went away while it was probed (update() dropped its state)
            state, transition = observe(self._states[key], check, outcome, finished - self._seen[container_id])
            self._states[key], self._details[key] = state, outcome.detail
            if transition is not None:
                self._report(Change(container_id, target.spec.name, check.kind, transition, outcome.detail, finished))
            if state.gave_up:
                return
            at = next_probe_at(check, started, finished)

    async def _run_one(self, check: Check, target: Target) -> Outcome:
        async with self._slots:
            self.counters["probes"] += 1
            try:
                outcome = await within(self._clock, check.timeout_s, self._probe(check, target))
            except TimeoutError:
                outcome = Outcome(Result.FAILURE, f"{check.kind.value} probe timed out after {check.timeout_s:g} s")
            except Exception as exc:  # a runner bug: counted and logged, never the end of this replica's probing
                self.counters["errors"] += 1
                log.warning("probe raised", extra={"fields": {"container": target.container_id[:12],
                                                              "kind": check.kind.value, "error": repr(exc)}})
                outcome = Outcome(Result.UNKNOWN, f"probe error: {exc!r}")
        self.counters[outcome.result.value] += 1
        return outcome

    def _report(self, change: Change) -> None:
        level = logging.INFO if change.transition is Transition.BECAME_READY else logging.WARNING
        log.log(level, f"replica {change.transition.value}", extra={"fields": {
            "service": change.service, "container": change.container_id[:12], "probe": change.kind.value,
            "detail": change.detail}})
        try:
            self._on_change(change)
        except Exception as exc:  # the caller's bug must not stop the probing of every replica
            self.counters["callback_errors"] += 1
            log.error("probe change callback raised", extra={"fields": {"error": repr(exc)}})
