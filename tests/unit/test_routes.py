"""node.routes: which cross-host container routes a node wants (and which subnets it refuses), and the
changes from the routes present to the routes wanted. Pure: tables, no kernel."""

from __future__ import annotations

import itertools

import pytest

from node.routes import Conflict, PeerNet, Route, RouteAction, RouteChange, route_plan, routing, wanted_routes

OWN = "198.19.1.0/24"
B = PeerNet("node-b", "198.19.2.0/24", "198.18.0.12")
C = PeerNet("node-c", "198.19.3.0/24", "198.18.0.13")
ROUTE_B = Route("198.19.2.0/24", "198.18.0.12")
ROUTE_C = Route("198.19.3.0/24", "198.18.0.13")


def replace(route: Route) -> RouteChange:
    return RouteChange(RouteAction.REPLACE, route)


def delete(route: Route) -> RouteChange:
    return RouteChange(RouteAction.DELETE, route)


# --- wanted routes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("own", "peers", "routes"),
    [
        pytest.param(OWN, [], set(), id="alone"),
        pytest.param(OWN, [B], {ROUTE_B}, id="one peer"),
        pytest.param(OWN, [B, C], {ROUTE_B, ROUTE_C}, id="two peers"),
        pytest.param(None, [B, C], {ROUTE_B, ROUTE_C}, id="no own subnet: still routes to every peer"),
        pytest.param(OWN, [B, B], {ROUTE_B}, id="the same peer twice counts once"),
        pytest.param(OWN, [PeerNet("n", "10.0.0.0/8", "198.18.0.9")], {Route("10.0.0.0/8", "198.18.0.9")},
                     id="any prefix length"),
    ],
)
def test_wanted_routes(own: str | None, peers: list[PeerNet], routes: set[Route]) -> None:
    assert wanted_routes(own, peers) == routes
    assert routing(own, peers).conflicts == ()


@pytest.mark.parametrize(
    ("own", "peers", "routes", "conflicts"),
    [
        pytest.param(OWN, [B, PeerNet("x", OWN, "198.18.0.20")], {ROUTE_B},
                     [Conflict("x", OWN, "overlaps this node's subnet 198.19.1.0/24")],
                     id="same subnet as ours"),
        pytest.param(OWN, [PeerNet("x", "198.19.0.0/16", "198.18.0.20")], set(),
                     [Conflict("x", "198.19.0.0/16", "overlaps this node's subnet 198.19.1.0/24")],
                     id="contains ours"),
        pytest.param(OWN, [PeerNet("x", "198.19.1.128/25", "198.18.0.20")], set(),
                     [Conflict("x", "198.19.1.128/25", "overlaps this node's subnet 198.19.1.0/24")],
                     id="inside ours"),
        pytest.param(OWN, [B, PeerNet("x", B.subnet, "198.18.0.20"), C], {ROUTE_C},
                     [Conflict("node-b", B.subnet, "overlaps member x's subnet 198.19.2.0/24"),
                      Conflict("x", B.subnet, "overlaps member node-b's subnet 198.19.2.0/24")],
                     id="duplicate between peers: both refused"),
        pytest.param(None, [PeerNet("big", "198.19.0.0/20", "198.18.0.20"), B, C], set(),
                     [Conflict("big", "198.19.0.0/20", "overlaps member node-b's subnet 198.19.2.0/24"),
                      Conflict("node-b", B.subnet, "overlaps member big's subnet 198.19.0.0/20"),
                      Conflict("node-c", C.subnet, "overlaps member big's subnet 198.19.0.0/20")],
                     id="one peer's subnet holds two others"),
        pytest.param(OWN, [B, PeerNet("x", "198.19.9.1/24", "198.18.0.20")], {ROUTE_B},
                     [Conflict("x", "198.19.9.1/24", "not a canonical IPv4 network")], id="host bits set"),
        pytest.param(OWN, [PeerNet("x", "2001:db8::/64", "198.18.0.20")], set(),
                     [Conflict("x", "2001:db8::/64", "not a canonical IPv4 network")], id="IPv6 subnet"),
        pytest.param(OWN, [PeerNet("x", "198.19.9.0/24", "2001:db8::1")], set(),
                     [Conflict("x", "198.19.9.0/24", "its address '2001:db8::1' is not an IPv4 address")],
                     id="IPv6 address"),
        pytest.param(OWN, [B, PeerNet("lan", "198.18.0.0/24", "198.18.0.20")], {ROUTE_B},
                     [Conflict("lan", "198.18.0.0/24", "contains member node-b's address 198.18.0.12")],
                     id="subnet holds another member's address"),
        pytest.param(OWN, [PeerNet("x", "198.19.9.0/24", "198.19.9.1")], set(),
                     [Conflict("x", "198.19.9.0/24", "contains its own address 198.19.9.1")],
                     id="subnet holds its own address"),
        pytest.param(OWN, [PeerNet("x", "198.19.9.0/24", "198.19.1.7")], set(),
                     [Conflict("x", "198.19.9.0/24", "its address 198.19.1.7 lies inside this node's subnet "
                                                     "198.19.1.0/24")],
                     id="gateway inside our subnet"),
        pytest.param(OWN, [B, PeerNet("x", "0.0.0.0/0", "198.18.0.20")], {ROUTE_B},
                     [Conflict("x", "0.0.0.0/0", "overlaps this node's subnet 198.19.1.0/24")],
                     id="default route: refused, and costs no other peer its route"),
        pytest.param(None, [B, C, PeerNet("x", "198.16.0.0/14", "198.18.0.20")], {ROUTE_B, ROUTE_C},
                     [Conflict("x", "198.16.0.0/14", "contains member node-b's address 198.18.0.12")],
                     id="a subnet holding the LAN is refused alone, though it overlaps other peers'"),
    ],
)
def test_refused_subnets(own: str | None, peers: list[PeerNet], routes: set[Route],
                         conflicts: list[Conflict]) -> None:
    result = routing(own, peers)
    assert result.routes == routes
    assert list(result.conflicts) == conflicts


