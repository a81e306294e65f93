"""Before the agent runs: its identity (the saved one, or one obtained by joining through a seed with a token)
and the address it advertises to its peers.

Role: start-up I/O with one outcome each, or an AgentError that tells the operator what to do (the CLI turns it
into exit status 1). Built into the agent by node.main.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from gossip.clock import Clock
from gossip.errors import JoinRefused, TokenError
from gossip.identity import Identity, JoinToken, load_identity, prepare_node, save_grant
from gossip.joining import JoinUnreachable, request_join
from gossip.wire import Address
from node.config import AgentConfig

log = logging.getLogger("shoal.agent")

JOIN_RETRY_S = 30.0
"""How long a first join keeps trying unreachable seeds before giving up (a refusal ends it at once)."""


class AgentError(Exception):
    """A reason the agent cannot start, for the operator (exit status 1)."""


async def obtain_identity(config: AgentConfig, clock: Clock) -> Identity:
    """The saved identity, or a new one obtained by joining through --join with --token."""
    identity = load_identity(config.data_dir)
    if identity is not None and config.name and config.name != identity.node_name:
        prepare_node(config.data_dir, node_name=config.name)  # --name renames; the id and key stay
        identity = load_identity(config.data_dir)
    if identity is not None:
        return identity
    if not config.token or not config.join:
        raise AgentError(f"data dir {config.data_dir} holds no cluster identity: run `shoal init --data "
                         f"{config.data_dir}` for a new cluster, or pass --join ADDRESS --token TOKEN")
    try:
        token = JoinToken.parse(config.token)
    except TokenError as exc:
        raise AgentError(f"--token: {exc}") from None
    node_id, key, name = prepare_node(config.data_dir, node_name=config.name)
    deadline = clock.now() + JOIN_RETRY_S
    delay = 0.5
    while True:
        causes = []
        for seed in config.join:
            try:
                grant = await request_join(seed, token, node_id, key, name,
                                           timeout_s=config.gossip.tcp_timeout_s, now_s=clock.wall())
            except JoinRefused as exc:
                raise AgentError(f"join refused by {seed[0]}:{seed[1]}: {exc}") from None
            except JoinUnreachable as exc:
                causes.append(str(exc))
                continue
            return save_grant(config.data_dir, grant)
        if clock.now() + delay > deadline:
            raise AgentError(f"could not reach any member to join within {JOIN_RETRY_S:.0f} s: "
                             + "; ".join(causes))
        log.warning("no member reachable yet; retrying", extra={"fields": {"in_s": delay, "causes": causes}})
        await asyncio.sleep(delay)  # members may still be starting (hosts booting together)
        delay = min(delay * 2, 5.0)


ROUTE_PROBE = ("192.0.2.1", 9)
"""A documentation address (RFC 5737): we only ask the kernel which source address would route there."""


def advertise_address(config: AgentConfig) -> Address:
    """--advertise, else a specific --bind IP, else the local address that routes to the first seed (or,
    for a first node, the one the default route would use)."""
    if config.advertise:
        return config.advertise
    host, port = config.bind
    if host not in ("0.0.0.0", "::"):
        return config.bind
    for target in (*config.join, ROUTE_PROBE):
        family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect(target)  # a route lookup only: connect() on UDP sends nothing
            except OSError:
                continue
            return probe.getsockname()[0], port
    raise AgentError("cannot tell which address to advertise (no route): pass --advertise IP or --bind IP")
