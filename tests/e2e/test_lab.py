"""`shoal lab` end to end: real network namespaces, real agents, driven through the CLI.

Needs root and iproute2; each test builds its own lab (SHOAL_LAB_DIR under tmp_path) and takes it down.
Host names are machine-wide, so these tests skip when another lab is already up rather than destroy it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import node.lab
from tests.e2e.procs import wait_for

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("nsenter") is None,
        reason="the lab needs root, iproute2 and nsenter",
    ),
]

DEAD_WITHIN_S = 30.0
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# The CLI under test is the code this test imported, wherever it lives (checkout or install).
_CODE_ROOT = str(Path(node.lab.__file__).resolve().parents[2])


@dataclass
class Lab:
    dir: Path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, SHOAL_LAB_DIR=str(self.dir))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_CODE_ROOT, env.get("PYTHONPATH")) if p)
        done = subprocess.run(
            [sys.executable, "-m", "node", "lab", *args],
            env=env, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        if check and done.returncode != 0:
            pytest.fail(f"shoal lab {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
        return done

    def pid(self, host: str) -> int:
        return int((self.dir / host / "agent.pid").read_text())


def members(index: int) -> dict[str, str]:
    """name -> status as host h<index>'s agent reports it."""
    with _HTTP.open(f"http://198.18.0.{10 + index}:7947/v1/members", timeout=2) as response:
        return {m["name"]: m["status"] for m in json.loads(response.read())}


def views(indices: range | list[int]) -> str:
    return "; ".join(f"h{i} sees {members(i)}" for i in indices)


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []


LAB_NAME = re.compile(r"shoal-h\d+\b")
LAB_LINK = re.compile(r": shoal-(br0|h\d+-br)[:@]")


def shoal_traces() -> list[str]:
    """Every lab netns (shoal-hN) and link (shoal-br0, shoal-hN-br), and every lab route, on the machine."""
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    routes = subprocess.run(["ip", "route", "show"], capture_output=True, text=True, check=True).stdout
    found = [line.split()[0] for line in netns.splitlines() if LAB_NAME.match(line)]
    found += [line.split(":")[1].strip() for line in links.splitlines() if LAB_LINK.search(line)]
    found += [line for line in routes.splitlines() if line.startswith("198.19.")]
    return found


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    if shoal_traces():
        pytest.skip(f"a shoal lab is already up on this machine ({shoal_traces()}); `shoal lab down` first")
    lab = Lab(tmp_path / "lab")
    try:
        yield lab
    finally:
        lab.run("down", check=False)


def test_up_converges_and_hosts_reach_each_other(lab: Lab) -> None:
    lab.run("up", "3", "--label", "h2:disk=ssd")
    for i in (1, 2, 3):
        assert members(i) == {"h1": "alive", "h2": "alive", "h3": "alive"}
    reach_h2 = "import socket; socket.create_connection(('198.18.0.12', 7947), 2).close()"
    assert lab.run("exec", "h1", "--", sys.executable, "-c", reach_h2).returncode == 0
    assert lab.run("exec", "h3", "--", "sh", "-c", "exit 7", check=False).returncode == 7
    assert lab.run("env", "h2").stdout == "export SHOAL_HOST=http://198.18.0.12:7947\n"
    # The join token is served on the node's own host only (no RBAC yet): h2 itself yes, the bridge no.
    on_h2 = lab.run("exec", "h2", "--", sys.executable, "-m", "node", "join-token", "--host", "http://198.18.0.12:7947")
    assert on_h2.stdout.startswith("SHOAL-1-")
    remote = subprocess.run([sys.executable, "-m", "node", "join-token", "--host", "http://198.18.0.12:7947"],
                            capture_output=True, text=True, timeout=30)
    assert remote.returncode == 1 and "only to callers on this host" in remote.stderr
    status = json.loads(lab.run("status", "--json").stdout)
    rows = [(h["name"], h["agent"], h["link"]) for h in status]
    assert rows == [(f"h{i}", "running", "up") for i in (1, 2, 3)]
    assert status[1]["labels"] == {"disk": "ssd"}
    pids = [lab.pid(h) for h in ("h1", "h2", "h3")]
    lab.run("up", "3")  # idempotent: nothing restarted
    assert [lab.pid(h) for h in ("h1", "h2", "h3")] == pids


def test_unknown_host_is_named_with_the_hosts_that_exist(lab: Lab) -> None:
    lab.run("up", "2")
    done = lab.run("stop", "h7", check=False)
    assert done.returncode == 1
    assert "h1, h2" in done.stderr


