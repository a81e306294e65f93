"""SWIM merge precedence: higher incarnation wins; at equal incarnation left > dead > suspect > alive."""

from __future__ import annotations

import pytest

from gossip.members import MemberState, Outcome, Status, merge, needs_refute
from gossip.wire import Alive, Dead, Left, MemberNews, Suspect

X, Y = "1" * 32, "2" * 32


def state(status: Status, inc: int) -> MemberState:
    return MemberState(X, "x", ("198.18.0.11", 7946), inc, status, (), 0.0)


def alive(inc: int) -> Alive:
    return Alive(X, inc, "x", ("198.18.0.11", 7946), ())


@pytest.mark.parametrize(("current", "news", "outcome", "status"), [
    (None, alive(0), Outcome.APPLIED, Status.ALIVE),
    (None, Suspect(X, 5, Y), Outcome.IGNORED, None),
    (state(Status.ALIVE, 1), alive(1), Outcome.IGNORED, None),
    (state(Status.ALIVE, 1), alive(2), Outcome.APPLIED, Status.ALIVE),
    (state(Status.SUSPECT, 1), alive(2), Outcome.APPLIED, Status.ALIVE),
    (state(Status.SUSPECT, 1), alive(1), Outcome.IGNORED, None),
    (state(Status.DEAD, 3), alive(4), Outcome.APPLIED, Status.ALIVE),
    (state(Status.ALIVE, 2), Suspect(X, 1, Y), Outcome.IGNORED, None),
    (state(Status.ALIVE, 2), Suspect(X, 2, Y), Outcome.APPLIED, Status.SUSPECT),
    (state(Status.SUSPECT, 2), Suspect(X, 2, Y), Outcome.CONFIRMED, Status.SUSPECT),
    (state(Status.DEAD, 2), Suspect(X, 2, Y), Outcome.IGNORED, None),
    (state(Status.SUSPECT, 2), Dead(X, 2, Y), Outcome.APPLIED, Status.DEAD),
    (state(Status.ALIVE, 2), Dead(X, 1, Y), Outcome.IGNORED, None),
    (state(Status.DEAD, 2), Dead(X, 2, Y), Outcome.IGNORED, None),
    (state(Status.DEAD, 2), Left(X, 2), Outcome.APPLIED, Status.LEFT),
    (state(Status.LEFT, 2), Dead(X, 2, Y), Outcome.IGNORED, None),
    (state(Status.LEFT, 2), Dead(X, 3, Y), Outcome.IGNORED, None),
])
def test_merge_precedence(current: MemberState | None, news: MemberNews, outcome: Outcome,
                          status: Status | None) -> None:
    result = merge(current, news, now=5.0)
    assert result.outcome is outcome
    if status is not None:
        assert result.state is not None and result.state.status is status


def test_applied_news_stamps_the_change_time() -> None:
    result = merge(state(Status.ALIVE, 1), alive(2), now=9.0)
    assert result.state is not None
    assert result.state.since == 9.0 and result.state.incarnation == 2


@pytest.mark.parametrize(("mine", "news", "leaving", "refute"), [
    (3, Suspect(X, 3, Y), False, True),
    (3, Suspect(X, 2, Y), False, False),
    (3, Dead(X, 3, Y), False, True),
    (3, Dead(X, 3, Y), True, False),
    (3, alive(4), False, True),
    (3, alive(3), False, False),
])
def test_refute_only_news_that_would_win(mine: int, news: MemberNews, leaving: bool, refute: bool) -> None:
    assert needs_refute(mine, news, leaving) is refute
