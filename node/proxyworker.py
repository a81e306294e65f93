"""The data-plane process: node.proxy, fed by the agent over its standard input (node.proxypipe).

Role: `serve(clock, reader, stop)` reads `Configure`, opens the proxy, then applies each `SetTable` and
`SetAdmission` as it comes, until the pipe ends (the agent closed it, or died: the kernel closes its end either
way), `stop` is set (SIGTERM), or the pipe breaks. Leaving closes every listener and connection. Until the first
`SetAdmission` every connection is admitted, as in the agent before its first policy compile.
`main()` is the process: `python -m node proxy-worker`, as node.proxyprocess starts it. It imports the proxy and
what its messages hold, not the agent: it starts in a fraction of the agent's time and memory.
Boundary: no decisions at all.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from contextlib import suppress

from gossip.clock import Clock, LoopClock
from node import eventloop, logs
from node.datapath import InlineDataPath
from node.proxypipe import Configure, PipeError, SetAdmission, SetTable, receive

log = logging.getLogger("shoal.proxyworker")

ARGUMENT = "proxy-worker"  # `python -m node proxy-worker`: node/__main__.py runs this process instead of the CLI


async def serve(clock: Clock, reader: asyncio.StreamReader, stop: asyncio.Event) -> int:
    """Exit status: 0 when the pipe ended or `stop` was set, 1 when the pipe carried something unreadable."""
    reading = asyncio.ensure_future(_serve(clock, reader))
    stopping = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait([reading, stopping], return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if reading in done:
        return reading.result()
    reading.cancel()  # leaving the proxy's block inside _serve closes its listeners and connections
    with suppress(asyncio.CancelledError):
        await reading
    return 0


async def _serve(clock: Clock, reader: asyncio.StreamReader) -> int:
    try:
        first = await receive(reader)
        if first is None:
            return 0
        if not isinstance(first, Configure):
            raise PipeError(f"the first message is a {type(first).__name__}, not Configure")
        logging.getLogger().setLevel(first.log_level.upper())
        async with InlineDataPath(clock=clock, config=first.config) as path:
            log.info("data-plane process serving")
            while (message := await receive(reader)) is not None:
                if isinstance(message, SetTable):
                    await path.update(message.table)
                elif isinstance(message, SetAdmission):
                    path.admit_by(message.admission)
                else:
                    raise PipeError("Configure sent twice")
        return 0
    except PipeError as exc:
        log.error("data-plane process: bad input from the agent; exiting", extra={"fields": {"error": exc}})
        return 1


def main() -> None:
    """Exits when the agent closes the pipe, or on SIGTERM. It ignores SIGINT: a terminal's ^C reaches the whole
    process group, and the agent ends this process itself as it stops, in its own order."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logs.setup("info")  # the agent's level arrives first thing on the pipe
    sys.exit(eventloop.run(_main()))


async def _main() -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return await serve(LoopClock(loop), reader, stop)
