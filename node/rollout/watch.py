"""The owner's verdict on each replica it runs: watching, then settled or failed (DESIGN §7b's monitor window).

Pure; times are arguments. Only the node that runs a replica judges it: it sees every restart and readiness change
and reads start times from its own clock, whereas a peer sees a lagging, sampled copy and another clock. The verdict
travels in the replica's report (ReplicaReport.verdict), and peers' rollout gates only read it.
A watch covers one version of one slot on this node, from when the node first sees it running (restarts of that
version continue it):
- failed: the replica exits (or its start fails) before it settles, or is not ready `monitor` after that;
- settled: it has been ready, without a break, for `monitor + delay` (the batch's wait folded into its replicas);
- sticky either way until the slot runs another version, so a crash long after a rollout is not a rollout failure.
An agent that restarts loses its watches and judges what it adopts afresh, from the moment it sees it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from node.manifest.model import UpdateConfig
from node.observed import ReplicaReport
from node.rollout.model import ENDED_STATES, RUNNING, Verdict


@dataclass(frozen=True, slots=True)
class Watch:
    version: str
    started: float  # when this node first saw the version running in this slot
    restarts: int  # the slot's restart count when the watch began: any more means it exited
    ready_since: float | None  # when it was first seen ready in the current unbroken ready stretch
    verdict: Verdict = Verdict.WATCHING


def watch(prev: Watch | None, report: ReplicaReport, pacing: UpdateConfig, now: float) -> Watch | None:
    """The slot's watch after this sighting of its replica (None: nothing to judge yet, e.g. still pending)."""
    if not report.version:
        return None
    if prev is None or prev.version != report.version:
        if report.state in ENDED_STATES:  # never seen running, already down (or a start that failed outright)
            return Watch(report.version, now, report.restarts, None, Verdict.FAILED)
        if report.state != RUNNING:
            return None
        # From now, not from the container's start: a replica adopted after an agent restart may have run for
        # hours and not be ready yet only because its first probe has not run.
        prev = Watch(report.version, now, report.restarts, None)
    if prev.verdict is not Verdict.WATCHING:
        return prev
    return _advance(prev, report, pacing, now)


def _advance(w: Watch, report: ReplicaReport, pacing: UpdateConfig, now: float) -> Watch:
    if report.state in ENDED_STATES or report.restarts > w.restarts:
        return replace(w, verdict=Verdict.FAILED)
    if report.state != RUNNING:  # being stopped (superseded): nothing new to learn
        return w
    if report.ready:
        ready_since = w.ready_since if w.ready_since is not None else now
        settled = now - ready_since >= pacing.monitor_s + pacing.delay_s
        return replace(w, ready_since=ready_since, verdict=Verdict.SETTLED if settled else Verdict.WATCHING)
    # monitor 0 watches nothing (as in Swarm): a slow start is then no failure, only an exit is
    if pacing.monitor_s > 0 and now - w.started >= pacing.monitor_s:
        return replace(w, ready_since=None, verdict=Verdict.FAILED)
    return replace(w, ready_since=None)


def due(w: Watch | None, pacing: UpdateConfig) -> float | None:
    """When the passing of time alone next changes the verdict: the reconciler wakes then to judge and publish."""
    if w is None or w.verdict is not Verdict.WATCHING:
        return None
    if w.ready_since is not None:
        return w.ready_since + pacing.monitor_s + pacing.delay_s
    return w.started + pacing.monitor_s if pacing.monitor_s > 0 else None
