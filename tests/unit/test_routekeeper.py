"""The route keeper: which members get a route (alive or suspect, advertising a subnet, not this node), and
that it hands exactly those to converge, waits for its own subnet, and survives a failing converge."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from gossip.members import MemberState, Status
from node.observed import NodeStatus
from node.routekeeper import RouteKeeper, peers
from node.routes import PeerNet


def member(node: str, status: Status = Status.ALIVE) -> MemberState:
    return MemberState(node, f"n-{node}", (f"198.18.0.{10 + int(node)}", 7946), 1, status, (), 0.0)


def test_peers_are_live_members_with_a_subnet_other_than_me() -> None:
    members = [member("1"), member("2"), member("3", Status.SUSPECT), member("4", Status.DEAD), member("5")]
    statuses = {n: NodeStatus("podman", (), f"198.19.{n}.0/24") for n in "12345"}
    statuses["5"] = NodeStatus("none")
    assert peers("1", members, statuses) == [PeerNet("2", "198.19.2.0/24", "198.18.0.12"),
                                             PeerNet("3", "198.19.3.0/24", "198.18.0.13")]


def test_sync_converges_on_the_current_view_and_survives_a_failure() -> None:
    calls: list[tuple[str | None, list[PeerNet]]] = []
    view: tuple[str | None, list[PeerNet]] = (None, [])

    async def converge(own: str | None, found: Iterable[PeerNet]) -> list[str]:
        calls.append((own, list(found)))
        if len(calls) == 2:
            raise OSError("ip: command failed")
        return []

    async def scenario() -> None:
        nonlocal view
        keeper = RouteKeeper(lambda: view, converge)
        await keeper.sync()
        assert calls == []  # no own subnet yet: the host network is not up
        view = ("198.19.1.0/24", [PeerNet("2", "198.19.2.0/24", "198.18.0.12")])
        await keeper.sync()
        await keeper.sync()  # the failure is logged, not raised
        await keeper.sync()
        assert len(calls) == 3 and calls[-1] == view

    asyncio.run(scenario())
