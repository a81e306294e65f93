"""The probe state machine, one per (replica, kind): Outcomes in, the healthy flag and its transitions out.

Role: Kubernetes' kubelet rule (pkg/kubelet/prober/worker.go): a result changes the state only once it has been
seen `threshold` times in a row; readiness starts not ready, liveness alive. A liveness (or healthcheck) failure is
final: the container is to be restarted, and its replacement gets a new machine. Docker's start period: failures
before the first success are ignored while the container is younger than `grace_s`.
Also the schedule: when the first probe runs and when the next one does. Boundary: pure, no clock (times are
arguments), no I/O; node/probes/prober.py drives it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from node.probes.model import Check, Kind, Outcome, Result


class Transition(enum.Enum):
    BECAME_READY = "became-ready"
    BECAME_UNREADY = "became-unready"
    RESTART_WANTED = "restart-wanted"


@dataclass(frozen=True, slots=True)
class ProbeState:
    healthy: bool  # readiness: in rotation; liveness/healthcheck: alive
    last: bool | None = None  # the last counted result (True = success); None before any
    streak: int = 0  # how many counted results in a row equal `last`, capped at the threshold that matters
    started: bool = False  # a success has been seen: the start period (grace) is over
    gave_up: bool = False  # liveness failed: a restart is wanted; nothing changes this machine any more

    def carried(self) -> ProbeState:
        """The state a changed check continues from: the same verdict, counting afresh."""
        return replace(self, last=None, streak=0)


def initial(kind: Kind) -> ProbeState:
    """Readiness starts not ready (no traffic before a success); liveness starts alive (no restart before a
    failure), as in Kubernetes."""
    return ProbeState(healthy=kind.restarts)


def observe(state: ProbeState, check: Check, outcome: Outcome, age_s: float) -> tuple[ProbeState, Transition | None]:
    """Count one outcome. `age_s`: seconds since the prober first saw the container (for the grace period)."""
    if state.gave_up or outcome.result is Result.UNKNOWN:
        return state, None
    ok = outcome.ok
    if not ok and not state.started and age_s < check.grace_s:
        return state, None  # Docker: "probe failure during that period will not be counted"
    cap = max(check.success_threshold, check.failure_threshold)
    streak = min(state.streak + 1, cap) if state.last is ok else 1
    healthy = state.healthy
    if ok and not healthy and streak >= check.success_threshold:
        healthy = True
    elif not ok and healthy and streak >= check.failure_threshold:
        healthy = False
    gave_up = check.kind.restarts and not healthy
    new = ProbeState(healthy=healthy, last=ok, streak=streak, started=state.started or ok, gave_up=gave_up)
    return new, _transition(check.kind, state.healthy, healthy)


def _transition(kind: Kind, was: bool, now: bool) -> Transition | None:
    if was == now:
        return None
    if kind.restarts:
        return Transition.RESTART_WANTED  # alive -> failed; a restarting kind never comes back (see gave_up)
    return Transition.BECAME_READY if now else Transition.BECAME_UNREADY


def first_probe_at(check: Check, seen_s: float, now_s: float) -> float:
    """The first probe runs `initial_delay_s` after the container was first seen, and not in the past (a check
    that changed while the container ran starts probing at once)."""
    return max(seen_s + check.initial_delay_s, now_s)


def next_probe_at(check: Check, started_s: float, finished_s: float) -> float:
    """Probes start one period apart, as Kubernetes' ticker; one that ran longer than a period (its timeout is
    longer) is followed at once, never overlapped."""
    return max(started_s + check.period_s, finished_s)
