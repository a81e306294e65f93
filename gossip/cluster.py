"""The gossip package's public face for the agent: a signed SWIM member on real UDP and mutual-TLS TCP.

`Cluster` wires the protocol core (gossip.swim) to UDP (gossip.udp), the loop clock, and a TLS stream
server that answers push-pull anti-entropy and joins. It offers join, leave, members, stats and member
events. Everything it builds is passed in or built from the identity; it reads no global state.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gossip.clock import Clock
from gossip.config import GossipConfig
from gossip.driver import Driver
from gossip.envelope import Authenticator
from gossip.errors import GossipError, WireError
from gossip.identity import Identity
from gossip.joining import JoinService
from gossip.members import MemberState
from gossip.stream import Peer, RequestRefused, StreamServer, open_stream
from gossip.swim import LocalNode, MemberEvent, Membership
from gossip.sync import decode_states, encode_states
from gossip.tls import client_context, server_context
from gossip.udp import UdpTransport
from gossip.wire import Address

log = logging.getLogger(__name__)

MAX_CONCURRENT_EXCHANGES = 4


@dataclass(frozen=True, slots=True)
class Settings:
    bind: Address
    advertise: Address
    labels: tuple[tuple[str, str], ...]
    boot: int
    incarnation: int


class Cluster:
    """`async with Cluster(...) as cluster:` runs the member; leaving the block stops it (call `leave` first
    for a graceful exit). Every task it starts lives in its TaskGroup and ends with the block."""

    def __init__(self, *, identity: Identity, config: GossipConfig, settings: Settings, clock: Clock,
                 rng: random.Random, on_event: Callable[[MemberEvent], None]) -> None:
        self.identity = identity
        self.config = config
        self._settings = settings
        self._clock = clock
        self._rng = rng
        self._on_event = on_event
        self._server = StreamServer()
        self._stack = contextlib.AsyncExitStack()
        self._group: asyncio.TaskGroup | None = None
        self._exchanges: set[asyncio.Task[bool]] = set()
        self._udp: UdpTransport | None = None
        self._driver: Driver | None = None
        self._client_tls = client_context(identity)  # built once: it loads and parses the key and certs
        self.stats: Counter[str] = Counter()

    async def __aenter__(self) -> Cluster:
        await self._stack.__aenter__()
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._stack.__aexit__(*exc_info)

    async def _start(self) -> None:
        s = self._settings
        # Entered in this order, unwound in reverse: driver, server, exchanges, task group, socket.
        self._udp = await self._stack.enter_async_context(UdpTransport.bound(s.bind))
        self._group = await self._stack.enter_async_context(asyncio.TaskGroup())
        self._stack.callback(self._cancel_exchanges)
        self._server.route("push_pull", self._serve_push_pull)
        JoinService(lambda: self.identity, self._clock).register(self._server)
        await self._server.start(s.bind[0], s.bind[1], server_context(self.identity))
        self._stack.push_async_callback(self._server.close)
        local = LocalNode(self.identity.node_id, self.identity.node_name, s.advertise, s.labels,
                          self.identity.cert_der)
        auth = Authenticator(self.identity.trust, self.identity.cluster_id,
                             window=self.config.replay_window, max_skew_s=self.config.max_clock_skew_s)
        core = Membership(config=self.config, local=local, key=self.identity.key, auth=auth, boot=s.boot,
                          incarnation=s.incarnation, rng=self._rng, now=self._clock.now())
        self._driver = Driver(core, self._udp, self._clock, self, self._on_event)
        self._driver.start()
        self._stack.callback(self._driver.close)

    @property
    def core(self) -> Membership:
        if self._driver is None:
            raise GossipError("cluster not started")
        return self._driver.core

    def members(self) -> list[MemberState]:
        return self.core.members()

    def counters(self) -> dict[str, int]:
        merged = Counter(self.core.stats)
        merged.update(self.stats)
        merged.update({f"tcp_{k}": v for k, v in dataclasses.asdict(self._server.stats).items()})
        if self._udp is not None:
            merged.update(self._udp.stats)
        return dict(merged)

    async def join(self, seeds: Iterable[Address]) -> int:
        """Push-pull with each seed in turn; returns how many answered. Stops after three successes."""
        joined = 0
        for seed in seeds:
            if await self._push_pull(seed):
                joined += 1
                if joined >= 3:
                    break
        return joined

    def exchange(self, addr: Address) -> None:
        """Exchanger protocol: the core asks for a periodic push-pull."""
        if self._group is None or len(self._exchanges) >= MAX_CONCURRENT_EXCHANGES:
            self.stats["push_pull_skipped"] += 1
            return
        task = self._group.create_task(self._push_pull(addr))
        self._exchanges.add(task)
        task.add_done_callback(self._exchanges.discard)

    def _cancel_exchanges(self) -> None:
        for task in list(self._exchanges):
            task.cancel()

    async def leave(self, grace_s: float = 1.0) -> None:
        """Tell every member we are leaving, and give the notices time to go out."""
        if self._driver is None or self._udp is None:
            return
        self._driver.leave()
        await self._udp.drain(grace_s)

    async def _push_pull(self, addr: Address) -> bool:
        body = {"members": encode_states(self.core.snapshot())}
        try:
            async with await open_stream(addr, self._client_tls, self.config.tcp_timeout_s) as s:
                reply = await s.request("push_pull", body)
                states = decode_states(reply.get("members"), self._clock.now())
                peer_cert = s.peer_cert_der
        except (GossipError, OSError, TimeoutError) as exc:
            self.stats["push_pull_failed"] += 1
            log.info("push-pull with %s:%s failed: %s", addr[0], addr[1], exc)
            return False
        self.stats["push_pull_ok"] += 1
        if self._driver is not None:
            self._driver.merge_remote(states, peer_cert)
        return True

    async def _serve_push_pull(self, peer: Peer, body: dict[str, Any]) -> dict[str, Any]:
        try:
            states = decode_states(body.get("members"), self._clock.now())
        except WireError as exc:
            raise RequestRefused(f"malformed member list: {exc}", code="malformed") from exc
        if self._driver is not None:
            self._driver.merge_remote(states, peer.cert_der)
        # Reply after merging, so a refutation our merge just caused travels back in this exchange.
        return {"members": encode_states(self.core.snapshot())}

