"""Bounded HTTP load for end-to-end tests: new connections to one address, each outcome recorded.

Role: drive traffic through a lab host's published port while a test changes the service (a rolling update, a
rollback, a blue-green switch, a canary weight) and say afterwards whether any request failed and which version
answered each one. Every request is a new TCP connection with `GET / HTTP/1.0` (so the proxy picks an endpoint for
each), read to EOF under a timeout; an answer is ok only with status 200 and a non-empty body. The demo image's
`/` is `shoal-demo N` (node/lab/demo_image.py), so the body names the version that served it (`demo_version`).
Bounds: a target only on loopback or the lab's 198.18.0.0/24; at most `concurrency` requests open at once, an
optional pace (`rate_per_s`), and hard caps on both the number of requests and the run's duration (`Limits`).
Data flow: `generate` (async) runs the workers; `run_load` runs it to its caps; `Load` runs it on its own event
loop in a thread, so a synchronous test goes on calling the CLI and stops it when done. Times: the loop's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

LAB_NETWORK = ipaddress.ip_network("198.18.0.0/24")  # the lab's hosts and registry (docs/lab.md)
MAX_CONCURRENCY = 64
MAX_REQUESTS = 100_000
MAX_DURATION_S = 600.0
MAX_RESPONSE_BYTES = 64 * 1024  # the demo pages are a few bytes; more is a wrong answer, not a reason to buffer
STOPPED, MAX_REQUESTS_REACHED, MAX_DURATION_REACHED = "stopped", "max_requests", "max_duration"
DEMO_PREFIX = "shoal-demo "


@dataclass(frozen=True, slots=True)
class Target:
    """Where the load goes: an IP address on loopback or the lab's network (never anything else), a port, a path."""

    host: str
    port: int
    path: str = "/"

    def __post_init__(self) -> None:
        address = ipaddress.ip_address(self.host)
        if not (address.is_loopback or address in LAB_NETWORK):
            raise ValueError(f"load only goes to loopback or the lab's {LAB_NETWORK}, not {self.host}")
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be 1-65535, not {self.port}")
        if not self.path.startswith("/") or any(c in self.path for c in " \r\n"):
            raise ValueError(f"path must start with / and hold no space or line break, not {self.path!r}")

    def request(self) -> bytes:
        return f"GET {self.path} HTTP/1.0\r\nHost: {self.host}:{self.port}\r\nConnection: close\r\n\r\n".encode()

    def __str__(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"


@dataclass(frozen=True, slots=True)
class Limits:
    """How hard and how long. Both caps always hold: a run ends at `max_requests` started requests or once
    `max_duration_s` has passed (requests open then finish, within `timeout_s`), whichever comes first."""

    concurrency: int = 4  # requests open at once (workers)
    max_requests: int = 10_000
    max_duration_s: float = 120.0  # no request starts after this; the run ends at most timeout_s later
    rate_per_s: float | None = None  # request starts per second over all workers; None: each worker back to back
    timeout_s: float = 5.0  # a whole request: connect, send, read to EOF

    def __post_init__(self) -> None:
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise ValueError(f"concurrency must be 1-{MAX_CONCURRENCY}, not {self.concurrency}")
        if not 1 <= self.max_requests <= MAX_REQUESTS:
            raise ValueError(f"max_requests must be 1-{MAX_REQUESTS}, not {self.max_requests}")
        if not 0 < self.max_duration_s <= MAX_DURATION_S:
            raise ValueError(f"max_duration_s must be in (0, {MAX_DURATION_S:.0f}], not {self.max_duration_s}")
        if self.rate_per_s is not None and not 0 < self.rate_per_s <= 10_000:
            raise ValueError(f"rate_per_s must be in (0, 10000] or None, not {self.rate_per_s}")
        if not 0 < self.timeout_s <= 30:
            raise ValueError(f"timeout_s must be in (0, 30], not {self.timeout_s}")


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request. `reason` says why it failed ("" when ok); `body` is the stripped body of an ok answer."""

    ok: bool
    reason: str
    body: str
    started_s: float  # since the run began
    latency_s: float


def demo_version(body: str) -> str | None:
    """The version a demo page names (`shoal-demo 2` -> "2"); None for any other body."""
    return body.removeprefix(DEMO_PREFIX) if body.startswith(DEMO_PREFIX) else None


@dataclass(frozen=True, slots=True)
class Summary:
    """Outcomes in the order they completed, how long the run took and what ended it (STOPPED or a cap)."""

    outcomes: tuple[Outcome, ...]
    duration_s: float = 0.0
    ended_by: str = ""

    @property
    def requests(self) -> int:
        return len(self.outcomes)

    @property
    def ok(self) -> int:
        return sum(1 for o in self.outcomes if o.ok)

    @property
    def failed(self) -> int:
        return self.requests - self.ok

    @property
    def failures(self) -> Counter[str]:
        """Failed requests per reason."""
        return Counter(o.reason for o in self.outcomes if not o.ok)

    @property
    def bodies(self) -> Counter[str]:
        """Ok answers per distinct body."""
        return Counter(o.body for o in self.outcomes if o.ok)

    @property
    def versions(self) -> Counter[str]:
        """Ok answers per demo version; a body that names none counts under "other"."""
        return Counter(demo_version(o.body) or "other" for o in self.outcomes if o.ok)

    def share(self, version: str) -> float:
        """The fraction of all requests (failed ones included) that `version` answered."""
        return self.versions[version] / self.requests if self.requests else 0.0

    def last(self, count: int) -> Summary:
        """The `count` most recently completed outcomes (fewer if there are fewer)."""
        return Summary(self.outcomes[-count:] if count > 0 else ())

    def latency_s(self, quantile: float) -> float:
        """The latency at `quantile` (0-1, nearest rank) over every request; 0 without any."""
        ordered = sorted(o.latency_s for o in self.outcomes)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, max(0, math.ceil(quantile * len(ordered)) - 1))]

    def describe(self, examples: int = 5) -> str:
        """One paragraph for a log line or an assertion message."""
        versions = dict(sorted(self.versions.items()))
        text = (f"{self.requests} requests in {self.duration_s:.1f} s (ended by {self.ended_by or '-'}): "
                f"{self.ok} ok, {self.failed} failed {dict(self.failures)}; versions {versions}; "
                f"latency p50 {self.latency_s(0.5) * 1000:.1f} ms, p99 {self.latency_s(0.99) * 1000:.1f} ms, "
                f"max {self.latency_s(1.0) * 1000:.1f} ms")
        first = [f"t={o.started_s:.2f}s {o.reason}" for o in self.outcomes if not o.ok][:examples]
        return text + (f"; first failures: {first}" if first else "")


async def request(target: Target, timeout_s: float) -> tuple[bool, str, str]:
    """One request on a new connection: (ok, reason, body)."""
    try:
        async with asyncio.timeout(timeout_s):
            raw = await _exchange(target)
    except TimeoutError:
        return False, f"timeout ({timeout_s:g} s)", ""
    except ConnectionRefusedError:
        return False, "refused", ""
    except ConnectionResetError:
        return False, "reset", ""
    except BrokenPipeError:
        return False, "broken pipe", ""
    except OSError as exc:
        return False, f"error: {exc.strerror or exc}", ""
    return judge(raw)


async def _exchange(target: Target) -> bytes:
    reader, writer = await asyncio.open_connection(target.host, target.port)
    try:
        writer.write(target.request())
        await writer.drain()
        raw = bytearray()
        while chunk := await reader.read(16384):
            raw += chunk
            if len(raw) > MAX_RESPONSE_BYTES:
                break
        return bytes(raw)
    finally:
        writer.close()
        with contextlib.suppress(OSError):  # the answer (or the error that matters) is already in hand
            await writer.wait_closed()


def judge(raw: bytes) -> tuple[bool, str, str]:
    """(ok, reason, body) for a whole response as read to EOF."""
    if not raw:
        return False, "closed without an answer", ""
    if len(raw) > MAX_RESPONSE_BYTES:
        return False, f"answer over {MAX_RESPONSE_BYTES} bytes", ""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = raw.partition(b"\n\n")
    status = head.split(b"\r\n", 1)[0].split(b"\n", 1)[0].split()
    if len(status) < 2 or not status[0].startswith(b"HTTP/") or not status[1].isdigit():
        return False, "not an HTTP answer", ""
    if status[1] != b"200":
        return False, f"status {status[1].decode()}", ""
    if not sep:
        return False, "headers without an end", ""
    text = body.decode(errors="replace").strip()
    if not text:
        return False, "empty body", ""
    return True, "", text


async def generate(target: Target, limits: Limits, *, stop: asyncio.Event | None = None,
                   record: Callable[[Outcome], None] | None = None) -> Summary:
    """Run requests until `stop` is set or a cap is reached; `record` sees each outcome as it completes."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    began = loop.time()
    deadline = began + limits.max_duration_s
    outcomes: list[Outcome] = []
    issued = 0
    ended_by: list[str] = []

    def next_slot() -> int | None:
        """Claim the next request's index, or None when the run is over (and say why, once)."""
        nonlocal issued
        reason = STOPPED if stop.is_set() else MAX_REQUESTS_REACHED if issued >= limits.max_requests else \
            MAX_DURATION_REACHED if loop.time() >= deadline else None
        if reason is not None:
            ended_by.append(reason)
            return None
        issued += 1
        return issued - 1

    async def pace(index: int) -> None:
        """Wait for request `index`'s start time under `rate_per_s`, or until stopped or out of time."""
        if limits.rate_per_s is None:
            return
        delay = min(began + index / limits.rate_per_s, deadline) - loop.time()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    async def worker() -> None:
        while (index := next_slot()) is not None:
            await pace(index)
            if stop.is_set() or loop.time() >= deadline:
                continue  # next_slot says why the run ends
            started = loop.time()
            ok, reason, body = await request(target, limits.timeout_s)
            outcome = Outcome(ok, reason, body, started - began, loop.time() - started)
            outcomes.append(outcome)
            if record is not None:
                record(outcome)

    async with asyncio.TaskGroup() as workers:
        for _ in range(limits.concurrency):
            workers.create_task(worker())
    return Summary(tuple(outcomes), loop.time() - began, ended_by[0] if ended_by else STOPPED)


def run_load(target: Target, limits: Limits) -> Summary:
    """Run to the caps from synchronous code (no event loop running in this thread)."""
    return asyncio.run(generate(target, limits))


class Load:
    """`generate` in a thread of its own, from `start` (or `with`) until `stop`, which returns the Summary.

    `snapshot(since)` shows the outcomes so far (from index `since`; `count()` gives the index to start from),
    so a test can wait for a condition on the traffic, e.g. that only version 2 answers after a switch."""

    def __init__(self, target: Target, limits: Limits) -> None:
        self.target, self.limits = target, limits
        self._outcomes: list[Outcome] = []  # appended by the load's thread only; read as copies
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._summary: Summary | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"load {target}", daemon=True)

    def start(self) -> Load:
        self._thread.start()
        if not self._ready.wait(10.0):
            raise RuntimeError(f"load on {self.target} did not start within 10 s")
        return self

    def count(self) -> int:
        return len(self._outcomes)

    def snapshot(self, since: int = 0) -> Summary:
        return Summary(tuple(self._outcomes[since:]))

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> Summary:
        """Stop starting requests, wait for the open ones, return the whole run's Summary (or raise its error)."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed: the run ended at a cap
                loop.call_soon_threadsafe(stop.set)
        if self._thread.is_alive() or self._thread.ident is not None:
            self._thread.join(self.limits.max_duration_s + self.limits.timeout_s + 10.0)
        if self._thread.is_alive():
            raise RuntimeError(f"load on {self.target} did not end")
        if self._error is not None:
            raise self._error
        if self._summary is None:
            raise RuntimeError(f"load on {self.target} was never started")
        return self._summary

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # kept for stop(): an exception escaping a thread is a warning, here an error
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        self._summary = await generate(self.target, self.limits, stop=self._stop, record=self._outcomes.append)
