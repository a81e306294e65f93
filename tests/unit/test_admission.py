"""node.admission and the policy keeper that makes it: which listener asks which question of the gate, and a new
value handed on only when the policies compile to something else."""

from __future__ import annotations

from ipaddress import IPv4Network

from gossip.members import MemberState, Status
from node.admission import Admission
from node.manifest import parse_manifest
from node.observed import NodeStatus
from node.policykeeper import PolicyKeeper
from node.proxy.model import Address
from tests.unit.test_policies import MANIFEST, replica

SERVICE_RANGE = "10.96.0.0/16"
VIP = Address("10.96.0.5", 5432)  # a listener on a service address: the service's own port
PUBLISHED = Address("198.18.0.11", 8080)  # a listener on the node's address: a published port


def member(node: str) -> MemberState:
    return MemberState(node, f"n-{node}", (f"198.18.0.{10 + int(node)}", 7946), 1, Status.ALIVE, (), 0.0)


def statuses(*db: str) -> dict[str, NodeStatus]:
    reports = (replica("web", "198.19.1.2"), *(replica("db", address) for address in db))
    return {"1": NodeStatus("podman", reports, subnet="198.19.1.0/24")}


def keeper_with_changes() -> tuple[PolicyKeeper, list[Admission]]:
    changes: list[Admission] = []
    return PolicyKeeper("1", SERVICE_RANGE, None, changes.append), changes


def test_before_any_policy_every_connection_is_admitted() -> None:
    admission = Admission(IPv4Network(SERVICE_RANGE))
    assert admission.admit("192.0.2.1", "db", VIP) and admission.admit("192.0.2.1", "web", PUBLISHED)


def test_a_vip_listener_asks_for_a_grant_and_a_published_port_for_the_ingress_list() -> None:
    keeper, changes = keeper_with_changes()
    keeper.route_inputs("198.19.1.0/24", True, [member("1")], statuses("198.19.1.4"),
                        lambda: list(parse_manifest(MANIFEST).services))
    [admission] = changes
    assert admission is keeper.admission
    assert admission.admit("198.19.1.2", "db", VIP)  # web's replica: db grants web on 5432
    assert not admission.admit("198.19.1.2", "db", Address(VIP.ip, 22))  # not on another port
    assert not admission.admit("192.0.2.1", "db", VIP)  # nobody else
    assert admission.admit("198.18.0.9", "web", PUBLISHED)  # inside web's ingress list
    assert not admission.admit("192.0.2.1", "web", PUBLISHED)
    assert not admission.admit("192.0.2.1", "web", Address("10.96.0.7", 8080))  # the VIP of web: a grant, none


def test_a_new_admission_is_handed_on_only_when_the_policies_change() -> None:
    keeper, changes = keeper_with_changes()
    specs = parse_manifest(MANIFEST).services
    for _ in range(3):
        keeper.route_inputs("198.19.1.0/24", True, [member("1")], statuses("198.19.1.4"), lambda: list(specs))
    assert len(changes) == 1
    keeper.route_inputs("198.19.1.0/24", True, [member("1")], statuses("198.19.1.4", "198.19.1.5"),
                        lambda: list(specs))  # a second db replica: its address is now a local endpoint
    assert len(changes) == 2 and changes[1] != changes[0]
    keeper.route_inputs("198.19.1.0/24", False, [member("1")], statuses(), lambda: list(specs))
    assert len(changes) == 2  # still rejoining: the policies are left as they are
