"""Rollouts on the lab's hosts under load (issue 6, "Prove it"): a rolling update, an automatic rollback, a
blue-green switch and back, and a canary's share of new connections, all measured through a published port.

Driven only through the CLI (`apply`, `ps`, `history`, `rollout status`, `switch`, `canary weight|abort`) and plain
HTTP from the test process to one host's published port (tests/e2e/load.py: every request a new connection, so the
host's proxy picks an endpoint for each). The demo image's `/` answers `shoal-demo N`, so every answer names the
version that served it. Uses the shared 4-host lab (tests/e2e/conftest.py) and leaves it as it found it: each test
removes its service (and with it the derived `<name>.green` / `<name>.canary`) and waits for the containers to go.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.conftest import SharedLab
from tests.e2e.load import MAX_REQUESTS_REACHED, STOPPED, Limits, Load, Summary, Target, run_load
from tests.e2e.procs import wait_for
from tests.e2e.test_placement_lab import DEMO_1, DEMO_2, HTTPD

pytestmark = [pytest.mark.lab]

DEADLINE_S = 60.0  # replicas started and ready, containers removed
ROLLOUT_DEADLINE_S = 90.0  # 4 batches of one: start, ready within a 1 s probe period, then monitor 3 s each
SWITCH_DEADLINE_S = 15.0  # a write reaching the load host's proxy (DESIGN: p99 <= 1.5 s at 100 agents)
LOAD_HOST = "h2"  # the host whose published port takes the load; it runs a replica or not, by placement
EXITS_AT_ONCE = '["sh", "-c", "exit 1"]'
READINESS = "      readiness: {http_get: {path: /, port: 8080}, period: 1s, failure_threshold: 1}\n"
UPDATE = ("      update_config: {parallelism: 1, monitor: 3s, order: start-first, failure_action: rollback}\n"
          "      rollback_config: {parallelism: 1, monitor: 3s, order: start-first}\n")
# While a test changes a service: ~100 new connections a second, 4 open at most, for as long as the test takes
# (the caps only stop a test that has already overrun its deadlines).
DURING = Limits(concurrency=4, rate_per_s=100, max_requests=20_000, max_duration_s=180)
CANARY_CONNECTIONS = 10_000
MEASURE = Limits(concurrency=16, max_requests=CANARY_CONNECTIONS, max_duration_s=100)
WINDOW = 20  # "only version N answers": the last WINDOW answers since the change, every one from N
ENDED_PHASES = {"completed", "paused", "rolled-back", "failed"}


def manifest(name: str, *, published: int, replicas: int = 4, image: str = DEMO_1, command: str = HTTPD,
             x_shoal: str = "") -> str:
    """A web service on the demo image, published, with a readiness probe and a start-first rolling update of one
    replica at a time that rolls back at the first failure (and a rollback paced the same way)."""
    return (f"services:\n  {name}:\n    image: {image}\n    command: {command}\n"
            f'    ports: ["{published}:8080"]\n'
            f"    deploy:\n      replicas: {replicas}\n      restart_policy: {{condition: any, delay: 1s}}\n{UPDATE}"
            f"    x-shoal:\n{READINESS}{x_shoal}")


def apply(lab: SharedLab, name: str, text: str, host: str = "h1") -> int:
    """`shoal apply --json`; the generation the service is at afterwards."""
    path = lab.dir / f"rollout-{name}.yml"
    path.write_text(text)
    done = lab.shoal(host, "apply", "-f", str(path), "--json")
    assert done.returncode == 0, done.stderr
    (result,) = [r for r in json.loads(done.stdout) if r["name"] == name]
    return int(result["generation"])


def listed(lab: SharedLab, service: str, host: str = "h1") -> tuple[list[dict[str, Any]], str]:
    """`shoal ps SERVICE --json` rows of exactly that service (a derived one: `web.green`, `web.canary`), and the
    command's complaint if it refused (a service not, or no longer, known: no rows)."""
    done = lab.shoal(host, "ps", service, "--json")
    if done.returncode != 0:
        return [], f"exit {done.returncode}: {done.stderr.strip()[-300:]}"
    return [r for r in json.loads(done.stdout) if r["service"] == service], ""


