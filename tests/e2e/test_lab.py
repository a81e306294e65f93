"""`shoal lab` end to end: real network namespaces, real agents, driven through the CLI.

Most tests use the session's shared 4-host lab (tests/e2e/conftest.py) and leave it as they found it; the
ones that must build or remove a lab of their own use `own_lab` and run last. Needs root and the lab's tools.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import HTTP, Lab, SharedLab, shoal_traces
from tests.e2e.procs import wait_for

pytestmark = [pytest.mark.lab]

DEAD_WITHIN_S = 30.0


def views(lab: Lab, hosts: list[str]) -> str:
    return "; ".join(f"{h} sees {lab.members(h)}" for h in hosts)


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []


def everyone_alive(lab: Lab) -> dict[str, str]:
    return dict.fromkeys(lab.hosts, "alive")


def test_up_converges_and_hosts_reach_each_other(lab: SharedLab) -> None:
    for host in lab.hosts:
        assert lab.members(host) == everyone_alive(lab)
    reach_h2 = "import socket; socket.create_connection(('198.18.0.12', 7947), 2).close()"
    assert lab.exec("h1", sys.executable, "-c", reach_h2).returncode == 0
    assert lab.exec("h3", "sh", "-c", "exit 7", check=False).returncode == 7
    # The join token is served on the node's own host only (no RBAC yet): h2 itself yes, the bridge no.
    on_h2 = lab.exec("h2", sys.executable, "-m", "node", "join-token", "--host", lab.api("h2"))
    assert on_h2.stdout.startswith("SHOAL-1-")
    # The API also answers on the host's loopback, so the CLI's default host reaches the local agent.
    by_default = lab.exec("h2", sys.executable, "-m", "node", "join-token")
    assert by_default.stdout == on_h2.stdout
    remote = lab.shoal("h2", "join-token")
    assert remote.returncode == 1 and "only to callers on this host" in remote.stderr


def test_status_lists_every_host_with_its_agent_podman_link_and_labels(lab: SharedLab) -> None:
    status = json.loads(lab.run("status", "--json").stdout)
    rows = [(h["name"], h["agent"], h["podman"], h["link"]) for h in status]
    assert rows == [(h, "running", "running", "up") for h in lab.hosts]
    assert {h["name"]: h["labels"] for h in status} == lab.labels
    assert status[0]["podman_socket"] == str(lab.socket("h1"))
    table = lab.run("status")
    assert "PODMAN" in table.stdout and "registry 198.18.0.1:5000: running" in table.stderr


def test_up_again_restarts_nothing(lab: SharedLab) -> None:
    before = [(lab.pid(h), lab.podman_pid(h)) for h in lab.hosts]
    lab.run("up", str(lab.size))
    assert [(lab.pid(h), lab.podman_pid(h)) for h in lab.hosts] == before
    # Without N, up keeps the lab's size (the default of 3 is for a new lab: it must not shrink this one).
    assert lab.size != 3
    assert "up; `shoal lab env h1`" in lab.run("up").stderr
    assert [(lab.pid(h), lab.podman_pid(h)) for h in lab.hosts] == before
    assert len(json.loads(lab.run("status", "--json").stdout)) == lab.size


def test_labels_reach_the_agents(lab: SharedLab) -> None:
    members = json.loads(lab.shoal("h2", "members", "--json").stdout)
    assert {m["name"]: m["labels"] for m in members} == lab.labels


def test_unknown_host_is_named_with_the_hosts_that_exist(lab: SharedLab) -> None:
    done = lab.run("stop", "h7", check=False)
    assert done.returncode == 1
    assert "unknown host 'h7'; the lab has h1, h2, h3, h4" in done.stderr


def test_a_stopped_host_is_seen_dead_and_rejoins_from_its_data_dir(lab: SharedLab) -> None:
    lab.run("stop", "h3")
    survivors = ["h1", "h2", "h4"]
    try:
        wait_for(lambda: all(lab.members(h).get("h3") == "dead" for h in survivors), DEAD_WITHIN_S,
                 lambda: views(lab, survivors))
    finally:
        lab.run("start", "h3")
    for host in lab.hosts:
        assert lab.members(host) == everyone_alive(lab)
    restarted = cmdline(lab.pid("h3"))
    assert "--join" not in restarted and "--token" not in restarted


def test_sigterm_of_an_agent_is_seen_as_left(lab: SharedLab) -> None:
    pid = lab.pid("h3")
    os.kill(pid, signal.SIGTERM)
    try:
        wait_for(lambda: lab.members("h1").get("h3") == "left" and lab.members("h2").get("h3") == "left",
                 DEAD_WITHIN_S, lambda: views(lab, ["h1", "h2"]))
        wait_for(lambda: not cmdline(pid), 10.0, lambda: f"agent {pid} still runs after SIGTERM")
    finally:
        lab.restore()  # `up` starts the agent again
    assert lab.members("h1")["h3"] == "alive"


def test_grow_adds_hosts_and_shrink_removes_them_with_their_routes_and_podman(lab: SharedLab) -> None:
    try:
        lab.up(5)
        for host in ["h1", "h5"]:
            assert {n: s for n, s in lab.members(host).items() if n in lab.hosts} == everyone_alive(lab)
        h5_agent, h5_podman = lab.pid("h5"), lab.podman_pid("h5")
        assert lab.podman("h5", "info", "--format", "{{.Host.OCIRuntime.Name}}").stdout.strip() == "runc"
    finally:
        lab.restore()
    assert not cmdline(h5_agent) and not cmdline(h5_podman)
    assert "shoal-h5" not in shoal_traces()
    assert not [t for t in shoal_traces() if t.startswith("198.19.5.")]
    h1_routes = subprocess.run(["ip", "-n", "shoal-h1", "route"], capture_output=True, text=True, check=True)
    assert "198.19.5.0/24" not in h1_routes.stdout
    assert not (lab.dir / "h5").exists()


def service_on(lab: Lab, host: str, name: str) -> dict[str, object] | None:
    """GET /v1/services/NAME on HOST's agent; None while it answers 404 (or not at all)."""
    try:
        with HTTP.open(f"{lab.api(host)}/v1/services/{name}", timeout=2) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]
    except OSError:
        return None


