"""The Runtime contract (node/runtime/base.py), one suite run against FakeRuntime and PodmanRuntime: whatever a
component test learns from the fake holds for podman. Tests marked podman-only look behind the adapter (the
container's own view, latency), which the fake cannot model."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine
from ipaddress import ip_address, ip_network
from typing import Any

import pytest

from node.runtime.base import (
    EXITED,
    LABEL_REPLICA,
    LABEL_SERVICE,
    RUNNING,
    Container,
    ContainerSpec,
    Runtime,
    RuntimeFailure,
)
from node.runtime.podman import PodmanRuntime
from tests.contract.backends import (
    MISSING,
    NOT_FOUND,
    PULLABLE,
    SLEEPING,
    Backend,
    PodmanBackend,
    exiting,
    sleeping_for,
)
from tests.contract.podman_env import IMAGE, SUBNET_POOL

pytestmark = pytest.mark.timeout(90)

SCENARIO_TIMEOUT_S = 60.0
WAIT_S = 15.0  # a container's exit reaches podman's list within ~0.1 s here; 15 s leaves room for a slow CI
CLUSTER_RANGE = ip_network("198.19.0.0/16")  # every container subnet of these tests lies inside it


def play(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(SCENARIO_TIMEOUT_S):
            await scenario()

    asyncio.run(bounded())


def spec(name: str, *, command: tuple[str, ...] | None = SLEEPING, image: str = IMAGE, **extra: Any) -> ContainerSpec:
    labels = tuple(sorted({LABEL_SERVICE: "web", LABEL_REPLICA: "3", **extra.pop("labels", {})}.items()))
    return ContainerSpec(name=name, image=image, command=command, env=extra.pop("env", ()), labels=labels,
                         hostname=extra.pop("hostname", "web-3"), **extra)


async def listed_until(runtime: Runtime, what: str, ok: Callable[[list[Container]], bool]) -> list[Container]:
    """Poll containers() until `ok` holds; fail after WAIT_S with what was last seen."""
    deadline = time.monotonic() + WAIT_S
    while True:
        seen = await runtime.containers()
        if ok(seen):
            return seen
        if time.monotonic() >= deadline:
            raise AssertionError(f"not {what} after {WAIT_S} s; listed: {seen}")
        await asyncio.sleep(0.05)


def by_name(containers: list[Container], name: str) -> list[Container]:
    return [c for c in containers if c.name == name]


async def permanent(call: Awaitable[object]) -> RuntimeFailure:
    with pytest.raises(RuntimeFailure) as caught:
        await call
    assert caught.value.temporary is False, caught.value
    return caught.value


def test_ping_succeeds_when_the_engine_answers(backend: Backend) -> None:
    play(backend.runtime.ping)


def test_containers_is_empty_at_start_and_never_lists_a_container_shoal_does_not_own(backend: Backend) -> None:
    async def scenario() -> None:
        assert await backend.runtime.containers() == []
        backend.add_foreign("someone-elses")
        assert await backend.runtime.containers() == []

    play(scenario)


def test_run_starts_a_container_listed_running_with_its_name_image_and_labels(backend: Backend) -> None:
    async def scenario() -> None:
        before = time.time()
        started = await backend.runtime.run(spec("shoal.web.3.a1", labels={"shoal.generation": "4"}))
        assert started.state == RUNNING and started.name == "shoal.web.3.a1" and started.image == IMAGE
        assert started.labels == (("shoal.generation", "4"), (LABEL_REPLICA, "3"), (LABEL_SERVICE, "web"))
        assert started.label(LABEL_SERVICE) == "web"
        assert started.exit_code is None and started.finished_at is None
        assert started.started_at is not None and before - 2 <= started.started_at <= time.time() + 2
        assert await backend.runtime.containers() == [started]

    play(scenario)


def test_run_creates_the_container_with_hostname_env_command_and_dns(backend: Backend) -> None:
    async def scenario() -> None:
        started = await backend.runtime.run(spec("shoal.web.3.a2", hostname="web-7", dns=("198.19.0.53",),
                                                 env=(("GREETING", "hello"), ("MODE", "a=b"))))
        seen = backend.inspect(started.id)
        assert seen.hostname == "web-7" and seen.command == SLEEPING and seen.dns == ("198.19.0.53",)
        assert seen.env["GREETING"] == "hello" and seen.env["MODE"] == "a=b"

    play(scenario)


def test_cpu_and_memory_limits_are_applied(backend: Backend) -> None:
    async def scenario() -> None:
        limited = await backend.runtime.run(spec("shoal.web.3.a3", cpus=0.5, memory_bytes=64 * 1024 * 1024))
        free = await backend.runtime.run(spec("shoal.web.4.a3"))
        seen, unlimited = backend.inspect(limited.id), backend.inspect(free.id)
        assert seen.memory_bytes == 64 * 1024 * 1024
        assert (seen.cpu_quota_us, seen.cpu_period_us) == (50_000, 100_000)
        assert unlimited.memory_bytes == 0 and unlimited.cpu_quota_us == 0

    play(scenario)


def test_a_container_whose_command_exits_is_listed_exited_with_its_code_and_finish_time(backend: Backend) -> None:
    async def scenario() -> None:
        before = time.time()
        await backend.runtime.run(spec("shoal.job.0.b1", command=exiting(3)))
        listed = await listed_until(backend.runtime, "exited", lambda cs: [c.state for c in cs] == [EXITED])
        done = listed[0]
        assert done.exit_code == 3 and done.address is None
        assert done.finished_at is not None and before - 2 <= done.finished_at <= time.time() + 2

    play(scenario)


def test_stop_ends_a_running_container_and_is_idempotent(backend: Backend) -> None:
    async def scenario() -> None:
        started = await backend.runtime.run(spec("shoal.web.3.c1"))
        t0 = time.monotonic()
        await backend.runtime.stop(started.id, 10.0)
        assert time.monotonic() - t0 < 5.0, "SIGTERM was not honoured: stop waited for the SIGKILL deadline"
        [stopped] = await backend.runtime.containers()
        assert stopped.id == started.id and stopped.state == EXITED and stopped.exit_code is not None
        await backend.runtime.stop(started.id, 10.0)
        await backend.runtime.remove(started.id)
        await backend.runtime.stop(started.id, 10.0)

    play(scenario)


def test_remove_deletes_a_running_container_and_is_idempotent(backend: Backend) -> None:
    async def scenario() -> None:
        started = await backend.runtime.run(spec("shoal.web.3.d1"))
        await backend.runtime.remove(started.id)
        assert await backend.runtime.containers() == []
        await backend.runtime.remove(started.id)
        await backend.runtime.remove("0" * 64)

    play(scenario)


def test_run_replaces_an_exited_container_of_the_same_name(backend: Backend) -> None:
    async def scenario() -> None:
        first = await backend.runtime.run(spec("shoal.web.3.e1", command=exiting(1)))
        await listed_until(backend.runtime, "exited", lambda cs: [c.state for c in cs] == [EXITED])
        second = await backend.runtime.run(spec("shoal.web.3.e1"))
        assert second.id != first.id and second.state == RUNNING
        assert [(c.id, c.state) for c in await backend.runtime.containers()] == [(second.id, RUNNING)]

    play(scenario)


def test_run_refuses_a_name_held_by_a_running_container(backend: Backend) -> None:
    async def scenario() -> None:
        first = await backend.runtime.run(spec("shoal.web.3.f1"))
        failure = await permanent(backend.runtime.run(spec("shoal.web.3.f1")))
        assert "shoal.web.3.f1" in str(failure)
        assert [(c.id, c.state) for c in await backend.runtime.containers()] == [(first.id, RUNNING)]

    play(scenario)


def test_run_refuses_a_name_held_by_a_container_shoal_does_not_own(backend: Backend) -> None:
    async def scenario() -> None:
        backend.add_foreign("shoal.web.3.f2")
        failure = await permanent(backend.runtime.run(spec("shoal.web.3.f2")))
        assert "shoal.web.3.f2" in str(failure)

    play(scenario)


def test_run_refuses_a_spec_without_the_service_label(backend: Backend) -> None:
    async def scenario() -> None:
        unlabelled = ContainerSpec(name="shoal.web.3.f3", image=IMAGE, command=SLEEPING, env=(), labels=(),
                                   hostname="web-3")
        failure = await permanent(backend.runtime.run(unlabelled))
        assert LABEL_SERVICE in str(failure)
        assert await backend.runtime.containers() == []

    play(scenario)


def test_run_without_the_image_fails_permanently_naming_it(backend: Backend) -> None:
    async def scenario() -> None:
        assert await backend.runtime.image_present(MISSING) is False
        failure = await permanent(backend.runtime.run(spec("shoal.web.3.g1", image=MISSING)))
        assert MISSING in str(failure)
        assert await backend.runtime.containers() == []

    play(scenario)


def test_pull_of_an_image_no_registry_has_fails_permanently_naming_it(backend: Backend) -> None:
    async def scenario() -> None:
        failure = await permanent(backend.runtime.pull(MISSING))
        assert MISSING in str(failure)
        assert await backend.runtime.image_present(MISSING) is False

    play(scenario)


def test_pull_from_the_registry_makes_the_image_present_and_runnable(backend: Backend) -> None:
    async def scenario() -> None:
        assert await backend.runtime.image_present(PULLABLE) is False
        await backend.runtime.pull(PULLABLE)
        assert await backend.runtime.image_present(PULLABLE) is True
        started = await backend.runtime.run(spec("shoal.web.3.h1", image=PULLABLE))
        assert started.state == RUNNING and started.image == PULLABLE

    play(scenario)


def test_ensure_network_creates_once_and_returns_its_subnet(backend: Backend) -> None:
    async def scenario() -> None:
        name = backend.network("fixed")
        assert await backend.runtime.ensure_network(name, "198.19.251.0/24") == "198.19.251.0/24"
        assert await backend.runtime.ensure_network(name, "198.19.251.0/24") == "198.19.251.0/24"
        assert await backend.runtime.ensure_network(name, None) == "198.19.251.0/24"

    play(scenario)


def test_ensure_network_without_a_subnet_lets_the_engine_pick_one(backend: Backend) -> None:
    async def scenario() -> None:
        name = backend.network("auto")
        picked = await backend.runtime.ensure_network(name, None)
        assert ip_network(picked).subnet_of(ip_network(SUBNET_POOL))  # type: ignore[arg-type]
        assert await backend.runtime.ensure_network(name, None) == picked
        assert await backend.runtime.ensure_network(name, picked) == picked

    play(scenario)


def test_ensure_network_refuses_another_subnet_for_an_existing_network(backend: Backend) -> None:
    async def scenario() -> None:
        name = backend.network("clash")
        await backend.runtime.ensure_network(name, "198.19.251.0/24")
        failure = await permanent(backend.runtime.ensure_network(name, "198.19.252.0/24"))
        assert "198.19.251.0/24" in str(failure) and "198.19.252.0/24" in str(failure) and name in str(failure)

    play(scenario)


def test_a_running_container_on_a_network_has_an_address_in_its_subnet_until_it_stops(backend: Backend) -> None:
    async def scenario() -> None:
        network = backend.network("addr")
        subnet = ip_network(await backend.runtime.ensure_network(network, "198.19.253.0/24"))
        assert subnet.subnet_of(CLUSTER_RANGE)  # type: ignore[arg-type]
        one = await backend.runtime.run(spec("shoal.web.1.i1", network=network))
        two = await backend.runtime.run(spec("shoal.web.2.i1", network=network))
        listed = {c.id: c for c in await backend.runtime.containers()}
        for started in (one, two):
            assert started.address is not None and ip_address(started.address) in subnet
            assert listed[started.id].address == started.address
        assert one.address != two.address
        await backend.runtime.stop(one.id, 10.0)
        assert {c.id: c.address for c in await backend.runtime.containers()}[one.id] is None

    play(scenario)


def test_run_on_a_network_that_does_not_exist_fails_permanently(backend: Backend) -> None:
    async def scenario() -> None:
        failure = await permanent(backend.runtime.run(spec("shoal.web.3.j1", network=backend.network("absent"))))
        assert backend.network("absent") in str(failure)
        assert await backend.runtime.containers() == []

    play(scenario)


def test_an_engine_that_does_not_answer_is_a_temporary_failure(backend: Backend) -> None:
    async def scenario() -> None:
        down = backend.down_runtime()
        calls: list[Callable[[], Awaitable[object]]] = [
            down.ping, down.containers, lambda: down.run(spec("shoal.web.3.k1")), lambda: down.pull(PULLABLE)]
        for call in calls:
            with pytest.raises(RuntimeFailure) as caught:
                await call()
            assert caught.value.temporary is True, caught.value
        await down.close()

    play(scenario)


# -- podman only: what the fake cannot model --------------------------------------------------------------------


@pytest.mark.podman
def test_podman_container_sees_its_hostname_env_dns_and_the_configured_ulimits(podman_backend: PodmanBackend) -> None:
    """Checked from inside: the command exits 7 only if everything holds (no exec, no logs needed)."""
    nofile = podman_backend.env.podman("run", "--rm", IMAGE, "sh", "-c", "ulimit -n").stdout.strip()
    check = ('test "$GREETING" = hello && test "$(hostname)" = web-9 && '
             f'grep -q "nameserver 198.19.0.53" /etc/resolv.conf && test "$(ulimit -n)" = {nofile} && exit 7; exit 1')

    async def scenario() -> None:
        runtime = podman_backend.runtime
        await runtime.run(spec("shoal.web.9.p1", command=("sh", "-c", check), hostname="web-9",
                               env=(("GREETING", "hello"),), dns=("198.19.0.53",)))
        listed = await listed_until(runtime, "exited", lambda cs: [c.state for c in cs] == [EXITED])
        assert listed[0].exit_code == 7

    play(scenario)


@pytest.mark.podman
def test_podman_failure_messages_carry_the_engines_words(podman_backend: PodmanBackend) -> None:
    async def scenario() -> None:
        runtime = podman_backend.runtime
        missing = await permanent(runtime.run(spec("shoal.web.3.q1", image=MISSING)))
        assert "image not known" in str(missing)
        pull = await permanent(runtime.pull(MISSING))
        assert "manifest unknown" in str(pull)
        down = PodmanRuntime(podman_backend.env.root / "no-service-here.sock")
        with pytest.raises(RuntimeFailure, match=r"no-service-here\.sock"):
            await down.ping()
        await down.close()

    play(scenario)


@pytest.mark.podman
def test_podman_latency_of_run_and_containers(podman_backend: PodmanBackend) -> None:
    """Measured, printed (-s shows it) and bounded loosely: create+start through the adapter and a listing of
    10 running containers, cold (one inspect each for the address) and warm (one list request)."""

    async def scenario() -> None:
        runtime = podman_backend.runtime
        network = podman_backend.network("perf")
        await runtime.ensure_network(network, "198.19.254.0/24")
        runs = []
        for i in range(10):
            t0 = time.perf_counter()
            await runtime.run(spec(f"shoal.perf.{i}.r1", network=network))
            runs.append(time.perf_counter() - t0)
        fresh = PodmanRuntime(podman_backend.env.socket)  # knows no address yet: one inspect per container
        t0 = time.perf_counter()
        cold = await fresh.containers()
        cold_s = time.perf_counter() - t0
        await fresh.close()
        warm = []
        for _ in range(10):
            t0 = time.perf_counter()
            listed = await runtime.containers()
            warm.append(time.perf_counter() - t0)
        assert len(cold) == len(listed) == 10 and all(c.address for c in listed)
        print(f"\n[{podman_backend.env.network_backend}] run (create+start) "
              f"median {statistics.median(runs) * 1000:.0f} ms "
              f"(min {min(runs) * 1000:.0f}, max {max(runs) * 1000:.0f}); containers() with 10: "
              f"cold {cold_s * 1000:.1f} ms, warm median {statistics.median(warm) * 1000:.1f} ms "
              f"(max {max(warm) * 1000:.1f})")
        assert statistics.median(runs) < 2.0 and statistics.median(warm) < 0.5

    play(scenario)


# -- exec (probes) ------------------------------------------------------------------------------------------------


def test_exec_returns_the_commands_exit_code(backend: Backend) -> None:
    async def scenario() -> None:
        started = await backend.runtime.run(spec("shoal.web.3.x1"))
        assert await backend.runtime.exec(started.id, exiting(0), 10.0) == 0
        assert await backend.runtime.exec(started.id, exiting(3), 10.0) == 3

    play(scenario)


def test_exec_of_a_command_the_container_lacks_is_exit_127(backend: Backend) -> None:
    async def scenario() -> None:
        started = await backend.runtime.run(spec("shoal.web.3.x2"))
        assert await backend.runtime.exec(started.id, NOT_FOUND, 10.0) == 127

    play(scenario)


def test_exec_that_outlasts_its_timeout_raises_timeout_error_soon_after(backend: Backend) -> None:
    async def scenario() -> None:
        started = await backend.runtime.run(spec("shoal.web.3.x3"))
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            await backend.runtime.exec(started.id, sleeping_for(30), 1.0)
        assert time.monotonic() - t0 < 5.0, "exec waited far past its timeout"
        assert await backend.runtime.exec(started.id, sleeping_for(1), 10.0) == 0  # the container still answers

    play(scenario)


def test_exec_in_a_stopped_or_missing_container_fails_permanently(backend: Backend) -> None:
    async def scenario() -> None:
        started = await backend.runtime.run(spec("shoal.web.3.x4"))
        await backend.runtime.stop(started.id, 10.0)
        await permanent(backend.runtime.exec(started.id, exiting(0), 10.0))
        await backend.runtime.remove(started.id)
        failure = await permanent(backend.runtime.exec(started.id, exiting(0), 10.0))
        assert started.id in str(failure)

    play(scenario)


@pytest.mark.podman
def test_podman_exec_runs_inside_the_container_with_its_environment(podman_backend: PodmanBackend) -> None:
    async def scenario() -> None:
        runtime = podman_backend.runtime
        started = await runtime.run(spec("shoal.web.3.y1", env=(("GREETING", "hello"),), hostname="web-5"))
        check = ("sh", "-c", 'test "$GREETING" = hello && test "$(hostname)" = web-5')
        assert await runtime.exec(started.id, check, 10.0) == 0
        assert await runtime.exec(started.id, ("sh", "-c", 'test "$GREETING" = other'), 10.0) == 1

    play(scenario)


@pytest.mark.podman
def test_podman_exec_of_a_chatty_command_still_ends_at_its_timeout(podman_backend: PodmanBackend) -> None:
    """Output is drained and thrown away: neither a flood nor a trickle (a byte now and then, which never lets the
    read time out) keeps exec past its deadline, and exec holds none of it in memory."""

    async def scenario() -> None:
        runtime = podman_backend.runtime
        started = await runtime.run(spec("shoal.web.3.y2"))
        for command in ("while true; do echo x; done", "while true; do echo x; sleep 0.2; done"):
            t0 = time.monotonic()
            with pytest.raises(TimeoutError):
                await runtime.exec(started.id, ("sh", "-c", command), 1.0)
            assert time.monotonic() - t0 < 5.0, command
        printed = await runtime.exec(started.id, ("sh", "-c", "echo hello; echo oops >&2; exit 4"), 10.0)
        assert printed == 4

    play(scenario)
