"""The probe runners against real loopback servers (HTTP, TCP) and the fake runtime (exec).
Timeouts here are real but short; each test bounds how long a probe may take, never sleeps to wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

import pytest

from node.manifest.model import Exec, HttpGet, TcpSocket
from node.probes.http import USER_AGENT, HttpProber
from node.probes.model import Kind, Outcome, Result
from node.probes.runners import ProbeRunner, run_exec, tcp_connect
from node.runtime.base import LABEL_SERVICE, ContainerSpec, RuntimeFailure
from node.runtime.fake import FakeRuntime
from tests.unit.probes.helpers import check, service, target
from tests.unit.probes.loopback import http_stub, refusing_port, silent_port

pytestmark = pytest.mark.timeout(30)
SHORT_S = 0.3  # a probe timeout long enough for loopback, short enough to wait out
BOUND_S = 3.0  # how long a probe that times out after SHORT_S may take in all, on a busy 2-core machine


def run(coro: Coroutine[Any, Any, Outcome]) -> Outcome:
    return asyncio.run(coro)


async def http_get(port: int, path: str = "/", timeout_s: float = 2.0) -> Outcome:
    return await HttpProber().get("127.0.0.1", port, path, timeout_s)


@pytest.mark.parametrize(("status", "result"), [
    (200, Result.SUCCESS), (204, Result.SUCCESS), (302, Result.SUCCESS), (399, Result.SUCCESS),
    (400, Result.FAILURE), (404, Result.FAILURE), (500, Result.FAILURE), (503, Result.FAILURE),
])
def test_http_get_succeeds_for_200_to_399_only(status: int, result: Result) -> None:
    async def scenario() -> Outcome:
        async with http_stub(status=status) as stub:
            return await http_get(stub.port)

    outcome = run(scenario())
    assert outcome.result is result and f"HTTP {status}" in outcome.detail


def test_http_get_sends_the_path_as_given_and_follows_no_redirect() -> None:
    async def scenario() -> tuple[Outcome, list[list[str]]]:
        async with http_stub(status=302) as stub:
            return await http_get(stub.port, "/healthz?full=1"), stub.heads

    outcome, heads = asyncio.run(scenario())
    assert outcome.result is Result.SUCCESS
    [head] = heads  # the redirect (to a closed port) was not followed
    assert head[0] == "GET /healthz?full=1 HTTP/1.1"
    assert f"User-Agent: {USER_AGENT}" in head


def test_http_probes_open_a_fresh_connection_each_time() -> None:
    async def scenario() -> int:
        http = HttpProber()
        async with http_stub() as stub:
            for _ in range(3):
                assert (await http.get("127.0.0.1", stub.port, "/", 2.0)).ok
            return stub.connections

    assert asyncio.run(scenario()) == 3


def test_http_get_of_a_server_that_never_answers_fails_at_its_timeout() -> None:
    async def scenario() -> Outcome:
        async with http_stub(hang=True) as stub:
            return await http_get(stub.port, timeout_s=SHORT_S)

    t0 = time.monotonic()
    outcome = run(scenario())
    assert outcome.result is Result.FAILURE and "no answer within 0.3 s" in outcome.detail
    assert SHORT_S <= time.monotonic() - t0 < BOUND_S


@pytest.mark.parametrize("raw", [b"garbage\r\n\r\n", b"HTTP/1.1 abc OK\r\n\r\n", b"", b"HTTP/1.1 200 " + b"x" * 5000,
                                 b"HTTP/2 200\r\n\r\n", b"HTTP/1.1 20\r\n\r\n"])
def test_http_get_of_something_that_is_not_http_fails(raw: bytes) -> None:
    async def scenario() -> Outcome:
        async with http_stub(raw=raw) as stub:
            return await http_get(stub.port)

    assert run(scenario()).result is Result.FAILURE


@pytest.mark.parametrize("raw", [b"HTTP/1.0 204\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 99999\r\n\r\nhalf"])
def test_http_get_needs_only_the_status_line(raw: bytes) -> None:
    """No reason phrase (HTTP/1.0 allows it), or a body that never completes: the status line decides."""
    async def scenario() -> Outcome:
        async with http_stub(raw=raw) as stub:
            return await http_get(stub.port)

    assert run(scenario()).result is Result.SUCCESS


def test_http_get_of_a_closed_port_fails() -> None:
    with refusing_port() as port:
        outcome = run(http_get(port))
    assert outcome.result is Result.FAILURE and str(port) in outcome.detail


def test_tcp_connect_succeeds_when_the_port_accepts() -> None:
    async def scenario() -> Outcome:
        async with http_stub() as stub:
            return await tcp_connect("127.0.0.1", stub.port, 2.0)

    assert run(scenario()).result is Result.SUCCESS


def test_tcp_connect_to_a_refusing_port_fails_at_once() -> None:
    with refusing_port() as port:
        t0 = time.monotonic()
        outcome = run(tcp_connect("127.0.0.1", port, 5.0))
    assert outcome.result is Result.FAILURE and "refused" in outcome.detail.lower()
    assert time.monotonic() - t0 < BOUND_S


def test_tcp_connect_that_gets_no_answer_fails_at_its_timeout() -> None:
    with silent_port() as port:
        t0 = time.monotonic()
        outcome = run(tcp_connect("127.0.0.1", port, SHORT_S))
    assert outcome.result is Result.FAILURE and "no connection within 0.3 s" in outcome.detail
    assert SHORT_S <= time.monotonic() - t0 < BOUND_S


# -- exec, through the fake runtime --------------------------------------------------------------------------------


def running_fake() -> tuple[FakeRuntime, str]:
    fake = FakeRuntime(clock=lambda: 0.0, images={"img:1"})
    spec = ContainerSpec(name="shoal.web.0.a", image="img:1", command=None, env=(), labels=((LABEL_SERVICE, "web"),),
                         hostname="web-0")
    return fake, asyncio.run(fake.run(spec)).id


@pytest.mark.parametrize(("scripted", "result", "detail"), [
    (0, Result.SUCCESS, "exit 0"),
    (1, Result.FAILURE, "exit 1"),
    (127, Result.FAILURE, "exit 127"),
    (TimeoutError(), Result.FAILURE, "still running after 2 s"),
    (RuntimeFailure("podman is not answering", temporary=True), Result.UNKNOWN, "not answering"),
    (RuntimeFailure("container is gone", temporary=False), Result.FAILURE, "gone"),
])
def test_exec_outcomes(scripted: int | Exception, result: Result, detail: str) -> None:
    fake, container_id = running_fake()
    fake.script_exec(container_id, scripted)
    outcome = run(run_exec(fake.exec, container_id, ("cat", "/tmp/ready"), 2.0))
    assert outcome.result is result and detail in outcome.detail
    assert fake.calls[-1].args == (container_id, ("cat", "/tmp/ready"), 2.0)


def test_exec_in_a_stopped_container_is_a_failure() -> None:
    fake, container_id = running_fake()
    asyncio.run(fake.stop(container_id, 1.0))
    assert run(run_exec(fake.exec, container_id, ("true",), 1.0)).result is Result.FAILURE


# -- dispatch ----------------------------------------------------------------------------------------------------


def test_probe_runner_picks_the_runner_by_action_and_needs_an_address_only_for_network_probes() -> None:
    fake, container_id = running_fake()
    fake.script_exec(container_id, 0)
    asked: list[tuple[str, int, str, float]] = []

    async def fake_http(address: str, port: int, path: str, timeout_s: float) -> Outcome:
        asked.append((address, port, path, timeout_s))
        return Outcome(Result.SUCCESS, "HTTP 200")

    runner = ProbeRunner(exec_fn=fake.exec, http_get=fake_http)
    spec = service()
    with_address, without = target(container_id, spec, "198.19.1.7"), target(container_id, spec, None)
    http = replace(check(Kind.READINESS), action=HttpGet(8080, "/ok"))
    tcp = replace(check(Kind.LIVENESS), action=TcpSocket(8080))
    exe = replace(check(Kind.HEALTHCHECK), action=Exec(("true",)))

    assert run(runner.run(http, with_address)).detail == "HTTP 200"
    assert asked == [("198.19.1.7", 8080, "/ok", 1.0)]
    assert run(runner.run(http, without)).result is Result.UNKNOWN
    assert run(runner.run(tcp, without)).result is Result.UNKNOWN
    assert run(runner.run(exe, without)).result is Result.SUCCESS  # exec goes through the engine, not the address
