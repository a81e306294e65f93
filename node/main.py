"""Composition root: the only place that builds concrete objects (clock, randomness, event loop).

`run()` is the `shoal` console script. `serve()` runs an agent: it picks uvloop, installs the signal
handlers that turn SIGTERM/SIGINT into a graceful leave, and maps startup failures to exit status 1.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import sys

import uvloop

from gossip.clock import LoopClock
from gossip.errors import GossipError
from node import logs
from node.agent import Agent, AgentError, obtain_identity
from node.cli import cli
from node.config import AgentConfig

log = logging.getLogger("shoal")


async def _main(config: AgentConfig) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    clock = LoopClock(loop)
    identity = await obtain_identity(config, clock)
    agent = Agent(config=config, identity=identity, clock=clock, rng=random.SystemRandom())
    await agent.run(stop)


def serve(config: AgentConfig, log_level: str) -> int:
    logs.setup(log_level)
    try:
        uvloop.run(_main(config))
    except (AgentError, GossipError) as exc:
        print(f"shoal agent: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. an address already taken by another agent, or an unreadable data dir
        cause = os.strerror(exc.errno) if exc.errno else ""
        hint = " (is another process using it? choose --bind / --api)" if "bind" in str(exc) else ""
        print(f"shoal agent: {exc}{f' ({cause})' if cause and cause not in str(exc) else ''}{hint}",
              file=sys.stderr)
        return 1
    return 0


def run() -> None:
    cli(prog_name="shoal", obj={"serve": serve})
