"""`shoal rollout status / rollback / canary / switch` through click's CliRunner against the real API app served on
loopback over a fake agent (what they print and their exit codes), and the polling loop with a scripted node and
a fake clock (which lines it shows, when it stops, the rollback generation it follows)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from node.cli import cli
from node.cli_services import follow
from tests.unit.desired.fakes import FakeAgent, serving
from tests.unit.desired.rollouts import CANARY, SIDES, put, record, report


@pytest.fixture
def node() -> Iterator[tuple[FakeAgent, str]]:
    agent = FakeAgent()
    with serving(agent) as url:
        yield agent, url


def shoal(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def updated(agent: FakeAgent, update: str = "{}") -> None:
    put(agent, "1", update)
    put(agent, "2", update)


def test_rollout_status_of_a_completed_rollout_prints_the_bar_and_exits_0(node: tuple[FakeAgent, str]) -> None:
    agent, url = node
    updated(agent)
    report(agent, {0: ("2", "running", "settled"), 1: ("2", "running", "settled")})
    done = shoal("rollout", "status", "web", "--host", url)
    assert done.exit_code == 0, done.stderr
    assert done.stdout == "web generation 2 [####################] 2/2 completed\n"


def test_rollout_status_of_a_paused_rollout_exits_1_and_json_prints_only_the_object(
        node: tuple[FakeAgent, str]) -> None:
    agent, url = node
    updated(agent, "{failure_action: pause}")
    report(agent, {0: ("2", "exited", "failed"), 1: ("1", "running", "settled")})
    done = shoal("rollout", "status", "web", "--json", "--host", url)
    assert done.exit_code == 1
    status = json.loads(done.stdout)
    assert (status["phase"], status["exit_code"], status["failed"]) == ("paused", 1, 1)


def test_rollout_status_gives_up_after_the_timeout_with_exit_1(node: tuple[FakeAgent, str]) -> None:
    agent, url = node
    updated(agent)
    report(agent, {0: ("2", "running", "watching"), 1: ("1", "running", "settled")})
    done = shoal("rollout", "status", "web", "--timeout", "0.3", "--host", url)
    assert done.exit_code == 1
    assert done.stdout == "web generation 2 [--------------------] 0/2 updating (batch 1 of 2)\n"
    assert "web generation 2 is still updating after 0.3s" in done.stderr


def test_rollout_status_of_a_missing_service_exits_1(node: tuple[FakeAgent, str]) -> None:
    assert shoal("rollout", "status", "nope", "--host", node[1]).exit_code == 1


def test_rollback_prints_the_generation_it_wrote_and_refuses_without_a_previous(node: tuple[FakeAgent, str]) -> None:
    agent, url = node
    put(agent)
    refused = shoal("rollback", "web", "--host", url)
    assert refused.exit_code == 1 and "no previous spec to roll back to" in refused.stderr
    put(agent, "2")
    done = shoal("rollback", "web", "--host", url)
    assert done.exit_code == 0, done.stderr
    assert done.stdout == ("web: updated to generation 3: rollback of generation 2 to the spec of generation 1 "
                           "(requested by hand)\n")
    assert json.loads(record(agent).entry.payload)["spec"]["image"] == "reg/web:1"


def test_canary_commands_write_and_print(node: tuple[FakeAgent, str]) -> None:
    agent, url = node
    put(agent, extra=CANARY)
    weight = shoal("canary", "weight", "web", "30", "--host", url)
    assert (weight.exit_code, weight.stdout) == (0, "web: updated to generation 2: canary changed\n")
    assert json.loads(record(agent).entry.payload)["x-shoal"]["canary"]["weight"] == 30.0
    promote = shoal("canary", "promote", "web", "--host", url)
    assert promote.stdout == "web: updated to generation 3: image reg/web:1 -> reg/web:9; canary removed\n"
    abort = shoal("canary", "abort", "web", "--host", url)
    assert abort.exit_code == 1 and "has no canary to abort" in abort.stderr


@pytest.mark.parametrize("weight", ["0", "101", "many"])
def test_a_bad_canary_weight_is_a_usage_error(weight: str) -> None:
    assert shoal("canary", "weight", "web", weight, "--host", "http://127.0.0.1:9").exit_code == 2


def test_switch_flips_or_sets_the_side(node: tuple[FakeAgent, str]) -> None:
    agent, url = node
    put(agent, extra=SIDES)
    flipped = shoal("switch", "web", "--host", url)
    assert (flipped.exit_code, flipped.stdout) == (0, "web: updated to generation 2: blue_green active blue -> green\n")
    same = shoal("switch", "web", "green", "--host", url)
    assert same.stdout == "web: unchanged (generation 2)\n"
    assert shoal("switch", "web", "red", "--host", url).exit_code == 2


# ---- the polling loop --------------------------------------------------------------------------------------


def status(generation: int, phase: str, settled: int, exit_code: int | None, *, rollback_of: int | None = None,
           message: str = "") -> dict[str, Any]:
    return {"service": "web", "generation": generation, "version": "v", "phase": phase, "settled": settled,
            "failed": 0, "total": 4, "batch": None if exit_code is not None else settled, "batches": 4,
            "rollback_of": rollback_of, "message": message, "ended": exit_code is not None, "exit_code": exit_code}


class Script:
    """A node answering the given statuses in turn, a clock that advances only when slept, and what was shown."""

    def __init__(self, *answers: dict[str, Any]) -> None:
        self.answers, self.now, self.asked = list(answers), 0.0, 0
        self.shown: list[str] = []

    def fetch(self) -> dict[str, Any]:
        self.asked += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def run(self, timeout_s: float | None = None) -> tuple[Any, bool]:
        return follow(self.fetch, self.shown.append, self.sleep, lambda: self.now, timeout_s, 0.5)


def test_follow_shows_each_change_once_and_follows_the_rollback_generation() -> None:
    script = Script(status(7, "updating", 1, None), status(7, "updating", 1, None),
                    status(7, "rolling-back", 1, None, message="1 of 4 replicas failed"),
                    status(8, "rolling-back", 3, None, rollback_of=7),
                    status(8, "rolled-back", 4, 1, rollback_of=7, message="generation 7 rolled back"))
    final, timed_out = script.run()
    assert (final["generation"], final["exit_code"], timed_out) == (8, 1, False)
    assert script.shown == [
        "web generation 7 [#####---------------] 1/4 updating (batch 2 of 4)",
        "web generation 7 [#####---------------] 1/4 rolling-back (batch 2 of 4): 1 of 4 replicas failed",
        "web generation 8 [###############-----] 3/4 rolling-back (batch 4 of 4)",
        "web generation 8 [####################] 4/4 rolled-back: generation 7 rolled back"]
    assert (script.asked, script.now) == (5, 2.0)


def test_follow_stops_at_the_timeout_on_its_own_clock() -> None:
    script = Script(status(3, "updating", 0, None))
    final, timed_out = script.run(timeout_s=1.2)
    assert timed_out and final["exit_code"] is None
    assert script.now == pytest.approx(1.2) and script.shown == [
        "web generation 3 [--------------------] 0/4 updating (batch 1 of 4)"]


def test_follow_refuses_an_answer_that_is_not_a_status() -> None:
    with pytest.raises(ValueError, match="not a rollout status"):
        Script({"phase": "sideways"}).run()
