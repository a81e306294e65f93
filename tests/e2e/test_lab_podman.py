"""The lab's podman side end to end: every host's own podman API service, the registry on 198.18.0.1:5000 with
the demo images, `lab env` / `lab exec` reaching a host's podman, a power cut killing a host's containers and a
start bringing its podman back as after a reboot, and `down` leaving nothing behind.

Uses the shared lab (tests/e2e/conftest.py) and leaves it as it found it; the down test has a lab of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import HTTP, Lab, SharedLab, shoal_traces
from tests.e2e.procs import wait_for

pytestmark = [pytest.mark.lab]

REGISTRY = "198.18.0.1:5000"
DEMO_1 = f"{REGISTRY}/shoal-demo:1"
DEMO_2 = f"{REGISTRY}/shoal-demo:2"


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []


def inspect(lab: Lab, host: str, name: str, template: str) -> str:
    return lab.podman(host, "inspect", name, "--format", template).stdout.strip()


def names(lab: Lab, host: str) -> list[str]:
    return lab.podman(host, "ps", "-a", "--format", "{{.Names}}").stdout.split()


def test_registry_answers_on_every_host_and_holds_both_demo_tags(lab: SharedLab) -> None:
    for host in lab.hosts:
        assert lab.exec(host, "curl", "-s", "-m", "5", f"http://{REGISTRY}/v2/").stdout.strip() == "{}"
    with HTTP.open(f"http://{REGISTRY}/v2/shoal-demo/tags/list", timeout=5) as response:
        assert {"1", "2"} <= set(json.loads(response.read())["tags"])


def test_registry_listens_on_the_bridge_address_only(lab: SharedLab) -> None:
    pid = int((lab.dir / "registry" / "registry.pid").read_text())
    listening = subprocess.run(["ss", "-H", "-ltnp"], capture_output=True, text=True, check=True).stdout
    ours = [line.split()[3] for line in listening.splitlines() if f"pid={pid}," in line]
    assert ours == [REGISTRY]


def test_a_host_pulls_through_its_podman_socket_and_runs_either_version(lab: SharedLab) -> None:
    lab.podman("h1", "pull", "--quiet", DEMO_1)
    assert DEMO_1 in lab.podman("h1", "images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    version = lab.podman("h1", "run", "--rm", DEMO_2, "cat", "/etc/shoal-demo-version")
    assert version.stdout == "2\n"


def test_the_demo_image_has_the_tools_the_spec_names_and_a_versioned_web_root(lab: SharedLab) -> None:
    script = "for a in sh httpd hostname nc wget sleep; do command -v $a >/dev/null || echo missing $a; done; " \
             "cat /www/index.html"
    assert lab.podman("h2", "run", "--rm", DEMO_1, "sh", "-c", script).stdout == "shoal-demo 1\n"


def test_each_hosts_podman_is_its_own_and_lab_env_and_exec_reach_it(lab: SharedLab) -> None:
    exports = lab.env("h2")
    assert exports == {"SHOAL_HOST": lab.api("h2"), "CONTAINER_HOST": f"unix://{lab.socket('h2')}"}
    env = dict(os.environ, **exports)
    run = subprocess.run(["podman", "--remote", "run", "-d", "--name", "lab-env-probe", DEMO_1, "sleep", "300"],
                         env=env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    try:
        listed = subprocess.run(["podman", "--remote", "ps", "--format", "{{.Names}}"], env=env,
                                capture_output=True, text=True, timeout=60, check=True)
        assert "lab-env-probe" in listed.stdout.split()
        on_h2 = lab.exec("h2", "podman", "ps", "--format", "{{.Names}}").stdout.split()
        assert "lab-env-probe" in on_h2  # lab exec carries h2's podman config
        assert "lab-env-probe" not in names(lab, "h1")
        machine = subprocess.run(["podman", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True,
                                 env={k: v for k, v in os.environ.items() if k != "CONTAINER_HOST"}, check=False)
        assert "lab-env-probe" not in machine.stdout.split()  # the machine's own podman store is another
    finally:
        lab.podman("h2", "rm", "-f", "-t", "0", "lab-env-probe", check=False)


def test_podmans_default_network_leaves_the_hosts_subnet_to_the_agent(lab: SharedLab) -> None:
    for host in ["h1", "h3"]:
        subnet = f"198.19.{host[1:]}.0/24"
        networks = json.loads(lab.podman(host, "network", "ls", "--format", "json").stdout)
        subnets = {n["name"]: [s["subnet"] for s in n.get("subnets", [])] for n in networks}
        assert subnets["podman"] == ["198.19.255.0/24"]
        on_host_subnet = [name for name, nets in subnets.items() if subnet in nets]
        if not on_host_subnet:  # the agent has not made its network yet: show that podman would accept it
            lab.podman(host, "network", "create", "--subnet", subnet, "--disable-dns", "lab-subnet-probe")
            lab.podman(host, "network", "rm", "lab-subnet-probe")
        else:
            assert len(on_host_subnet) == 1


def test_stop_kills_a_hosts_containers_and_start_brings_its_podman_back_as_after_a_reboot(lab: SharedLab) -> None:
    host = "h4"
    lab.podman(host, "run", "-d", "--name", "lab-power-probe", DEMO_1, "sleep", "600")
    try:
        pid = int(inspect(lab, host, "lab-power-probe", "{{.State.Pid}}"))
        cid = inspect(lab, host, "lab-power-probe", "{{.Id}}")
        sandbox = inspect(lab, host, "lab-power-probe", "{{.NetworkSettings.SandboxKey}}")
        address = inspect(lab, host, "lab-power-probe", "{{.NetworkSettings.IPAddress}}")
        agent, service = lab.pid(host), lab.podman_pid(host)
        assert cmdline(pid)[:2] == ["sleep", "600"]
        lab.run("stop", host)
        assert not cmdline(pid) and not cmdline(agent) and not cmdline(service)
        assert lab.podman(host, "ps", check=False).returncode != 0  # nothing answers on its socket
        status = {row["name"]: row for row in json.loads(lab.run("status", "--json").stdout)}
        assert (status[host]["agent"], status[host]["podman"], status[host]["link"]) == ("stopped", "stopped", "down")

        lab.run("start", host)
        assert cmdline(lab.pid(host)) and lab.pid(host) != agent
        assert {n: s for n, s in lab.members("h1").items() if n in lab.hosts}[host] == "alive"
        # podman refreshed (its run state was gone, as after a reboot): the container is there, not running
        assert inspect(lab, host, "lab-power-probe", "{{.State.Status}}") == "created"
        assert not Path(f"/run/runc/{cid}").exists() and not Path(sandbox).exists()
        # what podman held for the dead container is released: its address is free again
        lab.podman(host, "run", "--rm", "--ip", address, DEMO_1, "true")
        lab.podman(host, "start", "lab-power-probe")
        assert inspect(lab, host, "lab-power-probe", "{{.State.Status}}") == "running"
    finally:
        lab.podman(host, "rm", "-f", "-t", "0", "lab-power-probe", check=False)
        lab.restore()


def test_down_leaves_nothing_behind(own_lab: Lab) -> None:
    lab = own_lab
    lab.up(2)
    lab.podman("h1", "run", "-d", "--name", "running", "-p", "8080:8080", DEMO_1)
    lab.podman("h2", "run", "-d", "--name", "killed", DEMO_1, "sleep", "600")
    ids = [inspect(lab, h, n, "{{.Id}}") for h, n in [("h1", "running"), ("h2", "killed")]]
    sandboxes = [inspect(lab, h, n, "{{.NetworkSettings.SandboxKey}}") for h, n in [("h1", "running"),
                                                                                   ("h2", "killed")]]
    wait_for(lambda: lab.exec("h2", "curl", "-s", "-m", "2", "http://198.18.0.11:8080/", check=False).stdout
             == "shoal-demo 1\n", 10, "h1's web container to answer h2")
    registry_pid = int((lab.dir / "registry" / "registry.pid").read_text())
    pids = [lab.pid("h1"), lab.pid("h2"), lab.podman_pid("h1"), registry_pid]
    lab.run("stop", "h2")  # a powered-off host at down: its podman believes its container still runs
    lab.run("down")
    assert shoal_traces() == []
    assert not lab.dir.exists()
    assert not any(cmdline(pid) for pid in pids)
    assert not [line for line in Path("/proc/mounts").read_text().splitlines() if str(lab.dir) in line]
    assert not [s for s in sandboxes if Path(s).exists()]
    assert not [cid for cid in ids if Path(f"/run/runc/{cid}").exists()]
    assert not [p for cid in ids for p in Path("/sys/fs/cgroup").glob(f"*/libpod_parent/libpod-{cid}")]
    leftover = subprocess.run(["pgrep", "-f", str(lab.dir)], capture_output=True, text=True, check=False).stdout
    assert leftover == ""  # no conmon, service, registry or agent of this lab
    lab.run("down")  # and again, on nothing at all
