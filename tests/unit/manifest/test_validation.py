"""Every refused input names its field and says what is allowed; ignored Compose keys become warnings."""

from __future__ import annotations

import json

import pytest

from node.manifest import ManifestError, parse_manifest
from tests.unit.manifest.helpers import one_service

W = "services.web"
# (manifest text, the error's field, a fragment of its message)
ERRORS: list[tuple[str, str, str]] = [
    # top level
    ("[1, 2]", "", "is not a mapping"),
    ("networks: {}", "services", "is required: a mapping of service name"),
    ("services: {}", "services", "allowed 1 to 100"),
    ("services: [web]", "services", "is not a mapping"),
    ("servces: {web: {image: x}}", "servces", "did you mean 'services'"),
    ("volumes: {data: {}}\nservices: {web: {image: x}}", "volumes", "not supported by Shoal (yet)"),
    ("services: {Web: {image: x}}", "services.Web", "DNS label"),
    ("services: {1web: {image: x}}", "services.1web", "DNS label"),
    ("services: {web-: {image: x}}", "services.web-", "DNS label"),
    ("services: {web: [1]}", W, "is not a mapping"),
    ("services: {web: {command: [x]}}", f"{W}.image", "is required, e.g. image: "),
    ("services: {" + ", ".join(f"s{i}: {{image: x}}" for i in range(101)) + "}", "services", "allowed 1 to 100"),
    # image, command
    (one_service(image="'Foo Bar'"), f"{W}.image", "is not an image reference"),
    (one_service(image="5"), f"{W}.image", "is not an image reference"),
    (one_service(image="a" * 300), f"{W}.image", "has 300 characters; allowed 1 to 255"),
    (one_service("imgae: x"), f"{W}.imgae", "did you mean 'image'"),
    (one_service("volumes: [/data:/data]"), f"{W}.volumes", "not supported by Shoal (yet)"),
    (one_service("build: ."), f"{W}.build", "build and push the image"),
    (one_service("privileged: true"), f"{W}.privileged", "not supported by Shoal (yet)"),
    (one_service("mem_limit: 64m"), f"{W}.mem_limit", "use deploy.resources"),
    (one_service("command: {a: 1}"), f"{W}.command", "is not a list"),
    (one_service("command: \"echo 'hi\""), f"{W}.command", "cannot be split"),
    (one_service(f"command: {json.dumps(['x'] * 65)}"), f"{W}.command", "allowed 0 to 64"),
    (one_service("command: [sleep, 5]"), f"{W}.command.1", "quote it: '5'"),
    # environment
    (one_service("environment: {A: null}"), f"{W}.environment.A", "has no value"),
    (one_service("environment: [A]"), f"{W}.environment.0", "has no value"),
    (one_service("environment: {1A: x}"), f"{W}.environment.1A", "variable name"),
    (one_service("environment: [A=1, A=2]"), f"{W}.environment.1", "set twice"),
    (one_service("environment: {A: [1]}"), f"{W}.environment.A", "string, number or boolean"),
    (one_service("environment: 5"), f"{W}.environment", "is not a mapping"),
    # ports, expose
    (one_service("ports: ['8080']"), f"{W}.ports.0",
     "no published port; to publish it on every node write '8080:8080'"),
    (one_service("ports: [8080]"), f"{W}.ports.0", "or list it under expose"),
    (one_service("ports: ['53:53/udp']"), f"{W}.ports.0", "TCP only"),
    (one_service("ports: ['70000:80']"), f"{W}.ports.0", "port number from 1 to 65535"),
    (one_service("ports: ['127.0.0.1:80:80']"), f"{W}.ports.0", "binds a host address"),
    (one_service("ports: ['8000-8001:8000-8001']"), f"{W}.ports.0", "port range"),
    (one_service("ports: [{target: 80, published: 8080, mode: host}]"), f"{W}.ports.0.mode", "not supported"),
    (one_service("ports: [{published: 8080}]"), f"{W}.ports.0.target", "required"),
    (one_service("ports: [{target: 80}]"), f"{W}.ports.0", "no published port"),
    (one_service("ports: [{target: 80, published: 80, host_ip: 127.0.0.1}]"), f"{W}.ports.0.host_ip",
     "every address"),
    (one_service("ports: ['80:80', '80:81']"), f"{W}.ports.1", "listed twice"),
    ("services:\n  a: {image: x, ports: ['80:80']}\n  b: {image: x, ports: ['80:81']}", "services.b.ports",
     "already published by service a"),
    (one_service("expose: ['53/udp']"), f"{W}.expose.0", "TCP only"),
    (one_service("expose: [abc]"), f"{W}.expose.0", "port number"),
    (one_service("expose: ['9000-9001']"), f"{W}.expose.0", "port range"),
    # networks
    (one_service("networks: [back]", top="networks: {front: {}}"), f"{W}.networks.0",
     "not declared under the top-level networks; declare it (networks: {back: {}}) or use one of: default, front"),
    (one_service("networks: []"), f"{W}.networks", "is empty"),
    (one_service("networks: [default, default]"), f"{W}.networks", "different networks"),
    (one_service("networks: {front: {aliases: [x]}}", top="networks: {front: {}}"), f"{W}.networks.front.aliases",
     "not supported"),
    (one_service("networks: [Front]"), f"{W}.networks.0", "network name"),
    (one_service(top="networks: {Front: {}}"), "networks.Front", "network name"),
    (one_service(top="networks: {front: {external: true}}"), "networks.front.external", "not supported"),
    (one_service(top="networks: [front]"), "networks", "is not a mapping"),
    # deploy
    (one_service("deploy: {mode: replicated-job}"), f"{W}.deploy.mode", "is not one of: replicated, global"),
    (one_service("deploy: {replicas: 1001}"), f"{W}.deploy.replicas", "from 0 to 1000"),
    (one_service("deploy: {replicas: -1}"), f"{W}.deploy.replicas", "from 0 to 1000"),
    (one_service("deploy: {replicas: '3'}"), f"{W}.deploy.replicas", "not a whole number"),
    (one_service("deploy: {replicas: true}"), f"{W}.deploy.replicas", "not a whole number"),
    (one_service("deploy: {replicas: 2.5}"), f"{W}.deploy.replicas", "not a whole number"),
    (one_service("deploy: {mode: global, replicas: 2}"), f"{W}.deploy.replicas", "is for mode: replicated"),
    (one_service("deploy: {mode: global, placement: {max_replicas_per_node: 2}}"),
     f"{W}.deploy.placement.max_replicas_per_node", "mode: replicated"),
    (one_service("deploy: {placement: {constraints: ['node.labels.disk = ssd']}}"),
     f"{W}.deploy.placement.constraints.0", "'ATTRIBUTE == VALUE'"),
    (one_service("deploy: {placement: {constraints: ['node.role == manager']}}"),
     f"{W}.deploy.placement.constraints.0", "not an attribute Shoal can match"),
    (one_service("deploy: {placement: {constraints: ['node.hostname == h1']}}"),
     f"{W}.deploy.placement.constraints.0", "use node.name"),
    (one_service("deploy: {placement: {constraints: ['node.labels.disk == ']}}"),
     f"{W}.deploy.placement.constraints.0", "1 to 128 printable characters"),
    (one_service("deploy: {placement: {preferences: [{spread: node.id}]}}"),
     f"{W}.deploy.placement.preferences.0.spread", "node labels only"),
    (one_service("deploy: {placement: {preferences: [{spread: node.labels.a}, {spread: node.labels.a}]}}"),
     f"{W}.deploy.placement.preferences", "same label twice"),
    (one_service("deploy: {placement: {max_replicas_per_node: -1}}"), f"{W}.deploy.placement.max_replicas_per_node",
     "from 0 to 1000"),
    (one_service("deploy: {update_config: {parallelism: -1}}"), f"{W}.deploy.update_config.parallelism",
     "from 0 to 1000"),
    (one_service("deploy: {update_config: {failure_action: stop}}"), f"{W}.deploy.update_config.failure_action",
     "pause, continue, rollback"),
    (one_service("deploy: {rollback_config: {failure_action: rollback}}"),
     f"{W}.deploy.rollback_config.failure_action", "is not one of: pause, continue"),
    (one_service("deploy: {update_config: {max_failure_ratio: 1.5}}"), f"{W}.deploy.update_config.max_failure_ratio",
     "is not a number from 0 to 1"),
    (one_service("deploy: {update_config: {order: random}}"), f"{W}.deploy.update_config.order", "stop-first"),
    (one_service("deploy: {update_config: {delay: 5}}"), f"{W}.deploy.update_config.delay",
     "5 has no unit; write it as '5s'"),
    (one_service("deploy: {update_config: {monitor: '5 s'}}"), f"{W}.deploy.update_config.monitor",
     "is not a duration"),
    (one_service("deploy: {restart_policy: {condition: always}}"), f"{W}.deploy.restart_policy.condition",
     "none, on-failure, any"),
    (one_service("deploy: {restart_policy: {max_attempts: -1}}"), f"{W}.deploy.restart_policy.max_attempts",
     "from 0 to 1000"),
    (one_service("deploy: {restart_policy: {window: 48h}}"), f"{W}.deploy.restart_policy.window", "out of range"),
    (one_service("deploy: {resources: {limits: {cpus: 0}}}"), f"{W}.deploy.resources.limits.cpus", "from 0.01 to 1024"),
    (one_service("deploy: {resources: {limits: {cpus: abc}}}"), f"{W}.deploy.resources.limits.cpus",
     "is not a number"),
    (one_service("deploy: {resources: {limits: {memory: 64Q}}}"), f"{W}.deploy.resources.limits.memory",
     "not a byte size"),
    (one_service("deploy: {resources: {limits: {memory: 1M}}}"), f"{W}.deploy.resources.limits.memory",
     "out of range; allowed 6M"),
    (one_service("deploy: {resources: {limits: {memory: 64M}, reservations: {memory: 128M}}}"),
     f"{W}.deploy.resources.reservations.memory", "reserves 128M but limits.memory is 64M"),
    (one_service("deploy: {resources: {limits: {cpus: 1}, reservations: {cpus: 2}}}"),
     f"{W}.deploy.resources.reservations.cpus", "cannot exceed the limit"),
    (one_service("deploy: {resources: {limits: {pids: 10}}}"), f"{W}.deploy.resources.limits.pids", "not supported"),
    (one_service("deploy: {replcas: 3}"), f"{W}.deploy.replcas", "did you mean 'replicas'"),
    # healthcheck
    (one_service("healthcheck: {test: [RUN, x]}"), f"{W}.healthcheck.test.0", "is not one of CMD, CMD-SHELL, NONE"),
    (one_service("healthcheck: {test: [CMD-SHELL, a, b]}"), f"{W}.healthcheck.test", "exactly one shell command"),
    (one_service("healthcheck: {test: [CMD]}"), f"{W}.healthcheck.test", "a command and its arguments"),
    (one_service("healthcheck: {test: []}"), f"{W}.healthcheck.test", "allowed 1 to 64"),
    (one_service("healthcheck: {interval: 5}"), f"{W}.healthcheck.interval", "has no unit; write it as '5s'"),
    (one_service("healthcheck: {interval: 0s}"), f"{W}.healthcheck.interval", "out of range; allowed 1ms"),
    (one_service("healthcheck: {retries: 0}"), f"{W}.healthcheck.retries", "from 1 to 100"),
    (one_service("healthcheck: {test: [CMD, x], disable: true}"), f"{W}.healthcheck.disable", "contradicts test"),
    (one_service("healthcheck: {start_interval: 1s}"), f"{W}.healthcheck.start_interval", "not supported"),
    # x-shoal
    (one_service("x-shoal: {canery: {}}"), f"{W}.x-shoal.canery", "did you mean 'canary'"),
    (one_service("x-shoal: {x-later: 1}"), f"{W}.x-shoal.x-later", "unknown key"),
    (one_service("x-shoal: {readiness: {period: 1s}}"), f"{W}.x-shoal.readiness", "exactly one of http_get"),
    (one_service("x-shoal: {readiness: {tcp_socket: {port: 1}, exec: {command: [x]}}}"), f"{W}.x-shoal.readiness",
     "found tcp_socket, exec"),
    (one_service("x-shoal: {readiness: {http_get: {path: healthz, port: 80}}}"),
     f"{W}.x-shoal.readiness.http_get.path", "absolute URL path"),
    (one_service("x-shoal: {readiness: {http_get: {path: /}}}"), f"{W}.x-shoal.readiness.http_get.port",
     "is required"),
    (one_service("x-shoal: {readiness: {http_get: {port: 80, scheme: HTTPS}}}"),
     f"{W}.x-shoal.readiness.http_get.scheme", "allowed: path, port"),
    (one_service("x-shoal: {readiness: {exec: {}}}"), f"{W}.x-shoal.readiness.exec.command", "is required"),
    (one_service("x-shoal: {liveness: {tcp_socket: {port: 80}, success_threshold: 2}}"),
     f"{W}.x-shoal.liveness.success_threshold", "must be 1 for a liveness probe"),
    (one_service("x-shoal: {readiness: {tcp_socket: {port: 80}, period: 10ms}}"), f"{W}.x-shoal.readiness.period",
     "out of range; allowed 100ms"),
    (one_service("x-shoal: {readiness: {tcp_socket: {port: 80}, failure_threshold: 0}}"),
     f"{W}.x-shoal.readiness.failure_threshold", "from 1 to 100"),
    (one_service("x-shoal: {canary: {image: x, weight: 0}}"), f"{W}.x-shoal.canary.weight", "greater than 0"),
    (one_service("x-shoal: {canary: {image: x, weight: 101}}"), f"{W}.x-shoal.canary.weight", "at most 100"),
    (one_service("x-shoal: {canary: {weight: 5}}"), f"{W}.x-shoal.canary", "changes nothing"),
    (one_service("x-shoal: {canary: {image: x}}"), f"{W}.x-shoal.canary.weight", "is required"),
    (one_service("x-shoal: {canary: {image: 'Bad Image', weight: 5}}"), f"{W}.x-shoal.canary.image",
     "not an image reference"),
    (one_service("x-shoal: {blue_green: {active: green}}"), f"{W}.x-shoal.blue_green", "would be the blue one"),
    (one_service("x-shoal: {blue_green: {image: x, active: red}}"), f"{W}.x-shoal.blue_green.active",
     "allowed: blue, green"),
    (one_service("x-shoal: {blue_green: {image: x, weight: 5}}"), f"{W}.x-shoal.blue_green.weight",
     "allowed: active, command, environment, image"),
    (one_service("x-shoal: {blue_green: {image: 'Bad Image'}}"), f"{W}.x-shoal.blue_green.image",
     "not an image reference"),
    (one_service("x-shoal: {canary: {image: x, weight: 5}, blue_green: {image: y}}"), f"{W}.x-shoal.blue_green",
     "cannot have both a canary and blue_green"),
    # null (`key:` with nothing after it): an error wherever Compose's schema refuses it
    (one_service("environment:"), f"{W}.environment", f"{W}.environment: is empty (null), which Compose does not "
                                                      "accept here; give a value or remove the key"),
    (one_service("ports:"), f"{W}.ports", "is empty (null)"),
    (one_service("expose:"), f"{W}.expose", "give a value or remove the key"),
    (one_service("networks:"), f"{W}.networks", "give a value or remove the key"),
    (one_service("healthcheck:"), f"{W}.healthcheck", "give a value or remove the key"),
    (one_service("healthcheck: {interval: }"), f"{W}.healthcheck.interval", "give a value or remove the key"),
    (one_service("deploy:\n  replicas:"), f"{W}.deploy.replicas", "give a value or remove the key"),
    (one_service("deploy: {mode: }"), f"{W}.deploy.mode", "give a value or remove the key"),
    (one_service("deploy: {placement: }"), f"{W}.deploy.placement", "give a value or remove the key"),
    (one_service("deploy: {placement: {constraints: }}"), f"{W}.deploy.placement.constraints", "is empty (null)"),
    (one_service("deploy: {update_config: }"), f"{W}.deploy.update_config", "give a value or remove the key"),
    (one_service("deploy: {update_config: {delay: }}"), f"{W}.deploy.update_config.delay", "is empty (null)"),
    (one_service("deploy: {restart_policy: {window: }}"), f"{W}.deploy.restart_policy.window", "is empty (null)"),
    (one_service("deploy: {resources: }"), f"{W}.deploy.resources", "give a value or remove the key"),
    (one_service("deploy: {resources: {limits: {memory: }}}"), f"{W}.deploy.resources.limits.memory",
     "is empty (null)"),
    (one_service("deploy: {labels: }"), f"{W}.deploy.labels", "is empty (null)"),
    (one_service("container_name:"), f"{W}.container_name", "give a value or remove the key"),
    ("services: {web: {image: }}", f"{W}.image", "is empty (null), which Compose does not accept here; give it a "
                                                 "value (it is required)"),
    (one_service("ports: [{target: , published: 80}]"), f"{W}.ports.0.target", "is empty (null)"),
    (one_service("networks: {front: {priority: }}", top="networks: {front: }"), f"{W}.networks.front.priority",
     "is empty (null)"),
    (one_service("x-shoal: {readiness: }"), f"{W}.x-shoal.readiness", "give a value or remove the key"),
    (one_service("x-shoal: {readiness: {tcp_socket: {port: 80}, period: }}"), f"{W}.x-shoal.readiness.period",
     "give a value or remove the key"),
    (one_service("x-shoal: {canary: {image: x, weight: }}"), f"{W}.x-shoal.canary.weight", "it is required"),
    ("services:", "services", "give it a value (it is required)"),
    (one_service(top="networks:"), "networks", "give a value or remove the key"),
    (one_service(top="networks: {front: {driver: }}"), "networks.front.driver", "is empty (null)"),
    ("version:\nservices: {web: {image: x}}", "version", "give a value or remove the key"),
    ("name:\nservices: {web: {image: x}}", "name", "give a value or remove the key"),
    # numbers where Compose's schema wants strings
    (one_service("deploy: {resources: {limits: {memory: 67108864}}}"), f"{W}.deploy.resources.limits.memory",
     "67108864 is a number, and Compose's byte sizes are strings; write it as a string, e.g. '64M' or '67108864'"),
    (one_service("deploy: {resources: {reservations: {memory: 1536}}}"), f"{W}.deploy.resources.reservations.memory",
     "write it as a string, e.g. '1536'"),
    (one_service("deploy: {update_config: {delay: 0}}"), f"{W}.deploy.update_config.delay",
     "0 is a number, and Compose's durations are strings; write it as '0s'"),
    (one_service("healthcheck: {start_period: 0}"), f"{W}.healthcheck.start_period", "write it as '0s'"),
    (one_service("x-shoal: {readiness: {tcp_socket: {port: 80}, initial_delay: 0}}"),
     f"{W}.x-shoal.readiness.initial_delay", "write it as '0s'"),
    # keys Shoal ignores, with a value Compose refuses (test_compose_schema checks every one against the schema)
    (one_service("restart: 5"), f"{W}.restart", f"{W}.restart: 5 is not a string, as Compose requires; quote it: "
                                                "'5' (Shoal ignores restart: correct the value or remove the key)"),
    (one_service("container_name: [1]"), f"{W}.container_name", "[1] is not a container name (a letter or digit, "
                                                                "then one or more letters, digits"),
    (one_service("labels: 5"), f"{W}.labels", "5 is not a mapping {KEY: value} or a list of strings ['KEY=value']"),
    (one_service("labels: [a=1, a=1]"), f"{W}.labels.1", "'a=1' is listed twice; Compose lists each item once"),
    (one_service("deploy: {endpoint_mode: [1]}"), f"{W}.deploy.endpoint_mode", "[1] is not a string, as Compose "
                                                                               "requires (Shoal ignores endpoint_mode"),
    (one_service("tty: maybe"), f"{W}.tty", "'maybe' is not true or false"),
    (one_service("stop_grace_period: 10"), f"{W}.stop_grace_period", "10 is not a duration string"),
    (one_service("depends_on: {db: {}}"), f"{W}.depends_on.db.condition", "is required by Compose: one of: "
                                                                          "service_started, service_healthy"),
    (one_service("logging: {drivr: json-file}"), f"{W}.logging.drivr", "did you mean 'driver'"),
    (one_service("develop: {watch: [{path: ., action: copy}]}"), f"{W}.develop.watch.0.action",
     "'copy' is not one of: rebuild, sync, restart"),
    (one_service("ports: [{target: 80, published: 80, name: 5}]"), f"{W}.ports.0.name", "quote it: '5'"),
    (one_service("networks: {front: {priority: high}}", top="networks: {front: }"), f"{W}.networks.front.priority",
     "'high' is not a number"),
    (one_service(top="networks: {front: {attachable: 1}}"), "networks.front.attachable", "1 is not true or false"),
    ("version: 3.8\nservices: {web: {image: x}}", "version", "3.8 is not a string, as Compose requires; quote it"),
    # size
    (one_service("environment: {" + ", ".join(f"V{i}: '{'x' * 200}'" for i in range(200)) + "}"), W,
     "the limit is 32768 (32 KiB)"),
    ("services: {web: {image: x}}\n#" + "x" * (1024 * 1024), "", "more than the limit of 1048576 (1 MiB)"),
]


