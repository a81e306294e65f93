"""node.hostnet for real: two emulated hosts, a "container" behind each, and the routes and nft table
`converge` programs (DESIGN §7a).

Topology, all in namespaces of this test's own (shoal-nt-<pid>-*), nothing in the root namespace, so it can
run beside a lab that uses the same addresses:
    sw: bridge br0 ── ha (eth0 198.18.0.221) ── ctr0 198.19.21.1 ── ca (198.19.21.2)
                  └── hb (eth0 198.18.0.222) ── ctr0 198.19.22.1 ── cb (198.19.22.2, echo server)
Each host masquerades its containers' egress like netavark does, and runs hostnet's functions in a Python
subprocess entered into its namespace, with subprocess.run wrapped to record every command.
The echo server answers each connection with the source address it saw.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import node
from node.lab.wait import poll_until

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("nft") is None,
        reason="needs root, iproute2 and nftables",
    ),
]

CODE_ROOT = str(Path(node.__file__).resolve().parents[1])
HOST = {"ha": "198.18.0.221", "hb": "198.18.0.222"}
SUBNET = {"ha": "198.19.21.0/24", "hb": "198.19.22.0/24"}
CONTAINER = {"ha": ("ca", "198.19.21.2"), "hb": ("cb", "198.19.22.2")}
ECHO_PORT = 7070
PEER = {"ha": "hb", "hb": "ha"}
STEP_TIMEOUT_S = 30.0
READY_TIMEOUT_S = 10.0

# Like netavark's rule for a host's podman network: every packet from its containers leaving the host.
MASQUERADE = """table ip nat {{
  chain POSTROUTING {{
    type nat hook postrouting priority srcnat;
    ip saddr {subnet} masquerade
  }}
}}
"""
ECHO = f"""
import socket
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", {ECHO_PORT}))
server.listen(16)
print("ready", flush=True)
while True:
    conn, (address, _) = server.accept()
    with conn:
        conn.sendall(address.encode())
"""
CLIENT = f"""
import socket, sys
try:
    with socket.create_connection(({CONTAINER["hb"][1]!r}, {ECHO_PORT}), timeout=2) as conn:
        conn.settimeout(2)
        print(conn.recv(64).decode())
except OSError as exc:
    print(f"unreachable: {{exc}}")
"""
# Runs in a host's namespace: argv[1] names a hostnet call and its JSON arguments; prints what it returned
# and every command it ran.
SHELL = """
import asyncio, json, subprocess, sys
ran = []
real_run = subprocess.run
def spy(cmd, *args, **kwargs):
    ran.append(list(cmd))
    return real_run(cmd, *args, **kwargs)
subprocess.run = spy
from netpolicy import apply
from node import hostnet
from node.routes import PeerNet
call, args = json.loads(sys.argv[1])
if call == "converge":
    result = asyncio.run(hostnet.converge(args[0], [PeerNet(*p) for p in args[1]]))
elif call == "withdraw":
    result = asyncio.run(hostnet.withdraw())
else:
    result = apply.remove()
print(json.dumps({"result": result, "ran": ran}))
"""
SHOW = ["ip", "-4", "-j", "route", "show", "proto", "83"]
LIST = ["nft", "list", "table", "inet", "shoal"]


@dataclass
class Topology:
    prefix: str  # shoal-nt-<pid>
    echo: subprocess.Popen[str] | None = None

    def ns(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    def run(self, role: str, *cmd: str, stdin: str | None = None) -> str:
        """Run `cmd` inside `role`'s namespace; fails the test naming it and its stderr."""
        full = ["ip", "netns", "exec", self.ns(role), *cmd]
        done = subprocess.run(full, input=stdin, capture_output=True, text=True, timeout=STEP_TIMEOUT_S,
                              env=dict(os.environ, PYTHONPATH=CODE_ROOT), check=False)
        assert done.returncode == 0, f"{' '.join(full)} exited {done.returncode}: {done.stderr}"
        return done.stdout

    def shell(self, host: str, call: str, *args: Any) -> dict[str, Any]:
        """A hostnet call inside `host`: {"result": ..., "ran": [commands]}."""
        out = self.run(host, sys.executable, "-c", SHELL, json.dumps([call, args]))
        return dict(json.loads(out))

    def converge(self, host: str, *, peers: bool = True) -> dict[str, Any]:
        peer = PEER[host]
        return self.shell(host, "converge", SUBNET[host], [[peer, SUBNET[peer], HOST[peer]]] if peers else [])

    def seen_by_b(self) -> str:
        """What container B's echo server says the caller's address was, or 'unreachable: ...'."""
        return self.run("ca", sys.executable, "-c", CLIENT).strip()

    def routes(self, host: str) -> list[dict[str, Any]]:
        return list(json.loads(self.run(host, "ip", "-4", "-j", "route", "show") or "[]"))


