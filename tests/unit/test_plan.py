"""plan(wanted, observed, now): every (desired, observed) case gives exactly these actions and rows."""

from __future__ import annotations

from dataclasses import replace

import pytest

from node.manifest import Deploy, RestartPolicy, ServiceSpec, UpdateConfig
from node.plan import (
    BACKOFF_BASE_S,
    Failure,
    Observed,
    Remove,
    Retire,
    Start,
    _state,
    plan,
    restart_at,
)
from node.replica import Counters, SlotKey, Wanted, container_spec, identify
from node.runtime.base import CREATED, EXITED, RUNNING, Container

NOW = 1_000_000.0
FRESH = Counters()
WEB = ServiceSpec(name="web", image="reg/web:1",
                  deploy=Deploy(replicas=2, restart_policy=RestartPolicy(condition="any", delay_s=1.0)))


def want(replica: int = 0, spec: ServiceSpec = WEB, generation: int = 1) -> Wanted:
    return Wanted(SlotKey(spec.name, replica), spec, generation)


def box(w: Wanted, state: str = RUNNING, cid: str = "", *, started: float | None = NOW - 100,
        finished: float | None = None, exit_code: int | None = None, counters: Counters = FRESH) -> Container:
    spec = container_spec(w, counters, network="shoal")
    return Container(id=cid or f"c-{w.key}-{w.version}", name=spec.name, image=spec.image, labels=spec.labels,
                     state=state, exit_code=exit_code, started_at=started, finished_at=finished)


def kinds(actions: tuple[object, ...]) -> list[str]:
    return [type(a).__name__ for a in actions]


def test_a_wanted_slot_without_a_container_starts_fresh() -> None:
    p = plan([want(0), want(1)], Observed(), NOW)
    assert p.actions == (Start(want(0), Counters()), Start(want(1), Counters()))
    assert [r.state for r in p.rows] == ["pending", "pending"]
    assert p.wake_at is None


def test_a_running_container_of_the_right_version_is_left_alone() -> None:
    c = box(want(0))
    p = plan([want(0)], Observed((c,)), NOW)
    assert p.actions == ()
    assert [(r.state, r.container) for r in p.rows] == [("running", c)]


def test_a_scale_change_alone_restarts_nothing() -> None:
    scaled = replace(WEB, deploy=replace(WEB.deploy, replicas=5))
    c = box(want(0))
    p = plan([want(0, scaled, generation=2)], Observed((c,)), NOW)
    assert p.actions == ()


def test_an_exited_container_restarts_after_its_delay_with_counters_carried() -> None:
    c = box(want(0), EXITED, started=NOW - 100, finished=NOW - 0.5, exit_code=137)
    early = plan([want(0)], Observed((c,)), NOW)
    assert early.actions == ()
    assert early.wake_at == pytest.approx(NOW + 0.5)
    assert early.rows[0].state == "exited"
    due = plan([want(0)], Observed((c,)), NOW + 0.5)
    assert due.actions == (Start(want(0), Counters(restarts=1, attempts=1, streak=0), replaces=c),)


def test_a_crash_loop_backs_off_exponentially_beyond_the_policy_delay() -> None:
    policy = RestartPolicy(condition="any", delay_s=0.0)
    c = box(want(0), EXITED, started=NOW - 1, finished=NOW, exit_code=1, counters=Counters(5, 5, 4))
    at, counters = restart_at(policy, c, Counters(5, 5, 4)) or (0.0, Counters())
    assert counters == Counters(6, 6, 5)
    assert at == NOW + BACKOFF_BASE_S * 2 ** 4


def test_a_long_run_resets_the_streak() -> None:
    policy = RestartPolicy(condition="any", delay_s=2.0)
    c = box(want(0), EXITED, started=NOW - 3600, finished=NOW, exit_code=1)
    assert restart_at(policy, c, Counters(3, 3, 3)) == (NOW + 2.0, Counters(4, 4, 0))


@pytest.mark.parametrize(("condition", "code", "restarts"), [
    ("any", 0, True), ("any", 1, True), ("on-failure", 0, False), ("on-failure", 3, True), ("none", 1, False)])
