"""Representative policies on a lab-shaped cluster (three hosts, this one h1), shared by the golden-file and
nft tests. Each case is a list of policies and each service's container addresses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from ipaddress import IPv4Network

from netpolicy.compile import compile_policies
from netpolicy.model import Ruleset, Source, SourceKind
from netpolicy.policy import Allow, Policy

OWN_SUBNET = "198.19.1.0/24"
CLUSTER_SUBNETS = ("198.19.1.0/24", "198.19.2.0/24", "198.19.3.0/24")
MEMBERS = ("198.18.0.11", "198.18.0.12", "198.18.0.13")


def service(name: str, *networks: str, ports: Sequence[int] = (), allow: Sequence[Allow] = (),
            ingress: Sequence[str] | None = None) -> Policy:
    return Policy(name, tuple(sorted(networks or ("default",))), tuple(sorted(ports)), tuple(sorted(allow)),
                  None if ingress is None else tuple(sorted(IPv4Network(c) for c in ingress)))


def allow(kind: str, name: str, *ports: int) -> Allow:
    return Allow(Source(SourceKind(kind), name), tuple(sorted(ports)))


def ruleset(policies: Sequence[Policy], endpoints: Mapping[str, Sequence[str]], *,
            own_subnet: str | None = OWN_SUBNET) -> Ruleset:
    compiled = compile_policies(policies, endpoints, own_subnet=own_subnet, cluster_subnets=CLUSTER_SUBNETS,
                                members=MEMBERS)
    assert compiled.problems == ()
    return compiled.ruleset


WEB_API = {"web": ["198.19.1.2", "198.19.2.2"], "api": ["198.19.1.3", "198.19.3.2"]}
THREE_TIER = {"web": ["198.19.1.2", "198.19.2.2"], "api": ["198.19.1.3", "198.19.3.2"],
              "db": ["198.19.1.4", "198.19.2.3"]}

CASES: dict[str, Ruleset] = {
    "policy_no_services": ruleset([], {}),
    "policy_default_network": ruleset([service("web", ports=[8080]), service("api", ports=[80])], WEB_API),
    "policy_two_networks": ruleset([service("web", "front", ports=[8080]), service("api", "back", "front", ports=[80]),
                                    service("db", "back", ports=[5432])], THREE_TIER),
    "policy_allow_service": ruleset([service("web", "front", ports=[8080]), service("api", "front", ports=[80]),
                                     service("db", "back", ports=[5432, 9187],
                                             allow=[allow("service", "api", 5432), allow("network", "ops")])],
                                    THREE_TIER),
    "policy_allow_cidr": ruleset([service("web", ports=[80, 443],
                                          allow=[allow("cidr", "198.18.0.0/24", 80, 443),
                                                 allow("cidr", "203.0.113.7/32")])],
                                 {"web": ["198.19.1.2", "198.19.3.5"]}),
    "policy_ingress_allow_list": ruleset([service("web", ports=[8080], ingress=["198.18.0.0/24"]),
                                          service("api", ports=[80])], WEB_API),
    "policy_odd_names": ruleset([service("a-b", "my_net-2", ports=[1]), service("c9", "my_net-2", "x",
                                                                                allow=[allow("service", "a-b", 1)])],
                                {"a-b": ["198.19.1.20"], "c9": ["198.19.1.21", "198.19.2.21"]}),
    "policy_no_own_subnet": ruleset([service("web", ports=[8080])], {"web": ["198.19.2.2"]}, own_subnet=None),
}
