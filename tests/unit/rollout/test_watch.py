"""The owner's verdict on a replica: watching until ready for monitor + delay (settled), failed on an exit or when
not ready within monitor; sticky; and the time at which only the clock would change it."""

from __future__ import annotations

from node.manifest.model import UpdateConfig
from node.observed import ReplicaReport
from node.rollout import Verdict, Watch, due, watch

PACING = UpdateConfig(monitor_s=5.0, delay_s=2.0)
T0 = 1000.0


def seen(state: str = "running", *, ready: bool = False, restarts: int = 0, version: str = "v2",
         since: float = T0) -> ReplicaReport:
    return ReplicaReport("web", 0, state, ready=ready, restarts=restarts, since=since, version=version)


def follow(*sightings: tuple[float, ReplicaReport], pacing: UpdateConfig = PACING) -> Watch | None:
    """Feed sightings (time, report) in order, as the owner's passes would."""
    w: Watch | None = None
    for now, report in sightings:
        w = watch(w, report, pacing, now)
    return w


def test_nothing_is_judged_before_the_replica_runs() -> None:
    assert watch(None, seen("pending"), PACING, T0) is None
    assert watch(None, seen("starting"), PACING, T0) is None
    assert watch(None, seen(version=""), PACING, T0) is None


def test_a_replica_ready_for_monitor_plus_delay_settles_and_not_a_moment_before() -> None:
    early = follow((T0 + 1, seen(ready=True)), (T0 + 7.99, seen(ready=True)))
    assert early is not None and early.verdict is Verdict.WATCHING
    assert due(early, PACING) == T0 + 8.0  # first seen ready at T0 + 1
    settled = follow((T0 + 1, seen(ready=True)), (T0 + 8.0, seen(ready=True)))
    assert settled is not None and settled.verdict is Verdict.SETTLED and due(settled, PACING) is None


def test_a_break_in_readiness_restarts_the_ready_stretch() -> None:
    w = follow((T0 + 1, seen(ready=True)), (T0 + 3, seen(ready=False)), (T0 + 4, seen(ready=True)),
               (T0 + 10, seen(ready=True)))
    assert w is not None and w.verdict is Verdict.WATCHING and w.ready_since == T0 + 4


def test_a_replica_not_ready_within_monitor_fails() -> None:
    w = follow((T0 + 1, seen()), (T0 + 5.99, seen()))
    assert w is not None and w.verdict is Verdict.WATCHING and due(w, PACING) == T0 + 6.0
    w = follow((T0 + 1, seen()), (T0 + 6.0, seen()))
    assert w is not None and w.verdict is Verdict.FAILED


def test_an_adopted_replica_not_ready_yet_gets_a_full_monitor_window() -> None:
    # the agent restarted: the replica has run since T0 - 3600, its readiness probe has not run yet
    w = follow((T0, seen(since=T0 - 3600)), (T0 + 4, seen(since=T0 - 3600)))
    assert w is not None and w.verdict is Verdict.WATCHING and w.started == T0


def test_monitor_0_judges_no_slow_start() -> None:
    pacing = UpdateConfig(monitor_s=0.0, delay_s=0.0)
    w = follow((T0 + 100, seen()), pacing=pacing)
    assert w is not None and w.verdict is Verdict.WATCHING and due(w, pacing) is None
    ready = follow((T0 + 100, seen()), (T0 + 101, seen(ready=True)), pacing=pacing)
    assert ready is not None and ready.verdict is Verdict.SETTLED


def test_an_exit_before_settling_fails() -> None:
    w = follow((T0 + 1, seen(ready=True)), (T0 + 2, seen("exited", since=T0 + 1.5)))
    assert w is not None and w.verdict is Verdict.FAILED


def test_a_restart_seen_only_through_the_counter_fails() -> None:
    # the exit and restart both fell between two passes: only `restarts` moved
    w = follow((T0 + 1, seen(ready=True)), (T0 + 3, seen(ready=True, restarts=1, since=T0 + 2.5)))
    assert w is not None and w.verdict is Verdict.FAILED


def test_a_start_that_failed_outright_fails() -> None:
    w = watch(None, seen("failed"), PACING, T0)
    assert w is not None and w.verdict is Verdict.FAILED


def test_adopting_a_running_replica_with_earlier_restarts_judges_from_then() -> None:
    w = follow((T0 + 1, seen(ready=True, restarts=3)), (T0 + 9, seen(ready=True, restarts=3)))
    assert w is not None and w.verdict is Verdict.SETTLED


def test_verdicts_are_sticky() -> None:
    settled = follow((T0 + 1, seen(ready=True)), (T0 + 9, seen(ready=True)), (T0 + 99, seen("exited")))
    assert settled is not None and settled.verdict is Verdict.SETTLED  # a crash long after is no rollout failure
    failed = follow((T0 + 1, seen("exited")), (T0 + 9, seen(ready=True, restarts=1)), (T0 + 99, seen(ready=True)))
    assert failed is not None and failed.verdict is Verdict.FAILED


def test_a_replica_being_stopped_keeps_its_watch() -> None:
    w = follow((T0 + 1, seen(ready=True)), (T0 + 2, seen("removing")))
    assert w is not None and w.verdict is Verdict.WATCHING and w.ready_since == T0 + 1


def test_another_version_in_the_slot_starts_a_new_watch() -> None:
    w = follow((T0 + 1, seen("exited")), (T0 + 50, seen(ready=True, version="v3", since=T0 + 49)))
    assert w is not None and (w.version, w.verdict, w.started) == ("v3", Verdict.WATCHING, T0 + 50)