def test_restart_conditions(condition: str, code: int, restarts: bool) -> None:
    policy = RestartPolicy(condition=condition, delay_s=0.0)
    c = box(want(0), EXITED, finished=NOW, exit_code=code)
    assert (restart_at(policy, c, Counters()) is not None) is restarts


def test_max_attempts_stops_restarting_and_reports_failed() -> None:
    spec = replace(WEB, deploy=replace(WEB.deploy, restart_policy=RestartPolicy("any", 0.0, max_attempts=2)))
    c = box(want(0, spec), EXITED, finished=NOW - 5, exit_code=1, counters=Counters(2, 2, 2))
    p = plan([want(0, spec)], Observed((c,)), NOW)
    assert p.actions == ()
    assert p.rows[0].state == "failed"


def test_window_resets_attempts_after_a_run_that_lasted_it() -> None:
    policy = RestartPolicy("any", 0.0, max_attempts=2, window_s=60.0)
    long_run = box(want(0), EXITED, started=NOW - 120, finished=NOW, exit_code=1)
    assert restart_at(policy, long_run, Counters(2, 2, 0)) == (NOW, Counters(3, 1, 0))
    short_run = box(want(0), EXITED, started=NOW - 5, finished=NOW, exit_code=1)
    assert restart_at(policy, short_run, Counters(2, 2, 0)) is None


def test_a_changed_image_replaces_stop_first_by_default() -> None:
    old = box(want(0))
    new_spec = replace(WEB, image="reg/web:2")
    p = plan([want(0, new_spec, 2)], Observed((old,)), NOW)
    assert p.actions == (Retire(old, SlotKey("web", 0), p.actions[0].reason, drain=True),)  # type: ignore[union-attr]
    assert "stop-first" in p.actions[0].reason  # type: ignore[union-attr]
    # once the old one is gone, the new one starts
    assert kinds(plan([want(0, new_spec, 2)], Observed(), NOW).actions) == ["Start"]


def test_start_first_starts_the_new_version_before_retiring_the_old() -> None:
    spec = replace(WEB, image="reg/web:2",
                   deploy=replace(WEB.deploy, update_config=UpdateConfig(order="start-first")))
    old = box(want(0))
    first = plan([want(0, spec, 2)], Observed((old,)), NOW)
    assert first.actions == (Start(want(0, spec, 2), Counters()),)
    assert {r.state for r in first.rows} == {"running", "pending"}
    new = box(want(0, spec, 2), cid="new")
    second = plan([want(0, spec, 2)], Observed((old, new)), NOW)
    assert kinds(second.actions) == ["Retire"]
    assert second.actions[0].container == old  # type: ignore[union-attr]


def test_duplicates_keep_the_oldest() -> None:
    a = box(want(0), cid="a", started=NOW - 50)
    b = box(want(0), cid="b", started=NOW - 10)
    p = plan([want(0)], Observed((b, a)), NOW)
    assert [(type(x).__name__, x.container.id) for x in p.actions] == [("Retire", "b")]  # type: ignore[union-attr]


def test_a_created_but_never_started_container_is_replaced() -> None:
    c = box(want(0), CREATED, started=None)
    p = plan([want(0)], Observed((c,)), NOW)
    assert p.actions == (Start(want(0), Counters(), replaces=c),)


def test_containers_of_unwanted_slots_are_retired_draining_or_removed() -> None:
    gone_running = box(want(3), cid="r")
    gone_exited = box(want(4), EXITED, cid="x", finished=NOW, exit_code=0)
    p = plan([], Observed((gone_running, gone_exited)), NOW)
    assert [(type(a).__name__, a.container.id) for a in p.actions] == [("Retire", "r"), ("Remove", "x")]  # type: ignore[union-attr]
    assert isinstance(p.actions[0], Retire) and p.actions[0].drain
    assert {r.state for r in p.rows} == {"removing"}


