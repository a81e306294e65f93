"""Probe runners: one probe run of a Check against a container, as an Outcome.

Role: TCP connect and exec here; HTTP GET in node/probes/http.py, handed in.
`ProbeRunner.run(check, target)` picks the runner by the check's action. A runner never raises for what the
container does (refused, timed out, non-zero exit: FAILURE) nor for what the engine does (not answering: UNKNOWN,
so a podman hiccup never restarts healthy containers).
Boundary: talks to the container (its address, or the engine's exec); decides nothing about thresholds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Sequence

from node.manifest.model import Exec, HttpGet, TcpSocket
from node.probes.model import Check, Outcome, Result, Target
from node.runtime.base import RuntimeFailure

ExecFn = Callable[[str, Sequence[str], float], Awaitable[int]]
"""Runtime.exec: (container id, argv, timeout_s) -> exit code; TimeoutError, RuntimeFailure."""
HttpGetFn = Callable[[str, int, str, float], Awaitable[Outcome]]
"""(address, port, path, timeout_s) -> Outcome: node.probes.http.HttpProber.get."""

NO_ADDRESS = Outcome(Result.UNKNOWN, "the container has no address (yet)")


async def tcp_connect(address: str, port: int, timeout_s: float) -> Outcome:
    """Success when a TCP connection is accepted within timeout_s; it is closed at once, no byte sent."""
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(address, port)
    except TimeoutError:
        return Outcome(Result.FAILURE, f"tcp {port}: no connection within {timeout_s:g} s")
    except OSError as exc:
        # asyncio's message repeats the address; the errno's name says what happened ("Connection refused")
        return Outcome(Result.FAILURE, f"tcp {port}: {os.strerror(exc.errno) if exc.errno else exc}")
    writer.close()
    with contextlib.suppress(OSError):  # a peer that resets at once still accepted the connection
        await writer.wait_closed()
    return Outcome(Result.SUCCESS, f"tcp {port}: connected")


async def run_exec(exec_fn: ExecFn, container_id: str, argv: Sequence[str], timeout_s: float) -> Outcome:
    """Success on exit code 0. A permanent engine refusal (container gone or stopped, bad command) is a failure;
    a temporary one (engine not answering) says nothing about the container: UNKNOWN."""
    try:
        code = await exec_fn(container_id, argv, timeout_s)
    except TimeoutError:
        return Outcome(Result.FAILURE, f"exec: still running after {timeout_s:g} s")
    except RuntimeFailure as exc:
        return Outcome(Result.UNKNOWN if exc.temporary else Result.FAILURE, f"exec: {exc}")
    return Outcome(Result.SUCCESS if code == 0 else Result.FAILURE, f"exec: exit {code}")


class ProbeRunner:
    """Runs one probe of any kind; the Prober's `probe` function."""

    def __init__(self, *, exec_fn: ExecFn, http_get: HttpGetFn) -> None:
        self._exec, self._http_get = exec_fn, http_get

    async def run(self, check: Check, target: Target) -> Outcome:
        action = check.action
        if isinstance(action, Exec):
            return await run_exec(self._exec, target.container_id, action.command, check.timeout_s)
        if target.address is None:
            return NO_ADDRESS
        if isinstance(action, TcpSocket):
            return await tcp_connect(target.address, action.port, check.timeout_s)
        if isinstance(action, HttpGet):
            return await self._http_get(target.address, action.port, action.path, check.timeout_s)
        raise TypeError(f"unknown probe action {action!r}")
