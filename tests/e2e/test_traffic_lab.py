"""Traffic on the lab's hosts (issue 5): the embedded proxy, ingress on every node, discovery by name, probes.

Driven only through the CLI/API, plain HTTP to the hosts' addresses, and podman on the hosts. Uses the shared
4-host lab (tests/e2e/conftest.py) and leaves it as it found it: every test removes its services, and the
host-loss test starts the host again. The demo image's /cgi-bin/hostname answers with the replica's hostname
(`<service>-<replica>`), so every answer says which replica served it.
"""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from node import hostnet
from node.lab import procs
from node.proxy import proxyv2
from tests.e2e.conftest import SharedLab
from tests.e2e.procs import wait_for
from tests.e2e.test_placement_lab import DEMO_1, apply, names_on, ps, running, settled

pytestmark = [pytest.mark.lab]

DEADLINE_S = 60.0
READY_PROBE = "    x-shoal:\n      readiness: {http_get: {path: /ready, port: 8080}, period: 1s, " \
              "failure_threshold: 1}\n"
WITH_READY_FILE = '["sh", "-c", "touch /www/ready && exec httpd -f -p 8080 -h /www"]'  # /ready: the probe's page
LIVENESS_PROBE = "    x-shoal:\n      liveness: {http_get: {path: /cgi-bin/hostname, port: 8080}, period: 1s, " \
                 "failure_threshold: 2}\n"


def service_yaml(name: str, *, replicas: int, port: int = 8080, published: int | None = None,
                 expose: bool = False, extra: str = "", one_per_node: bool = True, command: str | None = None) -> str:
    command = command or f'["httpd", "-f", "-p", "{port}", "-h", "/www"]'
    lines = [f"  {name}:", f"    image: {DEMO_1}", f"    command: {command}"]
    if published is not None:
        lines.append(f'    ports: ["{published}:{port}"]')
    if expose:
        lines.append(f'    expose: ["{port}"]')
    lines += ["    deploy:", f"      replicas: {replicas}", "      restart_policy: {condition: any, delay: 1s}"]
    if one_per_node:
        lines.append("      placement: {max_replicas_per_node: 1}")
    return "\n".join(lines) + "\n" + extra


def manifest(*services: str) -> str:
    return "services:\n" + "".join(services)


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # lab addresses: never an HTTP proxy


def get(url: str, timeout: float = 5.0) -> str:
    with _DIRECT.open(url, timeout=timeout) as answer:
        return str(answer.read().decode().strip())


def ready(lab: SharedLab, name: str, count: int) -> list[dict[str, Any]]:
    """Wait until `count` replicas run and are ready."""
    return settled(lab, name, count, ready=True)


@pytest.fixture
def services(lab: SharedLab) -> Iterator[list[str]]:
    """Names the test creates; each removed (and waited for) afterwards."""
    names: list[str] = []
    yield names
    if names:
        lab.shoal("h1", "rm", *names)
        wait_for(lambda: not any(names_on(lab, h, n) for h in lab.hosts for n in names), DEADLINE_S,
                 f"every container of {names} removed")


def answers(lab: SharedLab, host: str, port: int, count: int) -> list[str]:
    return [get(f"http://{lab.address(host)}:{port}/cgi-bin/hostname") for _ in range(count)]


def test_a_published_port_answers_on_every_host_round_robin(lab: SharedLab, services: list[str]) -> None:
    services.append("web")
    apply(lab, "h1", manifest(service_yaml("web", replicas=3, published=8080)))
    ready(lab, "web", 3)
    for host in lab.hosts:  # one host runs no replica of web: every host answers anyway
        wait_for(_all_answer(lab, host, 8080, {"web-0", "web-1", "web-2"}), 10.0,
                 f"all three replicas answering through {host}")
        got = answers(lab, host, 8080, 6)
        assert Counter(got) == {"web-0": 2, "web-1": 2, "web-2": 2}, (host, got)
        assert len(set(got[:3])) == 3 and got[3:] == got[:3], (host, got)  # in turn, not at random


def test_a_container_reaches_services_by_name_and_two_services_share_port_80(lab: SharedLab,
                                                                          services: list[str]) -> None:
    services.extend(["api", "db", "client"])
    apply(lab, "h1", manifest(service_yaml("api", replicas=2, port=80, expose=True),
                              service_yaml("db", replicas=2, port=80, expose=True),
                              service_yaml("client", replicas=1)))
    for name, count in (("api", 2), ("db", 2), ("client", 1)):
        ready(lab, name, count)
    (client,) = running(ps(lab, "h1", "client"))

    def fetch(url: str) -> str:
        done = lab.podman(client["node"], "exec", client["container"], "timeout", "5", "wget", "-q", "-O-", url,
                          check=False)
        return done.stdout.strip() if done.returncode == 0 else f"failed: {done.stderr.strip()}"

    assert {fetch("http://api/cgi-bin/hostname") for _ in range(4)} == {"api-0", "api-1"}
    assert {fetch("http://db.shoal/cgi-bin/hostname") for _ in range(4)} == {"db-0", "db-1"}
    assert fetch("http://nosuch/cgi-bin/hostname").startswith("failed")


