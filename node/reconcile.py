"""The reconciler: a level-triggered loop that makes this host's containers match its share of the placement.

Role: the I/O shell around node.plan. Each pass reads the share (node.schedule, from the agent's store and
members) and the engine's containers afresh, plans, launches the actions as tasks, and publishes what runs.
Events only wake it (`poke`); a poll every `poll_s` catches containers that exit, so a lost event costs at most
one poll. An action in flight marks its slot and container busy, so a slow pull never blocks other slots, and
its end wakes the loop. Start failures back off per slot (temporary errors quickly, permanent ones slowly).
Boundary: talks to the engine only through node.runtime.base.Runtime; decides nothing itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from node.plan import PENDING, REMOVING, STARTING, Action, Failure, Observed, Plan, Remove, Retire, Row, Start
from node.plan import plan as make_plan
from node.replica import SlotKey, Wanted, container_spec
from node.runtime.base import RUNNING, Runtime, RuntimeFailure
from node.schedule import Share
from node.wake import wait_any

log = logging.getLogger("shoal.reconcile")

TEMPORARY_BACKOFF_S = (1.0, 30.0)  # first and largest delay before retrying a slot whose start failed
PERMANENT_BACKOFF_S = (5.0, 300.0)  # e.g. an image that does not exist: someone may push it later


@dataclass(frozen=True, slots=True)
class Settings:
    network: str | None = "shoal"  # the host's Shoal network; None = the engine's default
    subnet: str | None = None
    dns: tuple[str, ...] = ()
    poll_s: float = 1.0
    drain_s: float = 1.0  # DESIGN §7b: a stop waits this long after marking the replica draining
    stop_timeout_s: float = 10.0  # SIGTERM -> SIGKILL


@dataclass(frozen=True, slots=True)
class Report:
    """One row of this node's observed state, ready to publish."""

    row: Row
    image: str
    since: float
    ready: bool


