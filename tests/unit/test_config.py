"""Agent configuration: flags over file over defaults; every error names the setting and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.api import _loopback_beside
from node.config import AGENT_KEYS, ConfigError, build, load_file, parse_address


def test_flags_override_the_file_and_defaults_fill_the_rest(tmp_path: Path) -> None:
    file = tmp_path / "agent.toml"
    file.write_text('[agent]\nname = "a"\nbind = "10.0.0.1"\njoin = ["10.0.0.2:8000"]\nlabels = {zone = "b"}\n'
                    '[gossip]\nprofile = "local"\nprobe_interval_s = 2.0\n')
    config = build({"name": "flag", "label": None, "labels": ()}, load_file(file))
    assert config.name == "flag"
    assert config.bind == ("10.0.0.1", 7946) and config.join == (("10.0.0.2", 8000),)
    assert config.api == ("10.0.0.1", 7947) and config.labels == (("zone", "b"),)
    assert config.gossip.probe_interval_s == 2.0 and config.gossip.probe_timeout_s == 0.2


def test_the_api_defaults_to_loopback_unless_gossip_binds_a_specific_address() -> None:
    assert build({}, {}).api == ("127.0.0.1", 7947)
    assert build({"bind": "127.0.0.5:9000"}, {}).api == ("127.0.0.5", 7947)
    assert build({"bind": "127.0.0.5", "api": "127.0.0.1:8000"}, {}).api == ("127.0.0.1", 8000)


@pytest.mark.parametrize(("text", "expected"), [
    ("198.18.0.11", ("198.18.0.11", 7946)), ("198.18.0.11:1", ("198.18.0.11", 1)),
    ("[::1]:9", ("::1", 9)), ("::1", ("::1", 7946)),
])
def test_addresses_parse(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text, setting="bind", default_port=7946) == expected


@pytest.mark.parametrize(("flags", "file", "needle"), [
    ({"bind": "host.example:1"}, {}, "bind: 'host.example:1' is not IP[:PORT]"),
    ({"bind": "1.2.3.4:70000"}, {}, "port 70000"),
    ({"runtime": "docker"}, {}, "runtime: 'docker' is not one of podman, none"),
    ({"labels": ("novalue",)}, {}, "label: 'novalue' must be KEY=VALUE"),
    ({}, {"agent": {"colour": 1}}, "unknown [agent] key(s) ['colour']"),
    ({}, {"gossip": {"probe_interval": 1}}, "unknown [gossip] key(s) ['probe_interval']"),
    ({}, {"gossip": {"profile": "wan"}}, "gossip.profile: 'wan'"),
    ({}, {"gossip": {"probe_timeout_s": 5.0}}, "probe_timeout_s must be below"),
    ({}, {"nodes": {}}, "unknown table(s) ['nodes']"),
])
def test_bad_settings_are_refused_with_the_setting_named(flags: dict[str, object], file: dict[str, object],
                                                         needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        build(flags, file)  # type: ignore[arg-type]
    assert needle in str(info.value)


def test_a_single_join_address_or_label_string_in_the_file_means_a_list_of_one() -> None:
    config = build({}, {"agent": {"join": "10.0.0.1", "labels": "zone=a"}})
    assert config.join == (("10.0.0.1", 7946),) and config.labels == (("zone", "a"),)


def test_the_readme_config_example_sets_every_agent_key_and_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Agent config file", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    file = tmp_path / "agent.toml"
    file.write_text(example)
    table = load_file(file)
    assert set(table["agent"]) == set(AGENT_KEYS)
    config = build({}, table)
    assert config.join and config.token and config.labels and config.subnet
    for key in AGENT_KEYS:  # and each is described in the list under the example
        assert f"`{key}`" in section.split("```", 2)[2].split("\n### ", 1)[0], key


def test_the_api_also_answers_on_loopback_beside_a_specific_address() -> None:
    assert _loopback_beside("198.18.0.11") == "127.0.0.1"
    assert _loopback_beside("2001:db8::1") == "::1"
    assert _loopback_beside("127.0.0.2") is None  # loopback already (agents sharing a host on 127.0.0.x)
    assert _loopback_beside("0.0.0.0") is None and _loopback_beside("::") is None
    assert _loopback_beside("api.example") is None
