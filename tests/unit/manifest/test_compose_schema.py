"""Conformance: a valid Shoal manifest stays a valid Compose file, checked against the Compose spec's JSON schema.

docker compose is not installed on these machines, so data/compose-spec.json (vendored, see data/README.md) stands
in for it: it is the specification's own machine-readable form, and Compose's loader (compose-go) validates every
file against it. Checked: examples/stack.yml, the example in docs/manifest.md, the manifests the other tests accept,
the service bodies the strategies generate, and every canonical payload (what Shoal stores and shows back).
The only module that imports jsonschema. Null values are checked key by key, both ways.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings

from node.manifest import Manifest, ManifestError, keys, parse_manifest, spec_from_payload, spec_to_payload
from node.manifest.load import load
from tests.unit.manifest.helpers import one_service
from tests.unit.manifest.strategies import names, service_bodies
from tests.unit.manifest.test_validation import WARNINGS

ROOT = Path(__file__).resolve().parents[3]
SCHEMA: dict[str, Any] = json.loads((Path(__file__).parent / "data" / "compose-spec.json").read_text())
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _metaschema(uri: str) -> str:
    """A metaschema URI without its scheme and empty fragment. The schema declares
    'https://json-schema.org/draft-07/schema'; jsonschema registers 'http://json-schema.org/draft-07/schema#',
    so jsonschema.validators.validator_for does not recognise it."""
    return re.sub(r"^https?://", "", uri).rstrip("#")


DRAFTS = {_metaschema(cls.META_SCHEMA.get("$id") or cls.META_SCHEMA["id"]): cls
          for cls in (jsonschema.Draft4Validator, jsonschema.Draft6Validator, jsonschema.Draft7Validator,
                      jsonschema.Draft201909Validator, jsonschema.Draft202012Validator)}
VALIDATOR_CLASS = DRAFTS[_metaschema(SCHEMA["$schema"])]
VALIDATOR = VALIDATOR_CLASS(SCHEMA)


def _show(error: jsonschema.ValidationError) -> str:
    return f"{error.json_path}: {error.message[:300]}"


def schema_errors(document: object) -> list[str]:
    return sorted(_show(error) for error in VALIDATOR.iter_errors(document))


def as_compose_validates_it(text: str) -> object:
    """Manifest text as Compose's loader hands it to the schema. Read by Shoal's own YAML reader, which reads YAML
    1.2 scalars as Compose's Go reader does (`80:80` is a string, `on` is not a boolean). Then, as compose-go does
    before it validates (override.EnforceUnicity runs before schema.Validate in loader/loader.go), a repeated
    `expose` entry is dropped (keyed by its text: 9090 and '9090' are one); Shoal drops repeats too."""
    document = load(text)
    services = document.get("services") if isinstance(document, dict) else None
    for body in services.values() if isinstance(services, dict) else ():
        if isinstance(body, dict) and isinstance(body.get("expose"), list):
            unique: dict[str, object] = {}
            for entry in body["expose"]:
                unique[str(entry)] = entry
            body["expose"] = list(unique.values())
    return document


def as_shown_back(manifest: Manifest) -> object:
    """The manifest as Shoal stores and shows it back: each service's canonical payload, as JSON."""
    services = {spec.name: spec_to_payload(spec) for spec in manifest.services}
    networks = {network: {} for network in manifest.networks}
    return json.loads(json.dumps({"services": services, **({"networks": networks} if networks else {})}))


def documented_example() -> str:
    match = re.search(r"```yaml\n(.*?)```", (ROOT / "docs" / "manifest.md").read_text(), re.DOTALL)
    assert match is not None, "docs/manifest.md has no ```yaml example"
    return match.group(1)


def test_the_schema_is_read_with_the_draft_it_declares() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft-07/schema"
    assert VALIDATOR_CLASS is jsonschema.Draft7Validator
    VALIDATOR_CLASS.check_schema(SCHEMA)


def test_the_schema_refuses_what_compose_refuses() -> None:
    """Not vacuous: a misspelt key, a wrongly typed value and services that are not a mapping are errors."""
    assert schema_errors({"services": {"web": {"image": "x", "imgae": "y"}}}) != []
    assert schema_errors({"services": {"web": {"image": "x", "deploy": {"replicas": 1.5}}}}) != []
    assert schema_errors({"services": ["web"]}) != []
    assert schema_errors({"services": {"web": {"image": "x"}}}) == []


