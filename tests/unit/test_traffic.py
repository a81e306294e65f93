"""node.traffic: VIPs and the proxy's routes from the desired state and the nodes' reports."""

from __future__ import annotations

from dataclasses import replace

from node.discovery.vip import VipRange
from node.manifest.model import Port, ServiceSpec, ShoalSettings
from node.observed import NodeStatus, ReplicaReport
from node.proxy.model import Address, Endpoint
from node.traffic import plumbing

RANGE = VipRange.lab()
OWN = ["198.18.0.11", "127.0.0.1"]


def spec(name: str, ports: tuple[Port, ...] = (), expose: tuple[int, ...] = ()) -> ServiceSpec:
    return ServiceSpec(name=name, image="img", ports=ports, expose=expose)


def replica(service: str, n: int, address: str, *, state: str = "running", ready: bool = True) -> ReplicaReport:
    return ReplicaReport(service=service, replica=n, state=state, ready=ready, address=address)


def status(*replicas: ReplicaReport) -> NodeStatus:
    return NodeStatus(runtime="podman", replicas=replicas)


def test_published_ports_answer_on_every_own_address_and_the_vip_on_the_target_port() -> None:
    web = spec("web", ports=(Port(8080, 80),))
    statuses = {"a": status(replica("web", 0, "198.19.1.2")), "b": status(replica("web", 1, "198.19.2.2"))}
    out = plumbing([web], statuses, {"a", "b"}, RANGE, OWN)
    endpoints = (Endpoint("198.19.1.2", 80), Endpoint("198.19.2.2", 80))
    vip = str(out.vips["web"])
    assert set(out.table) == {Address(vip, 80), Address("198.18.0.11", 8080), Address("127.0.0.1", 8080)}
    assert all(route.endpoints == endpoints and route.service == "web" for route in out.table.values())


def test_two_services_may_use_the_same_port_on_their_own_vips() -> None:
    out = plumbing([spec("api", expose=(80,)), spec("web", expose=(80,))], {}, set(), RANGE, OWN)
    assert out.vips["api"] != out.vips["web"]
    assert {a.port for a in out.table} == {80} and len(out.table) == 2
    assert {r.service for r in out.table.values()} == {"api", "web"}


def test_only_ready_running_replicas_of_live_members_with_an_address_serve() -> None:
    statuses = {
        "a": status(replica("web", 0, "198.19.1.2"), replica("web", 1, "198.19.1.3", ready=False),
                    replica("web", 2, "198.19.1.4", state="starting"), replica("web", 3, "")),
        "dead": status(replica("web", 4, "198.19.3.2")),
    }
    out = plumbing([spec("web", expose=(80,))], statuses, {"a"}, RANGE, OWN)
    (route,) = out.table.values()
    assert route.endpoints == (Endpoint("198.19.1.2", 80),)


def test_a_port_published_twice_stays_with_the_first_service_by_name() -> None:
    out = plumbing([spec("b", ports=(Port(80, 8080),)), spec("a", ports=(Port(80, 9090),))], {}, set(), RANGE,
                   ["198.18.0.11"])
    assert out.table[Address("198.18.0.11", 80)].service == "a"
    assert out.problems == ("service b: port 80 is already published by a",)


def test_every_node_computes_the_same_vips_whatever_the_order() -> None:
    names = [spec(n) for n in ("web", "api", "db", "cache")]
    assert plumbing(names, {}, set(), RANGE, OWN).vips == plumbing(names[::-1], {}, set(), RANGE, OWN).vips


def test_proxy_protocol_is_asked_per_service() -> None:
    plain = spec("plain", expose=(80,))
    wants = replace(spec("wants", expose=(81,)), x_shoal=ShoalSettings(proxy_protocol=True))
    out = plumbing([plain, wants], {}, set(), RANGE, OWN)
    assert {r.service: r.proxy_protocol for r in out.table.values()} == {"plain": False, "wants": True}


def test_a_report_with_a_bad_address_is_left_out_not_a_crash() -> None:
    statuses = {"a": status(replica("web", 0, "not-an-ip"), replica("web", 1, "198.19.1.3"))}
    (route,) = plumbing([spec("web", expose=(80,))], statuses, {"a"}, RANGE, OWN).table.values()
    assert route.endpoints == (Endpoint("198.19.1.3", 80),)


def test_a_canary_takes_its_weight_on_the_services_route_and_gets_no_vip_of_its_own() -> None:
    from node.manifest.model import Canary
    web = replace(spec("web", ports=(Port(8080, 80),)), x_shoal=ShoalSettings(canary=Canary(weight_percent=1)))
    statuses = {"a": status(replica("web", 0, "198.19.1.2"), replica("web", 1, "198.19.1.3"),
                            replica("web.canary", 0, "198.19.1.9"))}
    out = plumbing([web], statuses, {"a"}, RANGE, OWN)
    assert set(out.vips) == {"web"}
    route = out.table[Address("127.0.0.1", 8080)]
    weights = {e.ip: e.weight for e in route.endpoints}
    # each stable endpoint 99 * 1 canary, the canary 1 * 2 stable: 2 in 200 connections go to the canary
    assert weights == {"198.19.1.2": 99, "198.19.1.3": 99, "198.19.1.9": 2}


def test_an_unready_canary_takes_nothing_and_the_stable_set_serves() -> None:
    from node.manifest.model import Canary
    web = replace(spec("web", ports=(Port(8080, 80),)), x_shoal=ShoalSettings(canary=Canary(weight_percent=50)))
    statuses = {"a": status(replica("web", 0, "198.19.1.2"), replica("web.canary", 0, "198.19.1.9", ready=False))}
    route = plumbing([web], statuses, {"a"}, RANGE, OWN).table[Address("127.0.0.1", 8080)]
    assert route.endpoints == (Endpoint("198.19.1.2", 80),)
