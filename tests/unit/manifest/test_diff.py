"""describe_changes: one short line per deploy, values shown only where short and safe."""

from __future__ import annotations

import pytest

from node.manifest import describe_changes, with_replicas
from tests.unit.manifest.helpers import DEMO, parse_one

DEMO2 = DEMO.replace(":1", ":2")


def test_created_names_image_and_scale() -> None:
    assert describe_changes(None, parse_one("deploy: {replicas: 3}")) == f"created (image {DEMO}, 3 replicas)"
    assert describe_changes(None, parse_one()) == f"created (image {DEMO}, 1 replica)"
    assert describe_changes(None, parse_one("deploy: {mode: global}")) == f"created (image {DEMO}, global)"


def test_identical_specs_describe_as_empty() -> None:
    assert describe_changes(parse_one("environment: {A: 1}"), parse_one("environment: [A=1]")) == ""


def test_image_replicas_and_environment_in_order() -> None:
    old = parse_one("deploy: {replicas: 3}\nenvironment: {A: 1}")
    new = parse_one("deploy: {replicas: 5}\nenvironment: {A: 2}", image=DEMO2)
    assert describe_changes(old, new) == f"image {DEMO} -> {DEMO2}; replicas 3 -> 5; environment changed"


def test_environment_values_are_never_shown() -> None:
    line = describe_changes(parse_one("environment: {TOKEN: old-secret}"),
                            parse_one("environment: {TOKEN: new-secret}"))
    assert line == "environment changed" and "secret" not in line


@pytest.mark.parametrize(("old", "new", "line"), [
    ("", "ports: ['80:8080']", "ports none -> 80:8080"),
    ("deploy: {replicas: 2}", "deploy: {mode: global}", "mode 2 replicas -> global"),
    ("", "x-shoal: {canary: {image: x, weight: 5}}", "canary added"),
    ("x-shoal: {canary: {image: x, weight: 5}}", "", "canary removed"),
    ("x-shoal: {canary: {image: x, weight: 5}}", "x-shoal: {canary: {image: x, weight: 10}}", "canary changed"),
    ("", "x-shoal: {blue_green: {image: x}}", "blue_green added"),
    ("x-shoal: {blue_green: {image: x}}", "", "blue_green removed"),
    ("x-shoal: {blue_green: {image: x}}", "x-shoal: {blue_green: {image: x, active: green}}",
     "blue_green active blue -> green"),
    ("x-shoal: {blue_green: {image: x}}", "x-shoal: {blue_green: {image: y}}", "blue_green changed"),
    ("x-shoal: {blue_green: {image: x}}", "x-shoal: {blue_green: {image: y, active: green}}",
     "blue_green changed; blue_green active blue -> green"),
    ("", "healthcheck: {test: [CMD, x]}", "healthcheck added"),
    ("", "command: [x]", "command added"),
    ("", "deploy: {placement: {constraints: ['node.labels.a == b']}}", "placement changed"),
    ("", "deploy: {update_config: {parallelism: 2}}", "update_config changed"),
    ("", "deploy: {resources: {limits: {memory: 64M}}}", "resources changed"),
    ("", "deploy: {restart_policy: {condition: none}}", "restart_policy changed"),
    ("", "expose: [9090]", "expose changed"),
    ("", "x-shoal: {readiness: {tcp_socket: {port: 1}}}", "readiness added"),
])
def test_each_kind_of_change_is_named(old: str, new: str, line: str) -> None:
    assert describe_changes(parse_one(old), parse_one(new)) == line


def test_scaling_a_service_describes_only_replicas() -> None:
    spec = parse_one("deploy: {replicas: 3}")
    assert describe_changes(spec, with_replicas(spec, 1)) == "replicas 3 -> 1"


def test_long_lines_are_cut_at_200_characters() -> None:
    long_a, long_b = "registry.example.com/" + "a" * 150 + ":1", "registry.example.com/" + "b" * 150 + ":2"
    line = describe_changes(parse_one(image=long_a), parse_one("command: [x]", image=long_b))
    assert len(line) == 200 and line.endswith("…")
    assert len(describe_changes(None, parse_one(image=long_a))) <= 200