def build(topo: Topology) -> None:
    ip = ("ip", "-n")
    for role in ("sw", "ha", "hb", "ca", "cb"):
        subprocess.run(["ip", "netns", "add", topo.ns(role)], check=True, timeout=STEP_TIMEOUT_S)
        subprocess.run([*ip, topo.ns(role), "link", "set", "lo", "up"], check=True, timeout=STEP_TIMEOUT_S)
    steps = [[*ip, topo.ns("sw"), "link", "add", "br0", "type", "bridge"],
             [*ip, topo.ns("sw"), "link", "set", "br0", "up"]]
    for host, (ctr, ctr_addr) in CONTAINER.items():
        h, c, gw = topo.ns(host), topo.ns(ctr), SUBNET[host].replace(".0/24", ".1")
        steps += [
            [*ip, topo.ns("sw"), "link", "add", f"port-{host}", "type", "veth", "peer", "name", "eth0", "netns", h],
            [*ip, topo.ns("sw"), "link", "set", f"port-{host}", "master", "br0", "up"],
            [*ip, h, "link", "set", "eth0", "up"],
            [*ip, h, "addr", "add", f"{HOST[host]}/24", "dev", "eth0"],
            [*ip, h, "link", "add", "ctr0", "type", "veth", "peer", "name", "eth0", "netns", c],
            [*ip, h, "addr", "add", f"{gw}/24", "dev", "ctr0"],
            [*ip, h, "link", "set", "ctr0", "up"],
            [*ip, c, "link", "set", "eth0", "up"],
            [*ip, c, "addr", "add", f"{ctr_addr}/24", "dev", "eth0"],
            [*ip, c, "route", "add", "default", "via", gw],
            ["ip", "netns", "exec", h, "sysctl", "-qw", "net.ipv4.ip_forward=1"],
        ]
    for step in steps:
        subprocess.run(step, check=True, capture_output=True, timeout=STEP_TIMEOUT_S)
    for host in CONTAINER:
        topo.run(host, "nft", "-f", "-", stdin=MASQUERADE.format(subnet=SUBNET[host]))


def start_echo(topo: Topology) -> None:
    topo.echo = subprocess.Popen(["ip", "netns", "exec", topo.ns("cb"), sys.executable, "-c", ECHO],
                                 stdout=subprocess.PIPE, text=True)
    assert topo.echo.stdout is not None
    readable, _, _ = select.select([topo.echo.stdout], [], [], READY_TIMEOUT_S)
    assert readable and topo.echo.stdout.readline().strip() == "ready", "echo server did not start"


def tear_down(topo: Topology) -> None:
    """Everything this test made, by pid and by name, whatever state a failure left it in."""
    if topo.echo is not None:
        topo.echo.kill()  # `ip netns exec` execs python: this pid is the server itself
        topo.echo.wait(timeout=STEP_TIMEOUT_S)
        if topo.echo.stdout is not None:
            topo.echo.stdout.close()
    for role in ("ca", "cb", "ha", "hb", "sw"):  # deleting a namespace deletes the links in it
        subprocess.run(["ip", "netns", "del", topo.ns(role)], capture_output=True, timeout=STEP_TIMEOUT_S)
    def left() -> list[str]:
        return [n for n in os.listdir("/run/netns") if n.startswith(topo.prefix)]

    assert poll_until(lambda: not left(), STEP_TIMEOUT_S, interval_s=0.1), f"left behind: {left()}"


@pytest.fixture(scope="module")
def topo() -> Iterator[Topology]:
    topology = Topology(prefix=f"shoal-nt-{os.getpid()}")
    try:
        build(topology)
        start_echo(topology)
        yield topology
    finally:
        tear_down(topology)


@pytest.fixture
def fresh(topo: Topology) -> Topology:
    """No Shoal routes or table in either host, whatever an earlier test left."""
    for host in CONTAINER:
        topo.shell(host, "withdraw")
    return topo


def test_without_routes_container_a_cannot_reach_b(fresh: Topology) -> None:
    assert fresh.seen_by_b().startswith("unreachable:")


def test_after_converge_a_reaches_b_with_its_own_address(fresh: Topology) -> None:
    for host in CONTAINER:
        assert fresh.converge(host)["result"] == []
    assert fresh.seen_by_b() == CONTAINER["ha"][1]


def test_without_shoals_table_b_sees_host_a_masqueraded(fresh: Topology) -> None:
    for host in CONTAINER:
        fresh.converge(host)
    fresh.shell("ha", "remove")
    assert fresh.seen_by_b() == HOST["ha"]
    repaired = fresh.converge("ha")["ran"]
    assert repaired == [SHOW, LIST, ["nft", "-f", "-"]]  # the routes were fine: only the table is put back
    assert fresh.seen_by_b() == CONTAINER["ha"][1]


def test_first_converge_programs_the_route_and_the_table(fresh: Topology) -> None:
    ran = fresh.converge("ha")["ran"]
    assert ran == [SHOW, ["ip", "route", "replace", SUBNET["hb"], "via", HOST["hb"], "proto", "83", "metric", "83"],
                   LIST, ["nft", "-f", "-"]]
    listing = fresh.run("ha", "nft", "list", "table", "inet", "shoal")
    assert "elements = { 198.19.21.0/24, 198.19.22.0/24 }" in listing


def test_second_converge_without_changes_runs_no_changing_command(fresh: Topology) -> None:
    fresh.converge("ha")
    assert fresh.converge("ha")["ran"] == [SHOW, LIST]


def test_gone_peer_loses_only_shoals_route(fresh: Topology) -> None:
    fresh.converge("ha")
    manual = [("198.19.22.0/24", "metric", "5"), ("198.19.99.0/24",)]  # same destination; another one
    for dst, *extra in manual:
        fresh.run("ha", "ip", "route", "add", dst, "via", HOST["hb"], "proto", "static", *extra)
    try:
        ran = fresh.converge("ha", peers=False)["ran"]
        assert ran == [SHOW, ["ip", "route", "del", SUBNET["hb"], "via", HOST["hb"], "proto", "83"],
                       LIST, ["nft", "-f", "-"]]
        left = {(r["dst"], r.get("protocol")) for r in fresh.routes("ha") if r["dst"].startswith("198.19.")}
        assert left == {("198.19.21.0/24", "kernel"), ("198.19.22.0/24", "static"), ("198.19.99.0/24", "static")}
        assert "elements = { 198.19.21.0/24 }" in fresh.run("ha", "nft", "list", "table", "inet", "shoal")
    finally:
        for dst, *_ in manual:
            fresh.run("ha", "ip", "route", "del", dst, "proto", "static")
