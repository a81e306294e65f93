"""compile_policies: grants from networks and rules, address sets from endpoints, this host's containers, and
observations it leaves out (fail closed) with a reason; plus the model's own checks."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from netpolicy.compile import compile_policies
from netpolicy.model import AddressSet, Grant, Ingress, LocalEndpoint, Ruleset, Source, SourceKind
from tests.unit.netpolicy.cases import CLUSTER_SUBNETS, MEMBERS, OWN_SUBNET, WEB_API, allow, ruleset, service

NET, SVC, CIDR = SourceKind.NETWORK, SourceKind.SERVICE, SourceKind.CIDR


def test_each_network_grants_every_port_and_each_rule_its_ports() -> None:
    rules = ruleset([service("db", "back", ports=[5432, 9187],
                             allow=[allow("service", "api", 5432), allow("cidr", "10.0.0.0/8")])], {})
    assert rules.grants == (Grant("db", Source(CIDR, "10.0.0.0/8")), Grant("db", Source(NET, "back")),
                            Grant("db", Source(SVC, "api"), (5432,)))


def test_rules_from_one_source_merge_and_every_port_wins() -> None:
    rules = ruleset([service("db", "back", ports=[1, 2, 3],
                             allow=[allow("service", "api", 1), allow("service", "api", 2, 3),
                                    allow("network", "back", 1), allow("network", "front", 2)])], {})
    assert rules.grants == (Grant("db", Source(NET, "back")), Grant("db", Source(NET, "front"), (2,)),
                            Grant("db", Source(SVC, "api"), (1, 2, 3)))


def test_sets_hold_each_sources_addresses_cluster_wide() -> None:
    rules = ruleset([service("web", "front"), service("api", "back", "front"),
                     service("db", "back", allow=[allow("service", "web")])],
                    {**WEB_API, "db": ["198.19.2.3"]})
    assert rules.sets == (
        AddressSet(Source(NET, "back"), tuple(map(IPv4Address, ["198.19.1.3", "198.19.2.3", "198.19.3.2"]))),
        AddressSet(Source(NET, "front"), tuple(map(IPv4Address, ["198.19.1.2", "198.19.1.3", "198.19.2.2",
                                                                 "198.19.3.2"]))),
        AddressSet(Source(SVC, "web"), tuple(map(IPv4Address, ["198.19.1.2", "198.19.2.2"]))),
    )


def test_a_source_nobody_runs_is_an_empty_set() -> None:
    rules = ruleset([service("db", allow=[allow("service", "later"), allow("network", "unused")])], {})
    assert AddressSet(Source(SVC, "later")) in rules.sets and AddressSet(Source(NET, "unused")) in rules.sets


def test_local_endpoints_are_this_hosts_containers_with_their_service_ports() -> None:
    rules = ruleset([service("web", ports=[8080, 9090]), service("api", ports=[80])], WEB_API)
    assert rules.local == (LocalEndpoint(IPv4Address("198.19.1.2"), "web", (8080, 9090)),
                           LocalEndpoint(IPv4Address("198.19.1.3"), "api", (80,)))
    assert rules.members == tuple(map(IPv4Address, MEMBERS))


def test_ingress_lists_only_services_that_set_one() -> None:
    rules = ruleset([service("web", ingress=["198.18.0.0/24"]), service("api", ingress=[]), service("db")], {})
    assert rules.ingress == (Ingress("api", ()), Ingress("web", (IPv4Network("198.18.0.0/24"),)))


def test_bad_observations_are_left_out_and_named() -> None:
    compiled = compile_policies(
        [service("web"), service("api")],
        {"web": ["198.19.1.2", "banana", "2001:db8::1", "192.0.2.1", "198.19.1.9"],
         "api": ["198.19.1.9", "198.19.2.4"], "gone": ["198.19.1.7"]},
        own_subnet=OWN_SUBNET, cluster_subnets=CLUSTER_SUBNETS, members=[*MEMBERS, "nonsense"])
    assert compiled.problems == (
        "address 198.19.1.9 is reported for api, web; left out of all",
        "member address 'nonsense' is not IPv4; left out",
        "service web: endpoint address '2001:db8::1' is not IPv4; left out",
        "service web: endpoint address 'banana' is not IPv4; left out",
        "service web: endpoint address 192.0.2.1 is in no cluster container subnet; left out",
    )
    default = next(s for s in compiled.ruleset.sets if s.source == Source(NET, "default"))
    assert [str(a) for a in default.addresses] == ["198.19.1.2", "198.19.2.4"]  # "gone" has no policy
    assert [str(e.address) for e in compiled.ruleset.local] == ["198.19.1.2"]


def test_own_subnet_counts_as_a_cluster_subnet() -> None:
    compiled = compile_policies([service("web")], {"web": ["198.19.9.2"]}, own_subnet="198.19.9.0/24")
    assert compiled.problems == () and compiled.ruleset.cluster_subnets == (IPv4Network("198.19.9.0/24"),)


def test_two_policies_for_one_service_are_refused() -> None:
    with pytest.raises(ValueError, match="service web has two policies"):
        compile_policies([service("web"), service("web", "front")], {})


def test_equal_inputs_in_any_order_compile_equal() -> None:
    a = compile_policies([service("web"), service("api")], {"web": ["198.19.1.3", "198.19.1.2"]},
                         own_subnet=OWN_SUBNET, members=["198.18.0.12", "198.18.0.11"])
    b = compile_policies([service("api"), service("web")], {"web": ["198.19.1.2", "198.19.1.3", "198.19.1.2"]},
                         own_subnet=OWN_SUBNET, members=["198.18.0.11", "198.18.0.12"])
    assert a == b


@pytest.mark.parametrize(("build", "message"), [
    (lambda: Source(SVC, "Web"), "is not a service or network name"),
    (lambda: Source(SVC, "a b"), "is not a service or network name"),
    (lambda: Source(CIDR, "198.18.0.1/24"), "is not an IPv4 network"),
    (lambda: Source(CIDR, "198.18.0.1"), "is not canonical; write 198.18.0.1/32"),
    (lambda: Grant("web", Source(NET, "front"), (80, 80)), "must be sorted, each once"),
    (lambda: Grant("web", Source(NET, "front"), (0,)), "must be 1 to 65535"),
    (lambda: AddressSet(Source(CIDR, "10.0.0.0/8")), "needs no address set"),
    (lambda: Ruleset(grants=(Grant("web", Source(NET, "front")),)), "without an address set: network front"),
    (lambda: Ruleset(local=(LocalEndpoint(IPv4Address("198.19.1.2"), "a"), LocalEndpoint(IPv4Address("198.19.1.2"),
                                                                                          "b"))),
     "each address appears once"),
])
def test_the_model_refuses_what_would_render_wrong(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]