def test_an_unready_replica_leaves_every_rotation_within_two_probe_periods_and_comes_back(
        lab: SharedLab, services: list[str]) -> None:
    services.append("web")
    apply(lab, "h1", manifest(service_yaml("web", replicas=3, published=8081, extra=READY_PROBE,
                                           command=WITH_READY_FILE)))
    rows = ready(lab, "web", 3)
    victim = rows[0]
    name = f"web-{victim['replica']}"  # it still answers /cgi-bin/hostname: any request reaching it shows
    lab.podman(victim["node"], "exec", victim["container"], "rm", "/www/ready")
    started = time.monotonic()
    # Every host's rotation: three requests in a row through each reach only the other two replicas.
    wait_for(lambda: all(name not in answers(lab, h, 8081, 3) for h in lab.hosts), 10.0,
             f"{name} out of every host's rotation")
    took = time.monotonic() - started
    print(f"unready {name}: out of every rotation after {took:.2f} s (probe period 1 s)")
    assert took <= 2.0 + 0.5, f"took {took:.2f} s; 2 probe periods are 2 s (+ the last round of requests)"
    for host in lab.hosts:
        assert name not in answers(lab, host, 8081, 6)
    lab.podman(victim["node"], "exec", victim["container"], "touch", "/www/ready")
    wait_for(lambda: all(name in answers(lab, h, 8081, 3) for h in lab.hosts), 10.0, f"{name} back in rotation")


def test_a_replica_failing_liveness_is_restarted(lab: SharedLab, services: list[str]) -> None:
    services.append("web")
    apply(lab, "h1", manifest(service_yaml("web", replicas=2, extra=LIVENESS_PROBE)))
    rows = settled(lab, "web", 2)
    victim = rows[0]
    lab.podman(victim["node"], "exec", victim["container"], "mv", "/www/cgi-bin/hostname", "/www/cgi-bin/off")

    def restarted() -> bool:
        return any(r["replica"] == victim["replica"] and r["restarts"] == 1 and r["state"] == "running"
                   and r["container"] != victim["container"] for r in ps(lab, "h1", "web"))

    took = wait_for(restarted, DEADLINE_S, f"replica {victim['replica']} restarted after failing liveness")
    print(f"liveness failed: restarted in {took:.1f} s")
    other = next(r for r in ps(lab, "h1", "web") if r["replica"] != victim["replica"])
    assert other["restarts"] == 0 and other["container"] == rows[1]["container"]


def test_a_lost_hosts_replicas_leave_rotation_and_no_request_hangs(lab: SharedLab, services: list[str]) -> None:
    services.append("web")
    apply(lab, "h1", manifest(service_yaml("web", replicas=3, published=8082)))
    rows = ready(lab, "web", 3)
    lost = next(r["node"] for r in rows if r["node"] != "h1")
    survivors = [h for h in lab.hosts if h != lost]
    lab.run("stop", lost)
    try:
        slowest, failures, served = 0.0, [], Counter[str]()
        deadline = time.monotonic() + 12.0  # past the failure detection (~5 s) and the replacement's start
        while time.monotonic() < deadline:
            for host in survivors:
                began = time.monotonic()
                try:
                    served[get(f"http://{lab.address(host)}:8082/cgi-bin/hostname", timeout=10.0)] += 1
                except (urllib.error.URLError, OSError) as exc:
                    failures.append(f"{host}: {exc}")
                slowest = max(slowest, time.monotonic() - began)
        print(f"{lost} lost: {sum(served.values())} requests, {len(failures)} failed, slowest {slowest:.2f} s")
        assert not failures
        assert slowest < 5.0  # a dead endpoint costs a connect timeout and a retry, never a hang
        wait_for(_serves_from(lab, survivors, lost), DEADLINE_S, f"every answer from a replica not on {lost}")
    finally:
        lab.run("start", lost)