def test_conflict_reads_as_a_log_line() -> None:
    conflict = routing(OWN, [PeerNet("x", OWN, "198.18.0.20")]).conflicts[0]
    assert str(conflict) == "no route to 198.19.1.0/24 of member x: overlaps this node's subnet 198.19.1.0/24"


def test_order_of_peers_never_changes_the_answer() -> None:
    peers = [B, C, PeerNet("x", B.subnet, "198.18.0.20"), PeerNet("y", "198.19.9.0/24", "198.18.0.21"),
             PeerNet("z", "198.18.0.0/16", "198.18.0.22")]
    answers = {routing(OWN, order) for order in itertools.permutations(peers)}
    assert len(answers) == 1


def test_an_invalid_own_subnet_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        routing("198.19.1.1/24", [B])


# --- route plan -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "present", "changes"),
    [
        pytest.param(set(), set(), [], id="nothing"),
        pytest.param({ROUTE_B, ROUTE_C}, {ROUTE_B, ROUTE_C}, [], id="nothing to change"),
        pytest.param({ROUTE_B, ROUTE_C}, {ROUTE_B}, [replace(ROUTE_C)], id="new peer"),
        pytest.param({ROUTE_B}, {ROUTE_B, ROUTE_C}, [delete(ROUTE_C)], id="gone peer"),
        pytest.param({Route(ROUTE_B.dst, "198.18.0.99")}, {ROUTE_B}, [replace(Route(ROUTE_B.dst, "198.18.0.99"))],
                     id="gateway changed: replaced in place, not deleted"),
        pytest.param({Route("198.19.7.0/24", B.address)}, {ROUTE_B},
                     [delete(ROUTE_B), replace(Route("198.19.7.0/24", B.address))], id="peer moved to another subnet"),
        pytest.param({ROUTE_B}, {Route(ROUTE_B.dst, "")}, [replace(ROUTE_B)], id="present without a gateway"),
        pytest.param(set(), {ROUTE_B, Route(ROUTE_B.dst, "198.18.0.99")},
                     [delete(ROUTE_B), delete(Route(ROUTE_B.dst, "198.18.0.99"))], id="two stale routes, one dst"),
        pytest.param(set(), {ROUTE_B, ROUTE_C}, [delete(ROUTE_B), delete(ROUTE_C)], id="everyone gone"),
    ],
)
def test_route_plan(wanted: set[Route], present: set[Route], changes: list[RouteChange]) -> None:
    assert route_plan(frozenset(wanted), frozenset(present)) == changes


def test_route_plan_deletes_first_then_replaces_in_address_order() -> None:
    wanted = {Route("198.19.10.0/24", "198.18.0.20"), Route("198.19.9.0/24", "198.18.0.19")}
    present = {Route("198.19.30.0/24", "198.18.0.30"), Route("198.19.4.0/24", "198.18.0.4")}
    assert route_plan(frozenset(wanted), frozenset(present)) == [
        delete(Route("198.19.4.0/24", "198.18.0.4")), delete(Route("198.19.30.0/24", "198.18.0.30")),
        replace(Route("198.19.9.0/24", "198.18.0.19")), replace(Route("198.19.10.0/24", "198.18.0.20")),
    ]


def test_wanted_then_planned_against_itself_is_empty() -> None:
    wanted = wanted_routes(OWN, [B, C])
    assert route_plan(wanted, wanted) == []