def test_a_manifest_applied_on_h1_is_read_on_h3_even_after_h3_was_down_and_after_all_hosts_were(
        own_lab: Lab, tmp_path: Path) -> None:
    lab = own_lab
    lab.up(3)
    stack = tmp_path / "stack.yml"

    def apply(version: int, host: str = "h1") -> subprocess.CompletedProcess[str]:
        stack.write_text(f"services:\n  web:\n    image: 198.18.0.1:5000/shoal-demo:{version}\n")
        return lab.shoal(host, "apply", "-f", str(stack))

    def everyone_holds(generation: int) -> bool:
        return all((service_on(lab, h, "web") or {}).get("generation") == generation for h in lab.hosts)

    assert apply(1).stdout == "web: created (generation 1)\n"
    wait_for(lambda: (service_on(lab, "h3", "web") or {}).get("generation") == 1, 10, "h3 to hold web")
    assert service_on(lab, "h3", "web")["updated_by"]["name"] == "h1"  # type: ignore[index]
    lab.run("stop", "h3")  # power loss: h3 misses the next apply
    assert apply(2).stdout.startswith("web: updated to generation 2: image ")
    lab.run("start", "h3")
    wait_for(lambda: (service_on(lab, "h3", "web") or {}).get("image") == "198.18.0.1:5000/shoal-demo:2", 20,
             lambda: f"h3 to catch up after its restart: {service_on(lab, 'h3', 'web')}")
    # Power loss on every host at once, then all back: the state is intact and later writes still spread.
    for host in lab.hosts:
        lab.run("stop", host)
    for host in lab.hosts:
        lab.run("start", host)
    wait_for(lambda: all(lab.members(h) == everyone_alive(lab) for h in lab.hosts), 30,
             "the lab to re-form after every host restarted")
    assert everyone_holds(2)
    assert apply(3, host="h2").stdout.startswith("web: updated to generation 3")
    wait_for(lambda: everyone_holds(3), 10, "the write after the full restart to reach every host")
