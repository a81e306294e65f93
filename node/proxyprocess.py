"""The data-plane process, seen from the agent: started, fed and restarted here.

Role: `async with ProxyProcess(command=..., config=..., log_level=..., clock=...) as path:` starts `command`
(`python -m node proxy-worker`, node.proxyworker) with a pipe on its standard input. `update(table)` and
`admit_by(admission)` only record the latest value and wake the feeder, which writes what the process has not
seen yet (node.proxypipe): the agent's loop never waits on the process. If the process exits it is started again
at once, then after a backoff if it keeps exiting (RESTART_S, doubling up to RESTART_MAX_S; at once again after a
process that lived STABLE_S),
and the new one is sent the configuration and the latest admission and table. Leaving the block closes the pipe
(the process closes its listeners and exits), then sends SIGTERM after EXIT_S and SIGKILL after as long again.
Why a process: the agent's control-plane work (reconciliation passes, probes, signature checks, the API) runs in
chunks of milliseconds that hold its event loop; a proxy on that loop serves nobody meanwhile, which shows in the
tail latency at saturation (docs/proxy.md). In a process of its own the kernel schedules it apart, on another
core when there is one.
Boundary: I/O only (one child process and its pipe); what to send is decided elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from gossip.clock import Clock
from node.admission import Admission
from node.datapath import Routes
from node.proxy.config import ProxyConfig
from node.proxypipe import Configure, PipeError, SetAdmission, SetTable, frame

log = logging.getLogger("shoal.dataplane")

RESTART_S = 0.5  # the second restart in a row waits this long (the first is immediate: a crash costs traffic)
RESTART_MAX_S = 30.0  # a process that keeps dying is still retried twice a minute
STABLE_S = 60.0  # a process that lived this long was not crash-looping: the next restart is quick again
EXIT_S = 5.0  # how long an ending process has to close its listeners before SIGTERM, then SIGKILL


class ProxyProcess:
    def __init__(self, *, command: Sequence[str], config: ProxyConfig, log_level: str, clock: Clock) -> None:
        self._command = tuple(command)
        self._configure = Configure(config, log_level)
        self._clock = clock
        self._table: Routes | None = None
        self._admission: Admission | None = None
        self._changed = asyncio.Event()
        self._closing = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self.pid: int | None = None  # the running process's, for logs and tests
        self.starts = 0  # processes started so far

    async def __aenter__(self) -> ProxyProcess:
        self._supervisor = asyncio.create_task(self._supervise())
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self._closing.set()
        if self._supervisor is not None:
            await self._supervisor

    async def update(self, table: Routes) -> None:
        self._table = table
        self._changed.set()

    def admit_by(self, admission: Admission) -> None:
        self._admission = admission
        self._changed.set()

    async def _supervise(self) -> None:
        backoff = 0.0
        while not self._closing.is_set():
            started = self._clock.now()
            try:
                # Same process group as the agent: whatever kills the group (a power cut in the lab) kills both.
                process = await asyncio.create_subprocess_exec(*self._command, stdin=asyncio.subprocess.PIPE)
            except OSError as exc:
                log.error("cannot start the data-plane process", extra={"fields": {
                    "command": " ".join(self._command), "error": exc, "retry_in_s": backoff}})
            else:
                self.pid, self.starts = process.pid, self.starts + 1
                log.info("data-plane process started", extra={"fields": {"pid": process.pid}})
                status = await self._run(process)
                self.pid = None
                if self._closing.is_set():
                    log.info("data-plane process ended", extra={"fields": {"pid": process.pid, "status": status}})
                    return
                if self._clock.now() - started >= STABLE_S:
                    backoff = 0.0
                log.error("data-plane process exited; starting another", extra={"fields": {
                    "pid": process.pid, "status": status, "restart_in_s": backoff}})
            if backoff:
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), backoff)
            backoff = min(max(backoff * 2, RESTART_S), RESTART_MAX_S)

    async def _run(self, process: asyncio.subprocess.Process) -> int:
        """Feed `process` until it exits or the block is left (then end it); its exit status."""
        assert process.stdin is not None
        feed = asyncio.create_task(self._feed(process.stdin))
        exited = asyncio.create_task(process.wait())
        closing = asyncio.create_task(self._closing.wait())
        await asyncio.wait([exited, closing], return_when=asyncio.FIRST_COMPLETED)
        closing.cancel()
        feed.cancel()
        if not exited.done():
            await self._end(process, exited)
        return exited.result()

    async def _feed(self, pipe: asyncio.StreamWriter) -> None:
        sent_table: Routes | None = None
        sent_admission: Admission | None = None
        try:
            pipe.write(frame(self._configure))
            while True:
                self._changed.clear()
                # The admission first: listeners the table opens apply the current policies from the start.
                if self._admission is not None and self._admission != sent_admission:
                    sent_admission = self._admission
                    self._send(pipe, SetAdmission(sent_admission))
                if self._table is not None and self._table != sent_table:
                    sent_table = self._table
                    self._send(pipe, SetTable(sent_table))
                await pipe.drain()
                await self._changed.wait()
        except (BrokenPipeError, ConnectionResetError):
            return  # the process is gone: _run sees it exit

    @staticmethod
    def _send(pipe: asyncio.StreamWriter, message: SetTable | SetAdmission) -> None:
        try:
            pipe.write(frame(message))
        except PipeError as exc:  # never expected (a table of millions of routes): keep serving the last one
            log.error("cannot send to the data-plane process", extra={"fields": {"error": exc}})

    async def _end(self, process: asyncio.subprocess.Process, exited: asyncio.Task[int]) -> None:
        """Close the pipe (the process closes its listeners and exits), then SIGTERM, then SIGKILL."""
        assert process.stdin is not None
        process.stdin.close()
        for signal_it in (process.terminate, process.kill):
            try:
                await asyncio.wait_for(asyncio.shield(exited), EXIT_S)
                return
            except TimeoutError:
                log.warning("data-plane process slow to end; signalling it", extra={"fields": {
                    "pid": process.pid, "signal": signal_it.__name__}})
                with suppress(ProcessLookupError):
                    signal_it()
        await exited
