"""The store's TCP paths between two real Clusters on loopback (mutual TLS): an announced record is fetched,
and a push-pull carries records both ways (the digest pages, pull and push of gossip.antientropy)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from gossip.clock import LoopClock
from gossip.cluster import Cluster, Settings
from gossip.config import GossipConfig
from gossip.driver import Event
from gossip.identity import Identity, init_cluster, prepare_node, save_grant
from gossip.joining import request_join
from gossip.persist import SqliteBackend
from tests.e2e.procs import free_port

LOCAL = "127.0.0.1"


def cluster(identity: Identity, data: Path, port: int) -> Cluster:
    settings = Settings(bind=(LOCAL, port), advertise=(LOCAL, port), labels=(), boot=int(time.time()),
                        incarnation=1)
    events: list[Event] = []
    return Cluster(identity=identity, config=GossipConfig.local(), settings=settings,
                   clock=LoopClock(asyncio.get_running_loop()), rng=random.Random(7), on_event=events.append,
                   store=SqliteBackend.in_dir(data))


async def until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.02)
    assert condition(), what


def run(tmp_path: Path, scenario: Callable[[Identity, Identity, Path, Path], Awaitable[None]]) -> None:
    first = init_cluster(tmp_path / "a", cluster_name="t", node_name="a", now_s=time.time())

    async def main() -> None:
        port = free_port()
        async with cluster(first, tmp_path / "a", port):
            node_id, key, name = prepare_node(tmp_path / "b", node_name="b")
            assert first.token is not None
            grant = await request_join((LOCAL, port), first.token, node_id, key, name, timeout_s=5.0,
                                       now_s=time.time())
            second = save_grant(tmp_path / "b", grant)
        await scenario(first, second, tmp_path / "a", tmp_path / "b")

    asyncio.run(main())


def test_an_announced_record_is_fetched_over_tls(tmp_path: Path) -> None:
    async def scenario(first: Identity, second: Identity, a_dir: Path, b_dir: Path) -> None:
        pa, pb = free_port(), free_port()
        async with cluster(first, a_dir, pa) as a, cluster(second, b_dir, pb) as b:
            assert await b.join([(LOCAL, pa)]) == 1
            await until(lambda: len([m for m in a.members() if m.status.label == "alive"]) == 2, 5, "join")
            written = a.write("service/big", b"x" * 5000, note="big", expect=0)  # too big for a datagram
            await until(lambda: (r := b.store.get("service/big")) is not None and r.entry == written.entry, 5,
                        "b to fetch the announced record")
            assert b.counters().get("fetches", 0) >= 1

    run(tmp_path, scenario)


def test_a_push_pull_moves_records_both_ways_page_by_page(tmp_path: Path) -> None:
    async def scenario(first: Identity, second: Identity, a_dir: Path, b_dir: Path) -> None:
        pa, pb = free_port(), free_port()
        async with cluster(first, a_dir, pa) as a:  # a writes 300 records while b is away
            for i in range(300):
                a.write(f"service/from-a-{i:03}", b"a" * 100, note="", expect=0)
        async with cluster(second, b_dir, pb) as b:  # and b writes its own, alone
            for i in range(200):
                b.write(f"service/from-b-{i:03}", b"b" * 100, note="", expect=0)
        async with cluster(first, a_dir, pa) as a, cluster(second, b_dir, pb) as b:
            assert len(a.store) == 300 and len(b.store) == 200  # both reloaded from SQLite
            assert await b.join([(LOCAL, pa)]) == 1  # one push-pull: members, then the store
            assert a.store.summary().buckets == b.store.summary().buckets
            assert len(a.store) == len(b.store) == 500
            assert b.store.synced_ms > 0

    run(tmp_path, scenario)
