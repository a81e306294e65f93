"""Services run as real podman containers on the lab's hosts (issue 4), driven only through the CLI and API:
spread, self-healing, image change, scaling, global services, node labels and drain, constraints, a host lost,
and a container on one host reaching one on another with its own address.

Uses the shared 4-host lab (tests/e2e/conftest.py: h1 west/a, h2 west/b, h3 east/a, h4 east/b disk=ssd) and
leaves it as it found it: every test removes its services; the host-loss and join tests restore the lab.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import SharedLab
from tests.e2e.procs import wait_for

pytestmark = [pytest.mark.lab]

DEMO_1 = "198.18.0.1:5000/shoal-demo:1"
DEMO_2 = "198.18.0.1:5000/shoal-demo:2"
HTTPD = '["httpd", "-f", "-p", "8080", "-h", "/www"]'
# A CGI script that answers with the caller's address: proves the far side sees the real source.
WHOAMI = ('["sh", "-c", "mkdir -p /tmp/w/cgi-bin && printf \'#!/bin/sh\\\\necho Content-Type: text/plain\\\\necho\\\\n'
          'echo $REMOTE_ADDR\\\\n\' > /tmp/w/cgi-bin/ip && chmod +x /tmp/w/cgi-bin/ip && '
          'exec httpd -f -p 8080 -h /tmp/w"]')
DEADLINE_S = 60.0


def manifest(name: str, *, image: str = DEMO_1, replicas: int | None = 5, extra: str = "",
             command: str = HTTPD) -> str:
    deploy = f"      replicas: {replicas}\n" if replicas is not None else "      mode: global\n"
    return (f"services:\n  {name}:\n    image: {image}\n    command: {command}\n    deploy:\n{deploy}"
            f"      restart_policy: {{condition: any, delay: 1s}}\n{extra}")


def apply(lab: SharedLab, host: str, text: str) -> None:
    path = lab.dir / "test-manifest.yml"
    path.write_text(text)
    done = lab.shoal(host, "apply", "-f", str(path))
    assert done.returncode == 0, done.stderr


def ps(lab: SharedLab, host: str, service: str) -> list[dict[str, Any]]:
    done = lab.shoal(host, "ps", service, "--json")
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def running(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["state"] == "running"]


def settled(lab: SharedLab, service: str, count: int, host: str = "h1", **match: object) -> list[dict[str, Any]]:
    """Wait until exactly `count` replicas run (and nothing else is listed), all matching `match`."""
    rows: list[dict[str, Any]] = []

    def done() -> bool:
        nonlocal rows
        rows = ps(lab, host, service)
        return len(rows) == count and len(running(rows)) == count and \
            all(r[k] == v for r in rows for k, v in match.items())

    wait_for(done, DEADLINE_S, lambda: f"{count} running replicas of {service} matching {match}; ps: {rows}")
    return rows


@pytest.fixture
def service(lab: SharedLab) -> Iterator[str]:
    """A service name for the test; removed (and waited for) afterwards."""
    name = "web"
    yield name
    lab.shoal("h1", "rm", name)
    wait_for(lambda: not any(names_on(lab, h, name) for h in lab.hosts), DEADLINE_S,
             f"every container of {name} removed")


def names_on(lab: SharedLab, host: str, service: str) -> list[str]:
    out = lab.podman(host, "ps", "-a", "--filter", f"label=shoal.service={service}", "--format", "{{.Names}}",
                     check=False).stdout
    return out.split()


def warnings(lab: SharedLab) -> str:
    """The last warnings in every host's agent log, to say why a node disagrees."""
    out = []
    for host in lab.hosts:
        nodes = json.loads(lab.shoal(host, "node", "ls", "--json").stdout or "[]")
        out.append(f"{host} sees: " + ", ".join(f"{n['name']}={n['status']}/{n['availability']}/{n['runtime']}/"
                                                f"{n['digest'][:8]}/{sorted(n['labels'].items())}" for n in nodes))
        lines = (lab.dir / host / "agent.log").read_text(errors="replace").splitlines()
        out += [f"{host}: {line[:300]}" for line in lines if "level=warning" in line or "level=error" in line][-8:]
    return "\n".join(out)