def test_example_stack_is_compose() -> None:
    text = (ROOT / "examples" / "stack.yml").read_text()
    manifest = parse_manifest(text)
    assert schema_errors(as_compose_validates_it(text)) == []
    assert schema_errors(as_shown_back(manifest)) == []


def test_documented_policy_example_is_compose() -> None:
    match = re.search(r"```yaml\n(.*?)```", (ROOT / "docs" / "policies.md").read_text(), re.DOTALL)
    assert match is not None, "docs/policies.md has no ```yaml example"
    manifest = parse_manifest(match.group(1))
    assert manifest.warnings == ()
    assert schema_errors(as_compose_validates_it(match.group(1))) == []
    assert schema_errors(as_shown_back(manifest)) == []


def test_documented_example_is_compose() -> None:
    text = documented_example()
    manifest = parse_manifest(text)
    assert manifest.warnings == ()
    assert schema_errors(as_compose_validates_it(text)) == []
    assert schema_errors(as_shown_back(manifest)) == []


# Service bodies and manifests the other tests parse as valid (test_defaults, test_payload, test_diff, test_load,
# test_validation), besides the two examples above and the WARNINGS table (valid, with warnings).
VALID_BODIES = [
    "",
    "deploy: {replicas: 3}\nenvironment: {A: 1}",
    "deploy: {replicas: 3, placement: {max_replicas_per_node: 1}}",
    "deploy: {mode: global}",
    "environment: [A=1]",
    "environment: {T: true, F: false, I: 7, R: 1.5, S: '', Y: yes}",
    "environment: {TOKEN: old-secret}",
    "command: [x]",
    "healthcheck: {test: wget -q http://127.0.0.1/}",
    "healthcheck: {disable: true}",
    "x-shoal: {canary: {image: x, weight: 5, environment: {A: b}}}\nhealthcheck: {disable: true}",
    "x-shoal: {blue_green: {image: x, environment: {A: b}, active: green}}",
    "x-shoal: {readiness: {http_get: {port: 8080}}}",
    "ports: ['8080:80/tcp']\nexpose: [9090, '9091/tcp']\nenvironment: [A=1, B=x=y]\ncommand: echo 'a b' c\n"
    "networks: {default: null}",
    "ports: [{target: 80, published: '8080', protocol: tcp, mode: ingress}]\nexpose: ['9091', 9090]\n"
    "environment: {B: x=y, A: 1}\ncommand: [echo, a b, c]\nnetworks: [default]",
    "deploy: {placement: {constraints: ['node.labels.disk==ssd', ' node.name != h1 ', 'node.id == abc'], "
    "preferences: [{spread: node.labels.zone}]}}",
    "ports: [80:80]\nenvironment: {A: on, B: 0755, C: 0x10}",
    "expose: [9090, '9090', 9090/tcp]",
    # and, for the payload, the fields the examples above leave out
    "deploy: {resources: {limits: {cpus: 1, memory: 1T}, reservations: {cpus: '0.5', memory: '1536'}}, "
    "rollback_config: {failure_action: continue, max_failure_ratio: 0.5}, restart_policy: {condition: on-failure}}\n"
    "x-shoal: {liveness: {exec: {command: ['true']}}, canary: {command: [sh], weight: 0.5}}",
]
VALID_MANIFESTS = [
    *(one_service(body) for body in VALID_BODIES),
    "x-env: &env {A: '1'}\nservices:\n  a: {image: x, environment: *env}\n  b: {image: x, environment: *env}\n",
    "x-base: &base {image: 'busybox:1', command: [a]}\nservices:\n  web: {<<: *base, command: [b]}\n",
    "{services: {web: {image: x}}}",
    json.dumps({"services": {"web": {"image": "x", "environment": {"E": "\U0001f600"}}}}),
    "\ufeffservices: {web: {image: busybox:1}}\n",
    one_service("x-owner: team-a\ndeploy: {x-note: 1, placement: {x-y: 2}}",
                top="x-defaults: &d {a: 1}\nnetworks: {front: {x-z: 3}}"),
    "services:\n" + "".join(
        f"  s{i}:\n    image: busybox:1\n    environment: {{A: '{'x' * 100}'}}\n    ports: ['{8000 + i}:80']\n"
        f"    deploy: {{replicas: 3, placement: {{constraints: ['node.labels.zone == a']}}}}\n" for i in range(100)),
    *(text for text, _field, _fragment in WARNINGS),
]


