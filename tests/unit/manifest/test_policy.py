"""x-shoal allow and ingress: what they read to, the defaults, and every refusal naming its field."""

from __future__ import annotations

import json
import re
from pathlib import Path
from textwrap import dedent

import pytest

from node.manifest import (
    AllowRule,
    Ingress,
    ManifestError,
    describe_changes,
    parse_manifest,
    spec_from_payload,
    spec_to_payload,
)
from tests.unit.manifest.helpers import one_service, parse_one

W = "services.web"
X = f"{W}.x-shoal"
PORTS = "ports: ['8080:80']\nexpose: [9090]\n"


def test_without_x_shoal_policy_a_service_has_no_rules_and_open_ingress() -> None:
    settings = parse_one(PORTS).x_shoal
    assert settings.allow == () and settings.ingress is None


def test_allow_rules_read_sorted_and_deduplicated_with_their_ports() -> None:
    spec = parse_one(PORTS + dedent("""
        x-shoal:
          allow:
            - {from: {service: web}, ports: [9090, 80, '80']}
            - {from: {cidr: 198.18.0.7}}
            - {from: {network: front}}
            - {from: {cidr: 198.18.0.7/32}}
            - {from: {service: api}, ports: [80]}
        networks: [front]
        """), top="networks: {front: {}}")
    assert spec.x_shoal.allow == (
        AllowRule("cidr", "198.18.0.7/32"),
        AllowRule("network", "front"),
        AllowRule("service", "api", (80,)),
        AllowRule("service", "web", (80, 9090)),
    )


def test_ingress_allow_list_reads_canonical_and_sorted_by_address() -> None:
    spec = parse_one(PORTS + "x-shoal: {ingress: {allow: [203.0.113.7, 10.0.0.0/8, 9.0.0.0/8, 10.0.0.0/8]}}")
    assert spec.x_shoal.ingress == Ingress(("9.0.0.0/8", "10.0.0.0/8", "203.0.113.7/32"))


def test_an_empty_ingress_allow_list_closes_published_ports_and_differs_from_none() -> None:
    assert parse_one(PORTS + "x-shoal: {ingress: {allow: []}}").x_shoal.ingress == Ingress(())


def test_policy_round_trips_through_the_payload() -> None:
    spec = parse_one(PORTS + dedent("""
        x-shoal:
          allow: [{from: {service: api}, ports: [80]}, {from: {cidr: 198.18.0.0/24}}]
          ingress: {allow: [198.18.0.0/24]}
        """))
    payload = spec_to_payload(spec)
    assert payload["x-shoal"] == {"allow": [{"from": {"cidr": "198.18.0.0/24"}},
                                            {"from": {"service": "api"}, "ports": [80]}],
                                  "ingress": {"allow": ["198.18.0.0/24"]}}
    assert spec_from_payload("web", json.loads(json.dumps(payload))) == spec


def test_a_rule_naming_a_service_outside_the_manifest_is_a_warning() -> None:
    manifest = parse_manifest(one_service(PORTS + "x-shoal: {allow: [{from: {service: api}}, {from: {service: web}}]}"))
    assert [(w.field, w.message) for w in manifest.warnings] == [
        (f"{X}.allow.0.from.service", "no service 'api' in this manifest; the rule admits its replicas once a "
                                      "service of that name is deployed")]


def test_a_payload_may_name_any_network_and_service() -> None:
    spec = spec_from_payload("web", {"image": "x", "x-shoal": {"allow": [{"from": {"network": "elsewhere"}},
                                                                         {"from": {"service": "nowhere"}}]}})
    assert {r.source for r in spec.x_shoal.allow} == {"elsewhere", "nowhere"}


@pytest.mark.parametrize(("old", "new", "line"), [
    ("", "x-shoal: {allow: [{from: {service: api}}]}", "allow added"),
    ("x-shoal: {allow: [{from: {service: api}}]}", "x-shoal: {allow: [{from: {service: db}}]}", "allow changed"),
    ("x-shoal: {allow: [{from: {service: api}}]}", "", "allow removed"),
    (PORTS, PORTS + "x-shoal: {ingress: {allow: []}}", "ingress added"),
    (PORTS + "x-shoal: {ingress: {allow: []}}", PORTS, "ingress removed"),
])
def test_policy_changes_are_named(old: str, new: str, line: str) -> None:
    assert describe_changes(parse_one(old), parse_one(new)) == line


