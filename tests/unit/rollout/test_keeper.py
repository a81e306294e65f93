"""node.rolloutkeeper and node.rollouts: the owner's verdicts go into its reports, the gate over every workload
holds this node's slots past the frontier, and a failing rollout yields one rollback write."""

from __future__ import annotations

from dataclasses import replace

from node.observed import RolloutMark
from node.replica import SlotKey
from node.rolloutkeeper import RolloutKeeper
from node.rollouts import placed_slots, steps
from tests.unit.rollout.helpers import V1, V2, new, old, revision, row, spec, statuses

T0 = 500.0


def test_verdicts_follow_the_clock_and_only_the_current_version_is_judged() -> None:
    keeper = RolloutKeeper()
    rev = revision(spec(monitor_s=3.0))  # type: ignore[arg-type]
    current = replace(row(0, rev.spec, ""), ready=True)
    older = replace(row(0, V1, ""), ready=True)
    rows, due = keeper.judge([older, current], {"web": rev}, T0)
    assert [r.verdict for r in rows] == ["", "watching"]
    assert due == T0 + 3.0
    rows, due = keeper.judge([older, current], {"web": rev}, T0 + 3.0)
    assert [r.verdict for r in rows] == ["", "settled"] and due is None


def test_a_restart_fails_the_replica_and_the_verdict_sticks() -> None:
    keeper = RolloutKeeper()
    rev = revision(spec(monitor_s=3.0))  # type: ignore[arg-type]
    keeper.judge([row(0, rev.spec, "")], {"web": rev}, T0)
    rows, _ = keeper.judge([replace(row(0, rev.spec, ""), restarts=1)], {"web": rev}, T0 + 1)
    assert rows[0].verdict == "failed"
    rows, due = keeper.judge([replace(row(0, rev.spec, ""), restarts=1, ready=True)], {"web": rev}, T0 + 9)
    assert rows[0].verdict == "failed" and due is None


def test_a_slot_that_leaves_this_node_forgets_its_watch() -> None:
    keeper = RolloutKeeper()
    rev = revision(spec(monitor_s=3.0))  # type: ignore[arg-type]
    keeper.judge([replace(row(0, rev.spec, ""), restarts=2)], {"web": rev}, T0)
    keeper.judge([], {"web": rev}, T0 + 1)
    rows, _ = keeper.judge([replace(row(0, rev.spec, ""), restarts=2, ready=True)], {"web": rev}, T0 + 2)
    assert rows[0].verdict == "watching"  # judged afresh: the restarts before this sighting are not held against it


def test_placed_slots_split_mine_from_the_rest() -> None:
    placed, mine = placed_slots({("web", 0): "a", ("web", 1): "b", ("api", 0): "a"}, "a")
    assert placed == {"web": [0, 1], "api": [0]} and mine == {"web": [0], "api": [0]}


def test_steps_hold_this_nodes_slots_past_the_frontier() -> None:
    by_slot = {("web", i): "a" if i % 2 == 0 else "b" for i in range(5)}
    view = statuses([*new(0), *old(2, 4)], old(1, 3))
    result = steps("a", [revision()], by_slot, view)
    # parallelism 1: slot 0 is through, batch 1 (slot 1, on b) is open, slots 2 and 4 wait
    assert result.held == {SlotKey("web", 2), SlotKey("web", 4)}
    assert result.rollbacks == () and result.marks == ()
    assert result.statuses["web"].updated == 1


def test_a_completed_rollout_is_marked_and_holds_nothing() -> None:
    by_slot = {("web", i): "a" for i in range(5)}
    result = steps("a", [revision()], by_slot, statuses(new(0, 1, 2, 3, 4)))
    assert result.held == frozenset()
    assert result.marks == (RolloutMark("web", 2, "completed"),)


def test_a_failed_replica_under_rollback_holds_everything_and_writes_the_previous_spec_once() -> None:
    failing = spec(failure_action="rollback")  # type: ignore[arg-type]
    rev = revision(failing)
    by_slot = {("web", i): "a" for i in range(5)}
    result = steps("a", [rev], by_slot, statuses([*new(0, verdict="failed"), *old(1, 2, 3, 4)]))
    assert result.held == {SlotKey("web", i) for i in range(5)}
    assert len(result.rollbacks) == 1
    write = result.rollbacks[0]
    assert write.spec == V1 and write.expect == 2 and write.note.startswith("rollback of generation 2")
    assert V2.image != write.spec.image