def replicas(lab: SharedLab, service: str) -> list[dict[str, Any]]:
    return listed(lab, service)[0]


def serving(lab: SharedLab, service: str, count: int, image: str) -> list[dict[str, Any]]:
    """Wait until exactly `count` replicas of `service` are listed, all running `image` and ready."""
    rows: list[dict[str, Any]] = []
    error = ""

    def done() -> bool:
        nonlocal rows, error
        rows, error = listed(lab, service)
        return len(rows) == count and all(r["state"] == "running" and r["ready"] and r["image"] == image
                                          for r in rows)

    wait_for(done, DEADLINE_S, lambda: f"{count} ready replicas of {service} on {image}; ps: {rows} {error}")
    return rows


def services_on(lab: SharedLab, host: str) -> set[str]:
    """The services (label shoal.service) of every container on HOST's podman, in any state."""
    done = lab.podman(host, "ps", "-a", "--format", "json", check=False)
    if done.returncode != 0:
        return {f"(podman ps on {host} failed: {done.stderr.strip()[-200:]})"}
    return {(c.get("Labels") or {}).get("shoal.service", "") for c in json.loads(done.stdout or "[]")} - {""}


def last_json(stdout: str) -> dict[str, Any] | None:
    """The status `rollout status --json` printed: its whole output as one object, or else its last JSON line."""
    try:
        whole = json.loads(stdout)
    except ValueError:
        whole = None
    if isinstance(whole, dict):
        return whole
    for line in reversed(stdout.splitlines()):
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):
            return item
    return None


def rollout_end(lab: SharedLab, service: str, generation: int) -> tuple[int, dict[str, Any]]:
    """Wait until `shoal rollout status SERVICE --json` reports a rollout of `generation` or later that ended;
    (its exit code, its status)."""
    found: dict[str, Any] | None = None
    code, stderr = -1, ""

    def ended() -> bool:
        nonlocal found, code, stderr
        try:
            done = lab.shoal("h1", "rollout", "status", service, "--json", "--timeout", "10", timeout=40)
        except subprocess.TimeoutExpired:
            stderr = "`shoal rollout status --timeout 10` still running after 40 s"
            return False
        status = last_json(done.stdout)
        if status is None:
            code, stderr = done.returncode, done.stderr.strip()
            return False
        found, code, stderr = status, done.returncode, done.stderr.strip()
        return int(status["generation"]) >= generation and status["phase"] in ENDED_PHASES

    wait_for(ended, ROLLOUT_DEADLINE_S,
             lambda: f"the rollout of {service} generation {generation} ending; last status {found} (exit {code}) "
                     f"{stderr[-500:]}; ps: {replicas(lab, service)}")
    assert found is not None
    return code, found


def sample(target: Target, count: int, concurrency: int = 4) -> Summary:
    return run_load(target, Limits(concurrency=concurrency, max_requests=count, max_duration_s=30))


def answers_only(target: Target, version: str, count: int = 8) -> Callable[[], bool]:
    """A check: `count` new connections in a row all answered by `version`."""
    return lambda: sample(target, count).versions == {version: count}


def load_answers_only(load: Load, version: str, since: int) -> Callable[[], bool]:
    """A check: the load's last WINDOW answers since outcome `since` all came from `version`."""
    def check() -> bool:
        recent = load.snapshot(since).last(WINDOW)
        return recent.requests == WINDOW and recent.versions == {version: WINDOW}
    return check


def assert_no_request_failed(summary: Summary) -> None:
    assert summary.ended_by == STOPPED, f"the load ended before the test did: {summary.describe()}"
    assert summary.failed == 0, summary.describe()


