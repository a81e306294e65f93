"""Loading untrusted text is bounded: alias bombs, depth, duplicates, odd keys and tags fail fast and clearly."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from node.manifest import ManifestError, parse_manifest
from node.manifest.load import load

ROOT = Path(__file__).resolve().parents[3]
SERVICE = "services: {web: {image: busybox:1}}\n"


def laughs(levels: int, width: int = 10) -> str:
    """The "billion laughs": each anchor refers to the previous one `width` times."""
    lines = [f"x-l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"x-l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n" + SERVICE


def refused_quickly(text: str | bytes, fragment: str) -> ManifestError:
    start = time.perf_counter()
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    assert time.perf_counter() - start < 1.0, "bounded input must fail fast"
    assert fragment in str(caught.value)
    return caught.value


def test_billion_laughs_is_refused_quickly() -> None:
    refused_quickly(laughs(10), "more than 100000 YAML nodes (aliases expanded)")


def test_merge_key_bombs_are_counted_too() -> None:
    lines = ["x-m0: &m0 {" + ", ".join(f"k{j}: v" for j in range(20)) + "}"]
    lines += [f"x-m{i}: &m{i} {{" + ", ".join(f"k{j}: *m{i - 1}" for j in range(20)) + "}" for i in range(1, 8)]
    refused_quickly("\n".join(lines) + "\n" + SERVICE, "YAML nodes")


def test_small_alias_use_is_fine() -> None:
    text = "x-env: &env {A: '1'}\nservices:\n  a: {image: x, environment: *env}\n  b: {image: x, environment: *env}\n"
    assert [s.env for s in parse_manifest(text).services] == [{"A": "1"}, {"A": "1"}]


def test_merge_keys_work() -> None:
    text = "x-base: &base {image: 'busybox:1', command: [a]}\nservices:\n  web: {<<: *base, command: [b]}\n"
    (web,) = parse_manifest(text).services
    assert (web.image, web.command) == ("busybox:1", ("b",))


@pytest.mark.parametrize("text", [
    "services: " + "[" * 100_000 + "]" * 100_000,
    "services: " + "{a: " * 50_000 + "1" + "}" * 50_000,
    "services:\n" + "".join(" " * i + "a:\n" for i in range(1, 1000)),
    "x-a: &a " + "[" * 20 + "]" * 20 + "\nx-b: " + "[" * 20 + "*a" + "]" * 20 + "\n" + SERVICE,
    json.dumps({"services": {"web": {"image": "x"}}, "x-deep": json.loads("[" * 40 + "]" * 40)}),
    '{"services": ' + "[" * 100_000 + "]" * 100_000 + "}",
])
def test_deep_nesting_is_refused_without_overflowing_the_stack(text: str) -> None:
    refused_quickly(text, "nest")


@pytest.mark.parametrize("text", ["x-a: &a [*a]\n" + SERVICE, "x-a: &a {b: {c: *a}}\n" + SERVICE])
def test_recursive_alias_is_refused(text: str) -> None:
    refused_quickly(text, "refers to a node that contains it")


@pytest.mark.parametrize(("text", "field"), [
    ("services:\n  web: {image: x}\n  web: {image: y}\n", "services.web"),
    ("services:\n  web:\n    image: x\n    environment:\n      A: '1'\n      A: '2'\n", "services.web.environment.A"),
    ("services:\n  web:\n    image: x\n    image: y\n", "services.web.image"),
])
def test_duplicate_keys_are_refused_with_their_path(text: str, field: str) -> None:
    error = refused_quickly(text, "duplicate key")
    assert error.field == field


def test_duplicate_keys_in_json_are_refused() -> None:
    refused_quickly('{"services": {"web": {"image": "x", "image": "y"}}}', "duplicate key 'image'")


@pytest.mark.parametrize(("text", "fragment"), [
    ("services:\n  web:\n    image: x\n    environment: {1: a}\n", "mapping key '1' (line 4) is not a string"),
    ("services:\n  web:\n    image: x\n    environment: {true: a}\n", "is not a string"),
    ("services:\n  ? [a, b]\n  : {image: x}\n", "mapping key 'a sequence'"),
    ("services: {web: {image: x}}\nnull: 1\n", "mapping key 'null'"),
])
def test_non_string_keys_are_refused(text: str, fragment: str) -> None:
    refused_quickly(text, fragment)


@pytest.mark.parametrize(("text", "fragment"), [
    ("services: !!set {a, b}", "could not determine a constructor"),
    ("services: !!python/object/apply:os.system ['true']", "could not determine a constructor"),
    ("services: !!binary aGk=", "could not determine a constructor"),
    ("when: 2001-12-14\n" + SERVICE, "unknown key 'when'"),  # a timestamp stays a string: no datetime objects
    ("services: " + "9" * 5000, "too long"),
    ("a: 1\n---\nb: 2\n", "expected a single document"),
    ("services: [", "not valid YAML"),
    ("services:\x00", "control characters are not allowed"),
    ("services: \ud800", "not valid Unicode"),
    (b"services: \xff", "not UTF-8"),
    ("", "is empty"),
    ("# only a comment\n", "is empty"),
])
def test_bad_yaml_is_refused_clearly(text: str | bytes, fragment: str) -> None:
    refused_quickly(text, fragment)


def test_over_one_mebibyte_is_refused_before_parsing() -> None:
    refused_quickly(b"#" * (1024 * 1024 + 1), "more than the limit of 1048576 (1 MiB)")


def test_yaml_1_2_core_schema() -> None:
    data = load("a: [yes, no, on, off, y, n, true, False, TRUE, null, ~, '', 0o17, 0x1f, 0755, 1_000, 1.5e3, .inf, "
                "-.Inf, 12:30, 1e3]")
    assert isinstance(data, dict)
    assert data["a"][:12] == ["yes", "no", "on", "off", "y", "n", True, False, True, None, None, ""]
    assert data["a"][12:18] == [15, 31, 755, "1_000", 1500.0, float("inf")]
    assert data["a"][18:] == [float("-inf"), "12:30", 1000.0]


def test_json_with_astral_escapes_reads_as_json() -> None:
    text = json.dumps({"services": {"web": {"image": "x", "environment": {"E": "\U0001f600"}}}})
    assert "\\ud83d" in text
    assert parse_manifest(text).services[0].env == {"E": "\U0001f600"}


def test_json_escaped_lone_surrogate_is_refused() -> None:
    refused_quickly('{"services": {"web": {"image": "x", "environment": {"A": "\\ud800"}}}}', "lone surrogate")


def test_yaml_flow_mapping_that_is_not_json_still_reads() -> None:
    assert parse_manifest("{services: {web: {image: x}}}").services[0].image == "x"


def test_bytes_and_bom_are_accepted() -> None:
    assert parse_manifest(("\ufeff" + SERVICE).encode()).services[0].image == "busybox:1"


def test_a_hundred_services_parse_quickly() -> None:
    text = "services:\n" + "".join(
        f"  s{i}:\n    image: busybox:1\n    environment: {{A: '{'x' * 100}'}}\n    ports: ['{8000 + i}:80']\n"
        f"    deploy: {{replicas: 3, placement: {{constraints: ['node.labels.zone == a']}}}}\n" for i in range(100))
    start = time.perf_counter()
    assert len(parse_manifest(text).services) == 100
    assert time.perf_counter() - start < 2.0


def test_without_libyaml_the_pure_python_reader_is_bounded_too() -> None:
    """PyYAML built without libyaml: the same composer, so the same bounds and errors."""
    script = (
        "import sys; sys.modules['yaml._yaml'] = None\n"
        "from node.manifest import ManifestError, parse_manifest\n"
        "assert parse_manifest(open('examples/stack.yml').read()).services[0].replicas == 3\n"
        "for text in [sys.argv[1], 'services: \\x01', 'x-a: &a [*a]', 'a: 1\\n---\\nb: 2']:\n"
        "    try:\n"
        "        parse_manifest(text)\n"
        "    except ManifestError as e:\n"
        "        print(e.field or '-')\n"
    )
    done = subprocess.run([sys.executable, "-c", script, laughs(10)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["x-l4.7", "-", "x-a.0", "-"]
