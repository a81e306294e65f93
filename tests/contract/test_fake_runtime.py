"""FakeRuntime's test controls, which the contract does not cover: queued failures, the engine going down, the
call record, crashes on demand, the injected clock and deterministic ids."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from node.runtime.base import EXITED, LABEL_SERVICE, RUNNING, ContainerSpec, RuntimeFailure
from node.runtime.fake import Call, FakeRuntime

IMAGE = "198.18.0.1:5000/shoal-demo:1"


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def spec(name: str = "shoal.web.0.a") -> ContainerSpec:
    return ContainerSpec(name=name, image=IMAGE, command=None, env=(), labels=((LABEL_SERVICE, "web"),),
                         hostname="web-0")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_fail_next_fails_exactly_that_many_calls_of_that_operation_and_changes_nothing() -> None:
    fake = FakeRuntime(clock=Clock(), images={IMAGE})
    fake.fail_next("run", times=2, temporary=False, message="no space left")
    for _ in range(2):
        with pytest.raises(RuntimeFailure, match="no space left") as caught:
            run(fake.run(spec()))
        assert caught.value.temporary is False
    assert run(fake.containers()) == []
    assert run(fake.run(spec())).state == RUNNING


def test_a_down_engine_fails_every_call_temporarily_until_it_is_back() -> None:
    fake = FakeRuntime(clock=Clock())
    fake.down = True
    with pytest.raises(RuntimeFailure) as caught:
        run(fake.ping())
    assert caught.value.temporary is True
    fake.down = False
    run(fake.ping())


def test_calls_are_recorded_in_order_with_their_arguments_even_when_they_fail() -> None:
    fake = FakeRuntime(clock=Clock(), images={IMAGE})
    started = run(fake.run(spec()))
    run(fake.stop(started.id, 5.0))
    with pytest.raises(RuntimeFailure):
        run(fake.pull("reg/absent:1"))
    run(fake.remove(started.id))
    assert fake.calls == [Call("run", (spec(),)), Call("stop", (started.id, 5.0)), Call("pull", ("reg/absent:1",)),
                          Call("remove", (started.id,))]
    assert fake.ops() == ["run", "stop", "pull", "remove"]


def test_exit_crashes_a_running_container_at_the_clocks_time() -> None:
    clock = Clock()
    fake = FakeRuntime(clock=clock, images={IMAGE})
    started = run(fake.run(spec()))
    clock.now = 1042.5
    fake.exit(started.id, 137)
    [crashed] = run(fake.containers())
    assert (crashed.state, crashed.exit_code, crashed.started_at, crashed.finished_at, crashed.address) == \
        (EXITED, 137, 1000.0, 1042.5, None)
    with pytest.raises(ValueError, match="not running"):
        fake.exit(started.id, 1)


def test_two_fakes_fed_the_same_calls_report_the_same_ids_and_addresses() -> None:
    def scenario() -> list[tuple[str, str | None]]:
        fake = FakeRuntime(clock=Clock(), images={IMAGE})
        return [(c.id, c.address) for c in (run(fake.run(spec(f"shoal.web.{i}.a"))) for i in range(3))]

    first = scenario()
    assert first == scenario()
    assert [address for _, address in first] == ["10.88.0.2", "10.88.0.3", "10.88.0.4"]


def test_an_address_is_reused_only_after_its_container_stopped() -> None:
    fake = FakeRuntime(clock=Clock(), images={IMAGE})
    one = run(fake.run(spec("shoal.web.1.a")))
    run(fake.stop(one.id, 1.0))
    two = run(fake.run(spec("shoal.web.2.a")))
    assert two.address == one.address


def test_script_exec_returns_its_results_in_order_then_repeats_the_last() -> None:
    fake = FakeRuntime(clock=Clock(), images={IMAGE})
    started = run(fake.run(spec()))
    fake.script_exec(started.id, 0, 1, TimeoutError("hangs"), 2)
    assert run(fake.exec(started.id, ("true",), 1.0)) == 0
    assert run(fake.exec(started.id, ("true",), 1.0)) == 1
    with pytest.raises(TimeoutError, match="hangs"):
        run(fake.exec(started.id, ("true",), 1.0))
    assert [run(fake.exec(started.id, ("true",), 1.0)) for _ in range(3)] == [2, 2, 2]
    assert fake.calls[-1] == Call("exec", (started.id, ("true",), 1.0))


def test_exec_without_a_script_asks_exec_result_or_exits_0() -> None:
    asked: list[tuple[str, tuple[str, ...], float]] = []

    def result(container: ContainerSpec, argv: tuple[str, ...], timeout_s: float) -> int:
        asked.append((container.name, argv, timeout_s))
        return 9

    scripted = FakeRuntime(clock=Clock(), images={IMAGE}, exec_result=result)
    plain = FakeRuntime(clock=Clock(), images={IMAGE})
    assert run(scripted.exec(run(scripted.run(spec())).id, ["cat", "/ready"], 2.0)) == 9
    assert asked == [("shoal.web.0.a", ("cat", "/ready"), 2.0)]
    assert run(plain.exec(run(plain.run(spec())).id, ["cat", "/ready"], 2.0)) == 0
