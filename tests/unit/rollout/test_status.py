"""`shoal rollout status`: phase, progress and exit code of the followed generation, as JSON and one line."""

from __future__ import annotations

import pytest

from node.rollout import Phase, RolloutStatus, assess, line
from tests.unit.rollout.helpers import V1, V2, new, old, revision, row, spec, statuses

ALL = range(4)


def test_progress_counts_settled_slots_of_the_new_version() -> None:
    view = statuses([*new(0), row(1, V2, "watching"), *old(2, 3)])
    status = assess(revision(spec(replicas=4, parallelism=2)), ALL, view)
    assert (status.phase, status.updated, status.failed, status.total) == (Phase.UPDATING, 1, 0, 4)
    assert (status.batch, status.batches) == (0, 2)
    assert status.exit_code is None
    assert line(status) == "web generation 2 [#####---------------] 1/4 updating (batch 1 of 2)"


def test_a_paused_rollout_says_why_and_exits_1() -> None:
    view = statuses([row(0, V2, "failed", state="exited"), *old(1, 2, 3)])
    status = assess(revision(spec(replicas=4, failure_action="pause")), ALL, view)
    assert status.phase is Phase.PAUSED and status.exit_code == 1
    assert status.message.startswith("1 of 4 replicas failed (max_failure_ratio 0)")
    assert "1 failed" in line(status)


def test_a_failing_update_under_rollback_reports_rolling_back_to_the_previous_generation() -> None:
    view = statuses([row(0, V2, "failed", state="exited"), *old(1, 2, 3)])
    status = assess(revision(spec(replicas=4, failure_action="rollback"), V1, generation=9), ALL, view)
    assert status.phase is Phase.ROLLING_BACK and not status.phase.ended
    assert status.message.endswith("rolling back to the spec of generation 8")


def test_a_rollback_generation_shows_rolling_back_then_rolled_back_and_exits_1() -> None:
    back = revision(spec("reg/web:1", replicas=4), V2, generation=10, rollback_of=9)
    going = assess(back, ALL, statuses([row(0, V1), *new(1, 2, 3)]))
    assert (going.phase, going.rollback_of, going.updated) == (Phase.ROLLING_BACK, 9, 1)
    done = assess(back, ALL, statuses(old(0, 1, 2, 3)))
    assert done.phase is Phase.ROLLED_BACK and done.exit_code == 1 and done.batch is None


def test_a_completed_rollout_exits_0() -> None:
    status = assess(revision(spec(replicas=4)), ALL, statuses(new(0, 1, 2, 3)))
    assert status.exit_code == 0
    assert line(status) == "web generation 2 [####################] 4/4 completed"


def test_json_carries_every_field() -> None:
    status = assess(revision(spec(replicas=4)), ALL, statuses(new(0, 1, 2, 3)))
    assert status.to_json() == {
        "service": "web", "generation": 2, "version": status.version, "phase": "completed", "updated": 4,
        "failed": 0, "total": 4, "batch": None, "batches": 4, "rollback_of": None, "message": "", "ended": True}


@pytest.mark.parametrize(("phase", "code"), [
    (Phase.UPDATING, None), (Phase.ROLLING_BACK, None), (Phase.COMPLETED, 0), (Phase.PAUSED, 1),
    (Phase.ROLLED_BACK, 1), (Phase.FAILED, 1),
])
def test_exit_codes_follow_the_spec(phase: Phase, code: int | None) -> None:
    assert RolloutStatus("web", 1, "v", phase, 0, 0, 1, None, 1).exit_code == code
