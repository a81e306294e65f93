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

from gossip.clock import LoopClock
from gossip.errors import GossipError
from node import eventloop, hostnet, logs
from node.agent import Agent
from node.cli import cli
from node.config import AgentConfig
from node.dataplane import Dataplane
from node.discovery.vip import VipRange
from node.probes import HttpProber, ProbeRunner
from node.proxy.config import ProxyConfig
from node.proxyprocess import ProxyProcess
from node.proxyworker import ARGUMENT as PROXY_WORKER
from node.runtime.base import Runtime, RuntimeFailure
from node.runtime.service import ensure_service
from node.startup import AgentError, obtain_identity

log = logging.getLogger("shoal")


async def _main(config: AgentConfig, log_level: str) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    clock = LoopClock(loop)
    identity = await obtain_identity(config, clock)
    runtime = await _runtime(config)
    try:
        if runtime is None:  # a control-plane node: no containers, proxy, DNS, routes or nftables (SPEC)
            await Agent(config=config, identity=identity, clock=clock, rng=random.SystemRandom()).run(stop)
            return
        proxy = ProxyProcess(command=[sys.executable, "-m", "node", PROXY_WORKER], config=ProxyConfig(),
                             log_level=log_level, clock=clock)
        dataplane = Dataplane(clock=clock, vip_range=VipRange.parse(config.service_range, [config.dns_address]),
                              dns_address=config.dns_address, hold=hostnet.hold_addresses, data_path=lambda: proxy)
        probe = ProbeRunner(exec_fn=runtime.exec, http_get=HttpProber().get).run
        agent = Agent(config=config, identity=identity, clock=clock, rng=random.SystemRandom(),
                      runtime=runtime, converge=hostnet.converge, dataplane=dataplane, probe=probe,
                      counters=hostnet.policy_counters, settle_network=hostnet.BridgePin().pin)
        await agent.run(stop)
    finally:
        if runtime is not None:
            await runtime.close()


async def _runtime(config: AgentConfig) -> Runtime | None:
    """The host's container engine: podman's API service on the configured socket, started if nothing answers
    there (it runs detached, so containers and the engine outlive an agent restart)."""
    if config.runtime == "none":
        return None
    from node.runtime.podman import PodmanRuntime  # imports podman-py: only agents that run containers pay for it

    try:
        started = await asyncio.to_thread(ensure_service, config.podman_socket)
    except RuntimeFailure as exc:
        raise AgentError(f"podman API service on {config.podman_socket}: {exc}") from None
    if started is not None:
        log.info("started the podman API service", extra={"fields": {"socket": str(config.podman_socket),
                                                                     "pid": started}})
    return PodmanRuntime(config.podman_socket)


def serve(config: AgentConfig, log_level: str) -> int:
    logs.setup(log_level)
    try:
        eventloop.run(_main(config, log_level))
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
