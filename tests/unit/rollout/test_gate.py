"""The rollout gate: from (revision, every node's reports) to the slots this node holds, the phase, the mark it
publishes and the rollback it writes. Tables of views: crashed, slow and vanished replicas included."""

from __future__ import annotations

from dataclasses import replace

import pytest

from node.manifest.model import UpdateConfig
from node.observed import ReplicaReport, RolloutMark
from node.replica import SlotKey
from node.rollout import Phase, assess, decide, rollback
from tests.unit.rollout.helpers import V1, V2, new, old, revision, row, spec, statuses

ALL = range(5)


def held(step_held: frozenset[SlotKey]) -> list[int]:
    return sorted(k.replica for k in step_held)


# ---- batches -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("reports", "expect_held", "batch"), [
    # nothing updated yet: batch 0 (slots 0, 1) may go, the rest wait
    (old(0, 1, 2, 3, 4), [2, 3, 4], 0),
    # batch 0 running the new version but still being watched: batch 1 waits
    ([*new(0, 1, verdict="watching"), *old(2, 3, 4)], [2, 3, 4], 0),
    # one of batch 0 settled, the other still watching: still batch 0
    ([*new(0), *new(1, verdict="watching"), *old(2, 3, 4)], [2, 3, 4], 0),
    # batch 0 settled: batch 1 (slots 2, 3) opens; slot 4 still waits
    ([*new(0, 1), *old(2, 3, 4)], [4], 1),
    # batches 0 and 1 settled: the last batch opens
    ([*new(0, 1, 2, 3), *old(4)], [], 2),
])
def test_slots_update_in_batches_of_parallelism_in_slot_order(reports: list[ReplicaReport],
                                                               expect_held: list[int], batch: int) -> None:
    step = decide(revision(spec(parallelism=2)), ALL, statuses(reports), mine=ALL)
    assert held(step.held) == expect_held
    assert step.status.phase is Phase.UPDATING and step.status.batch == batch
    assert step.mark is None and step.rollback is None


def test_a_node_holds_only_its_own_slots() -> None:
    step = decide(revision(spec(parallelism=2)), ALL, statuses(old(0, 1), old(2, 3, 4)), mine=[1, 4])
    assert held(step.held) == [4]


def test_a_settled_replica_that_is_not_ready_now_holds_the_next_batch() -> None:
    lapsed = row(1, V2, "settled", ready=False)
    step = decide(revision(spec(parallelism=2)), ALL, statuses([*new(0), lapsed, *old(2, 3, 4)]), mine=ALL)
    assert held(step.held) == [2, 3, 4]


def test_a_new_replica_being_removed_does_not_count() -> None:
    draining = row(1, V2, "settled", state="removing", ready=False)
    step = decide(revision(spec(parallelism=2)), ALL, statuses([*new(0), draining, *old(2, 3, 4)]), mine=ALL)
    assert held(step.held) == [2, 3, 4]


def test_a_slow_replica_still_watched_holds_the_next_batch_without_counting_as_failed() -> None:
    slow = row(0, V2, "watching", ready=False)
    step = decide(revision(spec(parallelism=1)), ALL, statuses([slow, *old(1, 2, 3, 4)]), mine=ALL)
    assert held(step.held) == [1, 2, 3, 4]
    assert step.status.failed == 0 and step.status.phase is Phase.UPDATING


def test_parallelism_0_updates_every_slot_at_once() -> None:
    step = decide(revision(spec(parallelism=0)), ALL, statuses(old(0, 1, 2, 3, 4)), mine=ALL)
    assert held(step.held) == [] and step.status.batches == 1


def test_batches_follow_sorted_slot_indices_not_their_values() -> None:
    # a global service's slots are hashes of node ids, not 0..n-1
    slots = [907, 12, 5_000_000, 44]
    reports = [row(i, V1) for i in slots] + [row(12, V2)]
    step = decide(revision(spec(parallelism=1)), slots, statuses(reports), mine=slots)
    assert held(step.held) == [907, 5_000_000]  # batch 0 (12) settled, so 44 may go


def test_rows_of_other_services_and_versions_are_ignored() -> None:
    other = row(0, spec(image="reg/other:1"))
    foreign = row(0, replace(V2, name="api"))
    step = decide(revision(spec(parallelism=1)), ALL, statuses([other, foreign, *old(0, 1, 2, 3, 4)]), mine=ALL)
    assert held(step.held) == [1, 2, 3, 4]


# ---- nodes that vanish ---------------------------------------------------------------------------------------


def test_a_slot_whose_node_vanished_blocks_later_batches_until_its_new_owner_settles_it() -> None:
    # slot 1's node died mid-rollout: its status is gone from the live view; placement gave the slot to us
    view = statuses([*new(0), *old(2, 3, 4)])
    step = decide(revision(spec(parallelism=2)), ALL, view, mine=[1, 2])
    assert held(step.held) == [2]  # slot 1 is in the open batch: ours to start with the new version
    after = statuses([*new(0), *new(1), *old(2, 3, 4)])
    assert held(decide(revision(spec(parallelism=2)), ALL, after, mine=[1, 2]).held) == []


