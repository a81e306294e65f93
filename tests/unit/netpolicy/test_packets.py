"""Real packets through a rendered policy: a host namespace routes between container namespaces and applies
Shoal's table; TCP connections then pass or are dropped as the policy says, and as Gate.forwards predicts.

Topology (every namespace private, deleted afterwards): the host `h` owns 198.19.1.0/24; each "container" or
peer is a namespace with one address, linked to `h` by a veth pair and routed by `h` (as a cluster host
routes its containers and its peers' subnets), so every connection between them crosses h's forward hook.
A dropped connection shows as a connect timeout; the `default deny` counter then proves our rule dropped it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest

from netpolicy.gate import Gate
from netpolicy.render import render, rule_counters
from tests.unit.netpolicy.cases import allow, ruleset, service
from tests.unit.netpolicy.netns import needs_root_nft, private_netns, run_in

pytestmark = [pytest.mark.root, needs_root_nft]

GATEWAY = "169.254.1.1"  # h's side of every link (Calico-style): each namespace routes everything there
POLICIES = [service("web", "front", ports=[8080]), service("api", "front", ports=[80]),
            service("db", "back", ports=[5432], allow=[allow("service", "api", 5432)]),
            service("batch", "back", ports=[9000])]
ENDPOINTS = {"web": ["198.19.1.2", "198.19.2.2"], "api": ["198.19.1.3"], "db": ["198.19.1.4"],
             "batch": ["198.19.3.3"]}
PEERS = {"web_here": "198.19.1.2", "api": "198.19.1.3", "db": "198.19.1.4", "web_there": "198.19.2.2",
         "batch_there": "198.19.3.3", "member": "198.18.0.12", "stranger": "203.0.113.7"}
LISTEN = {"api": (80, 8081), "db": (5432, 22)}
SERVER = """
import socket, sys
socks = []
for port in map(int, sys.argv[1:]):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(16); socks.append(s)
print("ready", flush=True)
import selectors
sel = selectors.DefaultSelector()
for s in socks:
    sel.register(s, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        conn, _ = key.fileobj.accept(); conn.close()
"""
CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
    print("open")
except OSError:
    print("closed")
"""
DROP_WAIT_S = 0.5  # an admitted connection on veth links completes in well under a millisecond


@dataclass
class Lab:
    host: str
    spaces: dict[str, str]  # peer name -> its namespace

    def connects(self, peer: str, address: str, port: int) -> bool:
        done = run_in(self.spaces[peer], sys.executable, "-c", CONNECT, address, str(port), str(DROP_WAIT_S))
        assert done.returncode == 0, done.stderr
        return done.stdout.strip() == "open"


def link(host: str, peer_ns: str, index: int, address: str) -> None:
    here, there = f"v{index}", "eth0"
    steps = [
        (host, ["ip", "link", "add", here, "type", "veth", "peer", "name", there, "netns", peer_ns]),
        (host, ["ip", "addr", "add", f"{GATEWAY}/32", "dev", here]),
        (host, ["ip", "link", "set", here, "up"]),
        (host, ["ip", "route", "add", f"{address}/32", "dev", here]),
        (peer_ns, ["ip", "link", "set", "lo", "up"]),
        (peer_ns, ["ip", "addr", "add", f"{address}/32", "dev", there]),
        (peer_ns, ["ip", "link", "set", there, "up"]),
        (peer_ns, ["ip", "route", "add", GATEWAY, "dev", there]),
        (peer_ns, ["ip", "route", "add", "default", "via", GATEWAY, "dev", there]),
    ]
    for space, argv in steps:
        done = run_in(space, *argv)
        assert done.returncode == 0, f"{argv}: {done.stderr}"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with ExitStack() as stack:
        host = stack.enter_context(private_netns())
        assert run_in(host, "sysctl", "-qw", "net.ipv4.ip_forward=1").returncode == 0
        spaces = {}
        for index, (peer, address) in enumerate(PEERS.items()):
            spaces[peer] = stack.enter_context(private_netns())
            link(host, spaces[peer], index, address)
        for peer, ports in LISTEN.items():
            server = subprocess.Popen(["ip", "netns", "exec", spaces[peer], sys.executable, "-c", SERVER,
                                       *map(str, ports)], stdout=subprocess.PIPE, text=True)
            assert server.stdout is not None
            stack.callback(server.stdout.close)  # callbacks run last-first: kill, wait, then close
            stack.callback(server.wait, 10)
            stack.callback(server.kill)
            assert server.stdout.readline().strip() == "ready"
        done = run_in(host, "nft", "-f", "-", stdin=render(ruleset(POLICIES, ENDPOINTS)))
        assert done.returncode == 0, done.stderr
        yield Lab(host, spaces)


CASES = [
    ("web_there", "198.19.1.3", 80, True),  # a shared network (front), across hosts
    ("web_there", "198.19.1.3", 8081, True),  # ... on every port
    ("web_here", "198.19.1.3", 80, True),  # ... and on the same host
    ("batch_there", "198.19.1.3", 80, False),  # no shared network: isolated
    ("batch_there", "198.19.1.4", 5432, True),  # back
    ("web_here", "198.19.1.4", 5432, False),  # web is not on back and has no rule
    ("api", "198.19.1.4", 5432, True),  # db allows api on 5432...
    ("api", "198.19.1.4", 22, False),  # ... only
    ("member", "198.19.1.3", 80, True),  # a proxied connection to an endpoint port
    ("member", "198.19.1.3", 8081, False),  # not an endpoint port
    ("stranger", "198.19.1.3", 80, False),
]


@pytest.mark.parametrize(("peer", "address", "port", "expected"), CASES,
                         ids=[f"{p}->{a}:{port}" for p, a, port, _ in CASES])
def test_connection_passes_exactly_when_the_policy_admits_it(lab: Lab, peer: str, address: str, port: int,
                                                            expected: bool) -> None:
    gate = Gate.of(ruleset(POLICIES, ENDPOINTS))
    assert gate.forwards(PEERS[peer], address, port) is expected  # the model agrees with the case...
    before = _denied(lab)
    assert lab.connects(peer, address, port) is expected  # ... and so does the kernel
    assert (_denied(lab) > before) is (not expected)  # a refusal is our default deny, not a routing failure


def test_removing_the_table_opens_everything(lab: Lab) -> None:
    assert not lab.connects("stranger", "198.19.1.3", 80)
    assert run_in(lab.host, "nft", "delete", "table", "inet", "shoal").returncode == 0
    try:
        assert lab.connects("stranger", "198.19.1.3", 80)
    finally:
        assert run_in(lab.host, "nft", "-f", "-", stdin=render(ruleset(POLICIES, ENDPOINTS))).returncode == 0


def _denied(lab: Lab) -> int:
    listing = run_in(lab.host, "nft", "list", "table", "inet", "shoal").stdout
    return sum(c.packets for c in rule_counters(listing) if c.comment == "default deny")
