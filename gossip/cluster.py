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
from typing import Any, TypeVar

from gossip.antientropy import (
    decode_digests,
    decode_summary,
    differing_buckets,
    encode_digests,
    encode_summary,
    page,
    plan,
    stale_horizon,
)
from gossip.clock import Clock
from gossip.codec import read_bytes, read_node
from gossip.config import GossipConfig
from gossip.driver import Driver, Event
from gossip.entry import Record, decode_record, encode_record
from gossip.envelope import Authenticator
from gossip.errors import GossipError, WireError
from gossip.identity import Identity
from gossip.joining import JoinService
from gossip.members import MemberState
from gossip.replication import Replicator
from gossip.store import Store, StoreBackend
from gossip.stream import Peer, RequestRefused, StreamClient, StreamServer, open_stream
from gossip.swim import LocalNode, Membership
from gossip.sync import decode_states, encode_states
from gossip.tls import client_context, server_context
from gossip.udp import UdpTransport
from gossip.wire import MAX_CERT_BYTES, Address

log = logging.getLogger(__name__)

MAX_CONCURRENT_EXCHANGES = 4
MAX_CONCURRENT_FETCHES = 16
FETCH_CHUNK = 64
"""Keys per fetch or push request: 64 records of at most 64 KiB stay well inside one 8 MiB frame."""
MAX_DIGEST_PAGES = 400
"""A sync reads at most this many key-digest pages (~12,000 keys); the rest waits for the next exchange."""


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
                 rng: random.Random, on_event: Callable[[Event], None], store: StoreBackend) -> None:
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
        self._fetches: set[asyncio.Task[None]] = set()
        self._backend = store
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
        self._server.route("store_summary", self._serve_summary)
        self._server.route("store_keys", self._serve_keys)
        self._server.route("store_fetch", self._serve_fetch)
        self._server.route("store_push", self._serve_push)
        JoinService(lambda: self.identity, self._clock).register(self._server)
        await self._server.start(s.bind[0], s.bind[1], server_context(self.identity))
        self._stack.push_async_callback(self._server.close)
        local = LocalNode(self.identity.node_id, self.identity.node_name, s.advertise, s.labels,
                          self.identity.cert_der)
        auth = Authenticator(self.identity.trust, self.identity.cluster_id,
                             window=self.config.replay_window, max_skew_s=self.config.max_clock_skew_s)
        core = Membership(config=self.config, local=local, key=self.identity.key, auth=auth, boot=s.boot,
                          incarnation=s.incarnation, rng=self._rng, now=self._clock.now(), backend=self._backend)
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

    def fetch(self, addr: Address, keys: tuple[str, ...]) -> None:
        """Exchanger protocol: fetch records an announcement told us of."""
        if self._group is None or len(self._fetches) >= MAX_CONCURRENT_FETCHES:
            self.stats["fetch_skipped"] += 1
            self._replica.fetch_failed(keys)  # called from the driver's settle: no need to settle again
            return
        task = self._group.create_task(self._fetch(addr, keys))
        self._fetches.add(task)
        task.add_done_callback(self._fetches.discard)

    def _cancel_exchanges(self) -> None:
        for task in (*self._exchanges, *self._fetches):
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
                if self._driver is not None:
                    self._driver.merge_remote(states, s.peer_cert_der)
                await self._sync_store(s)
        except (GossipError, OSError, TimeoutError) as exc:
            self.stats["push_pull_failed"] += 1
            log.info("push-pull with %s:%s failed: %s", addr[0], addr[1], exc)
            return False
        self.stats["push_pull_ok"] += 1
        return True

    async def _sync_store(self, s: StreamClient) -> None:
        """Anti-entropy for the store over an open stream (gossip.antientropy): summaries, the differing
        buckets' key digests page by page, then pull and push what differs."""
        mine = self.store.summary()
        theirs = decode_summary((await s.request("store_summary", {"summary": encode_summary(mine)})).get("summary"))
        horizon = self._replica.horizon_of(theirs, self._clock.wall())
        complete = True
        buckets = differing_buckets(mine, theirs)
        if buckets:
            their_digests: list[tuple[str, bytes]] = []
            after: str | None = None
            for _ in range(MAX_DIGEST_PAGES):
                reply = await s.request("store_keys", {"buckets": buckets, "after": after})
                their_digests += decode_digests(reply.get("keys"))
                after = reply.get("next") if isinstance(reply.get("next"), str) else None
                if after is None:
                    break
            complete = after is None  # only a complete listing proves the peer lacks a key
            todo = plan(self.store, self.store.digests(buckets), their_digests,
                        stale_horizon(mine, horizon) if complete else None, complete=complete)
            self._act(lambda r, _wall: r.drop(todo.drop))
            for chunk in _chunks(todo.pull):
                self._take(await s.request("store_fetch", {"keys": list(chunk)}))
            for chunk in _chunks(todo.push):
                await s.request("store_push", _encode_records(*self._replica.serve(chunk)))
            self.stats["store_sync_keys"] += len(todo.pull) + len(todo.push)
        if complete:
            self._act(lambda r, wall: r.synced(wall, horizon))

    def _take(self, reply: dict[str, Any]) -> None:
        records, certs = _decode_records(reply)
        self._act(lambda r, wall: r.fetched(records, certs, wall))

    async def _fetch(self, addr: Address, keys: tuple[str, ...]) -> None:
        try:
            async with await open_stream(addr, self._client_tls, self.config.tcp_timeout_s) as s:
                records, certs = _decode_records(await s.request("store_fetch", {"keys": list(keys)}))
        except (GossipError, OSError, TimeoutError) as exc:
            self.stats["fetch_failed"] += 1
            log.info("fetch from %s:%s failed: %s", addr[0], addr[1], exc)
            self._act(lambda r, _wall: r.fetch_failed(keys))
            return
        self._act(lambda r, wall: r.fetched(records, certs, wall))

    async def _serve_push_pull(self, peer: Peer, body: dict[str, Any]) -> dict[str, Any]:
        try:
            states = decode_states(body.get("members"), self._clock.now())
        except WireError as exc:
            raise RequestRefused(f"malformed member list: {exc}", code="malformed") from exc
        if self._driver is not None:
            self._driver.merge_remote(states, peer.cert_der)
        # Reply after merging, so a refutation our merge just caused travels back in this exchange.
        return {"members": encode_states(self.core.snapshot())}

    async def _serve_summary(self, peer: Peer, body: dict[str, Any]) -> dict[str, Any]:
        return {"summary": encode_summary(self.store.summary())}

    async def _serve_keys(self, peer: Peer, body: dict[str, Any]) -> dict[str, Any]:
        buckets, after = body.get("buckets"), body.get("after")
        if not isinstance(buckets, list) or not all(type(b) is int and 0 <= b < 64 for b in buckets) \
                or not (after is None or isinstance(after, str)):
            raise RequestRefused("store_keys takes {buckets: [0..63], after: key | null}", code="malformed")
        items, cursor = page(self.store.digests(buckets), after)
        return {"keys": encode_digests(items), "next": cursor}

    async def _serve_fetch(self, peer: Peer, body: dict[str, Any]) -> dict[str, Any]:
        keys = body.get("keys")
        if not isinstance(keys, list) or len(keys) > FETCH_CHUNK or not all(isinstance(k, str) for k in keys):
            raise RequestRefused(f"store_fetch takes {{keys: [at most {FETCH_CHUNK} keys]}}", code="malformed")
        return _encode_records(*self._replica.serve(keys))

    async def _serve_push(self, peer: Peer, body: dict[str, Any]) -> dict[str, Any]:
        try:
            records, certs = _decode_records(body)
        except WireError as exc:
            raise RequestRefused(f"malformed records: {exc}", code="malformed") from exc
        self._act(lambda r, wall: r.fetched(records, certs, wall))
        return {}

    # ---- the store, for the agent ---------------------------------------------------------------------

    @property
    def store(self) -> Store:
        return self._replica.store

    @property
    def _replica(self) -> Replicator:
        return self.core.replica

    def write(self, key: str, payload: bytes, *, note: str, expect: int | None, tombstone: bool = False) -> Record:
        """Store and spread a local write; raises store.Conflict (nothing written) if `expect` is stale."""
        return self._act(lambda r, wall: r.write(key, payload, note=note, expect=expect, tombstone=tombstone,
                                                 wall=wall))

    def publish_status(self, payload: bytes, note: str = "") -> Record:
        """Publish this node's own observed state (status/<node id>)."""
        return self._act(lambda r, wall: r.publish_status(payload, note, wall))

    def _act(self, action: Callable[[Replicator, float], T]) -> T:
        if self._driver is None:
            raise GossipError("cluster not started")
        return self._driver.act(lambda core, _now, wall: action(core.replica, wall))