def test_the_container_bridge_keeps_its_address_while_containers_come_and_go(lab: SharedLab,
                                                                            services: list[str]) -> None:
    """A bridge whose address was never set takes its lowest port's, so each container start or stop on a host
    could move it, and the connections of the host's other containers would wait out TCP retransmissions
    (docs/proxy.md). The agent pins it to the address it has once the network's first container made it."""
    on_h2 = "      placement: {constraints: ['node.name == h2']}\n"
    services += ["steady", "churn"]
    apply(lab, "h1", manifest(service_yaml("steady", replicas=1, one_per_node=False, extra=on_h2)))
    settled(lab, "steady", 1)
    mac, assigned = bridge(lab, "h2")
    assert assigned == "3"  # NET_ADDR_SET: the kernel keeps this address whatever ports come and go
    apply(lab, "h1", manifest(service_yaml("churn", replicas=3, one_per_node=False, extra=on_h2)))
    settled(lab, "churn", 3)
    assert bridge(lab, "h2") == (mac, "3")
    assert lab.shoal("h1", "rm", "churn").returncode == 0
    wait_for(lambda: not names_on(lab, "h2", "churn"), DEADLINE_S, "churn's containers removed from h2")
    assert bridge(lab, "h2") == (mac, "3")


def test_a_killed_data_plane_process_is_replaced_and_a_stopped_agent_leaves_none(lab: SharedLab,
                                                                               services: list[str]) -> None:
    """The proxy runs in a process of the agent's (docs/proxy.md): killed, it is started again with the table;
    an agent that stops ends it."""
    services.append("web")
    apply(lab, "h1", manifest(service_yaml("web", replicas=2, published=8083)))
    names = {f"web-{r['replica']}" for r in ready(lab, "web", 2)}
    wait_for(_refusals_ok(_all_answer(lab, "h1", 8083, names)), 10.0, "both replicas answering through h1")
    worker = data_plane(lab, "h1")
    assert worker is not None, "h1's agent runs no data-plane process"
    os.kill(worker, signal.SIGKILL)
    wait_for(lambda: data_plane(lab, "h1") not in (None, worker), 10.0, "a new data-plane process on h1")
    wait_for(_refusals_ok(_all_answer(lab, "h1", 8083, names)), 10.0, "both replicas answering through h1 again")
    stopped = data_plane(lab, "h3")
    assert stopped is not None
    lab.run("stop", "h3")
    try:
        wait_for(lambda: procs.gone(stopped), 10.0, f"h3's data-plane process {stopped} to end with its agent")
    finally:
        lab.run("start", "h3")


def test_a_proxy_protocol_service_sees_each_clients_address_through_every_host(lab: SharedLab,
                                                                             services: list[str]) -> None:
    """`x-shoal: {proxy_protocol: true}`: the replica's first bytes on every proxied connection are a PROXY v2
    header naming the client and the address it dialled. The replica here is busybox `nc -e cat`, an echo: what
    it received comes back, header first."""
    services.append("echo")
    apply(lab, "h1", manifest(service_yaml("echo", replicas=1, published=8084, one_per_node=False,
                                           command='["nc", "-ll", "-p", "8080", "-e", "cat"]',
                                           extra="    x-shoal: {proxy_protocol: true}\n")))
    ready(lab, "echo", 1)
    for host in lab.hosts:
        dialled = (lab.address(host), 8084)
        seen: dict[str, Any] = {}
        wait_for(_refusals_ok(functools.partial(_echoed_through, dialled, seen)), 10.0, f"an echo through {host}")
        assert seen["header"] == proxyv2.header(seen["client"], dialled), f"through {host}: {seen}"
        assert seen["rest"] == b"hello\n"


def _echoed_through(dialled: tuple[str, int], seen: dict[str, Any]) -> bool:
    """Send a line through the proxy at `dialled`; True once the echo (a PROXY v2 header for IPv4, 28 bytes, then
    the line) is back, recording it and our own address in `seen`."""
    with socket.create_connection(dialled, timeout=5.0) as sock:
        sock.sendall(b"hello\n")
        received = b""
        while len(received) < 28 + 6 and (chunk := sock.recv(4096)):
            received += chunk
        seen.update(client=sock.getsockname()[:2], header=received[:28], rest=received[28:])
    return len(received) >= 28 + 6


def test_a_connection_to_a_replica_that_leaves_rotation_carries_on(lab: SharedLab, services: list[str]) -> None:
    """Drain: a replica that turns unready gets no new connections, but one already relayed to it is not cut.
    Each replica is an echo (busybox `nc -e`) that first says its hostname, so a connection shows where it went."""
    services.append("held")
    probe = '    x-shoal:\n      readiness: {exec: {command: ["test", "-f", "/ready"]}, period: 1s, ' \
            'failure_threshold: 1}\n'
    command = '["sh", "-c", "touch /ready && exec nc -ll -p 8080 -e sh -c \'hostname; exec cat\'"]'
    apply(lab, "h1", manifest(service_yaml("held", replicas=2, published=8085, extra=probe, command=command)))
    rows = ready(lab, "held", 2)
    through = (lab.address("h1"), 8085)
    wait_for(_refusals_ok(lambda: len({_greeting(through) for _ in range(4)}) == 2), 10.0, "both echoes via h1")
    with socket.create_connection(through, timeout=5.0) as held:
        lines = held.makefile("rb")
        name = lines.readline().decode().strip()
        victim = next(r for r in rows if f"held-{r['replica']}" == name)
        lab.podman(victim["node"], "exec", victim["container"], "rm", "/ready")
        wait_for(lambda: name not in {_greeting(through) for _ in range(4)}, 10.0, f"{name} out of h1's rotation")
        for line in (b"still relayed\n", b"both ways\n"):
            held.sendall(line)
            assert lines.readline() == line, f"the connection to {name} was cut when it left rotation"