def test_five_hosts_see_a_stopped_host_dead_and_it_rejoins_from_its_data_dir(lab: Lab) -> None:
    lab.run("up", "5")
    everyone = {f"h{i}": "alive" for i in range(1, 6)}
    assert all(members(i) == everyone for i in range(1, 6))
    lab.run("stop", "h3")
    survivors = [1, 2, 4, 5]
    wait_for(lambda: all(members(i).get("h3") == "dead" for i in survivors), DEAD_WITHIN_S,
             lambda: views(survivors))
    lab.run("start", "h3")
    for i in range(1, 6):
        assert members(i) == everyone
    restarted = cmdline(lab.pid("h3"))
    assert "--join" not in restarted and "--token" not in restarted


def test_sigterm_of_an_agent_is_seen_as_left(lab: Lab) -> None:
    lab.run("up", "3")
    pid = lab.pid("h3")
    os.kill(pid, signal.SIGTERM)
    wait_for(
        lambda: members(1).get("h3") == "left" and members(2).get("h3") == "left",
        DEAD_WITHIN_S,
        lambda: views([1, 2]),
    )
    wait_for(lambda: not cmdline(pid), 10.0, lambda: f"agent {pid} still runs after SIGTERM")


def test_grow_adds_hosts_and_shrink_removes_them_with_their_routes(lab: Lab) -> None:
    lab.run("up", "2")
    lab.run("up", "3")
    for i in (1, 2, 3):
        assert {n: s for n, s in members(i).items() if n in ("h1", "h2", "h3")} == dict.fromkeys(
            ("h1", "h2", "h3"), "alive"
        )
    h3_pid = lab.pid("h3")
    lab.run("up", "2")
    assert not cmdline(h3_pid)
    assert "shoal-h3" not in shoal_traces()
    assert not [t for t in shoal_traces() if t.startswith("198.19.3.")]
    h1_routes = subprocess.run(["ip", "-n", "shoal-h1", "route"], capture_output=True, text=True, check=True)
    assert "198.19.3.0/24" not in h1_routes.stdout
    assert not (lab.dir / "h3").exists()


def test_down_leaves_nothing_behind(lab: Lab) -> None:
    lab.run("up", "2")
    pids = [lab.pid("h1"), lab.pid("h2")]
    lab.run("down")
    assert shoal_traces() == []
    assert not lab.dir.exists()
    assert not any(cmdline(pid) for pid in pids)
    lab.run("down")  # and again, on nothing at all


def service_on(index: int, name: str) -> dict[str, object] | None:
    """GET /v1/services/NAME on host h<index>'s agent; None while it answers 404 (or not at all)."""
    try:
        with _HTTP.open(f"http://198.18.0.{10 + index}:7947/v1/services/{name}", timeout=2) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]
    except OSError:
        return None


def test_a_manifest_applied_on_h1_is_read_on_h3_even_after_h3_was_down_and_after_all_hosts_were(
        lab: Lab, tmp_path: Path) -> None:
    lab.run("up", "3")
    stack = tmp_path / "stack.yml"

    def apply(version: int, host: int = 1) -> subprocess.CompletedProcess[str]:
        stack.write_text(f"services:\n  web:\n    image: 198.18.0.1:5000/shoal-demo:{version}\n")
        env = dict(os.environ, PYTHONPATH=_CODE_ROOT)
        return subprocess.run([sys.executable, "-m", "node", "apply", "-f", str(stack), "--host",
                               f"http://198.18.0.{10 + host}:7947"], env=env, capture_output=True, text=True,
                              timeout=60)

    def everyone_holds(generation: int) -> bool:
        return all((service_on(i, "web") or {}).get("generation") == generation for i in (1, 2, 3))

    assert apply(1).stdout == "web: created (generation 1)\n"
    wait_for(lambda: (service_on(3, "web") or {}).get("generation") == 1, 10, "h3 to hold web")
    assert service_on(3, "web")["updated_by"]["name"] == "h1"  # type: ignore[index]
    lab.run("stop", "h3")  # power loss: h3 misses the next apply
    assert apply(2).stdout.startswith("web: updated to generation 2: image ")
    lab.run("start", "h3")
    wait_for(lambda: (service_on(3, "web") or {}).get("image") == "198.18.0.1:5000/shoal-demo:2", 20,
             lambda: f"h3 to catch up after its restart: {service_on(3, 'web')}")
    # Power loss on every host at once, then all back: the state is intact and later writes still spread.
    for host in ("h1", "h2", "h3"):
        lab.run("stop", host)
    for host in ("h1", "h2", "h3"):
        lab.run("start", host)
    wait_for(lambda: all(members(i) == {"h1": "alive", "h2": "alive", "h3": "alive"} for i in (1, 2, 3)), 30,
             "the lab to re-form after every host restarted")
    assert everyone_holds(2)
    assert apply(3, host=2).stdout.startswith("web: updated to generation 3")
    wait_for(lambda: everyone_holds(3), 10, "the write after the full restart to reach every host")