def per_node(rows: list[dict[str, Any]]) -> Counter[str]:
    return Counter(r["node"] for r in rows)


def test_replicas_spread_heal_change_image_and_scale(lab: SharedLab, service: str) -> None:
    # Three eligible hosts (h4 excluded): 5 replicas spread 2/2/1.
    apply(lab, "h2", manifest(service, extra="      placement: {constraints: ['node.name != h4']}\n"))
    rows = settled(lab, service, 5, host="h3")
    assert sorted(per_node(rows).values()) == [1, 2, 2]
    assert "h4" not in per_node(rows)
    for r in rows:  # `container` is what podman on that host knows
        assert lab.podman(r["node"], "inspect", r["container"], "--format", "{{.State.Status}}").stdout.strip() \
            == "running"

    # A killed container is restarted (a new container, restarts + 1).
    victim = rows[0]
    lab.podman(victim["node"], "kill", victim["container"])
    wait_for(lambda: any(r["replica"] == victim["replica"] and r["state"] == "running" and r["restarts"] == 1
                         and r["container"] != victim["container"] for r in ps(lab, "h1", service)),
             DEADLINE_S, f"replica {victim['replica']} restarted")

    # A new image replaces every replica; the container really runs version 2.
    # All at once (parallelism 0): batch by batch is test_rollout_lab's, and at the default pace (one replica at a
    # time, monitored 5 s, busybox httpd taking its 10 s stop timeout) five replicas would take over a minute.
    apply(lab, "h1", manifest(service, image=DEMO_2, extra="      placement: {constraints: ['node.name != h4']}\n"
                                                          "      update_config: {parallelism: 0}\n"))
    rows = settled(lab, service, 5, image=DEMO_2)
    r = rows[0]
    version = lab.podman(r["node"], "exec", r["container"], "cat", "/etc/shoal-demo-version").stdout.strip()
    assert version == "2"

    # Scale 5 -> 2 -> 6: counts per node stay within one of each other.
    assert lab.shoal("h3", "scale", f"{service}=2").returncode == 0
    rows = settled(lab, service, 2)
    assert max(per_node(rows).values()) == 1
    assert lab.shoal("h4", "scale", f"{service}=6").returncode == 0
    rows = settled(lab, service, 6)
    assert sorted(per_node(rows).values()) == [2, 2, 2]
    services = json.loads(lab.shoal("h2", "services", "--json").stdout)
    assert [(s["name"], s["running"], s["ready"]) for s in services] == [(service, 6, 6)]


def test_spread_preferences_constraints_and_labels(lab: SharedLab, service: str) -> None:
    # Spread over datacenter then zone: 4 replicas land one per host (each dc/zone pair is one host).
    prefs = "      placement: {preferences: [{spread: node.labels.datacenter}, {spread: node.labels.zone}]}\n"
    apply(lab, "h1", manifest(service, replicas=4, extra=prefs))
    rows = settled(lab, service, 4)
    assert sorted(per_node(rows)) == ["h1", "h2", "h3", "h4"]
    # A constraint on a label only h4 has puts everything there.
    ssd = "      placement: {constraints: ['node.labels.disk == ssd']}\n"
    apply(lab, "h1", manifest(service, replicas=3, extra=ssd))
    rows = settled(lab, service, 3)
    assert set(per_node(rows)) == {"h4"}
    # A label set with `shoal node label` (desired state) is honoured at once, and can be removed again.
    assert lab.shoal("h2", "node", "label", "h2", "disk=ssd").returncode == 0
    try:
        wait_for(lambda: set(per_node(running(ps(lab, "h1", service)))) == {"h2", "h4"}
                 and len(ps(lab, "h1", service)) == 3, DEADLINE_S, "replicas on h2 and h4 only")
    finally:
        assert lab.shoal("h1", "node", "label", "h2", "disk-").returncode == 0