def _greeting(address: tuple[str, int]) -> str:
    """Which echo a new connection through `address` reached (its first line)."""
    with socket.create_connection(address, timeout=5.0) as sock:
        return sock.makefile("rb").readline().decode().strip()


def test_published_ports_open_and_close_on_every_host_as_services_come_and_go(lab: SharedLab,
                                                                            services: list[str]) -> None:
    """Listeners follow the table: a published port opens on every host with its service, moves when the service's
    port changes, and closes everywhere when the service goes."""
    services.append("comer")
    apply(lab, "h1", manifest(service_yaml("comer", replicas=1, published=8086, one_per_node=False)))
    ready(lab, "comer", 1)
    wait_for(lambda: all(_answers_at(lab, h, 8086) for h in lab.hosts), 10.0, "8086 on every host")
    assert not any(_answers_at(lab, h, 8087) for h in lab.hosts)
    apply(lab, "h1", manifest(service_yaml("comer", replicas=1, published=8087, one_per_node=False)))
    wait_for(lambda: all(_answers_at(lab, h, 8087) for h in lab.hosts), 30.0, "8087 on every host")
    wait_for(lambda: not any(_answers_at(lab, h, 8086) for h in lab.hosts), 10.0, "8086 closed on every host")
    assert lab.shoal("h1", "rm", "comer").returncode == 0
    wait_for(lambda: not any(_answers_at(lab, h, 8087) for h in lab.hosts), 10.0, "8087 closed on every host")


def _answers_at(lab: SharedLab, host: str, port: int) -> bool:
    """Does HOST accept a connection on PORT now? (Refused, or reset at once, is no.)"""
    try:
        return get(f"http://{lab.address(host)}:{port}/cgi-bin/hostname").startswith("comer-")
    except (urllib.error.URLError, OSError):
        return False


def data_plane(lab: SharedLab, host: str) -> int | None:
    """The pid of HOST's agent's data-plane process (`python -m node proxy-worker`), if it has one."""
    agent = lab.pid(host)
    found = [p.pid for p in procs.snapshot() if p.ppid == agent and procs.cmdline(p.pid)[-1:] == ["proxy-worker"]]
    assert len(found) <= 1, f"{host}'s agent has {len(found)} data-plane processes"
    return found[0] if found else None


def bridge(lab: SharedLab, host: str) -> tuple[str, str]:
    """(MAC, addr_assign_type) of the bridge holding HOST's container subnet, read in HOST's own namespace (`ip
    netns exec` mounts that namespace's sysfs)."""
    netns = f"shoal-{host}"
    links = subprocess.run(["ip", "-n", netns, "-j", "-d", "-4", "addr", "show"], capture_output=True, text=True,
                           check=True, timeout=10).stdout
    found = hostnet.bridge_of(f"198.19.{host.removeprefix('h')}.0/24", links)
    assert found is not None, f"no bridge for {host}'s containers in {links}"
    assigned = subprocess.run(["ip", "netns", "exec", netns, "cat", f"/sys/class/net/{found.name}/addr_assign_type"],
                              capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    return found.mac, assigned


def _all_answer(lab: SharedLab, host: str, port: int, names: set[str]) -> Callable[[], bool]:
    return lambda: set(answers(lab, host, port, len(names))) == names


def _refusals_ok(check: Callable[[], bool]) -> Callable[[], bool]:
    """`check`, with a refused connection counting as not yet (a new data-plane process opens its listeners a
    moment after it starts)."""
    def tolerant() -> bool:
        try:
            return check()
        except (urllib.error.URLError, OSError):
            return False
    return tolerant


def _serves_from(lab: SharedLab, survivors: list[str], lost: str) -> Callable[[], bool]:
    def check() -> bool:
        rows = running(ps(lab, "h1", "web"))
        return len(rows) == 3 and lost not in {r["node"] for r in rows} and \
            set(answers(lab, survivors[0], 8082, 3)) == {f"web-{r['replica']}" for r in rows}
    return check
