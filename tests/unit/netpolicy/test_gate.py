"""gate.py: the compiled policy admits exactly what the policies allow, checked against an oracle written
straight from SPEC's defaults and the allow rules (property), plus the cases the proxy meets."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from hypothesis import given, settings
from hypothesis import strategies as st

from netpolicy.compile import compile_policies
from netpolicy.gate import Gate
from netpolicy.model import SourceKind
from netpolicy.policy import Policy
from tests.unit.netpolicy.cases import CLUSTER_SUBNETS, MEMBERS, OWN_SUBNET, WEB_API, allow, ruleset, service

SERVICES = ("s0", "s1", "s2", "s3", "s4")
NETWORKS = ("default", "n1", "n2", "n3")
PORTS = (80, 443, 5432)
CIDRS = ("198.19.0.0/16", "198.19.1.0/24", "198.19.2.7/32", "10.0.0.0/8", "203.0.113.0/24")
OWN = IPv4Network(OWN_SUBNET)
CONTAINER_POOL = [f"198.19.{host}.{i}" for host in (1, 2, 3) for i in range(2, 8)]
STRANGERS = ("198.18.0.11", "10.1.2.3", "203.0.113.7", "198.19.1.250", "198.19.2.250", "192.0.2.1")


@dataclass(frozen=True)
class World:
    policies: tuple[Policy, ...]
    endpoints: dict[str, list[str]]


@st.composite
def worlds(draw: st.DrawFn) -> World:
    names = draw(st.lists(st.sampled_from(SERVICES), min_size=1, max_size=5, unique=True))
    policies = []
    for name in names:
        ports = draw(st.lists(st.sampled_from(PORTS), max_size=3, unique=True))
        source = st.one_of(st.tuples(st.just("service"), st.sampled_from(SERVICES)),
                           st.tuples(st.just("network"), st.sampled_from(NETWORKS)),
                           st.tuples(st.just("cidr"), st.sampled_from(CIDRS)))
        rule_ports = st.lists(st.sampled_from(ports), max_size=2, unique=True) if ports else st.just([])
        rules = draw(st.lists(st.tuples(source, rule_ports), max_size=3))
        ingress = draw(st.none() | st.lists(st.sampled_from(CIDRS), max_size=2, unique=True))
        policies.append(service(name, *draw(st.lists(st.sampled_from(NETWORKS), min_size=1, max_size=2, unique=True)),
                                ports=ports, allow=sorted({allow(kind, what, *p) for (kind, what), p in rules}),
                                ingress=ingress))
    pool = draw(st.permutations(CONTAINER_POOL))
    counts = [draw(st.integers(0, 3)) for _ in SERVICES]
    endpoints, at = {}, 0
    for name, count in zip(SERVICES, counts, strict=True):  # a service without a policy may still report some
        endpoints[name] = list(pool[at:at + count])
        at += count
    return World(tuple(policies), endpoints)


def oracle_granted(world: World, src: str, dst_service: str, port: int) -> bool:
    """SPEC: a shared network connects (every port); an allow rule admits its source on its ports."""
    policy = {p.service: p for p in world.policies}
    target = policy.get(dst_service)
    if target is None:
        return False
    callers = [policy[s] for s, found in world.endpoints.items() if src in found and s in policy]
    if any(set(c.networks) & set(target.networks) for c in callers):
        return True
    for rule in target.allow:
        if rule.ports and port not in rule.ports:
            continue
        kind, name = rule.source.kind, rule.source.name
        if kind is SourceKind.SERVICE and any(c.service == name for c in callers):
            return True
        if kind is SourceKind.NETWORK and any(name in c.networks for c in callers):
            return True
        if kind is SourceKind.CIDR and IPv4Address(src) in IPv4Network(name):
            return True
    return False


def oracle_forwards(world: World, src: str, dst: str, port: int) -> bool:
    """The destination host's filter: only its own containers are guarded; members reach endpoint ports."""
    if IPv4Address(dst) not in OWN:
        return True
    policy = {p.service: p for p in world.policies}
    owner = next((s for s, found in world.endpoints.items() if dst in found and s in policy), None)
    if owner is None:
        return False
    if src in MEMBERS and port in policy[owner].ports:
        return True
    return oracle_granted(world, src, owner, port)


def compiled(world: World) -> Gate:
    result = compile_policies(world.policies, world.endpoints, own_subnet=OWN_SUBNET, cluster_subnets=CLUSTER_SUBNETS,
                              members=MEMBERS)
    assert result.problems == ()
    return Gate.of(result.ruleset)