@pytest.fixture
def services(lab: SharedLab) -> Iterator[list[str]]:
    """Names the test creates; each removed afterwards, with its derived services, and its containers waited for."""
    names: list[str] = []
    yield names
    if names:
        lab.shoal("h1", "rm", *names)
        gone = {n + suffix for n in names for suffix in ("", ".green", ".canary")}
        wait_for(lambda: not any(services_on(lab, h) & gone for h in lab.hosts), DEADLINE_S,
                 f"every container of {sorted(gone)} removed")


def four_on_version_1(lab: SharedLab, name: str, port: int) -> tuple[Target, int]:
    """`name` created with 4 replicas of version 1, its rollout completed and version 1 answering on LOAD_HOST's
    published `port`: (that target, the generation created)."""
    target = Target(lab.address(LOAD_HOST), port)
    created = apply(lab, name, manifest(name, published=port))
    serving(lab, name, 4, DEMO_1)
    code, status = rollout_end(lab, name, created)
    assert (status["phase"], code) == ("completed", 0), status
    wait_for(answers_only(target, "1"), DEADLINE_S, f"version 1 answering at {target}")
    return target, created


def test_a_rolling_update_of_four_replicas_fails_no_request(lab: SharedLab, services: list[str]) -> None:
    name, port = "rolling", 8090
    services.append(name)
    target, _ = four_on_version_1(lab, name, port)

    with Load(target, DURING) as load:
        generation = apply(lab, name, manifest(name, published=port, image=DEMO_2))
        code, status = rollout_end(lab, name, generation)
        assert (status["generation"], status["phase"], code) == (generation, "completed", 0), status
        assert (status["total"], status["failed"]) == (4, 0), status
        serving(lab, name, 4, DEMO_2)
        mark = load.count()
        wait_for(load_answers_only(load, "2", mark), SWITCH_DEADLINE_S, lambda: f"only version 2 answering; "
                 f"since the rollout completed: {load.snapshot(mark).describe()}")
        summary = load.stop()

    print(f"rolling update of 4 replicas under load: {summary.describe()}")
    assert_no_request_failed(summary)
    assert set(summary.versions) == {"1", "2"}, summary.describe()  # both served during the run


def test_a_version_that_exits_at_once_is_rolled_back_while_the_old_one_serves(lab: SharedLab,
                                                                             services: list[str]) -> None:
    name, port = "faulty", 8091
    services.append(name)
    target, created = four_on_version_1(lab, name, port)

    with Load(target, DURING) as load:
        # Image 2 with a command that exits at once: the failed version is also visible in `ps` by its image.
        bad = apply(lab, name, manifest(name, published=port, image=DEMO_2, command=EXITS_AT_ONCE))
        code, status = rollout_end(lab, name, bad)
        assert status["phase"] == "rolled-back" and code == 1, (code, status)
        assert (status["generation"], status["rollback_of"]) == (bad + 1, bad), status
        rows = serving(lab, name, 4, DEMO_1)
        summary = load.stop()

    history = json.loads(lab.shoal("h1", "history", name, "--json").stdout)
    notes = [item["change"] for item in history if item["generation"] == bad + 1]
    assert any(n.startswith(f"rollback of generation {bad} to the spec of generation {created}") for n in notes), \
        history
    print(f"automatic rollback under load: {summary.describe()}; replicas now {[r['container'][:12] for r in rows]}")
    assert_no_request_failed(summary)
    assert summary.versions == {"1": summary.requests}, summary.describe()  # the old version served throughout