class Reconciler:
    def __init__(self, runtime: Runtime, share: Callable[[], Share], publish: Callable[[Sequence[Report], str], None],
                 wall: Callable[[], float], settings: Settings = Settings(),
                 ready: Callable[[], Awaitable[None]] | None = None,
                 settle: Callable[[str], Awaitable[object]] | None = None) -> None:
        self._runtime, self._share, self._publish, self._wall = runtime, share, publish, wall
        self._settings = settings
        self._ready = ready  # awaited before the first pass: the agent's view of the cluster must be complete
        # Called with the subnet once the network is there and after each container start (node.hostnet.BridgePin:
        # the engine makes the bridge with the network's first container, and may have made it before we ran).
        self._settle = settle
        self._wake = asyncio.Event()
        self._busy: dict[str, str] = {}  # container id or str(slot) -> what is being done ("starting", "removing")
        self._failures: dict[SlotKey, tuple[int, Failure]] = {}
        self._pending_since: dict[SlotKey, float] = {}
        self._pulls: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.subnet: str | None = settings.subnet

    def poke(self) -> None:
        """Something changed (desired state, membership, a status): reconcile soon."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        if self._ready is not None:
            await self._ready()
        await self.prepare(stop)
        wake_at: float | None = None
        while not stop.is_set():
            self._wake.clear()
            wake_at = await self.reconcile_once()
            timeout = self._settings.poll_s
            if wake_at is not None:
                timeout = max(0.0, min(timeout, wake_at - self._wall()))
            await wait_any(self._wake, stop, timeout)
        for task in list(self._tasks):  # actions in flight end with the agent; the engine keeps the containers
            task.cancel()

    async def prepare(self, stop: asyncio.Event) -> None:
        """Wait for the engine and the host network; the loop cannot place anything without them."""
        delay = 0.5
        while not stop.is_set():
            try:
                await self._runtime.ping()
                if self._settings.network is not None:
                    self.subnet = await self._runtime.ensure_network(self._settings.network, self._settings.subnet)
                    await self._settle_network()
                return
            except RuntimeFailure as exc:
                log.warning("container engine not ready", extra={"fields": {"error": exc, "retry_in_s": delay}})
                await wait_any(self._wake, stop, delay)
                delay = min(delay * 2, 10.0)

    async def reconcile_once(self) -> float | None:
        """One pass; returns when the plan next wants to look again (a restart delay), if sooner than a poll."""
        share = self._share()
        # What is busy while the engine lists stays busy for this pass: an action that ends during the listing
        # may not show in it (a container it started may still read `created`), and planning it again would
        # start a slot twice or replace a container that is just starting. The poke at its end brings a fresh pass.
        busy_before = set(self._busy)
        try:
            containers = await self._runtime.containers()
        except RuntimeFailure as exc:
            log.warning("cannot list containers", extra={"fields": {"error": exc}})
            return None
        now = self._wall()
        wanted = {w.key for w in share.wanted}
        self._failures = {k: f for k, f in self._failures.items() if k in wanted}  # forget slots gone elsewhere
        observed = Observed(tuple(containers), frozenset(busy_before | set(self._busy)),
                            {k: f for k, (_, f) in self._failures.items()}, share.placed_elsewhere, share.handed_over,
                            share.held)
        plan = make_plan(share.wanted, observed, now)
        for action in plan.actions:
            self._launch(action)
        self._publish(self._reports(plan, share, now), share.digest)
        return plan.wake_at

    def restart(self, container_id: str, reason: str) -> None:
        """Stop a container whose liveness probe failed; the next pass restarts it as its restart policy says
        (a container that exits on its own takes the same path). Ignored while something else is under way."""
        if container_id in self._busy:
            return
        self._busy[container_id] = REMOVING
        task = asyncio.get_running_loop().create_task(self._stop_for(container_id, reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _stop_for(self, container_id: str, reason: str) -> None:
        log.warning("stopping an unhealthy replica", extra={"fields": {"container": container_id[:12],
                                                                       "reason": reason}})
        try:
            await self._runtime.stop(container_id, self._settings.stop_timeout_s)
        except RuntimeFailure as exc:
            log.warning("cannot stop an unhealthy replica", extra={"fields": {"container": container_id[:12],
                                                                              "error": exc}})
        finally:
            self._busy.pop(container_id, None)
            self.poke()

    # ---- actions ---------------------------------------------------------------------------------------

    def _launch(self, action: Action) -> None:
        marks = _marks(action)
        if any(m in self._busy for m in marks):
            return
        doing = STARTING if isinstance(action, Start) else REMOVING
        for m in marks:
            self._busy[m] = doing
        task = asyncio.get_running_loop().create_task(self._perform(action, marks))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _perform(self, action: Action, marks: Sequence[str]) -> None:
        try:
            if isinstance(action, Start):
                await self._start(action)
            elif isinstance(action, Retire):
                await self._retire(action)
            else:
                await self._runtime.remove(action.container.id)
        except RuntimeFailure as exc:
            log.warning("action failed", extra={"fields": {"action": _describe(action), "error": exc}})
        finally:
            for m in marks:
                self._busy.pop(m, None)
            self.poke()

    async def _start(self, action: Start) -> None:
        w = action.wanted
        try:
            if action.replaces is not None:
                await self._runtime.remove(action.replaces.id)
            await self._ensure_image(w.spec.image)
            spec = container_spec(w, action.counters, network=self._settings.network, dns=self._settings.dns)
            container = await self._runtime.run(spec)
        except RuntimeFailure as exc:
            self._failed(w, exc)
            raise
        self._failures.pop(w.key, None)
        await self._settle_network()
        log.info("replica started", extra={"fields": {"replica": str(w.key), "container": container.id[:12],
                                                      "image": w.spec.image, "restarts": action.counters.restarts}})

    async def _settle_network(self) -> None:
        if self._settle is None or self.subnet is None:
            return
        try:
            await self._settle(self.subnet)
        except Exception as exc:  # a host-network hiccup must not fail a replica that runs; the next start retries
            log.warning("cannot settle the host's container network", extra={"fields": {"subnet": self.subnet,
                                                                                       "error": exc}})

    async def _ensure_image(self, image: str) -> None:
        """Pull a missing image once, however many slots need it at the same time."""
        if await self._runtime.image_present(image):
            return
        task = self._pulls.get(image)
        if task is None:
            log.info("pulling image", extra={"fields": {"image": image}})
            task = asyncio.get_running_loop().create_task(self._runtime.pull(image))
            self._pulls[image] = task
            task.add_done_callback(lambda _: self._pulls.pop(image, None))
        await asyncio.shield(task)

    def _failed(self, w: Wanted, exc: RuntimeFailure) -> None:
        count = self._failures.get(w.key, (0, None))[0] + 1
        first, cap = TEMPORARY_BACKOFF_S if exc.temporary else PERMANENT_BACKOFF_S
        delay = min(cap, first * 2 ** (count - 1))
        self._failures[w.key] = (count, Failure(str(exc)[:200], self._wall() + delay, not exc.temporary))

    async def _retire(self, action: Retire) -> None:
        if action.drain:  # the pass that launched this published the replica as removing; let that spread
            await asyncio.sleep(self._settings.drain_s)
        await self._runtime.stop(action.container.id, self._settings.stop_timeout_s)
        await self._runtime.remove(action.container.id)
        log.info("replica stopped", extra={"fields": {"replica": str(action.key), "reason": action.reason,
                                                      "container": action.container.id[:12]}})

    # ---- reporting -------------------------------------------------------------------------------------

    def _reports(self, plan: Plan, share: Share, now: float) -> list[Report]:
        images = {w.key: w.spec.image for w in share.wanted}
        pending = {r.key for r in plan.rows if r.container is None}
        self._pending_since = {k: self._pending_since.get(k, now) for k in pending}
        reports = []
        for row in plan.rows:
            state = self._busy_state(row)
            c = row.container
            image = row.identity.image if row.identity else images.get(row.key, "")
            if c is None:
                since = self._pending_since[row.key]
            else:
                since = (c.started_at if state == RUNNING else c.finished_at) or c.started_at or now
            reports.append(Report(Row(row.key, state, c, row.identity, row.wanted, row.error), image, since,
                                  ready=state == RUNNING))
        return reports

    def _busy_state(self, row: Row) -> str:
        if row.container is not None and row.container.id in self._busy:
            return self._busy[row.container.id]
        if row.container is None and str(row.key) in self._busy:
            return PENDING
        return row.state


def _marks(action: Action) -> list[str]:
    if isinstance(action, Start):
        marks = [str(action.wanted.key)]
        return marks + ([action.replaces.id] if action.replaces is not None else [])
    return [action.container.id]


def _describe(action: Action) -> str:
    if isinstance(action, Start):
        return f"start {action.wanted.key}"
    verb = "retire" if isinstance(action, Retire) else "remove"
    return f"{verb} {action.key} ({action.container.id[:12]}): {action.reason}"


__all__ = ["Reconciler", "Remove", "Report", "Settings"]
