"""/v1/services/{name}/replicas, running counts and /v1/nodes over a fake agent with a real store: rows come
from the nodes' published statuses (a dead node's left out), unreported slots show as pending where placement
puts them, and node labels and drain are writes of desired state that placement reads at once."""

from __future__ import annotations

from dataclasses import replace

from gossip.members import Status
from node.observed import NodeStatus, ReplicaReport, encode_status, status_key
from tests.unit.desired.fakes import OTHER, SELF, START_MS, FakeAgent, call, member

STACK = b"services:\n  web:\n    image: reg/web:1\n    deploy: {replicas: 3}\n"


def report(agent: FakeAgent, node: str, *rows: ReplicaReport, generation: int = 1) -> None:
    status = NodeStatus("podman", rows, f"198.19.{1 if node == SELF else 2}.0/24", "d")
    agent.remote_write(status_key(node), generation, encode_status(status), "status", wall_ms=START_MS, author=node)


def running(replica: int, container: str) -> ReplicaReport:
    return ReplicaReport("web", replica, "running", container, "reg/web:1", True, 0, 1.0, "v", 1, "198.19.1.2")


def test_replicas_merge_every_nodes_report_and_show_unreported_slots_as_pending() -> None:
    agent = FakeAgent()
    assert call(agent, "POST", "/v1/services", data=STACK)[0] == 200
    report(agent, SELF)
    report(agent, OTHER)
    status, rows = call(agent, "GET", "/v1/services/web/replicas")
    assert status == 200
    assert sorted((r["replica"], r["state"]) for r in rows) == [(0, "pending"), (1, "pending"), (2, "pending")]
    placed = {r["replica"]: r["node"] for r in rows}
    mine = [i for i, node in placed.items() if node == "n1"]
    report(agent, SELF, *(running(i, f"c{i}") for i in mine), generation=2)
    _, rows = call(agent, "GET", "/v1/services/web/replicas")
    assert {r["replica"] for r in rows if r["state"] == "running"} == set(mine)
    assert set(rows[0]) >= {"service", "replica", "node", "container", "state", "image", "ready", "restarts"}
    _, services = call(agent, "GET", "/v1/services")
    assert (services[0]["running"], services[0]["ready"]) == (len(mine), len(mine))


def test_a_dead_nodes_report_is_left_out() -> None:
    agent = FakeAgent()
    call(agent, "POST", "/v1/services", data=STACK)
    report(agent, OTHER, running(0, "x"))
    _, rows = call(agent, "GET", "/v1/services/web/replicas")
    assert any(r["container"] == "x" for r in rows)
    agent.roster = [member(SELF, "n1"), replace(member(OTHER, "n2"), status=Status.DEAD)]
    _, rows = call(agent, "GET", "/v1/services/web/replicas")
    assert not any(r["container"] == "x" for r in rows)
    assert call(agent, "GET", "/v1/services")[1][0]["running"] == 0


def test_node_labels_and_drain_are_desired_state_placement_reads() -> None:
    agent = FakeAgent()
    call(agent, "POST", "/v1/services", data=STACK)
    report(agent, SELF)
    report(agent, OTHER)
    status, node = call(agent, "POST", "/v1/nodes/n2/labels", json={"labels": ["disk=ssd", "zone=a"]})
    assert status == 200 and node["labels"] == {"disk": "ssd", "zone": "a"} and node["node_labels"] == node["labels"]
    _, node = call(agent, "POST", "/v1/nodes/n2/labels", json={"labels": ["zone-"]})
    assert node["labels"] == {"disk": "ssd"}
    status, node = call(agent, "POST", "/v1/nodes/n2/drain")
    assert status == 200 and node["availability"] == "drain"
    _, rows = call(agent, "GET", "/v1/services/web/replicas")
    assert {r["node"] for r in rows} == {"n1"}  # a drained node gets no slots
    _, listing = call(agent, "GET", "/v1/nodes")
    assert [(n["name"], n["availability"], n["runtime"]) for n in listing] == [
        ("n1", "active", "podman"), ("n2", "drain", "podman")]
    call(agent, "POST", "/v1/nodes/n2/activate")
    _, rows = call(agent, "GET", "/v1/services/web/replicas")
    assert {r["node"] for r in rows} == {"n1", "n2"}


def test_node_errors_name_the_field() -> None:
    agent = FakeAgent()
    status, body = call(agent, "GET", "/v1/nodes/nope")
    assert status == 404 and body["error"]["field"] == "node" and "n1, n2" in body["error"]["message"]
    status, body = call(agent, "POST", "/v1/nodes/n1/labels", json={"labels": ["bad key=1"]})
    assert status == 400 and body["error"]["field"] == "labels"
    status, body = call(agent, "POST", "/v1/nodes/n1/labels", json={"labels": "disk=ssd"})
    assert status == 400 and body["error"]["field"] == "labels"
    assert call(agent, "GET", "/v1/services/nope/replicas")[0] == 404


def test_inspecting_this_node_shows_its_policy_counters_and_another_node_does_not() -> None:
    agent = FakeAgent()
    report(agent, SELF)
    report(agent, OTHER)
    _, mine = call(agent, "GET", "/v1/nodes/n1")
    _, theirs = call(agent, "GET", "/v1/nodes/n2")
    assert mine["policy_counters"] == [{"chain": "to_containers", "rule": "default deny", "packets": 3, "bytes": 180}]
    assert "policy_counters" not in theirs
