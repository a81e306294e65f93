"""Real agents as separate processes on loopback, real UDP and mutual TLS: join, crash detection (kill -9),
graceful leave (SIGTERM), restart from the data dir alone, and refused joins."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.procs import AgentProc, free_port, shoal, wait_for

pytestmark = pytest.mark.procs
N = 10


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[list[AgentProc], str]]:
    agents = [AgentProc(f"n{i}", tmp_path / f"d{i}", free_port(), free_port()) for i in range(1, N + 1)]
    init = shoal("init", "--data", str(agents[0].data), "--cluster", "e2e", "--name", "n1")
    assert init.returncode == 0, init.stderr
    token = init.stdout.strip().splitlines()[-1]
    try:
        agents[0].start()
        wait_for(lambda: agents[0].statuses().get("n1") == "alive", 20, "the first agent's API")
        for agent in agents[1:]:
            agent.start("--join", f"127.0.0.1:{agents[0].port}", "--token", token)
        yield agents, token
    finally:
        for agent in agents:
            agent.stop()


def everyone_sees(agents: list[AgentProc], name: str, status: str) -> bool:
    return all(a.statuses().get(name) == status for a in agents if a.name != name)


def test_ten_agents_join_detect_a_crash_see_a_leave_and_readmit_a_restart(
        cluster: tuple[list[AgentProc], str]) -> None:
    agents, token = cluster
    wait_for(lambda: all(len(a.statuses()) == N and set(a.statuses().values()) == {"alive"} for a in agents),
             60, f"all {N} agents to see {N} alive")

    crashed = agents[-1]
    crashed.signal(signal.SIGKILL)
    crashed.proc.wait(10)  # type: ignore[union-attr]
    detection = wait_for(lambda: everyone_sees(agents[:-1], crashed.name, "dead"), 30, "crash detection")
    assert detection < 30

    leaver = agents[-2]
    leaver.signal(signal.SIGTERM)
    assert leaver.proc.wait(15) == 0  # type: ignore[union-attr]
    wait_for(lambda: everyone_sees(agents[:-2], leaver.name, "left"), 10, "the leave to spread")

    late = AgentProc("late", agents[0].data.parent / "late", free_port(), free_port())
    try:  # joins through a member other than the one that ran `shoal init`
        late.start("--join", f"127.0.0.1:{agents[4].port}", "--token", token)
        wait_for(lambda: everyone_sees(agents[:-2], "late", "alive"), 30, "an agent joined through n5")
    finally:
        late.stop()

    crashed.start()  # its data dir alone: no --join, no --token
    wait_for(lambda: everyone_sees(agents[:-2], crashed.name, "alive"), 30, "the restarted agent")
    wait_for(lambda: crashed.statuses().get("n1") == "alive", 10, "the restarted agent to see n1")
    drops = [a.get("/v1/agent")["counters"] for a in agents[:-2]]
    assert sum(c.get("drop_replayed", 0) + c.get("drop_stale", 0) for c in drops) == 0
    assert max(c["max_datagram_bytes"] for c in drops) <= 1232


def test_a_join_with_a_wrong_secret_or_wrong_ca_is_refused_with_the_reason(
        cluster: tuple[list[AgentProc], str], tmp_path: Path) -> None:
    agents, token = cluster
    seed = f"127.0.0.1:{agents[0].port}"
    wrong_secret = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
    wrong_ca = "SHOAL-1-" + "0" * 64 + token[-33:]
    for bad, reason in ((wrong_secret, "secret does not match"), (wrong_ca, "fingerprint mismatch")):
        result = shoal("agent", "--data", str(tmp_path / "x"), "--bind", f"127.0.0.1:{free_port()}",
                       "--api", f"127.0.0.1:{free_port()}", "--join", seed, "--token", bad, "--runtime", "none")
        assert result.returncode == 1
        assert reason in result.stderr, result.stderr


def test_cli_reads_any_node_with_host_before_or_after_and_exit_codes_follow_spec(
        cluster: tuple[list[AgentProc], str]) -> None:
    agents, token = cluster
    first, second = agents[0], agents[1]
    wait_for(lambda: len(second.statuses()) == N, 60, "the second agent to see everyone")
    url = f"http://127.0.0.1:{second.api}"
    after = shoal("members", "--json", "--host", url)
    before = shoal("--host", url, "members", "--json")
    assert after.returncode == before.returncode == 0, after.stderr
    rows = json.loads(after.stdout)
    assert {r["name"] for r in rows} == {f"n{i}" for i in range(1, N + 1)}
    assert set(rows[0]) == {"name", "id", "address", "status", "incarnation", "labels"}
    table = shoal("members", env={**os.environ, "SHOAL_HOST": f"http://127.0.0.1:{first.api}"})
    assert table.returncode == 0 and table.stdout.splitlines()[0].split()[:4] == ["NAME", "ID", "ADDRESS", "STATUS"]
    assert shoal("join-token", "--host", url).stdout.strip() == token
    nobody = shoal("members", "--host", f"http://127.0.0.1:{free_port()}")
    assert nobody.returncode == 3 and "no answer" in nobody.stderr
    assert shoal("members", "--bogus").returncode == 2


def test_a_joiner_started_before_its_seed_waits_for_it(tmp_path: Path) -> None:
    seed = AgentProc("seed", tmp_path / "seed", free_port(), free_port())
    joiner = AgentProc("early", tmp_path / "early", free_port(), free_port())
    init = shoal("init", "--data", str(seed.data), "--name", "seed")
    token = init.stdout.strip().splitlines()[-1]
    try:
        joiner.start("--join", f"127.0.0.1:{seed.port}", "--token", token)
        wait_for(lambda: "no member reachable yet" in joiner.log.read_text(), 20, "the joiner to retry")
        seed.start()
        wait_for(lambda: joiner.statuses() == {"seed": "alive", "early": "alive"}, 30, "the late seed")
    finally:
        joiner.stop()
        seed.stop()
