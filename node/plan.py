"""plan(wanted, observed, now) -> the actions that bring this host's containers to its share of the desired state.

Pure and level-triggered (DESIGN §6): it reads everything afresh each pass and decides from scratch, so a lost or
repeated event changes nothing. The reconciler performs the actions and calls it again.
- A wanted slot with no running container of its version is started; an exited one is restarted per its
  restart_policy (condition, delay, max_attempts, window) with a crash-loop backoff on top of `delay`.
- A container of an older version is replaced: stop-first by default, start-first if update_config says so.
- Every planned stop of a running container drains first (`Retire(drain=True)`, DESIGN §7b).
- A slot placement moved to another node keeps running here until that node reports it running (`handed_over`),
  so a rebalance starts each new replica before its old one stops.
- A slot the rollout gate holds (`held`, node.rollout) keeps its running replica of an older version as it is:
  its batch has not opened yet. A held slot with nothing running starts the new version (nothing to keep).
Slots and containers with an action in flight (`busy`) are left alone until it ends.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from node.manifest import RestartPolicy
from node.replica import Counters, Identity, SlotKey, Wanted, identify
from node.runtime.base import CREATED, EXITED, PAUSED, RUNNING, STOPPING, UNKNOWN, Container
from node.runtime.base import REMOVING as RUNTIME_REMOVING

SHORT_RUN_S = 10.0
"""A run shorter than this counts toward a crash loop."""
BACKOFF_BASE_S = 0.5
MAX_BACKOFF_S = 60.0
START_FIRST = "start-first"

PENDING, STARTING, EXITED_STATE, FAILED, REMOVING = "pending", "starting", "exited", "failed", "removing"


@dataclass(frozen=True, slots=True)
class Start:
    wanted: Wanted
    counters: Counters
    replaces: Container | None = None  # an exited container of the slot, removed first (it holds the name)


@dataclass(frozen=True, slots=True)
class Retire:
    """Stop (draining first if `drain`) and remove a container that should no longer run here."""

    container: Container
    key: SlotKey
    reason: str
    drain: bool


@dataclass(frozen=True, slots=True)
class Remove:
    """Remove a container that is not running and will not run again (exited, superseded, orphaned)."""

    container: Container
    key: SlotKey
    reason: str


Action = Start | Retire | Remove


@dataclass(frozen=True, slots=True)
class Failure:
    """The last start of a slot failed; do not try again before `retry_at`."""

    message: str
    retry_at: float
    permanent: bool


@dataclass(frozen=True, slots=True)
class Observed:
    containers: tuple[Container, ...] = ()
    busy: frozenset[str] = frozenset()  # container ids and str(SlotKey)s with an action in flight
    failures: Mapping[SlotKey, Failure] = field(default_factory=dict)
    placed_elsewhere: frozenset[SlotKey] = frozenset()  # slots placement gives to another node
    handed_over: frozenset[SlotKey] = frozenset()  # ... which that node reports running
    held: frozenset[SlotKey] = frozenset()  # slots whose running older replica the rollout keeps for now


@dataclass(frozen=True, slots=True)
class Row:
    """One replica as this node reports it (before the reconciler marks in-flight work)."""

    key: SlotKey
    state: str  # pending | starting | running | exited | failed | removing
    container: Container | None = None
    identity: Identity | None = None
    wanted: bool = True
    error: str = ""


@dataclass(frozen=True, slots=True)
class Plan:
    actions: tuple[Action, ...]
    rows: tuple[Row, ...]
    wake_at: float | None  # the earliest time a waiting decision (a restart delay, a retry) falls due


def plan(wanted: Sequence[Wanted], observed: Observed, now: float) -> Plan:
    by_slot = _group(observed.containers)
    builder = _Builder(observed, now)
    for w in sorted(wanted, key=lambda w: w.key):
        builder.slot(w, by_slot.pop(w.key, []))
    for key in sorted(by_slot):
        builder.orphans(key, by_slot[key])
    return Plan(tuple(builder.actions), tuple(builder.rows), builder.wake_at)


def _group(containers: Iterable[Container]) -> dict[SlotKey, list[tuple[Container, Identity]]]:
    """Containers by slot. One labelled shoal.service whose other labels do not read as ours is left out, so it
    is never touched."""
    by_slot: dict[SlotKey, list[tuple[Container, Identity]]] = defaultdict(list)
    for c in containers:
        ident = identify(c)
        if ident is not None:
            by_slot[ident.key].append((c, ident))
    return by_slot


def restart_at(policy: RestartPolicy, container: Container, counters: Counters) -> tuple[float, Counters] | None:
    """When an exited container's slot restarts and the counters its replacement carries; None: it stays down."""
    if policy.condition == "none" or (policy.condition == "on-failure" and container.exit_code == 0):
        return None
    finished = container.finished_at or 0.0
    ran = finished - container.started_at if container.started_at is not None and finished else 0.0
    attempts = 0 if policy.window_s > 0 and ran >= policy.window_s else counters.attempts
    if policy.max_attempts and attempts >= policy.max_attempts:
        return None
    streak = counters.streak + 1 if ran < SHORT_RUN_S else 0
    backoff = min(MAX_BACKOFF_S, BACKOFF_BASE_S * 2 ** (streak - 1)) if streak else 0.0
    return finished + max(policy.delay_s, backoff), Counters(counters.restarts + 1, attempts + 1, streak)