@settings(max_examples=150, deadline=None)
@given(worlds())
def test_the_forward_filter_admits_exactly_the_allowed_pairs(world: World) -> None:
    gate = compiled(world)
    addresses = sorted({a for found in world.endpoints.values() for a in found} | set(STRANGERS))
    for src in addresses:
        for dst in addresses:
            for port in (*PORTS, 9999):
                assert gate.forwards(src, dst, port) == oracle_forwards(world, src, dst, port), (src, dst, port)


@settings(max_examples=150, deadline=None)
@given(worlds())
def test_the_proxy_admits_exactly_the_allowed_callers(world: World) -> None:
    gate = compiled(world)
    callers = sorted({a for found in world.endpoints.values() for a in found} | set(STRANGERS))
    for caller in callers:
        for name in SERVICES:
            for port in (*PORTS, 9999):
                assert gate.admits(caller, name, port) == oracle_granted(world, caller, name, port), \
                    (caller, name, port)


@settings(max_examples=100, deadline=None)
@given(worlds())
def test_published_ports_admit_everyone_until_an_ingress_list_then_only_it(world: World) -> None:
    gate = compiled(world)
    ingress = {p.service: p.ingress for p in world.policies}
    for caller in (*STRANGERS, "198.19.1.2", "198.19.0.1"):
        for name in SERVICES:
            allowed = ingress.get(name)
            expected = allowed is None or any(IPv4Address(caller) in network for network in allowed)
            assert gate.admits_ingress(caller, name) == expected, (caller, name)


# --- the cases the proxy meets ------------------------------------------------------------------------------


def two_sandboxes() -> Gate:
    return Gate.of(ruleset([service("web", "front", ports=[8080]), service("api", "front", ports=[80]),
                            service("db", "back", ports=[5432], allow=[allow("service", "api", 5432)]),
                            service("batch", "back", ports=[9000])],
                           {**WEB_API, "db": ["198.19.2.3"], "batch": ["198.19.3.3"]}))


def test_a_shared_network_connects_on_every_port_and_no_shared_network_isolates() -> None:
    gate = two_sandboxes()
    assert gate.admits("198.19.2.2", "api", 80) and gate.admits("198.19.2.2", "api", 12345)  # web -> api
    assert not gate.admits("198.19.2.2", "db", 5432)  # web is on front only
    assert gate.admits("198.19.3.3", "db", 5432)  # batch shares back with db
    assert not gate.admits("198.19.3.3", "api", 80)


def test_an_allow_rule_opens_only_its_ports() -> None:
    gate = two_sandboxes()
    assert gate.admits("198.19.3.2", "db", 5432)  # api's replica on h3
    assert not gate.admits("198.19.3.2", "db", 5433)


def test_unknown_callers_services_and_ipv6_are_refused() -> None:
    gate = two_sandboxes()
    assert not gate.admits("198.19.1.99", "api", 80)  # no replica has this address (yet)
    assert not gate.admits("198.19.2.2", "nosuch", 80)
    assert not gate.admits("::1", "api", 80) and not gate.admits("not an address", "api", 80)


def test_ingress_allow_list_admits_only_its_networks_and_no_ipv6() -> None:
    gate = Gate.of(ruleset([service("web", ports=[8080], ingress=["198.18.0.0/24"]), service("api")], {}))
    assert gate.admits_ingress("198.18.0.77", "web") and not gate.admits_ingress("198.18.1.1", "web")
    assert not gate.admits_ingress("::1", "web")
    assert gate.admits_ingress("::1", "api") and gate.admits_ingress("192.0.2.9", "api")  # no list: everyone
    closed = Gate.of(ruleset([service("web", ports=[8080], ingress=[])], {}))
    assert not closed.admits_ingress("198.18.0.77", "web")


def test_members_reach_only_endpoint_ports_of_this_hosts_containers() -> None:
    gate = two_sandboxes()
    assert gate.forwards("198.18.0.12", "198.19.1.3", 80)  # api on this host, its port
    assert not gate.forwards("198.18.0.12", "198.19.1.3", 22)
    assert not gate.forwards("198.18.0.12", "198.19.1.250", 80)  # no container of ours there
    assert gate.forwards("198.18.0.12", "198.19.2.3", 22)  # another host's container: its host judges


def test_the_proxy_judges_remote_services_the_same() -> None:
    """db has no replica on this host, yet the proxy here answers for it (its grants are cluster-wide)."""
    gate = two_sandboxes()
    assert "db" not in gate.local.values()
    assert gate.admits("198.19.1.3", "db", 5432) and not gate.admits("198.19.1.2", "db", 5432)
