"""node.proxyprocess with the real worker (`python -m node proxy-worker`) on 127.0.0.x: it serves the table, a
killed process is replaced and caught up, leaving the block ends it, and one that will not end is signalled."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence

import pytest

from gossip.clock import LoopClock
from node import proxyprocess
from node.proxy import Address, ProxyConfig, Route
from node.proxyprocess import ProxyProcess
from node.proxyworker import ARGUMENT
from tests.unit.proxy.loopback import answered_by, ask, closed_at_once, eventually, free_port, listening, serving, until
from tests.unit.proxy.test_proxy_pipe import NOBODY

pytestmark = pytest.mark.timeout(60)
WORKER = (sys.executable, "-m", "node", ARGUMENT)


def process(command: Sequence[str] = WORKER) -> ProxyProcess:
    return ProxyProcess(command=command, config=ProxyConfig(), log_level="info",
                        clock=LoopClock(asyncio.get_running_loop()))


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_the_process_serves_follows_the_table_and_is_replaced_when_killed() -> None:
    async def main() -> None:
        listen = Address("127.0.0.41", free_port("127.0.0.41"))
        async with serving("a", "b") as (a, b), process() as path:
            await path.update({listen: Route("web", (a.endpoint(),))})
            await until(lambda: listening(listen), timeout_s=20, what="the process's listener")
            assert path.starts == 1 and await ask(listen) == "a"
            await path.update({listen: Route("web", (b.endpoint(),))})
            await eventually(lambda: answered_by(listen, "b"), what="the new route")
            first = path.pid
            assert first is not None
            os.kill(first, signal.SIGKILL)
            await until(lambda: path.starts == 2 and listening(listen), timeout_s=20, what="a new process")
            assert path.pid != first and await ask(listen) == "b"  # the new one got the latest table
            path.admit_by(NOBODY)
            await eventually(lambda: closed_at_once(listen), what="the admission applied")
            last = path.pid
        assert last is not None and gone(last) and not listening(listen)

    asyncio.run(main())


def test_a_process_that_keeps_exiting_is_restarted_with_a_growing_backoff(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with process((sys.executable, "-c", "pass")) as path:
            await until(lambda: path.starts >= 4, timeout_s=20, what="four starts")
        assert path.pid is None

    asyncio.run(main())
    delays = [r.fields["restart_in_s"] for r in caplog.records if r.getMessage().startswith("data-plane process exit")]
    assert delays[:3] == [0.0, proxyprocess.RESTART_S, 2 * proxyprocess.RESTART_S]


def test_a_process_that_ignores_the_closed_pipe_is_terminated_then_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proxyprocess, "EXIT_S", 0.2)
    stubborn = (sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                                      "time.sleep(30)")

    async def main() -> None:
        async with process(stubborn) as path:
            await until(lambda: path.pid is not None, what="the process")
            pid = path.pid
            assert pid is not None
        assert gone(pid)

    asyncio.run(main())


def test_a_command_that_cannot_start_is_retried_and_leaving_does_not_wait_for_it(
        caplog: pytest.LogCaptureFixture) -> None:
    def failures() -> int:
        return sum(r.getMessage() == "cannot start the data-plane process" for r in caplog.records)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with process(("/nonexistent/shoal-worker",)) as path:
            await until(lambda: failures() >= 3, what="a third attempt")
            assert path.starts == 0
            left = loop.time()
        assert loop.time() - left < 1.0  # the backoff wait ends as soon as the block is left

    asyncio.run(main())

