"""node.policies: a spec's network policy and the nodes' reports, handed to netpolicy as its own types."""

from __future__ import annotations

from ipaddress import IPv4Network

from netpolicy.compile import compile_policies
from netpolicy.gate import Gate
from netpolicy.model import Source, SourceKind
from netpolicy.policy import Allow, Policy
from node.manifest import parse_manifest
from node.observed import NodeStatus, ReplicaReport
from node.policies import endpoints_of, policies_of, policy_of

MANIFEST = """
services:
  web:
    image: x
    ports: ["8080:80"]
    networks: [front]
    x-shoal:
      ingress: {allow: [198.18.0.0/24]}
  api:
    image: x
    expose: [9090, 80]
    ports: ["8081:80"]
    networks: [front, back]
  db:
    image: x
    expose: [5432]
    networks: [back]
    x-shoal:
      allow: [{from: {service: web}, ports: [5432]}, {from: {cidr: 10.0.0.7}}]
networks: {front: {}, back: {}}
"""


def test_a_spec_becomes_its_policy() -> None:
    specs = {s.name: s for s in parse_manifest(MANIFEST).services}
    assert policy_of(specs["web"]) == Policy("web", ("front",), (80,), (), (IPv4Network("198.18.0.0/24"),))
    assert policy_of(specs["api"]) == Policy("api", ("back", "front"), (80, 9090))
    assert policy_of(specs["db"]) == Policy("db", ("back",), (5432,), (
        Allow(Source(SourceKind.CIDR, "10.0.0.7/32")), Allow(Source(SourceKind.SERVICE, "web"), (5432,))))


def replica(service: str, address: str, state: str = "running") -> ReplicaReport:
    return ReplicaReport(service=service, replica=0, state=state, address=address)


def test_endpoints_are_every_addressed_replica_of_live_members_inside_their_nodes_subnet() -> None:
    statuses = {
        "a": NodeStatus("podman", (replica("web", "198.19.1.2"), replica("api", "198.19.1.3", "starting"),
                                   replica("api", ""), replica("db", "198.18.0.12")), subnet="198.19.1.0/24"),
        "b": NodeStatus("podman", (replica("web", "198.19.2.2", "exited"),), subnet="198.19.2.0/24"),
        "dead": NodeStatus("podman", (replica("web", "198.19.3.2"),), subnet="198.19.3.0/24"),
        "nosubnet": NodeStatus("podman", (replica("web", "198.19.4.2"),)),
    }
    assert endpoints_of(statuses, {"a", "b", "nosubnet"}) == {"api": ["198.19.1.3"],
                                                              "web": ["198.19.1.2", "198.19.2.2"]}


def test_the_manifest_compiles_into_a_gate_that_keeps_its_sandboxes() -> None:
    specs = parse_manifest(MANIFEST).services
    statuses = {"a": NodeStatus("podman", (replica("web", "198.19.1.2"), replica("api", "198.19.1.3"),
                                           replica("db", "198.19.1.4")), subnet="198.19.1.0/24")}
    compiled = compile_policies(policies_of(specs), endpoints_of(statuses, {"a"}), own_subnet="198.19.1.0/24",
                                members=["198.18.0.11"])
    gate = Gate.of(compiled.ruleset)
    assert gate.admits("198.19.1.2", "api", 80) and gate.admits("198.19.1.3", "db", 5432)  # shared networks
    assert gate.admits("198.19.1.2", "db", 5432) and not gate.admits("198.19.1.2", "db", 22)  # the rule's port
    assert gate.admits("10.0.0.7", "db", 22) and not gate.admits("10.0.0.8", "db", 5432)  # the /32
    assert not gate.admits("198.19.1.4", "web", 80)  # db shares no network with web
    assert gate.admits_ingress("198.18.0.9", "web") and not gate.admits_ingress("192.0.2.1", "web")
    assert gate.admits_ingress("192.0.2.1", "api")
