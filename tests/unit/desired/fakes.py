"""A fake agent for the desired-state API and CLI tests: a real Store on a MemoryBackend, unsigned writes
(nothing verifies signatures here), a settable wall clock and member list."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gossip.entry import Entry, Record
from gossip.hlc import Stamp
from gossip.members import MemberState, Status
from gossip.store import MemoryBackend, Store
from node.api import build_app
from node.desired import SERVICE_PREFIX, ServiceView, live_services
from node.nodes import NODE_PREFIX, NodeSettings
from node.nodes import decode as decode_settings
from node.observed import STATUS_PREFIX, NodeStatus, decode_status
from node.schedule import Share, share_from

SELF = "a" * 32
OTHER = "b" * 32
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
T = TypeVar("T")


def member(node: str, name: str) -> MemberState:
    return MemberState(node, name, ("127.0.0.1", 7946), 1, Status.ALIVE, (), 0.0)


class FakeAgent:
    def __init__(self) -> None:
        self.name = "n1"
        self.store = Store(MemoryBackend())
        self.wall_ms = START_MS
        self.writes: list[Entry] = []
        self.received: dict[str, float] = {}
        self.roster = [member(SELF, "n1"), member(OTHER, "n2")]

    def members(self) -> list[MemberState]:
        return list(self.roster)

    def join_token(self) -> str | None:
        return None

    def counters(self) -> dict[str, Any]:
        return {}

    def write(self, key: str, payload: bytes, *, note: str, expect: int | None, tombstone: bool = False) -> Record:
        self.wall_ms += 1000
        entry = self.store.next_entry(key, author=SELF, payload=payload, note=note, tombstone=tombstone,
                                      expect=expect, wall_ms=self.wall_ms)
        self.writes.append(entry)
        return self.store.merge_entry(entry)[0]

    def received_at(self, key: str) -> float | None:
        return self.received.get(key)

    def statuses(self) -> dict[str, NodeStatus]:
        found = {r.key.removeprefix(STATUS_PREFIX): decode_status(r.entry.payload)
                 for r in self.store.scan(STATUS_PREFIX)}
        return {node: status for node, status in found.items() if status is not None}

    def node_settings(self) -> dict[str, NodeSettings]:
        return {r.key.removeprefix(NODE_PREFIX): decode_settings(r) for r in self.store.scan(NODE_PREFIX)}

    @property
    def node_id(self) -> str:
        return SELF

    async def policy_counters(self) -> list[dict[str, object]]:
        return [{"chain": "to_containers", "rule": "default deny", "packets": 3, "bytes": 180}]

    def services(self) -> list[ServiceView]:
        return live_services(self.store.scan(SERVICE_PREFIX))[0]

    def share(self) -> Share:
        return share_from(SELF, self.members(), self.statuses(), self.node_settings(), self.services())

    def remote_write(self, key: str, generation: int, payload: bytes, note: str, *, wall_ms: int,
                     author: str = OTHER, tombstone: bool = False) -> Record:
        """A write another node made (e.g. concurrently, at a generation we also wrote), merged as gossip would."""
        entry = Entry(key, generation, Stamp(wall_ms), author, tombstone, b"" if tombstone else payload, note)
        return self.store.merge_entry(entry)[0]


Session = Callable[[TestClient[Any, Any]], Awaitable[T]]


def with_client(agent: FakeAgent, session: Session[T]) -> T:
    """Run `session(client)` against the API app over a real loopback server, in a fresh event loop."""
    async def run() -> T:
        async with TestClient(TestServer(build_app(agent))) as client:
            return await asyncio.wait_for(session(client), 20)
    return asyncio.run(run())


def call(agent: FakeAgent, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    """One request; (status, decoded JSON body)."""
    async def session(client: TestClient[Any, Any]) -> tuple[int, Any]:
        async with client.request(method, path, **kwargs) as response:
            return response.status, await response.json()
    return with_client(agent, session)


@contextlib.contextmanager
def serving(agent: FakeAgent) -> Iterator[str]:
    """The API over `agent` on 127.0.0.1 (a free port) in a thread of its own; yields its URL."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner = web.AppRunner(build_app(agent))

    async def start() -> str:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    try:
        yield asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