def test_a_moved_slot_keeps_running_until_its_new_owner_runs_it() -> None:
    c = box(want(1))
    key = SlotKey("web", 1)
    waiting = plan([], Observed((c,), placed_elsewhere=frozenset({key})), NOW)
    assert waiting.actions == ()
    assert waiting.rows[0].state == "running" and not waiting.rows[0].wanted
    handed = plan([], Observed((c,), placed_elsewhere=frozenset({key}), handed_over=frozenset({key})), NOW)
    assert kinds(handed.actions) == ["Retire"]


def test_busy_slots_and_containers_are_left_alone() -> None:
    c = box(want(0), EXITED, finished=NOW - 100, exit_code=1)
    assert plan([want(0)], Observed((c,), busy=frozenset({c.id})), NOW).actions == ()
    assert plan([want(1)], Observed(busy=frozenset({"web.1"})), NOW).actions == ()


def test_a_failed_start_waits_for_its_retry_time() -> None:
    failure = Failure("image not found", retry_at=NOW + 5, permanent=True)
    p = plan([want(0)], Observed(failures={SlotKey("web", 0): failure}), NOW)
    assert p.actions == ()
    assert p.wake_at == NOW + 5
    assert (p.rows[0].state, p.rows[0].error) == ("failed", "image not found")
    assert kinds(plan([want(0)], Observed(failures={SlotKey("web", 0): failure}), NOW + 5).actions) == ["Start"]


def test_containers_with_foreign_labels_are_never_touched() -> None:
    stranger = Container(id="s", name="x", image="i", labels=(("shoal.service", "web"),), state=RUNNING)
    assert identify(stranger) is None
    p = plan([], Observed((stranger,)), NOW)
    assert p.actions == () and p.rows == ()


def test_an_exited_old_version_is_removed_and_the_slot_started() -> None:
    old = box(want(0), EXITED, finished=NOW, exit_code=0)
    spec = replace(WEB, image="reg/web:2")
    p = plan([want(0, spec, 2)], Observed((old,)), NOW)
    assert [type(a) for a in p.actions] == [Remove, Start]


def test_a_held_slot_keeps_its_running_older_replica_and_starts_nothing() -> None:
    old = box(want(0))
    new_spec = replace(WEB, image="reg/web:2")
    held = frozenset({SlotKey("web", 0)})
    p = plan([want(0, new_spec, 2)], Observed((old,), held=held), NOW)
    assert p.actions == ()
    assert [(r.state, r.container) for r in p.rows] == [("running", old)]
    # the batch opens (no longer held): the old one is replaced as usual
    assert kinds(plan([want(0, new_spec, 2)], Observed((old,)), NOW).actions) == ["Retire"]


def test_a_held_slot_removes_a_failed_new_replica_but_keeps_the_old_one_serving() -> None:
    new_spec = replace(WEB, image="reg/web:2")
    old = box(want(0))
    failed = box(want(0, new_spec, 2), EXITED, cid="failed", finished=NOW - 1, exit_code=1)
    p = plan([want(0, new_spec, 2)], Observed((old, failed), held=frozenset({SlotKey("web", 0)})), NOW)
    assert p.actions == (Remove(failed, SlotKey("web", 0), p.actions[0].reason),)  # type: ignore[union-attr]
    assert ("running", old) in [(r.state, r.container) for r in p.rows]


def test_a_held_slot_with_nothing_running_starts_the_new_version() -> None:
    new_spec = replace(WEB, image="reg/web:2")
    p = plan([want(0, new_spec, 2)], Observed(held=frozenset({SlotKey("web", 0)})), NOW)
    assert p.actions == (Start(want(0, new_spec, 2), Counters()),)


@pytest.mark.parametrize("state", ["created", "running", "exited", "paused", "stopping", "removing", "unknown",
                                   "a-state-from-a-newer-podman"])
def test_a_containers_state_is_shown_as_one_of_specs_states(state: str) -> None:
    """SPEC.md: ps states are pending, starting, running, exited, failed, removing, whatever podman reports."""
    shown = _state(Container(id="c", name="web-0", image="i", labels=(), state=state))
    assert shown in ("pending", "starting", "running", "exited", "failed", "removing")
    assert shown == {"created": "starting", "running": "running", "exited": "exited", "paused": "failed",
                     "stopping": "removing", "removing": "removing"}.get(state, "pending")