@pytest.mark.parametrize("text", VALID_MANIFESTS, ids=[f"{i}" for i in range(len(VALID_MANIFESTS))])
def test_manifests_the_tests_accept_are_compose(text: str) -> None:
    manifest = parse_manifest(text)
    assert schema_errors(as_compose_validates_it(text)) == []
    assert schema_errors(as_shown_back(manifest)) == []


@SETTINGS
@given(names, service_bodies)
def test_canonical_payload_is_compose(name: str, body: dict[str, Any]) -> None:
    """What Shoal stores, gossips and shows back is itself a Compose file (with the networks it names declared)."""
    spec = spec_from_payload(name, body)
    networks = {network: {} for network in spec.networks if network != "default"}
    document = {"services": {name: spec_to_payload(spec)}, **({"networks": networks} if networks else {})}
    assert schema_errors(json.loads(json.dumps(document))) == []


@SETTINGS
@given(names, service_bodies)
def test_generated_service_bodies_are_compose(name: str, body: dict[str, Any]) -> None:
    """The many spellings the strategies generate as valid input are Compose too."""
    networks = {network: {} for network in body.get("networks", []) if network != "default"}
    text = json.dumps({"services": {name: body}, **({"networks": networks} if networks else {})})
    parse_manifest(text)
    assert schema_errors(as_compose_validates_it(text)) == []


# Inputs Shoal once accepted and the schema refuses: now Shoal refuses them too (test_validation has the messages).
SCHEMA_REFUSES = [
    pytest.param(one_service("command:\ndeploy:\n  replicas:\nhealthcheck:"), id="null-value"),
    pytest.param(one_service("deploy: {resources: {limits: {memory: 67108864}}}"), id="memory-integer"),
    pytest.param(one_service("deploy: {update_config: {delay: 0}}"), id="duration-integer-zero"),
]


@pytest.mark.parametrize("text", SCHEMA_REFUSES)
def test_what_the_schema_refuses_shoal_refuses(text: str) -> None:
    try:
        parse_manifest(text)
    except ManifestError:
        return
    assert schema_errors(as_compose_validates_it(text)) == []


WEB, DEPLOY, RESOURCES = ("services", "web"), ("services", "web", "deploy"), ("services", "web", "deploy", "resources")
PORT, ATTACHMENT = (*WEB, "ports", 0), (*WEB, "networks", "front")
# Where each key table applies in the document _with builds (list items by index)
TABLES: list[tuple[tuple[Any, ...], keys.KeyTable]] = [
    ((), keys.TOP), (("networks", "front"), keys.NETWORK), (WEB, keys.SERVICE), (DEPLOY, keys.DEPLOY),
    ((*DEPLOY, "placement"), keys.PLACEMENT), ((*DEPLOY, "placement", "preferences", 0), keys.PREFERENCE),
    ((*DEPLOY, "update_config"), keys.UPDATE), ((*DEPLOY, "rollback_config"), keys.UPDATE),
    ((*DEPLOY, "restart_policy"), keys.RESTART), (RESOURCES, keys.RESOURCES),
    ((*RESOURCES, "limits"), keys.LIMITS), ((*RESOURCES, "reservations"), keys.RESERVATIONS),
    ((*WEB, "healthcheck"), keys.HEALTHCHECK), (PORT, keys.PORT), (ATTACHMENT, keys.SERVICE_NETWORK),
    ((*WEB, "x-shoal"), keys.X_SHOAL), ((*WEB, "x-shoal", "readiness"), keys.PROBE),
    ((*WEB, "x-shoal", "readiness", "http_get"), keys.HTTP_GET), ((*WEB, "x-shoal", "canary"), keys.CANARY),
]


def _null_paths() -> list[tuple[Any, ...]]:
    """A path to every value Shoal reads or warns about, from its key tables (list items by index)."""
    return [*((*at, key) for at, table in TABLES for key in (*table.supported, *table.ignored)),
            ("networks", "front"), ATTACHMENT, (*WEB, "environment", "A"), ("x-a",), (*WEB, "x-a"), (*DEPLOY, "x-a")]


def _with(path: tuple[Any, ...], value: object) -> dict[str, Any]:
    """A valid manifest (every object on the way present) with `value` at `path`."""
    document: dict[str, Any] = {"services": {"web": {
        "image": "x", "networks": {"front": {}}, "environment": {"A": "1"},
        "ports": [{"target": 80, "published": 80}],
        "deploy": {"placement": {"preferences": [{"spread": "node.labels.a"}]}, "resources": {}},
        "x-shoal": {"readiness": {"http_get": {"port": 80}}, "canary": {"image": "x", "weight": 1}}}},
        "networks": {"front": {}}}
    node: Any = document
    for key in path[:-1]:
        if isinstance(node, dict) and key not in node:
            node[key] = {}
        node = node[key]
    node[path[-1]] = value
    return document