def test_a_vanished_slot_past_the_frontier_is_held_and_left_to_plan() -> None:
    # held means "keep a running older replica"; with none running, plan starts the new version (docs/rollouts.md)
    step = decide(revision(spec(parallelism=2)), ALL, statuses(old(0, 1, 2, 3)), mine=[4])
    assert held(step.held) == [4]


def test_a_slot_missing_from_this_views_placement_waits_as_if_last() -> None:
    step = decide(revision(spec(parallelism=2)), [0, 1, 2], statuses(old(0, 1, 2)), mine=[0, 7])
    assert held(step.held) == [7]


# ---- failures and the failure action -------------------------------------------------------------------------


def test_a_crashed_replica_pauses_the_rollout_and_holds_every_slot() -> None:
    crashed = row(0, V2, "failed", state="exited")
    step = decide(revision(spec(parallelism=2, failure_action="pause")), ALL,
                  statuses([crashed, *new(1), *old(2, 3, 4)]), mine=ALL)
    assert step.status.phase is Phase.PAUSED and step.status.failed == 1
    assert held(step.held) == [0, 1, 2, 3, 4]
    assert step.mark == RolloutMark("web", 2, "paused")
    assert step.rollback is None


def test_a_replica_never_ready_within_monitor_is_a_failure() -> None:
    slow = row(0, V2, "failed", ready=False)  # running, but its owner judged it failed at monitor's end
    step = decide(revision(spec(failure_action="pause")), ALL, statuses([slow, *old(1, 2, 3, 4)]), mine=ALL)
    assert step.status.phase is Phase.PAUSED


def test_a_failure_that_later_recovered_still_counts_while_its_verdict_stands() -> None:
    recovered = row(0, V2, "failed", ready=True)  # verdicts are sticky: it failed its monitor window
    step = decide(revision(spec(failure_action="pause")), ALL, statuses([recovered, *old(1, 2, 3, 4)]), mine=ALL)
    assert step.status.phase is Phase.PAUSED


@pytest.mark.parametrize(("failed", "ratio", "phase"), [
    (1, 0.0, Phase.PAUSED),  # the default: any failure
    (1, 0.2, Phase.UPDATING),  # 1 of 5 is not more than 20 %
    (2, 0.2, Phase.PAUSED),
    (2, 0.5, Phase.UPDATING),
    (3, 0.5, Phase.PAUSED),
])
def test_the_failure_action_fires_only_past_max_failure_ratio_of_all_slots(failed: int, ratio: float,
                                                                          phase: Phase) -> None:
    reports = [row(i, V2, "failed", state="exited") for i in range(failed)] + old(*range(failed, 5))
    rev = revision(spec(parallelism=5, failure_action="pause", max_failure_ratio=ratio))
    assert decide(rev, ALL, statuses(reports), mine=ALL).status.phase is phase


def test_continue_counts_a_failed_slot_as_through_and_moves_on() -> None:
    crashed = row(0, V2, "failed", state="exited")
    rev = revision(spec(parallelism=1, failure_action="continue"))
    step = decide(rev, ALL, statuses([crashed, *old(1, 2, 3, 4)]), mine=ALL)
    assert step.status.phase is Phase.UPDATING and held(step.held) == [2, 3, 4]
    done = decide(rev, ALL, statuses([crashed, *new(1, 2, 3, 4)]), mine=ALL)
    assert done.status.phase is Phase.COMPLETED and done.status.failed == 1
    assert done.mark == RolloutMark("web", 2, "completed")


def test_rollback_holds_every_slot_and_writes_the_previous_spec() -> None:
    crashed = row(0, V2, "failed", state="exited")
    rev = revision(spec(failure_action="rollback"), old=V1, generation=7)
    step = decide(rev, ALL, statuses([crashed, *old(1, 2, 3, 4)]), mine=ALL)
    assert step.status.phase is Phase.ROLLING_BACK
    assert held(step.held) == [0, 1, 2, 3, 4]
    assert step.rollback == rollback(rev)
    assert step.rollback is not None and step.rollback.spec == V1 and step.rollback.expect == 7
    assert step.mark is None  # the rollback generation itself is the durable record


def test_every_node_seeing_the_failure_writes_the_same_rollback() -> None:
    rev = revision(spec(failure_action="rollback"), old=V1, generation=7)
    one = decide(rev, ALL, statuses([row(0, V2, "failed", state="exited")], old(1, 2, 3, 4)), mine=[0])
    other = decide(rev, ALL, statuses([row(0, V2, "failed", state="exited"), *old(1)]), mine=[3, 4])
    assert one.rollback == other.rollback is not None