T = TypeVar("T")


def _chunks(keys: tuple[str, ...]) -> list[tuple[str, ...]]:
    return [keys[i:i + FETCH_CHUNK] for i in range(0, len(keys), FETCH_CHUNK)]


def _encode_records(records: list[Record], certs: dict[str, bytes]) -> dict[str, Any]:
    return {"records": [encode_record(r) for r in records], "certs": [[bytes.fromhex(n), d] for n, d in certs.items()]}


def _decode_records(body: dict[str, Any]) -> tuple[list[Record], dict[str, bytes]]:
    """The records and certificates of a fetch reply or a push; a record that does not decode is skipped (and
    logged), so one bad record cannot stall every exchange with its holder."""
    raw_records, raw_certs = body.get("records"), body.get("certs")
    if not isinstance(raw_records, list) or len(raw_records) > FETCH_CHUNK:
        raise WireError(f"records must be a list of at most {FETCH_CHUNK}")
    if not isinstance(raw_certs, list) or len(raw_certs) > FETCH_CHUNK:
        raise WireError(f"certs must be a list of at most {FETCH_CHUNK}")
    certs = {}
    for item in raw_certs:
        if not isinstance(item, list) or len(item) != 2:
            raise WireError("a cert is [node id, der]")
        certs[read_node(item[0])] = read_bytes(item[1], MAX_CERT_BYTES)
    records = []
    for raw in raw_records:
        try:
            records.append(decode_record(raw))
        except WireError as exc:
            log.warning("skipping a record that does not decode: %s", exc)
    return records, certs