NULL_PATHS = _null_paths()
# Where the schema allows null but Shoal refuses it: an environment variable without a value (Compose would copy it
# from a shell) and the keys inside x-shoal (Compose's schema lets an x-* value be anything; Shoal's own keys follow
# the rule of the Compose keys).
STRICTER = [lambda path: path[-2:-1] == ("environment",), lambda path: "x-shoal" in path[:-1]]


@pytest.mark.parametrize("path", NULL_PATHS, ids=[".".join(map(str, path)) for path in NULL_PATHS])
def test_null_is_accepted_exactly_where_compose_accepts_it(path: tuple[Any, ...]) -> None:
    document = _with(path, None)
    try:
        parse_manifest(json.dumps(document))
        shoal_accepts = True
    except ManifestError as error:
        shoal_accepts = False
        assert error.field == ".".join(map(str, path)), str(error)
    compose_accepts = schema_errors(document) == []
    if any(rule(path) for rule in STRICTER):
        assert not shoal_accepts
    else:
        assert shoal_accepts == compose_accepts


# Every key Shoal ignores with a warning (each table's `ignored`, at its place in the document): values Compose
# accepts (Shoal warns and goes on) and values its schema refuses (Shoal refuses them too, naming the field).
_LABELS = ([{"a": "b", "n": 1, "f": 1.5, "t": True, "e": None}, ["a=b", "c"], {}, []],
           [5, "a=b", [1], ["a", "a"], {"a": [1]}, {"a": {"b": 1}}, {"": "x"}, True])
_BOOLEAN = ([True, False, "true", "no"], [1, 0, [True], {"a": 1}, 1.5])
_STRING = (["x", ""], [5, 1.5, True, ["x"], {"a": "x"}])
IGNORED: dict[tuple[Any, ...], tuple[list[Any], list[Any]]] = {
    ("version",): (["3.8", "3"], [3.8, 3, True, ["3"]]),
    ("name",): (["shop", "Shop 1"], [5, False, {"a": 1}, ["shop"]]),
    (*WEB, "container_name"): (["web1", "my_app.web-1"], [[1], 123, 1.5, True, "a", "-", "", {"a": "b"}]),
    (*WEB, "restart"): (["always", "on-failure:3", "no"], [5, True, ["always"], {"a": 1}]),
    (*WEB, "depends_on"): (
        [["db", "cache"], {"db": {"condition": "service_healthy", "required": False, "restart": True}},
         {"db": {"condition": "service_started", "x-note": 1}}, []],
        ["db", 5, [1], ["db", "db"], {"db": {}}, {"db": {"condition": "up"}}, {"db": None}, {"db": "x"},
         {"db": {"condition": "service_started", "required": "no"}}, {"db": {"condition": "service_started", "a": 1}},
         {"d b": {"condition": "service_started"}}, {"db": {"condition": "service_started", "restart": 1}}]),
    (*WEB, "labels"): _LABELS,
    (*WEB, "annotations"): _LABELS,
    (*WEB, "logging"): (
        [{"driver": "json-file", "options": {"max-size": "10m", "max-file": 3, "tag": None}}, {}, {"x-a": 1}],
        ["json-file", 5, [], {"driver": 5}, {"drivr": "x"}, {"options": {"a": True}}, {"options": ["a"]},
         {"options": {"a": [1]}}, {"driver": None}]),
    (*WEB, "stop_grace_period"): (["10s", "1m30s", "0", "48h"], [10, 0, 1.5, True, ["10s"]]),
    (*WEB, "tty"): _BOOLEAN,
    (*WEB, "stdin_open"): _BOOLEAN,
    (*WEB, "attach"): _BOOLEAN,
    (*WEB, "develop"): (
        [{}, {"watch": []}, {"watch": [{"path": "./src", "action": "sync", "target": "/app", "ignore": ["*.tmp"],
                                        "include": "*.py", "initial_sync": True, "x-a": 1}]},
         {"watch": [{"path": ".", "action": "sync+exec", "target": "/app",
                     "exec": {"command": ["make", "make"], "privileged": "false", "environment": ["A=1"]}}]},
         {"watch": [{"path": "go.mod", "action": "rebuild"}]}],
        [5, ["watch"], {"watch": {}}, {"watch": [{"path": "."}]}, {"watch": [{"action": "rebuild"}]},
         {"watch": [{"path": ".", "action": "copy"}]}, {"wach": []}, {"watch": ["."]},
         {"watch": [{"path": 1, "action": "rebuild"}]}, {"watch": [{"path": ".", "action": "rebuild", "ignore": 5}]},
         {"watch": [{"path": ".", "action": "rebuild", "ignore": ["a", "a"]}]},
         {"watch": [{"path": ".", "action": "sync+exec", "target": "/a", "exec": {}}]},
         {"watch": [{"path": ".", "action": "sync+exec", "target": "/a", "exec": {"command": [1]}}]},
         {"watch": [{"path": ".", "action": "rebuild", "initial_sync": "yes"}]}]),
    (*DEPLOY, "labels"): _LABELS,
    (*DEPLOY, "endpoint_mode"): (["vip", "dnsrr"], [[1], 5, True, {"a": "vip"}]),
    (*PORT, "name"): _STRING,
    (*PORT, "app_protocol"): _STRING,
    ("networks", "front", "driver"): _STRING,
    ("networks", "front", "labels"): _LABELS,
    ("networks", "front", "attachable"): _BOOLEAN,
    (*ATTACHMENT, "priority"): ([10, 0, -1, 0.5], ["1", True, [1], {"a": 1}]),
    (*ATTACHMENT, "gw_priority"): ([10, 0, -1, 0.5], ["1", True, [1], {"a": 1}]),
}
IGNORED_GOOD = [(path, value) for path, (good, _bad) in IGNORED.items() for value in good]
IGNORED_BAD = [(path, value) for path, (_good, bad) in IGNORED.items() for value in bad]
# Values the schema lets through that Compose's loader (compose-go) or Docker refuses, so Shoal does too: a boolean
# written as a string must be a word compose-go reads as one; stop_grace_period is parsed as a Go duration;
# container_name must match Docker's pattern whole (the schema's pattern is unanchored). Durations follow Shoal's
# syntax (docs/manifest.md), which has no 'd'.
STRICTER_THAN_SCHEMA = [((*WEB, "tty"), "maybe"), (("networks", "front", "attachable"), "1"),
                        ((*WEB, "depends_on"), {"db": {"condition": "service_started", "restart": "sometimes"}}),
                        ((*WEB, "stop_grace_period"), "soon"), ((*WEB, "stop_grace_period"), "1d"),
                        ((*WEB, "container_name"), "-web"), ((*WEB, "container_name"), "web 1")]