def test_rollback_with_no_previous_spec_fails_and_holds() -> None:
    rev = revision(spec(failure_action="rollback"), old=None, generation=1)
    step = decide(rev, ALL, statuses([row(0, V2, "failed", state="exited")]), mine=ALL)
    assert step.status.phase is Phase.FAILED and step.rollback is None
    assert held(step.held) == [0, 1, 2, 3, 4]


def test_a_scale_change_whose_new_replicas_fail_is_not_rolled_back() -> None:
    scaled = spec(failure_action="rollback", replicas=5)
    rev = revision(scaled, old=spec(failure_action="rollback", replicas=3))  # same version: nothing to restore
    step = decide(rev, ALL, statuses([*new(0, 1, 2), row(3, V2, "failed", state="exited")]), mine=ALL)
    assert step.status.phase is Phase.FAILED and step.rollback is None


def test_a_failing_rollback_pauses_instead_of_rolling_back_again() -> None:
    back = revision(spec("reg/web:1", failure_action="rollback"), old=V2, generation=8, rollback_of=7)
    step = decide(back, ALL, statuses([row(0, V1, "failed", state="exited")]), mine=ALL)
    assert step.status.phase is Phase.PAUSED and step.rollback is None


def test_a_rollback_generation_is_paced_by_rollback_config() -> None:
    base = spec("reg/web:1", parallelism=1)
    restored = replace(base, deploy=replace(base.deploy, rollback_config=UpdateConfig(parallelism=3)))
    back = revision(restored, old=V2, generation=8, rollback_of=7)
    step = decide(back, ALL, statuses(new(0, 1, 2, 3, 4)), mine=ALL)  # every slot still on the failed V2
    assert held(step.held) == [3, 4]
    assert step.status.phase is Phase.ROLLING_BACK and step.status.rollback_of == 7


# ---- outcomes published by nodes -----------------------------------------------------------------------------


def test_completion_is_marked_and_a_later_failure_triggers_nothing() -> None:
    rev = revision(spec(failure_action="rollback"), generation=4)
    done = decide(rev, ALL, statuses(new(0, 1, 2, 3, 4)), mine=ALL)
    assert done.status.phase is Phase.COMPLETED and done.mark == RolloutMark("web", 4, "completed")
    # later, slot 2's node dies and its replacement elsewhere crashes: the mark keeps the rollout completed
    later = statuses([*new(0, 1, 3, 4), row(2, V2, "failed", state="exited")], marks=[done.mark])
    step = decide(rev, ALL, later, mine=ALL)
    assert step.status.phase is Phase.COMPLETED and step.rollback is None and held(step.held) == []


def test_a_paused_mark_keeps_the_rollout_paused_after_the_failure_is_gone() -> None:
    rev = revision(spec(parallelism=1), generation=4)
    step = decide(rev, ALL, statuses([*new(0), *old(1, 2, 3, 4)], marks=[RolloutMark("web", 4, "paused")]),
                  mine=ALL)
    assert step.status.phase is Phase.PAUSED and held(step.held) == [0, 1, 2, 3, 4]


def test_completed_beats_paused_when_nodes_saw_both() -> None:
    marks = [RolloutMark("web", 4, "paused"), RolloutMark("web", 4, "completed")]
    step = decide(revision(generation=4), ALL, statuses(new(0, 1, 2, 3, 4), marks=marks), mine=ALL)
    assert step.status.phase is Phase.COMPLETED


def test_marks_of_other_generations_and_services_are_ignored() -> None:
    marks = [RolloutMark("web", 3, "completed"), RolloutMark("api", 4, "paused")]
    step = decide(revision(spec(parallelism=1), generation=4), ALL, statuses(old(0, 1, 2, 3, 4), marks=marks),
                  mine=ALL)
    assert step.status.phase is Phase.UPDATING and held(step.held) == [1, 2, 3, 4]


def test_a_rollout_completes_when_every_slot_settled_on_the_new_version() -> None:
    status = assess(revision(spec(parallelism=2)), ALL, statuses(new(0, 1, 2), new(3, 4)))
    assert (status.phase, status.updated, status.total, status.batch) == (Phase.COMPLETED, 5, 5, None)


def test_a_service_with_no_slots_is_complete() -> None:
    assert assess(revision(spec(replicas=0)), [], statuses()).phase is Phase.COMPLETED


def test_assess_and_decide_agree() -> None:
    view = statuses([*new(0, 1), row(2, V2, "watching"), *old(3, 4)])
    rev = revision(spec(parallelism=2))
    assert assess(rev, ALL, view) == decide(rev, ALL, view, mine=ALL).status


def test_a_failure_ratio_exactly_at_the_limit_does_not_fire() -> None:
    # 29 of 100 at max_failure_ratio 0.29: 0.29 * 100 is 28.999999999999996 in floating point
    slots = range(100)
    reports = [row(i, V2, "failed", state="exited") for i in range(29)] + old(*range(29, 100))
    rev = revision(spec(replicas=100, parallelism=100, failure_action="pause", max_failure_ratio=0.29))
    assert decide(rev, slots, statuses(reports), mine=[]).status.phase is Phase.UPDATING