ERRORS: list[tuple[str, str, str]] = [
    ("x-shoal: {allow: {from: {service: api}}}", f"{X}.allow", "is not a list"),
    ("x-shoal: {allow: [{ports: [80]}]}", f"{X}.allow.0.from", "is required"),
    ("x-shoal: {allow: [{from: {service: api}, port: 80}]}", f"{X}.allow.0.port", "did you mean 'ports'"),
    ("x-shoal: {allow: [{from: {}}]}", f"{X}.allow.0.from", "needs exactly one of service, network, cidr; found none"),
    ("x-shoal: {allow: [{from: {service: api, cidr: 10.0.0.0/8}}]}", f"{X}.allow.0.from",
     "found service, cidr (write one rule per source)"),
    ("x-shoal: {allow: [{from: {host: api}}]}", f"{X}.allow.0.from.host", "unknown key 'host'"),
    ("x-shoal: {allow: [{from: api}]}", f"{X}.allow.0.from", "is not a mapping"),
    ("x-shoal: {allow: [{from: {service: Api}}]}", f"{X}.allow.0.from.service", "is not a DNS label"),
    ("x-shoal: {allow: [{from: {service: 5}}]}", f"{X}.allow.0.from.service", "quote it"),
    ("x-shoal: {allow: [{from: {network: back}}]}", f"{X}.allow.0.from.network",
     "not declared under the top-level networks; declare it (networks: {back: {}}) or use one of: default"),
    ("x-shoal: {allow: [{from: {network: -x}}]}", f"{X}.allow.0.from.network", "is not lowercase letters"),
    ("x-shoal: {allow: [{from: {cidr: 198.18.0.5/24}}]}", f"{X}.allow.0.from.cidr",
     "has host bits set; did you mean 198.18.0.0/24?"),
    ("x-shoal: {allow: [{from: {cidr: '2001:db8::/32'}}]}", f"{X}.allow.0.from.cidr", "IPv4 only"),
    ("x-shoal: {allow: [{from: {cidr: 198.18.0.0/33}}]}", f"{X}.allow.0.from.cidr", "is not an IPv4 network like"),
    ("x-shoal: {allow: [{from: {cidr: front}}]}", f"{X}.allow.0.from.cidr", "is not an IPv4 network like"),
    ("x-shoal: {allow: [{from: {cidr: null}}]}", f"{X}.allow.0.from.cidr", "is empty (null)"),
    ("x-shoal: {allow: [{from: {service: api}, ports: []}]}", f"{X}.allow.0.ports",
     "is empty; leave ports out to allow every port"),
    ("x-shoal: {allow: [{from: {service: api}, ports: [9091]}]}", f"{X}.allow.0.ports.0",
     "9091 is not a port of this service (its target and expose ports: 80, 9090); list it under expose"),
    ("x-shoal: {allow: [{from: {service: api}, ports: [8080]}]}", f"{X}.allow.0.ports.0",
     "8080 is not a port of this service"),  # the published port is not a port of the replicas
    ("x-shoal: {allow: [{from: {service: api}}, {from: {service: api}, ports: [0]}]}", f"{X}.allow.1.ports.0",
     "port number from 1 to 65535"),
    ("x-shoal: {allow: [" + ", ".join(["{from: {service: api}}"] * 65) + "]}", f"{X}.allow", "allowed 0 to 64"),
    ("x-shoal: {ingress: [198.18.0.0/24]}", f"{X}.ingress", "is not a mapping"),
    ("x-shoal: {ingress: {}}", f"{X}.ingress.allow", "is required"),
    ("x-shoal: {ingress: {allow: [198.18.0.1/24]}}", f"{X}.ingress.allow.0", "did you mean 198.18.0.0/24?"),
    ("x-shoal: {ingress: {allow: 198.18.0.0/24}}", f"{X}.ingress.allow", "is not a list"),
    ("x-shoal: {ingress: {deny: []}}", f"{X}.ingress.deny", "unknown key 'deny'"),
]


@pytest.mark.parametrize(("body", "field", "fragment"), ERRORS)
def test_refusals_name_the_field(body: str, field: str, fragment: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(one_service(PORTS + body))
    assert caught.value.field == field, str(caught.value)
    assert fragment in str(caught.value)


def test_ingress_on_a_service_that_publishes_nothing_is_refused() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_one("expose: [80]\nx-shoal: {ingress: {allow: [198.18.0.0/24]}}")
    assert caught.value.field == f"{X}.ingress"
    assert "the service publishes no port; an ingress allow-list guards published ports" in str(caught.value)


def test_a_rule_with_ports_on_a_service_without_ports_is_refused() -> None:
    with pytest.raises(ManifestError, match=r"its target and expose ports: none"):
        parse_one("x-shoal: {allow: [{from: {service: api}, ports: [80]}]}")


def test_the_example_in_docs_policies_reads_as_documented() -> None:
    docs = (Path(__file__).resolve().parents[3] / "docs" / "policies.md").read_text()
    match = re.search(r"```yaml\n(.*?)```", docs, re.DOTALL)
    assert match is not None
    specs = {s.name: s for s in parse_manifest(match.group(1)).services}
    assert specs["db"].x_shoal.allow == (AllowRule("cidr", "198.18.0.0/24"), AllowRule("network", "ops"),
                                         AllowRule("service", "web", (5432,)))
    assert specs["web"].x_shoal.ingress == Ingress(("198.18.0.0/24",))
    assert specs["api"].networks == ("back", "front") and specs["api"].x_shoal.ingress is None