def _ids(cases: list[tuple[tuple[Any, ...], Any]]) -> list[str]:
    return [f"{'.'.join(map(str, path))}={json.dumps(value)}" for path, value in cases]


def test_every_ignored_key_has_cases() -> None:
    ignored = {(*at, key) for at, table in TABLES for key in table.ignored}
    assert set(IGNORED) == ignored


@pytest.mark.parametrize(("path", "value"), IGNORED_GOOD, ids=_ids(IGNORED_GOOD))
def test_an_ignored_key_with_a_value_compose_accepts_is_a_warning(path: tuple[Any, ...], value: Any) -> None:
    document = _with(path, value)
    assert schema_errors(document) == []
    field = ".".join(map(str, path))
    assert [w.field for w in parse_manifest(json.dumps(document)).warnings] == [field]


@pytest.mark.parametrize(("path", "value"), IGNORED_BAD, ids=_ids(IGNORED_BAD))
def test_an_ignored_key_with_a_value_compose_refuses_is_an_error(path: tuple[Any, ...], value: Any) -> None:
    document = _with(path, value)
    assert schema_errors(document) != []
    field = ".".join(map(str, path))
    with pytest.raises(ManifestError) as refused:
        parse_manifest(json.dumps(document))
    assert refused.value.field.startswith(field), str(refused.value)
    assert f"Shoal ignores {path[-1]}: correct the value or remove the key" in str(refused.value)


@pytest.mark.parametrize(("path", "value"), STRICTER_THAN_SCHEMA, ids=_ids(STRICTER_THAN_SCHEMA))
def test_an_ignored_key_with_a_value_compose_loader_refuses_is_an_error(path: tuple[Any, ...], value: Any) -> None:
    document = _with(path, value)
    assert schema_errors(document) == []
    with pytest.raises(ManifestError) as refused:
        parse_manifest(json.dumps(document))
    assert refused.value.field.startswith(".".join(map(str, path))), str(refused.value)
