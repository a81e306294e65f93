"""The end-to-end tests' load generator (tests/e2e/load.py) against real loopback servers: it counts every answer
by version, counts every kind of failure with its reason, keeps to its concurrency, pace and caps, and runs in a
thread until stopped. No lab, no root; each test takes well under a second."""

from __future__ import annotations

import asyncio
import socket
import socketserver
import struct
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import pytest

from tests.e2e.load import (
    MAX_DURATION_REACHED,
    MAX_REQUESTS_REACHED,
    STOPPED,
    Limits,
    Load,
    Outcome,
    Summary,
    Target,
    demo_version,
    generate,
    judge,
    run_load,
)
from tests.e2e.procs import wait_for

TEST_DEADLINE_S = 20.0


def page(version: str) -> bytes:
    return f"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\nshoal-demo {version}\n".encode()


class Server:
    """A loopback HTTP server whose n-th connection gets `behaviours[n % len(behaviours)]`: a version number
    ("1", "2": that demo page), "503", "empty" (200 without a body), "close" (no answer), "reset" (RST),
    "hang" (never answers), or "slow" (the version-1 page after `delay_s`). It counts open connections."""

    def __init__(self, *behaviours: str, delay_s: float = 0.05) -> None:
        self.behaviours, self.delay_s = behaviours, delay_s
        self.connections = self.open = self.most_open = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._done = asyncio.Event()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        behaviour = self.behaviours[self.connections % len(self.behaviours)]
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            await reader.readuntil(b"\r\n\r\n")
            if behaviour == "reset":
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close sends RST
            elif behaviour == "hang":
                await self._done.wait()
            elif behaviour == "slow":
                await asyncio.sleep(self.delay_s)
                writer.write(page("1"))
            elif behaviour == "503":
                writer.write(b"HTTP/1.0 503 Service Unavailable\r\n\r\nno\n")
            elif behaviour == "empty":
                writer.write(b"HTTP/1.0 200 OK\r\n\r\n")
            elif behaviour != "close":
                writer.write(page(behaviour))
            await writer.drain()
        finally:
            self.open -= 1
            writer.close()

    @property
    def target(self) -> Target:
        return Target("127.0.0.1", self.port)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Server]:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            self._done.set()
            self._server.close()
            await self._server.wait_closed()


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(scenario(), TEST_DEADLINE_S)

    asyncio.run(bounded())


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Page(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        request = b""
        while b"\r\n\r\n" not in request and (chunk := self.request.recv(4096)):
            request += chunk
        self.request.sendall(page("2"))


@contextmanager
def threaded_server() -> Iterator[Target]:
    """A version-2 page server in threads of its own, for `Load`, whose event loop is in another thread."""
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Page) as server:
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        try:
            yield Target("127.0.0.1", server.server_address[1])
        finally:
            server.shutdown()
            thread.join()


# ---- answers and failures ---------------------------------------------------------------------------------------


def test_every_answer_is_counted_by_version() -> None:
    async def scenario() -> None:
        async with Server("1", "2").running() as server:
            summary = await generate(server.target, Limits(concurrency=2, max_requests=10))
        assert (summary.requests, summary.ok, summary.failed) == (10, 10, 0)
        assert summary.versions == {"1": 5, "2": 5}
        assert summary.bodies == {"shoal-demo 1": 5, "shoal-demo 2": 5}
        assert summary.share("2") == 0.5
        assert summary.ended_by == MAX_REQUESTS_REACHED
    run(scenario)


def test_each_failure_is_counted_with_its_reason() -> None:
    async def scenario() -> None:
        async with Server("503", "empty", "close", "reset", "1").running() as server:
            summary = await generate(server.target, Limits(concurrency=1, max_requests=10))
        assert summary.failures == {"status 503": 2, "empty body": 2, "closed without an answer": 2, "reset": 2}
        assert (summary.ok, summary.failed, summary.versions) == (2, 8, {"1": 2})
        assert summary.share("1") == 0.2  # of all requests, failed ones included
        assert "8 failed" in summary.describe() and "first failures" in summary.describe()
    run(scenario)


def test_a_refused_connection_fails_as_refused() -> None:
    summary = run_load(Target("127.0.0.1", closed_port()), Limits(concurrency=2, max_requests=4))
    assert summary.failures == {"refused": 4} and summary.ok == 0


def test_a_request_without_an_answer_fails_at_its_timeout() -> None:
    async def scenario() -> None:
        async with Server("hang").running() as server:
            summary = await generate(server.target, Limits(concurrency=2, max_requests=2, timeout_s=0.2))
        assert summary.failures == {"timeout (0.2 s)": 2}
        assert all(0.2 <= o.latency_s < 1.0 for o in summary.outcomes)
    run(scenario)


# ---- bounds -------------------------------------------------------------------------------------------------------


def test_no_more_requests_are_open_at_once_than_the_concurrency() -> None:
    async def scenario() -> None:
        async with Server("slow", delay_s=0.05).running() as server:
            summary = await generate(server.target, Limits(concurrency=3, max_requests=12))
            assert server.most_open == 3 and server.connections == 12
        assert summary.requests == 12 and summary.ok == 12
    run(scenario)


def test_the_duration_cap_ends_a_run_that_the_request_cap_would_not() -> None:
    async def scenario() -> None:
        async with Server("slow", delay_s=0.05).running() as server:
            summary = await generate(server.target, Limits(concurrency=2, max_requests=100_000, max_duration_s=0.3))
        assert summary.ended_by == MAX_DURATION_REACHED
        assert 2 <= summary.requests <= 2 * (0.3 / 0.05 + 1)
        assert summary.duration_s < 0.3 + 0.5  # the open requests finish; none starts after the cap
        assert all(o.started_s < 0.3 for o in summary.outcomes)
    run(scenario)