def test_a_blue_green_switch_and_back_fails_no_request(lab: SharedLab, services: list[str]) -> None:
    name, port = "bluegreen", 8092
    services.append(name)
    target = Target(lab.address(LOAD_HOST), port)
    apply(lab, name, manifest(name, published=port, replicas=2,
                              x_shoal=f"      blue_green: {{image: {DEMO_2}, active: blue}}\n"))
    blue = serving(lab, name, 2, DEMO_1)
    green = serving(lab, f"{name}.green", 2, DEMO_2)
    wait_for(answers_only(target, "1"), DEADLINE_S, f"only blue (version 1) answering at {target}")

    with Load(target, DURING) as load:
        mark = load.count()
        switched = lab.shoal("h1", "switch", name)  # no side named: the other one, green
        assert switched.returncode == 0, switched.stderr
        took_green = wait_for(load_answers_only(load, "2", mark), SWITCH_DEADLINE_S,
                              lambda: f"only green (version 2) answering: {load.snapshot(mark).describe()}")
        mark = load.count()
        back = lab.shoal("h3", "switch", name, "blue")
        assert back.returncode == 0, back.stderr
        took_blue = wait_for(load_answers_only(load, "1", mark), SWITCH_DEADLINE_S,
                             lambda: f"only blue (version 1) answering again: {load.snapshot(mark).describe()}")
        summary = load.stop()

    print(f"blue-green switch ({took_green:.1f} s) and back ({took_blue:.1f} s) under load: {summary.describe()}")
    assert_no_request_failed(summary)
    assert set(summary.versions) == {"1", "2"}, summary.describe()
    # A switch restarts nothing: both sides still run the containers they ran before.
    assert {r["container"] for r in serving(lab, name, 2, DEMO_1)} == {r["container"] for r in blue}
    assert {r["container"] for r in serving(lab, f"{name}.green", 2, DEMO_2)} == {r["container"] for r in green}


def test_a_canary_takes_its_weight_of_new_connections(lab: SharedLab, services: list[str]) -> None:
    name, port = "weighted", 8093
    services.append(name)
    target = Target(lab.address(LOAD_HOST), port)
    apply(lab, name, manifest(name, published=port, x_shoal=f"      canary: {{image: {DEMO_2}, weight: 1}}\n"))
    stable = serving(lab, name, 4, DEMO_1)
    serving(lab, f"{name}.canary", 1, DEMO_2)  # ⌈4·1/100⌉ = 1
    # Weight 1 is exactly 1 connection in 100 through one proxy: 200 in a row reach the canary once it is listed.
    wait_for(lambda: sample(target, 200, concurrency=16).versions["2"] >= 1, DEADLINE_S,
             f"the canary in {LOAD_HOST}'s rotation")
    one = run_load(target, MEASURE)
    print(f"canary weight 1: {one.share('2'):.2%} of {one.requests} connections; {one.describe()}")
    assert (one.requests, one.ended_by, one.failed) == (CANARY_CONNECTIONS, MAX_REQUESTS_REACHED, 0), one.describe()
    assert 0.003 <= one.share("2") <= 0.02, one.describe()

    weighted = lab.shoal("h1", "canary", "weight", name, "50")
    assert weighted.returncode == 0, weighted.stderr
    serving(lab, f"{name}.canary", 2, DEMO_2)  # ⌈4·50/100⌉ = 2
    wait_for(lambda: sample(target, 100, concurrency=16).share("2") >= 0.3, DEADLINE_S,
             f"weight 50 applied by {LOAD_HOST}'s proxy")
    half = run_load(target, MEASURE)
    print(f"canary weight 50: {half.share('2'):.2%} of {half.requests} connections; {half.describe()}")
    assert (half.requests, half.ended_by, half.failed) == (CANARY_CONNECTIONS, MAX_REQUESTS_REACHED, 0), \
        half.describe()
    assert 0.45 <= half.share("2") <= 0.55, half.describe()

    aborted = lab.shoal("h1", "canary", "abort", name)
    assert aborted.returncode == 0, aborted.stderr
    wait_for(lambda: not replicas(lab, f"{name}.canary"), DEADLINE_S, "the canary's replicas gone")
    wait_for(answers_only(target, "1", 100), DEADLINE_S, f"only version 1 answering at {target}")
    # Neither a weight change nor an abort touches the stable replicas.
    assert {r["container"] for r in serving(lab, name, 4, DEMO_1)} == {r["container"] for r in stable}
