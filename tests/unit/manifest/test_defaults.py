"""Defaults follow Compose and Swarm (swarmkit api/defaults/service.go), and the payload writes them all out."""

from __future__ import annotations

from pathlib import Path

from node.manifest import (
    GLOBAL,
    Constraint,
    Deploy,
    Healthcheck,
    HttpGet,
    ServiceSpec,
    TcpSocket,
    UpdateConfig,
    parse_manifest,
    spec_to_payload,
)
from tests.unit.manifest.helpers import DEMO, parse_one

ROOT = Path(__file__).resolve().parents[3]


def test_minimal_service_gets_every_default() -> None:
    spec = parse_one()
    assert spec == ServiceSpec(name="web", image=DEMO)
    assert (spec.mode, spec.replicas, spec.networks, spec.command, spec.healthcheck) == \
        ("replicated", 1, ("default",), None, None)
    update = spec.deploy.update_config
    assert (update.parallelism, update.delay_s, update.failure_action, update.monitor_s, update.max_failure_ratio,
            update.order) == (1, 0.0, "pause", 5.0, 0.0, "stop-first")
    assert spec.deploy.rollback_config == update
    restart = spec.deploy.restart_policy
    assert (restart.condition, restart.delay_s, restart.max_attempts, restart.window_s) == ("any", 5.0, 0, 0.0)
    assert spec.deploy.placement.max_replicas_per_node == 0


def test_payload_writes_the_defaults_out() -> None:
    deploy = spec_to_payload(parse_one())["deploy"]
    assert deploy == {
        "mode": "replicated", "replicas": 1,
        "placement": {"constraints": [], "preferences": [], "max_replicas_per_node": 0},
        "update_config": {"parallelism": 1, "delay": "0s", "failure_action": "pause", "monitor": "5s",
                          "max_failure_ratio": 0.0, "order": "stop-first"},
        "rollback_config": {"parallelism": 1, "delay": "0s", "failure_action": "pause", "monitor": "5s",
                            "max_failure_ratio": 0.0, "order": "stop-first"},
        "restart_policy": {"condition": "any", "delay": "5s", "max_attempts": 0, "window": "0s"},
        "resources": {"limits": {}, "reservations": {}},
    }


def test_healthcheck_defaults_are_dockers() -> None:
    check = parse_one("healthcheck: {test: wget -q http://127.0.0.1/}").healthcheck
    assert check == Healthcheck(test=("CMD-SHELL", "wget -q http://127.0.0.1/"), interval_s=30.0, timeout_s=30.0,
                                retries=3, start_period_s=0.0)


def test_healthcheck_disable_is_test_none() -> None:
    check = parse_one("healthcheck: {disable: true}").healthcheck
    assert check is not None and check.disabled and check.test == ("NONE",)


def test_probe_defaults_are_kubernetes() -> None:
    probe = parse_one("x-shoal: {readiness: {http_get: {port: 8080}}}").x_shoal.readiness
    assert probe is not None and probe.action == HttpGet(port=8080, path="/")
    assert (probe.period_s, probe.timeout_s, probe.failure_threshold, probe.success_threshold,
            probe.initial_delay_s) == (10.0, 1.0, 3, 1, 0.0)


def test_global_service_keeps_replicas_at_one_and_payload_omits_it() -> None:
    spec = parse_one("deploy: {mode: global}")
    assert spec.deploy == Deploy(mode=GLOBAL)
    deploy = spec_to_payload(spec)["deploy"]
    assert isinstance(deploy, dict) and "replicas" not in deploy
    assert "max_replicas_per_node" not in deploy["placement"]


def test_short_and_long_forms_give_the_same_spec() -> None:
    short = parse_one("ports: ['8080:80/tcp']\nexpose: [9090, '9091/tcp']\nenvironment: [A=1, B=x=y]\n"
                      "command: echo 'a b' c\nnetworks: {default: null}")
    long = parse_one("ports: [{target: 80, published: '8080', protocol: tcp, mode: ingress}]\nexpose: ['9091', 9090]\n"
                     "environment: {B: x=y, A: 1}\ncommand: [echo, a b, c]\nnetworks: [default]")
    assert short == long
    assert short.command == ("echo", "a b", "c") and short.env == {"A": "1", "B": "x=y"}


def test_environment_values_are_stringified_as_compose_does() -> None:
    spec = parse_one("environment: {T: true, F: false, I: 7, R: 1.5, S: '', Y: yes}")
    assert spec.env == {"T": "true", "F": "false", "I": "7", "R": "1.5", "S": "", "Y": "yes"}


def test_constraints_parse_into_attribute_op_value() -> None:
    spec = parse_one("deploy: {placement: {constraints: ['node.labels.disk==ssd', ' node.name != h1 ', "
                     "'node.id == abc'], preferences: [{spread: node.labels.zone}]}}")
    placement = spec.deploy.placement
    assert placement.constraints == (Constraint("node.id", "==", "abc"), Constraint("node.labels.disk", "==", "ssd"),
                                     Constraint("node.name", "!=", "h1"))
    assert placement.constraints[1].label == "disk" and placement.constraints[0].label is None
    assert placement.spread == ("zone",)


def test_constraint_matches_as_swarm_does() -> None:
    equal, differ = Constraint("node.labels.disk", "==", "ssd"), Constraint("node.labels.disk", "!=", "ssd")
    assert equal.matches("ssd") and not equal.matches("hdd") and not equal.matches(None)
    assert differ.matches("hdd") and differ.matches(None) and not differ.matches("ssd")


def test_yaml_1_2_scalars_as_compose_reads_them() -> None:
    spec = parse_one("ports: [80:80]\nenvironment: {A: on, B: 0755, C: 0x10}")
    assert spec.ports[0].published == 80  # YAML 1.1 would make 80:80 the base-60 number 4880
    assert spec.env == {"A": "on", "B": "755", "C": "16"}


def test_example_stack_parses() -> None:
    manifest = parse_manifest((ROOT / "examples" / "stack.yml").read_text())
    assert manifest.warnings == () and manifest.networks == ("front",)
    (web,) = manifest.services
    assert (web.name, web.image, web.replicas, web.networks) == ("web", DEMO, 3, ("front",))
    assert web.deploy.update_config == UpdateConfig(delay_s=2.0, failure_action="rollback", order="start-first")
    assert web.deploy.resources.limits.cpus == 0.5
    assert web.deploy.resources.limits.memory_bytes == 64 * 2**20
    assert web.x_shoal.liveness is not None and web.x_shoal.liveness.action == TcpSocket(8080)
    assert web.x_shoal.canary is not None and web.x_shoal.canary.weight_percent == 1.0
