"""Desired state across real agent processes on loopback: `shoal apply` on one node reaches every node, survives
a SIGTERM or a kill -9 of every agent at once (SQLite in each data dir), and refuses stale and oversized writes."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.procs import AgentProc, free_port, shoal, wait_for

pytestmark = pytest.mark.procs
N = 5
SPREAD_S = 5.0
"""Every node holds an accepted write within this (news piggybacks at once; a fetch is one TLS round trip)."""
STACK = "services:\n  web:\n    image: reg/web:{v}\n    deploy: {{replicas: 2}}\n  api:\n    image: reg/api:1\n"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[AgentProc]]:
    config = tmp_path / "agent.toml"
    config.write_text('[gossip]\nprofile = "local"\n')
    agents = [AgentProc(f"n{i}", tmp_path / f"d{i}", free_port(), free_port()) for i in range(1, N + 1)]
    init = shoal("init", "--data", str(agents[0].data), "--cluster", "e2e", "--name", "n1")
    assert init.returncode == 0, init.stderr
    token = init.stdout.strip().splitlines()[-1]
    try:
        agents[0].start("--config", str(config))
        wait_for(lambda: agents[0].statuses().get("n1") == "alive", 20, "the first agent's API")
        for agent in agents[1:]:
            agent.start("--config", str(config), "--join", f"127.0.0.1:{agents[0].port}", "--token", token)
        wait_for(lambda: all_alive(agents), 60, f"all {N} agents to see {N} alive")
        yield agents
    finally:
        for agent in agents:
            agent.stop()


def all_alive(agents: list[AgentProc]) -> bool:
    return all(a.statuses() == {b.name: "alive" for b in agents} for a in agents)


def restart(agents: list[AgentProc]) -> float:
    """Start every agent from its data dir alone (no --join, no --token); seconds until all see all alive."""
    config = agents[0].data.parent / "agent.toml"
    for agent in agents:
        agent.start("--config", str(config))
    return wait_for(lambda: all_alive(agents), 60, lambda: f"the restarted cluster to re-form:\n{views(agents)}")


def views(agents: list[AgentProc]) -> str:
    """What each agent sees, whether it still runs, and the end of its log: why a cluster did not form."""
    lines = []
    for a in agents:
        running = a.proc is not None and a.proc.poll() is None
        tail = a.log.read_text(errors="replace").splitlines()[-4:] if a.log.exists() else []
        lines.append(f"{a.name} ({'running' if running else 'exited'}) sees {a.statuses()}")
        lines += [f"  | {line[:240]}" for line in tail]
    return "\n".join(lines)


def http(agent: AgentProc, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{agent.api}{path}", data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def service(agent: AgentProc, name: str) -> dict[str, Any] | None:
    try:
        status, body = http(agent, "GET", f"/v1/services/{name}")
    except OSError:
        return None
    return body if status == 200 else None


def everyone_holds(agents: list[AgentProc], name: str, generation: int, image: str) -> bool:
    views = [service(a, name) for a in agents]
    return all(v is not None and (v["generation"], v["image"]) == (generation, image) for v in views)


def apply(agent: AgentProc, tmp_path: Path, text: str, *extra: str) -> Any:
    path = tmp_path / "stack.yml"
    path.write_text(text)
    return shoal("apply", "-f", str(path), "--host", f"http://127.0.0.1:{agent.api}", *extra)


def test_apply_reaches_every_node_and_survives_a_restart_of_all_agents(
        cluster: list[AgentProc], tmp_path: Path) -> None:
    agents = cluster
    first = apply(agents[0], tmp_path, STACK.format(v=1))
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == ["api: created (generation 1)", "web: created (generation 1)"]
    waited = wait_for(lambda: everyone_holds(agents, "web", 1, "reg/web:1"), 30, "web to reach every node")
    assert waited < SPREAD_S
    # api was written in the same apply, as its own record: wait for it too before stopping everyone, or a node
    # it has not reached yet restarts without it (anti-entropy brings it later; this test checks at once).
    wait_for(lambda: everyone_holds(agents, "api", 1, "reg/api:1"), 30, "api to reach every node")
    details = [service(a, "web") for a in agents]
    assert all(d is not None and d["updated_by"]["name"] == "n1" for d in details)
    received = [d["received_at"] for d in details if d is not None]
    assert all(isinstance(r, float) for r in received)
    spread = max(received) - received[0]  # one machine, one clock: from n1's write to the last node's receipt
    assert 0 <= spread < SPREAD_S

    for agent in agents:
        agent.signal(signal.SIGTERM)
    assert [a.proc.wait(15) for a in agents] == [0] * N  # type: ignore[union-attr]
    reformed = restart(agents)
    print(f"spread to all {N} in {spread * 1000:.0f} ms; re-formed after SIGTERM in {reformed:.2f} s")
    for agent in agents:  # loaded from the data dir: the same generation, and not received since the start
        held = service(agent, "web")
        assert held is not None and (held["generation"], held["image"], held["received_at"]) == (1, "reg/web:1", None)
        assert [s["name"] for s in http(agent, "GET", "/v1/services")[1]] == ["api", "web"]

    second = apply(agents[2], tmp_path, STACK.format(v=2))
    assert second.returncode == 0, second.stderr
    assert "web: updated to generation 2: image reg/web:1 -> reg/web:2" in second.stdout
    later = wait_for(lambda: everyone_holds(agents, "web", 2, "reg/web:2"), 30, "the update to reach every node")
    assert later < SPREAD_S

    stale = apply(agents[4], tmp_path, STACK.format(v=3), "--expect", "web:1")
    assert stale.returncode == 1
    assert "error 409" in stale.stderr and "expected generation 1, the cluster holds 2" in stale.stderr
    status, body = http(agents[1], "POST", "/v1/services?expect=web:1", STACK.format(v=3).encode())
    assert (status, body["error"]["code"], body["error"]["field"]) == (409, "conflict", "services.web")
    assert all(service(a, "web")["generation"] == 2 for a in agents)  # type: ignore[index]

    started = time.monotonic()
    status, body = http(agents[3], "POST", "/v1/services", b"x" * (2 << 20))
    assert (status, body["error"]["code"]) == (413, "too_large")
    assert time.monotonic() - started < 5


def test_nothing_accepted_is_lost_when_every_agent_is_killed_at_once(
        cluster: list[AgentProc], tmp_path: Path) -> None:
    agents = cluster
    assert apply(agents[0], tmp_path, STACK.format(v=1)).returncode == 0
    wait_for(lambda: everyone_holds(agents, "api", 1, "reg/api:1"), 30, "the stack to reach every node")
    # Three writes on three nodes, each acknowledged, then kill -9 everyone at once. The last one is made while
    # every other agent is frozen (SIGSTOP), so it is on one node's disk only when the kill comes.
    assert http(agents[2], "DELETE", "/v1/services/api")[0] == 200
    assert apply(agents[3], tmp_path, "services:\n  db:\n    image: reg/db:1\n").returncode == 0
    others = [a for a in agents if a is not agents[1]]
    for agent in others:
        agent.signal(signal.SIGSTOP)
    assert http(agents[1], "POST", "/v1/services/web/scale", b'{"replicas": 4}')[0] == 200
    for agent in agents:
        agent.signal(signal.SIGKILL)
    for agent in agents:
        agent.proc.wait(10)  # type: ignore[union-attr]
    reformed = restart(agents)

    def settled() -> bool:
        return everyone_holds(agents, "web", 2, "reg/web:1") and everyone_holds(agents, "db", 1, "reg/db:1") \
            and all(http(a, "GET", "/v1/services/api")[0] == 404 for a in agents)

    converged = wait_for(settled, 60, lambda: f"every node to hold all three writes: "
                                              f"{[http(a, 'GET', '/v1/services')[1] for a in agents]}")
    print(f"re-formed after kill -9 in {reformed:.2f} s; all writes everywhere {converged:.2f} s later")
    assert all(service(a, "web")["replicas"] == 4 for a in agents)  # type: ignore[index]
    deleted = http(agents[4], "GET", "/v1/services/api")[1]["error"]["message"]
    assert "was deleted at generation 2 (by n3 at" in deleted


def test_a_cluster_restarted_in_two_halves_that_missed_each_other_becomes_one(
        cluster: list[AgentProc], tmp_path: Path) -> None:
    agents = cluster
    for agent in agents:
        agent.signal(signal.SIGTERM)
    assert [a.proc.wait(15) for a in agents] == [0] * N  # type: ignore[union-attr]
    first, second = agents[:2], agents[2:]
    config = tmp_path / "agent.toml"
    for agent in first:  # the second half is down: these find each other and nobody else
        agent.start("--config", str(config))
    wait_for(lambda: all(a.statuses() == {b.name: "alive" for b in first} for a in first), 30, "the first half")
    # The second half comes up as if its first attempts had found the first half not listening yet: each of its
    # agents remembers only its own half. Only the first half's retries can join the two now.
    for agent in second:
        path = agent.data / "snapshot.json"
        snapshot = json.loads(path.read_text())
        snapshot["peers"] = [["127.0.0.1", b.port] for b in second if b is not agent]
        path.write_text(json.dumps(snapshot))
        agent.start("--config", str(config))
    wait_for(lambda: bool(second[0].statuses()), 20, "the second half's API")
    assert apply(second[0], tmp_path, STACK.format(v=1)).returncode == 0  # written on the second half's side
    healed = wait_for(lambda: all_alive(agents), 60, lambda: f"the two halves to join:\n{views(agents)}")
    wait_for(lambda: everyone_holds(agents, "web", 1, "reg/web:1"), 30, "the second half's write everywhere")
    print(f"two halves became one {healed:.2f} s after the second started")


def status_keys(agent: AgentProc) -> set[str]:
    """The node-status keys in an agent's store, read from its SQLite file beside the running agent."""
    with sqlite3.connect(f"file:{agent.data / 'store.db'}?mode=ro", uri=True, timeout=5) as db:
        return {key for (key,) in db.execute("SELECT key FROM records WHERE key LIKE 'status/%'")}


def test_every_node_publishes_its_own_status_and_every_node_holds_them_all(cluster: list[AgentProc]) -> None:
    ids = {f"status/{m['id']}" for m in cluster[0].get("/v1/members")}
    assert len(ids) == N
    wait_for(lambda: all(status_keys(a) == ids for a in cluster), SPREAD_S, "every status on every node")
