"""Network policies on the lab's hosts (issue 7) with real nftables: sandboxed networks, allow rules, enforcement
while an agent is down.

Uses the shared 4-host lab (tests/e2e/conftest.py). b runs on h2; a (network front, as b) and c (network back)
run one replica on h1 (another host than b) and one on h2 (b's host). Each check runs wget inside a client
container, by name (through the proxy on the client's host) and straight to b's container address (through
the forward filter of b's host). Leaves the lab as it found it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.conftest import SharedLab
from tests.e2e.procs import wait_for
from tests.e2e.test_placement_lab import DEMO_1, apply, names_on, ps, settled

pytestmark = [pytest.mark.lab]

DEADLINE_S = 60.0
NAMES = ("a", "b", "c")


def manifest(b_extra: str = "", b_host: str = "h2") -> str:
    def client(name: str, network: str) -> str:
        return (f"  {name}:\n    image: {DEMO_1}\n    command: [\"sleep\", \"3600\"]\n    networks: [{network}]\n"
                f"    deploy:\n      replicas: 2\n      placement:\n"
                f"        constraints: [\"node.labels.datacenter == west\"]\n        max_replicas_per_node: 1\n")
    b = (f"  b:\n    image: {DEMO_1}\n    command: [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n"
         f"    expose: [\"80\"]\n    networks: [front]\n"
         f"    deploy:\n      replicas: 1\n      placement: {{constraints: [\"node.name == {b_host}\"]}}\n{b_extra}")
    return "services:\n" + client("a", "front") + b + client("c", "back") + "networks:\n  front: {}\n  back: {}\n"


ALLOW_C = "    x-shoal:\n      allow:\n        - from: {service: c}\n          ports: [80]\n"


@pytest.fixture
def placed(lab: SharedLab) -> Iterator[dict[str, list[dict[str, Any]]]]:
    apply(lab, "h1", manifest())
    rows = {name: settled(lab, name, count) for name, count in (("a", 2), ("b", 1), ("c", 2))}
    yield rows
    lab.shoal("h1", "rm", *NAMES)
    wait_for(lambda: not any(names_on(lab, h, n) for h in lab.hosts for n in NAMES), DEADLINE_S,
             "every container of a, b and c removed")


def fetch(lab: SharedLab, client: dict[str, Any], url: str, wait_s: int = 3) -> bool:
    """Does a GET from inside `client`'s container succeed within `wait_s`?"""
    done = lab.podman(client["node"], "exec", client["container"], "timeout", str(wait_s), "wget", "-q", "-O-", url,
                      check=False, timeout=30)
    return done.returncode == 0 and done.stdout.strip() == "b-0"


def reaches(lab: SharedLab, client: dict[str, Any], b: dict[str, Any], wait_s: int = 3) -> tuple[bool, bool]:
    """(by name through the proxy, straight to b's container address)."""
    return (fetch(lab, client, "http://b/cgi-bin/hostname", wait_s),
            fetch(lab, client, f"http://{b['address']}/cgi-bin/hostname", wait_s))


def b_row(lab: SharedLab) -> dict[str, Any]:
    (row,) = [r for r in ps(lab, "h1", "b") if r["state"] == "running"]
    return row


def timed(check: Callable[[], bool], what: str) -> float:
    """Seconds until `check` holds (each check itself takes up to ~2.5 s: two 1 s wgets and podman exec)."""
    started = time.monotonic()
    wait_for(check, DEADLINE_S, what)
    took = time.monotonic() - started
    print(f"{what}: {took:.2f} s")
    return took


def test_a_shared_network_connects_and_other_networks_are_blocked_on_both_paths(
        lab: SharedLab, placed: dict[str, list[dict[str, Any]]]) -> None:
    b = b_row(lab)
    assert {r["node"] for r in placed["a"]} == {r["node"] for r in placed["c"]} == {"h1", "h2"}
    for client in placed["a"]:
        assert reaches(lab, client, b) == (True, True), client["node"]
    for client in placed["c"]:
        assert reaches(lab, client, b) == (False, False), client["node"]


def test_an_allow_rule_opens_within_2_s_and_its_removal_closes_within_2_s(
        lab: SharedLab, placed: dict[str, list[dict[str, Any]]]) -> None:
    b = b_row(lab)
    c_far = next(r for r in placed["c"] if r["node"] == "h1")
    apply(lab, "h1", manifest(ALLOW_C))
    opened = timed(lambda: reaches(lab, c_far, b, wait_s=1) == (True, True), "allow rule added: c reaches b")
    apply(lab, "h1", manifest())
    closed = timed(lambda: reaches(lab, c_far, b, wait_s=1) == (False, False), "allow rule removed: c blocked")
    assert opened <= 2.0 + 2.5 and closed <= 2.0 + 2.5  # 2 s, plus the one check that saw it
    for client in placed["c"]:
        assert reaches(lab, client, b) == (False, False)


def test_rules_stay_enforced_while_the_agent_is_down(lab: SharedLab, placed: dict[str, list[dict[str, Any]]]) -> None:
    b = b_row(lab)
    c_far = next(r for r in placed["c"] if r["node"] == "h1")
    a_far = next(r for r in placed["a"] if r["node"] == "h1")
    os.kill(lab.pid("h2"), signal.SIGKILL)  # b's host loses its agent; its nft table stays
    try:
        assert not fetch(lab, c_far, f"http://{b['address']}/cgi-bin/hostname")
        assert fetch(lab, a_far, f"http://{b['address']}/cgi-bin/hostname")
        listing = lab.exec("h2", "nft", "list", "table", "inet", "shoal").stdout
        assert "default deny" in listing
    finally:
        lab.restore()  # starts the agent again


def test_a_replica_moved_to_another_host_is_still_governed(lab: SharedLab,
                                                           placed: dict[str, list[dict[str, Any]]]) -> None:
    apply(lab, "h1", manifest(b_host="h3"))  # b moves from h2 to h3: new address, another host's table
    wait_for(lambda: b_row(lab)["node"] == "h3", DEADLINE_S, "b running on h3")
    b = b_row(lab)
    for client in placed["a"]:
        wait_for(_both(lab, client, b), 10.0, f"a on {client['node']} reaching b on h3")
    for client in placed["c"]:
        assert reaches(lab, client, b) == (False, False), client["node"]


def _both(lab: SharedLab, client: dict[str, Any], b: dict[str, Any]) -> Callable[[], bool]:
    return lambda: reaches(lab, client, b) == (True, True)