class _Builder:
    def __init__(self, observed: Observed, now: float) -> None:
        self.observed, self.now = observed, now
        self.actions: list[Action] = []
        self.rows: list[Row] = []
        self.wake_at: float | None = None

    def _busy(self, key: SlotKey, containers: Iterable[tuple[Container, Identity]]) -> bool:
        busy = self.observed.busy
        return str(key) in busy or any(c.id in busy for c, _ in containers)

    def _wake(self, at: float) -> None:
        self.wake_at = at if self.wake_at is None else min(self.wake_at, at)

    def _row(self, key: SlotKey, state: str, pair: tuple[Container, Identity] | None = None, *,
             wanted: bool = True, error: str = "") -> None:
        container, ident = pair if pair else (None, None)
        self.rows.append(Row(key, state, container, ident, wanted, error))

    def slot(self, w: Wanted, containers: list[tuple[Container, Identity]]) -> None:
        if self._busy(w.key, containers):
            for pair in containers:
                self._row(w.key, _state(pair[0]), pair)
            if not containers:
                self._row(w.key, PENDING)
            return
        current = [p for p in containers if p[1].version == w.version]
        old = [p for p in containers if p[1].version != w.version]
        running = sorted((p for p in current if p[0].state == RUNNING), key=_age)
        if running:
            self._keep(w, running[0], [*running[1:], *old], [p for p in current if p[0].state != RUNNING])
        else:
            self._bring_up(w, current, old)

    def _keep(self, w: Wanted, keep: tuple[Container, Identity], retire: list[tuple[Container, Identity]],
              idle: list[tuple[Container, Identity]]) -> None:
        self._row(w.key, RUNNING, keep)
        for pair in retire:
            self._retire(w.key, pair, "superseded" if pair[1].version != w.version else "duplicate")
        for pair in idle:
            self._remove(w.key, pair, "superseded by a running replica")

    def _bring_up(self, w: Wanted, current: list[tuple[Container, Identity]],
                  old: list[tuple[Container, Identity]]) -> None:
        old_running = sorted((p for p in old if p[0].state == RUNNING), key=_age)
        if old_running and w.key in self.observed.held:  # its batch has not opened: keep serving the old version
            self._keep(w, old_running[0], old_running[1:], [p for p in (*old, *current) if p[0].state != RUNNING])
            return
        for pair in (p for p in old if p[0].state != RUNNING):
            self._remove(w.key, pair, "an older version")
        stop_first = w.spec.deploy.update_config.order != START_FIRST
        if old_running and stop_first:
            for pair in old_running:  # the new one starts once the old one is gone (next pass)
                self._retire(w.key, pair, f"replaced by version {w.version} (stop-first)")
            self._row(w.key, PENDING)
            return
        for pair in old_running:  # start-first: keep serving until the new version runs
            self._row(w.key, RUNNING, pair)
        newest = max(current, key=_recency, default=None)
        for pair in current:
            if pair is not newest:
                self._remove(w.key, pair, "an older run of the slot")
        if newest is None:
            self._start_fresh(w)
        elif newest[0].state != EXITED:  # created but never started, or stuck: start the slot afresh
            self.actions.append(Start(w, newest[1].counters, replaces=newest[0]))
            self._row(w.key, STARTING, newest)
        else:
            self._restart(w, newest)

    def _start_fresh(self, w: Wanted) -> None:
        failure = self.observed.failures.get(w.key)
        if failure is not None and failure.retry_at > self.now:
            self._wake(failure.retry_at)
            self._row(w.key, FAILED if failure.permanent else PENDING, error=failure.message)
            return
        self.actions.append(Start(w, Counters()))
        self._row(w.key, PENDING, error=failure.message if failure else "")

    def _restart(self, w: Wanted, pair: tuple[Container, Identity]) -> None:
        container, ident = pair
        decision = restart_at(w.spec.deploy.restart_policy, container, ident.counters)
        if decision is None:
            self._row(w.key, EXITED_STATE if container.exit_code == 0 else FAILED, pair)
            return
        at, counters = decision
        failure = self.observed.failures.get(w.key)
        if failure is not None:
            at = max(at, failure.retry_at)
        if at > self.now:
            self._wake(at)
            self._row(w.key, EXITED_STATE, pair, error=failure.message if failure else "")
            return
        self.actions.append(Start(w, counters, replaces=container))
        self._row(w.key, EXITED_STATE, pair)

    def orphans(self, key: SlotKey, containers: list[tuple[Container, Identity]]) -> None:
        """Containers of a slot this node should not run (any more)."""
        if self._busy(key, containers):
            for pair in containers:
                self._row(key, _state(pair[0]), pair, wanted=False)
            return
        waiting = key in self.observed.placed_elsewhere and key not in self.observed.handed_over
        for pair in containers:
            if pair[0].state != RUNNING:
                self._remove(key, pair, "not placed here")
            elif waiting:  # moved: keep serving until the new owner runs it
                self._row(key, RUNNING, pair, wanted=False)
            else:
                reason = "handed over" if key in self.observed.placed_elsewhere else "no longer wanted"
                self._retire(key, pair, reason)

    def _retire(self, key: SlotKey, pair: tuple[Container, Identity], reason: str) -> None:
        self.actions.append(Retire(pair[0], key, reason, drain=pair[0].state == RUNNING))
        self._row(key, REMOVING, pair, wanted=False)

    def _remove(self, key: SlotKey, pair: tuple[Container, Identity], reason: str) -> None:
        self.actions.append(Remove(pair[0], key, reason))
        self._row(key, REMOVING, pair, wanted=False)


# A container's state as `shoal ps` shows it: always one of SPEC's pending, starting, running, exited, failed,
# removing. Shoal never pauses a container, so a paused one (someone's `podman pause`) is not serving: failed.
_SHOWN = {RUNNING: RUNNING, CREATED: STARTING, EXITED: EXITED_STATE, PAUSED: FAILED, STOPPING: REMOVING,
          RUNTIME_REMOVING: REMOVING, UNKNOWN: PENDING}


def _state(container: Container) -> str:
    return _SHOWN.get(container.state, PENDING)


def _age(pair: tuple[Container, Identity]) -> tuple[float, str]:
    """Oldest first: the longest-running duplicate is the one to keep."""
    return (pair[0].started_at if pair[0].started_at is not None else float("inf"), pair[0].id)


def _recency(pair: tuple[Container, Identity]) -> tuple[int, float, str]:
    """The latest run of a slot: most restarts, then latest finish."""
    return (pair[1].counters.restarts, pair[0].finished_at or 0.0, pair[0].id)
