"""The probe state machine (Kubernetes' thresholds, Docker's start period) and the schedule, as tables."""

from __future__ import annotations

import pytest

from node.probes.model import Kind, Outcome
from node.probes.state import (
    ProbeState,
    Transition,
    first_probe_at,
    initial,
    next_probe_at,
    observe,
)
from tests.unit.probes.helpers import FAIL, OK, UNKNOWN, check

READY, UNREADY, RESTART = Transition.BECAME_READY, Transition.BECAME_UNREADY, Transition.RESTART_WANTED
CODES = {"S": OK, "F": FAIL, "?": UNKNOWN}


def play(kind: Kind, results: str, *, success: int = 1, failure: int = 3, grace_s: float = 0.0,
         step_s: float = 1.0) -> tuple[list[bool], list[Transition | None]]:
    """Feed results (S success, F failure, ? unknown) one per step_s; return healthy after each and transitions."""
    c = check(kind, success=success, failure=failure, grace_s=grace_s)
    state = initial(kind)
    healthy, transitions = [], []
    for i, code in enumerate(results):
        state, transition = observe(state, c, CODES[code], age_s=(i + 1) * step_s)
        healthy.append(state.healthy)
        transitions.append(transition)
    return healthy, transitions


def test_readiness_starts_not_ready_and_liveness_and_healthcheck_start_alive() -> None:
    assert initial(Kind.READINESS).healthy is False
    assert initial(Kind.LIVENESS).healthy is True
    assert initial(Kind.HEALTHCHECK).healthy is True


@pytest.mark.parametrize(("results", "success", "failure", "expected"), [
    # one success makes it ready at once with the default threshold
    ("S", 1, 3, [READY]),
    # failures before the first success change nothing: it was never ready
    ("FFFS", 1, 3, [None, None, None, READY]),
    # success_threshold 2: two in a row, a failure in between starts the count again
    ("SFSS", 2, 3, [None, None, None, READY]),
    # failure_threshold 3: out of rotation at the third failure in a row, not before
    ("SFFF", 1, 3, [READY, None, None, UNREADY]),
    # a success in between resets the failure count
    ("SFFSFFF", 1, 3, [READY, None, None, None, None, None, UNREADY]),
    # and back after success_threshold successes
    ("SFSS", 1, 1, [READY, UNREADY, READY, None]),
    ("SFFSS", 2, 2, [None, None, None, None, READY]),
    ("SSFFSSS", 2, 2, [None, READY, None, UNREADY, None, READY, None]),
])
def test_readiness_thresholds(results: str, success: int, failure: int, expected: list[Transition | None]) -> None:
    _, transitions = play(Kind.READINESS, results, success=success, failure=failure)
    assert transitions == expected


@pytest.mark.parametrize("kind", [Kind.LIVENESS, Kind.HEALTHCHECK])
@pytest.mark.parametrize(("results", "failure", "expected_at"), [
    ("FFF", 3, 2),  # the third failure in a row wants a restart
    ("FFSFFF", 3, 5),  # a success resets the count
    ("F", 1, 0),
    ("SSSS", 3, None),
])
def test_liveness_wants_a_restart_after_failure_threshold_failures_in_a_row(
        kind: Kind, results: str, failure: int, expected_at: int | None) -> None:
    healthy, transitions = play(kind, results, failure=failure)
    wanted = [i for i, t in enumerate(transitions) if t is RESTART]
    assert wanted == ([] if expected_at is None else [expected_at])
    assert healthy[-1] is (expected_at is None)


def test_a_liveness_verdict_is_final_whatever_comes_after() -> None:
    healthy, transitions = play(Kind.LIVENESS, "FFFSSSFFF")
    assert transitions == [None, None, RESTART] + [None] * 6
    assert healthy[2:] == [False] * 7


def test_unknown_results_change_nothing_not_even_the_streak() -> None:
    _, transitions = play(Kind.READINESS, "SF?F?F", failure=3)
    assert transitions == [READY, None, None, None, None, UNREADY]
    _, transitions = play(Kind.READINESS, "??????")
    assert transitions == [None] * 6


def test_healthcheck_failures_in_the_start_period_do_not_count() -> None:
    # results at ages 1..6 s; start period 3.5 s: the failures at 1, 2, 3 s are ignored; 4, 5, 6 s count
    healthy, transitions = play(Kind.HEALTHCHECK, "FFFFFF", failure=3, grace_s=3.5)
    assert transitions == [None, None, None, None, None, RESTART]
    assert healthy == [True] * 5 + [False]


def test_a_success_ends_the_start_period_early() -> None:
    # Docker: "if a health check succeeds during the start period, ... all consecutive failures will be counted"
    _, transitions = play(Kind.HEALTHCHECK, "SFFF", failure=3, grace_s=100.0)
    assert transitions == [None, None, None, RESTART]


def test_the_streak_is_capped_so_a_long_run_stays_small() -> None:
    c = check(Kind.READINESS, success=2, failure=5)
    state = initial(Kind.READINESS)
    for _ in range(1000):
        state, _ = observe(state, c, OK, age_s=0.0)
    assert state == ProbeState(healthy=True, last=True, streak=5, started=True)


def test_a_carried_state_keeps_its_verdict_and_counts_afresh() -> None:
    c = check(Kind.READINESS, failure=2)
    state, _ = observe(initial(Kind.READINESS), c, OK, 0.0)
    state, _ = observe(state, c, FAIL, 0.0)
    carried = state.carried()
    assert carried.healthy is True and carried.streak == 0
    carried, transition = observe(carried, c, FAIL, 0.0)
    assert transition is None and carried.healthy is True  # one failure since the change, threshold 2


@pytest.mark.parametrize(("seen", "now", "delay", "expected"), [
    (100.0, 100.0, 0.0, 100.0),
    (100.0, 100.0, 5.0, 105.0),
    (100.0, 103.0, 5.0, 105.0),
    (100.0, 200.0, 5.0, 200.0),  # a check that changed long after the container was seen: at once
])
def test_first_probe_waits_the_initial_delay_from_when_the_container_was_seen(
        seen: float, now: float, delay: float, expected: float) -> None:
    assert first_probe_at(check(delay_s=delay), seen, now) == expected


@pytest.mark.parametrize(("started", "finished", "expected"), [
    (10.0, 10.5, 20.0),  # one period after the start of the last probe
    (10.0, 19.99, 20.0),
    (10.0, 25.0, 25.0),  # ran longer than a period: the next follows at once, never overlapping
])
def test_next_probe_is_one_period_after_the_last_start(started: float, finished: float, expected: float) -> None:
    assert next_probe_at(check(period_s=10.0), started, finished) == expected


def test_outcome_ok_is_success_only() -> None:
    assert [o.ok for o in (OK, FAIL, UNKNOWN)] == [True, False, False]
    assert isinstance(OK, Outcome)