def test_a_rate_paces_request_starts_over_all_workers() -> None:
    async def scenario() -> None:
        async with Server("1").running() as server:
            summary = await generate(server.target, Limits(concurrency=4, max_requests=1000, max_duration_s=0.5,
                                                           rate_per_s=40))
        starts = sorted(o.started_s for o in summary.outcomes)
        assert 10 <= len(starts) <= 20  # 40/s for 0.5 s: request i starts at i/40 s, none at 0.5 s or later
        assert all(start >= i / 40 - 0.002 for i, start in enumerate(starts))
    run(scenario)


def test_a_stop_ends_the_run_before_its_caps() -> None:
    async def scenario() -> None:
        stop = asyncio.Event()
        seen: list[Outcome] = []

        def record(outcome: Outcome) -> None:
            seen.append(outcome)
            if len(seen) == 5:
                stop.set()

        async with Server("1").running() as server:
            summary = await generate(server.target, Limits(concurrency=1, max_requests=1000), stop=stop,
                                     record=record)
        assert summary.ended_by == STOPPED and summary.requests == 5 and list(summary.outcomes) == seen
    run(scenario)


# ---- in a thread ----------------------------------------------------------------------------------------------------


def test_load_runs_in_a_thread_until_stopped() -> None:
    with threaded_server() as target, Load(target, Limits(concurrency=2, max_duration_s=30)) as load:
        wait_for(lambda: load.count() >= 10, 10.0, "10 answers")
        mark = load.count()
        wait_for(lambda: load.snapshot(since=mark).requests >= 5, 10.0, "5 more answers")
        summary = load.stop()
    assert not load.running
    assert summary.ended_by == STOPPED and summary.failed == 0 and summary.versions == {"2": summary.requests}
    assert summary.requests >= mark + 5 and load.snapshot().requests == summary.requests


def test_load_in_a_thread_ends_at_its_cap_on_its_own() -> None:
    with threaded_server() as target, Load(target, Limits(concurrency=1, max_requests=3)) as load:
        wait_for(lambda: not load.running, 10.0, "the load ending at 3 requests")
        summary = load.stop()
    assert summary.ended_by == MAX_REQUESTS_REACHED and summary.requests == 3 and summary.ok == 3


def test_a_load_that_cannot_reach_its_target_still_ends_cleanly() -> None:
    with Load(Target("127.0.0.1", closed_port()), Limits(concurrency=1, max_duration_s=5)) as load:
        wait_for(lambda: load.count() >= 3, 10.0, "3 refused requests")
        summary = load.stop()
    assert summary.ok == 0 and set(summary.failures) == {"refused"}


# ---- values ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["8.8.8.8", "198.18.1.1", "198.19.1.2", "10.0.0.1", "::2"])
def test_traffic_goes_only_to_loopback_or_the_lab_network(host: str) -> None:
    with pytest.raises(ValueError, match="loopback or the lab"):
        Target(host, 8080)


def test_lab_and_loopback_targets_are_accepted() -> None:
    assert str(Target("198.18.0.12", 8090)) == "http://198.18.0.12:8090/"
    assert Target("127.0.0.2", 80, "/cgi-bin/hostname").request().startswith(b"GET /cgi-bin/hostname HTTP/1.0\r\n")
    with pytest.raises(ValueError, match="path"):
        Target("127.0.0.1", 80, "/a b")


@pytest.mark.parametrize("limits", [
    {"concurrency": 0}, {"concurrency": 65}, {"max_requests": 0}, {"max_requests": 100_001},
    {"max_duration_s": 0}, {"max_duration_s": 601}, {"rate_per_s": 0}, {"timeout_s": 0}, {"timeout_s": 31},
])
def test_limits_are_always_bounded(limits: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Limits(**limits)  # type: ignore[arg-type]


@pytest.mark.parametrize(("raw", "expected"), [
    (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\nshoal-demo 2\n", (True, "", "shoal-demo 2")),
    (b"HTTP/1.0 200 OK\n\nweb-0\n", (True, "", "web-0")),
    (b"", (False, "closed without an answer", "")),
    (b"HTTP/1.0 404 Not Found\r\n\r\nnope", (False, "status 404", "")),
    (b"HTTP/1.0 200 OK\r\n\r\n \n", (False, "empty body", "")),
    (b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n", (False, "headers without an end", "")),
    (b"SSH-2.0-OpenSSH\r\n", (False, "not an HTTP answer", "")),
    (b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 70_000, (False, "answer over 65536 bytes", "")),
])
def test_judge_an_answer(raw: bytes, expected: tuple[bool, str, str]) -> None:
    assert judge(raw) == expected


def test_demo_version_reads_the_demo_page() -> None:
    assert demo_version("shoal-demo 2") == "2"
    assert demo_version("web-0") is None


def test_summary_last_and_latency_quantiles() -> None:
    outcomes = tuple(Outcome(True, "", f"shoal-demo {1 + i // 5}", i * 0.01, (i + 1) / 1000) for i in range(10))
    summary = Summary(outcomes, 0.1, STOPPED)
    assert summary.last(5).versions == {"2": 5} and summary.last(0).requests == 0
    assert summary.last(50).requests == 10
    assert summary.latency_s(0.5) == 0.005 and summary.latency_s(1.0) == 0.01 and summary.latency_s(0.0) == 0.001
    assert Summary(()).latency_s(0.99) == 0.0 and Summary(()).share("1") == 0.0
