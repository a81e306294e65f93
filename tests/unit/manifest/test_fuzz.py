"""Any input whatsoever gives a Manifest or a ManifestError, never another exception."""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.manifest import ManifestError, keys, parse_manifest, spec_from_payload
from tests.unit.manifest.strategies import names, service_bodies

SETTINGS = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Every key any table names, so random structures reach the validators deep down, not only the top level.
VOCABULARY = sorted({key for table in vars(keys).values() if isinstance(table, keys.KeyTable)
                     for key in (*table.supported, *table.unsupported, *table.ignored)} | {"web", "x-a", "front"})
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=12),
                    st.text(st.characters(codec=None, categories=["Cs", "Cc", "Lo"]), max_size=4),
                    st.sampled_from(["1s", "8080:80", "64M", "0.5", "node.labels.a == b", "CMD", "tcp", "global",
                                     "busybox:1", "A=1", "/", "default"]))
nested = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(VOCABULARY) | st.text(max_size=8), inner, max_size=5), max_leaves=30)


def outcome(text: str | bytes) -> None:
    try:
        parse_manifest(text)
    except ManifestError as error:
        assert str(error).encode("utf-8") and error.field.encode("utf-8") is not None  # printable anywhere


@SETTINGS
@given(st.text(max_size=400))
def test_arbitrary_text(text: str) -> None:
    outcome(text)


@SETTINGS
@given(st.binary(max_size=400))
def test_arbitrary_bytes(data: bytes) -> None:
    outcome(data)


@SETTINGS
@given(st.text(alphabet="{}[]:,-&*!|>'\"#%@` \n\tab01.?<", max_size=200))
def test_yaml_punctuation_soup(text: str) -> None:
    outcome(text)


@SETTINGS
@given(nested)
def test_arbitrary_structures_as_a_manifest(data: object) -> None:
    outcome(json.dumps({"services": data}) if not isinstance(data, dict) else json.dumps(data, allow_nan=True))


@SETTINGS
@given(st.dictionaries(st.sampled_from(VOCABULARY), nested, max_size=8))
def test_arbitrary_structures_as_a_service(body: dict[str, Any]) -> None:
    outcome(json.dumps({"services": {"web": body}}))
    with contextlib.suppress(ManifestError):
        spec_from_payload("web", body)


@SETTINGS
@given(names, service_bodies, st.data())
def test_valid_service_with_one_part_replaced(name: str, body: dict[str, Any], data: st.DataObject) -> None:
    """Walk into a valid body and put an arbitrary value somewhere: still only a spec or a ManifestError."""
    body = copy.deepcopy(body)  # strategies may share objects between examples (st.just); never mutate them
    node: Any = body
    while isinstance(node, dict | list) and node and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
        if not isinstance(node[key], dict | list) or data.draw(st.booleans()):
            node[key] = data.draw(nested)
            break
        node = node[key]
    with contextlib.suppress(ManifestError):
        spec_from_payload(name, body)
    outcome(json.dumps({"services": {name: body}}))


@given(st.one_of(st.none(), st.integers(), st.lists(st.integers()), st.dictionaries(st.integers(), st.integers())))
def test_non_text_and_non_mapping_payloads(value: Any) -> None:
    for call in (lambda: parse_manifest(value), lambda: spec_from_payload("web", value)):
        with contextlib.suppress(ManifestError):
            call()
