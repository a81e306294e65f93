"""The canonical payload: deterministic, JSON-serialisable, a valid Compose body, and it reads back to the spec."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.manifest import (
    BlueGreen,
    ManifestError,
    ServiceSpec,
    parse_manifest,
    spec_from_payload,
    spec_to_payload,
    with_replicas,
)
from tests.unit.manifest.helpers import parse_one
from tests.unit.manifest.strategies import names, service_bodies

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(names, service_bodies)
def test_payload_reads_back_to_the_same_spec(name: str, body: dict[str, Any]) -> None:
    spec = spec_from_payload(name, body)
    payload = spec_to_payload(spec)
    assert spec_from_payload(spec.name, payload) == spec
    assert spec_to_payload(spec_from_payload(spec.name, payload)) == payload


@SETTINGS
@given(names, service_bodies)
def test_payload_json_is_stable(name: str, body: dict[str, Any]) -> None:
    spec = spec_from_payload(name, body)
    text = json.dumps(spec_to_payload(spec), sort_keys=True)
    assert text == json.dumps(spec_to_payload(spec), sort_keys=True)
    assert json.dumps(spec_to_payload(spec_from_payload(name, json.loads(text))), sort_keys=True) == text


@SETTINGS
@given(names, service_bodies)
def test_payload_is_a_manifest_service_body(name: str, body: dict[str, Any]) -> None:
    """Shown back to a user, the payload deploys as it is: the same spec, and no warnings but the two for
    settings the spec keeps and nothing acts on (reservations; a healthcheck that leaves test to the image)."""
    spec = spec_from_payload(name, body)
    networks: dict[str, object] = {n: {} for n in spec.networks if n != "default"}
    # the services its allow rules name, deployed beside it (a missing one is a warning)
    others = {r.source: {"image": "x"} for r in spec.x_shoal.allow if r.kind == "service" and r.source != name}
    manifest = parse_manifest(json.dumps({"services": {name: spec_to_payload(spec), **others},
                                          "networks": networks}))
    reserved = spec.deploy.resources.reservations
    kept = {f"services.{name}.deploy.resources.reservations": reserved.cpus is not None or
            reserved.memory_bytes is not None,
            f"services.{name}.healthcheck.test": spec.healthcheck is not None and spec.healthcheck.test is None}
    assert manifest.service(name) == spec
    assert sorted(w.field for w in manifest.warnings) == sorted(field for field, warned in kept.items() if warned)


def test_payload_is_plain_json_data() -> None:
    spec = parse_one("x-shoal: {canary: {image: x, weight: 5, environment: {A: b}}}\nhealthcheck: {disable: true}")
    payload = spec_to_payload(spec)
    assert json.loads(json.dumps(payload)) == payload
    assert payload["x-shoal"] == {"canary": {"image": "x", "weight": 5.0, "environment": {"A": "b"}}}
    assert payload["healthcheck"] == {"test": ["NONE"], "interval": "30s", "timeout": "30s", "retries": 3,
                                      "start_period": "0s"}


def test_blue_green_payload_writes_active_and_reads_back() -> None:
    spec = parse_one("x-shoal: {blue_green: {image: x, command: [a, b], environment: {A: b}}}")
    payload = spec_to_payload(spec)
    assert payload["x-shoal"] == {"blue_green": {"image": "x", "command": ["a", "b"], "environment": {"A": "b"},
                                                 "active": "blue"}}
    assert spec_from_payload("web", payload) == spec
    assert spec.x_shoal.blue_green == BlueGreen(image="x", command=("a", "b"), environment=(("A", "b"),))


@pytest.mark.parametrize(("payload", "field", "fragment"), [
    ({"image": "x", "restart": "always"}, "services.web.restart", "a canonical service payload never has it"),
    ({"image": "x", "volumes": []}, "services.web.volumes", "not supported"),
    ([], "services.web", "not a mapping"),
    (None, "services.web", "not a mapping"),
    ({1: "x"}, "services.web", "key 1 is not a string"),
    ({"image": "x", "deploy": {"replicas": "3"}}, "services.web.deploy.replicas", "whole number"),
    ({"image": "x", "environment": {"A": "\ud800"}}, "services.web.environment.A", "not valid Unicode text"),
    ({"image": "x", "command": ["\udfff"]}, "services.web.command.0", "not valid Unicode text"),
    ({"image": "x", "x-\udfff": 1}, "services.web", "not valid Unicode text"),
    ({"image": "x", "ports": None}, "services.web.ports", "is empty (null)"),
    ({"image": "x", "deploy": {"replicas": None}}, "services.web.deploy.replicas", "give a value or remove the key"),
    ({"image": "x", "deploy": {"resources": {"limits": {"memory": 67108864}}}}, "services.web.deploy.resources.limits"
     ".memory", "write it as a string, e.g. '64M' or '67108864'"),
    ({"image": "x", "deploy": {"update_config": {"delay": 0}}}, "services.web.deploy.update_config.delay",
     "write it as '0s'"),
])
def test_payload_from_the_network_is_validated_strictly(payload: object, field: str, fragment: str) -> None:
    with pytest.raises(ManifestError) as caught:
        spec_from_payload("web", payload)
    assert caught.value.field == field and fragment in str(caught.value)


@pytest.mark.parametrize("name", ["Web", "", "a.b", "x" * 64, 5, None])
def test_payload_name_must_be_a_dns_label(name: Any) -> None:
    with pytest.raises(ManifestError, match="is not a DNS label"):
        spec_from_payload(name, {"image": "x"})


def test_payload_reads_null_as_a_manifest_does() -> None:
    """Where Compose allows null (command, deploy, x-shoal, a network entry) it is the key left out, as in manifests."""
    payload = {"image": "x", "command": None, "deploy": None, "x-shoal": None, "networks": {"back": None}}
    assert spec_from_payload("web", payload) == spec_from_payload("web", {"image": "x", "networks": ["back"]})


def test_payload_networks_need_no_declaration() -> None:
    assert spec_from_payload("web", {"image": "x", "networks": ["back"]}).networks == ("back",)


def test_with_replicas_changes_only_replicas() -> None:
    spec = parse_one("deploy: {replicas: 3, placement: {max_replicas_per_node: 1}}")
    scaled = with_replicas(spec, 5)
    assert scaled.replicas == 5 and scaled.deploy.placement == spec.deploy.placement
    assert with_replicas(scaled, 3) == spec
    assert with_replicas(spec, 0).replicas == 0


@pytest.mark.parametrize(("replicas", "fragment"), [(1001, "from 0 to 1000"), (-1, "from 0 to 1000"),
                                                    (True, "whole number"), ("2", "whole number")])
def test_with_replicas_refuses_out_of_range(replicas: Any, fragment: str) -> None:
    with pytest.raises(ManifestError) as caught:
        with_replicas(parse_one(), replicas)
    assert caught.value.field == "services.web.deploy.replicas" and fragment in str(caught.value)


def test_with_replicas_refuses_a_global_service() -> None:
    with pytest.raises(ManifestError, match=r"is global .* cannot be scaled"):
        with_replicas(parse_one("deploy: {mode: global}"), 3)


def test_specs_are_hashable_values() -> None:
    a, b = parse_one("environment: {A: 1}"), parse_one("environment: [A=1]")
    assert a == b and hash(a) == hash(b) and isinstance(a, ServiceSpec)
    assert len({a, b, with_replicas(a, 2)}) == 2


@given(st.integers(0, 1000))
def test_scaled_spec_reads_back(replicas: int) -> None:
    spec = with_replicas(parse_one(), replicas)
    assert spec_from_payload("web", spec_to_payload(spec)) == spec