def test_drain_moves_replicas_and_activate_lets_them_back(lab: SharedLab, service: str) -> None:
    apply(lab, "h1", manifest(service, replicas=4))
    settled(lab, service, 4)
    assert lab.shoal("h1", "node", "drain", "h3").returncode == 0
    try:
        rows = settled(lab, service, 4)
        assert "h3" not in per_node(rows)
        nodes = {n["name"]: n for n in json.loads(lab.shoal("h2", "node", "ls", "--json").stdout)}
        assert nodes["h3"]["availability"] == "drain" and nodes["h3"]["replicas"] == 0
        digests: set[str] = set()

        def agree() -> bool:  # every live node computes from the same inputs, once its latest status has spread
            nonlocal digests
            listing = json.loads(lab.shoal("h2", "node", "ls", "--json").stdout)
            digests = {n["digest"] for n in listing if n["status"] == "alive"}  # a gone node keeps its last one
            return len(digests) == 1 and "" not in digests

        wait_for(agree, 10.0, lambda: f"one placement digest on every node, not {digests}:\n{warnings(lab)}")
    finally:
        assert lab.shoal("h4", "node", "activate", "h3").returncode == 0
    wait_for(lambda: "h3" in per_node(running(ps(lab, "h1", service))), DEADLINE_S, "a replica back on h3")


def test_global_service_runs_once_per_host_including_one_that_joins(lab: SharedLab, service: str) -> None:
    apply(lab, "h1", manifest(service, replicas=None))
    rows = settled(lab, service, 4)
    assert sorted(per_node(rows).items()) == [("h1", 1), ("h2", 1), ("h3", 1), ("h4", 1)]
    lab.up(5)
    try:
        rows = settled(lab, service, 5)
        assert per_node(rows)["h5"] == 1
    finally:
        lab.shoal("h1", "rm", service)
        wait_for(lambda: not names_on(lab, "h5", service), DEADLINE_S, "h5's replica removed")
        lab.restore()


def test_a_lost_host_has_its_replicas_run_on_survivors(lab: SharedLab, service: str) -> None:
    apply(lab, "h1", manifest(service, replicas=6))
    rows = settled(lab, service, 6)
    lost = per_node(rows)["h3"]
    assert lost >= 1
    lab.run("stop", "h3")
    try:
        took = wait_for(lambda: len({r["replica"] for r in running(ps(lab, "h1", service)) if r["node"] != "h3"})
                        == 6, DEADLINE_S, "all 6 replicas running on survivors")
        rows = running(ps(lab, "h1", service))
        assert "h3" not in per_node(rows)  # a dead node's report is not shown
        print(f"h3 lost ({lost} replicas): all running on survivors after {took:.1f} s")
    finally:
        lab.run("start", "h3")


def test_containers_reach_each_other_across_hosts_with_their_own_address(lab: SharedLab, service: str) -> None:
    apply(lab, "h1", manifest(service, replicas=4, command=WHOAMI,
                              extra="      placement: {max_replicas_per_node: 1}\n"))
    rows = settled(lab, service, 4)
    by_node = {r["node"]: r for r in rows}
    caller, callee = by_node["h1"], by_node["h2"]
    assert callee["address"].startswith("198.19.2.") and caller["address"].startswith("198.19.1.")
    seen = ""

    def answered() -> bool:
        nonlocal seen
        done = lab.podman("h1", "exec", caller["container"], "timeout", "3", "wget", "-q", "-O", "-",
                          f"http://{callee['address']}:8080/cgi-bin/ip", check=False)
        seen = done.stdout.strip()
        return done.returncode == 0

    wait_for(answered, DEADLINE_S, lambda: f"h1's container reaching {callee['address']} (last answer {seen!r})")
    # httpd listens dual-stack, so it writes an IPv4 peer as ::ffff:a.b.c.d; either way it is the caller's own address
    # (not h1's 198.18.0.11): no masquerade between container subnets.
    assert seen.removeprefix("[").removesuffix("]").removeprefix("::ffff:") == caller["address"]
