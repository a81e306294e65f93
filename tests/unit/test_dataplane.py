"""The data plane on loopback: VIPs held (through a fake `hold`), names answered, traffic proxied to a replica,
and all of it following the inputs. Service range 127.0.0.0/24: every 127/8 address is local, so VIP listeners
open without root; the DNS responder gets a port the kernel picks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import pytest
from dnslib import DNSRecord

from gossip.clock import LoopClock
from node.dataplane import Dataplane, Inputs
from node.discovery.vip import VipRange
from node.manifest.model import ServiceSpec
from node.observed import NodeStatus, ReplicaReport
from tests.unit.discovery.fakes import udp_client
from tests.unit.proxy.loopback import eventually, until

pytestmark = pytest.mark.timeout(30)
RANGE = VipRange.parse("127.0.0.0/24", ["127.0.0.53"])
PORT = 18_473  # the service's port: the replica listens on 127.0.0.1, the VIP listener on 127.0.0.x


class Refuses:
    async def forward(self, query: bytes, *, tcp: bool) -> bytes | None:
        raise AssertionError("a service name must never be forwarded")


def test_names_vips_and_routes_follow_the_inputs() -> None:
    async def main() -> None:
        held: list[list[str]] = []

        async def hold(addresses: Iterable[str], within: str) -> list[str]:
            assert within == "127.0.0.0/24"
            held.append(sorted(addresses))
            return []

        async def replica(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"replica says hi")
            await writer.drain()
            writer.close()

        backend = await asyncio.start_server(replica, "127.0.0.1", PORT)
        web = ServiceSpec(name="web", image="img", expose=(PORT,))
        up = NodeStatus("podman", (ReplicaReport("web", 0, "running", ready=True, address="127.0.0.1"),))
        inputs = Inputs([web], {"n1": up}, ["n1"], [])
        plane = Dataplane(clock=LoopClock(asyncio.get_running_loop()), vip_range=RANGE, dns_address="127.0.0.53",
                          hold=hold, dns_port=0, forwarder=Refuses())
        stop = asyncio.Event()
        task = asyncio.create_task(plane.run(stop, lambda: inputs))
        await until(lambda: plane.plumbing is not None and plane.dns_bound is not None)
        assert plane.plumbing is not None and plane.dns_bound is not None
        vip = str(plane.plumbing.vips["web"])
        assert held[-1] == sorted(["127.0.0.53", vip])
        async with udp_client(plane.dns_bound) as client:
            reply = await client.ask(DNSRecord.question("web.shoal"))
        assert [str(rr.rdata) for rr in reply.rr] == [vip]
        reader, writer = await asyncio.open_connection(vip, PORT)
        assert await reader.read() == b"replica says hi"
        writer.close()

        holds, before = len(held), plane.plumbing
        plane.poke()  # nothing changed: a pass runs, but `ip` is not asked again
        await until(lambda: plane.plumbing is not before)
        assert len(held) == holds

        inputs = Inputs([], {}, [], [])  # the service is removed: its VIP and listener go
        plane.poke()
        await until(lambda: held[-1] == ["127.0.0.53"])
        await eventually(lambda: _refused(vip))
        stop.set()
        await task
        backend.close()

    asyncio.run(main())


async def _refused(vip: str) -> bool:
    try:
        _, writer = await asyncio.open_connection(vip, PORT)
    except ConnectionRefusedError:
        return True
    writer.close()
    return False