@pytest.mark.parametrize(("text", "field", "fragment"), ERRORS,
                         ids=[f"{i}-{row[1] or 'manifest'}" for i, row in enumerate(ERRORS)])
def test_refused_input_names_its_field_and_what_is_allowed(text: str, field: str, fragment: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    assert caught.value.field == field, str(caught.value)
    assert fragment in str(caught.value)
    assert str(caught.value).startswith(f"{field or 'manifest'}: ")


WARNINGS: list[tuple[str, str, str]] = [
    (one_service("container_name: web1"), f"{W}.container_name", "names each replica's container"),
    (one_service("restart: always"), f"{W}.restart", "deploy.restart_policy"),
    (one_service("depends_on: [db]"), f"{W}.depends_on", "x-shoal.readiness"),
    (one_service("labels: {a: b}"), f"{W}.labels", "not applied"),
    (one_service("logging: {driver: json-file}"), f"{W}.logging", "log driver"),
    (one_service("stop_grace_period: 1m"), f"{W}.stop_grace_period", "10s grace"),
    (one_service("deploy: {labels: {a: b}}"), f"{W}.deploy.labels", "service labels"),
    (one_service("deploy: {endpoint_mode: vip}"), f"{W}.deploy.endpoint_mode", "proxy"),
    (one_service("ports: [{target: 80, published: 80, name: web}]"), f"{W}.ports.0.name", "metadata"),
    (one_service("networks: [front]", top="networks: {front: {driver: overlay}}"), "networks.front.driver",
     "its own sandbox networks"),
    ("version: '3.8'\nservices: {web: {image: x}}", "version", "obsolete"),
    ("name: shop\nservices: {web: {image: x}}", "name", "no projects"),
    ("x-shoal: {}\nservices: {web: {image: x}}", "x-shoal", "belongs inside a service"),
]


@pytest.mark.parametrize(("text", "field", "fragment"), WARNINGS, ids=[row[1] for row in WARNINGS])
def test_ignored_compose_key_is_a_warning_naming_it(text: str, field: str, fragment: str) -> None:
    warnings = parse_manifest(text).warnings
    assert [w.field for w in warnings] == [field]
    assert fragment in warnings[0].message
    assert str(warnings[0]).startswith(f"{field}: ignored")


def test_extension_keys_are_allowed_outside_x_shoal() -> None:
    text = one_service("x-owner: team-a\ndeploy: {x-note: 1, placement: {x-y: 2}}",
                       top="x-defaults: &d {a: 1}\nnetworks: {front: {x-z: 3}}")
    assert parse_manifest(text).warnings == ()


def test_null_is_the_key_left_out_where_compose_allows_it() -> None:
    """command, deploy, x-shoal (as any x-* key), develop (a warning), network entries: as in Compose's schema."""
    manifest = parse_manifest(one_service("command:\ndeploy:\nx-shoal:\ndevelop:\nnetworks: {front: }\nx-a:",
                                          top="networks: {front: }\nx-b:"))
    assert manifest.services == parse_manifest(one_service("networks: [front]", top="networks: {front: {}}")).services
    assert manifest.services[0].command is None and manifest.services[0].replicas == 1
    assert [w.field for w in manifest.warnings] == [f"{W}.develop"]


NOT_USED = [
    (one_service("deploy: {resources: {reservations: {memory: 32M}}}"), f"{W}.deploy.resources.reservations",
     "placement does not count reserved resources"),
    (one_service("deploy: {resources: {limits: {cpus: '1'}, reservations: {cpus: '0.5'}}}"),
     f"{W}.deploy.resources.reservations", "limits are applied"),
    (one_service("healthcheck: {interval: 5s, retries: 2}"), f"{W}.healthcheck.test",
     "the image's own HEALTHCHECK is not run"),
]


@pytest.mark.parametrize(("text", "field", "fragment"), NOT_USED, ids=[row[0] for row in NOT_USED])
def test_a_setting_shoal_keeps_but_does_not_act_on_is_a_warning(text: str, field: str, fragment: str) -> None:
    """SPEC.md: never silently ignored. The spec keeps the setting (the canonical payload round-trips it)."""
    manifest = parse_manifest(text)
    assert [w.field for w in manifest.warnings] == [field]
    assert fragment in manifest.warnings[0].message


def test_a_healthcheck_with_a_test_or_disabled_is_no_warning() -> None:
    assert parse_manifest(one_service("healthcheck: {test: [CMD, 'true'], interval: 5s}")).warnings == ()
    assert parse_manifest(one_service("healthcheck: {disable: true}")).warnings == ()
    assert parse_manifest(one_service("deploy: {resources: {limits: {memory: 64M}}}")).warnings == ()
