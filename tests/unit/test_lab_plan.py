"""The lab's pure plan: names, addresses, routes and commands for N hosts, grow/shrink diffs,
convergence judgement, and the operator errors of `shoal lab` that need no network namespace."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli import lab_group
from node.lab import plan, readiness
from node.lab.plan import BRIDGE, Host, Observed

# --- hosts: everything follows from the index -------------------------------------------------


def test_host_names_and_addresses_follow_from_its_index() -> None:
    h = Host(2)
    assert (h.name, h.netns, h.veth, h.netns_path) == ("h2", "shoal-h2", "shoal-h2-br", "/run/netns/shoal-h2")
    assert (h.address, h.subnet) == ("198.18.0.12", "198.19.2.0/24")
    assert (h.gossip, h.api_url) == ("198.18.0.12:7946", "http://198.18.0.12:7947")
    assert h.route == ("198.19.2.0/24", "198.18.0.12")


def test_highest_host_stays_below_broadcast_and_fits_interface_names() -> None:
    last = Host(plan.MAX_HOSTS)
    assert last.address == "198.18.0.254"
    assert len(last.veth) <= 15  # IFNAMSIZ - 1


@pytest.mark.parametrize("index", [0, -1, plan.MAX_HOSTS + 1])
def test_host_index_outside_range_is_refused(index: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        Host(index)


@pytest.mark.parametrize(("text", "index"), [("h1", 1), ("h12", 12), ("h244", 244)])
def test_parse_host_accepts_lab_host_names(text: str, index: int) -> None:
    assert plan.parse_host(text) == index


@pytest.mark.parametrize("text", ["h0", "h01", "3", "H3", "shoal-h3", "h3 ", "h245", "host1", ""])
def test_parse_host_rejects_anything_else(text: str) -> None:
    assert plan.parse_host(text) is None


def test_only_shoal_host_names_are_recognised_on_the_machine() -> None:
    assert plan.netns_index("shoal-h3") == 3
    assert plan.veth_index("shoal-h3-br") == 3
    for foreign in ["lab-h3", "shoal-br0", "shoal-h3-brx", "xshoal-h3", "shoal-h0"]:
        assert plan.netns_index(foreign) is None
        assert plan.veth_index(foreign) is None


@pytest.mark.parametrize(
    ("dst", "via", "ours"),
    [
        ("198.19.2.0/24", "198.18.0.12", True),
        ("198.19.200.0/24", "198.18.0.99", True),
        ("default", "198.18.0.1", False),
        ("198.19.0.0/16", "198.18.0.12", False),
        ("10.0.0.0/24", "198.18.0.12", False),
        ("198.19.2.0/24", "192.0.2.1", False),
        ("198.19.2.0/24", None, False),
    ],
)
def test_lab_routes_are_container_subnets_via_the_lab_lan(dst: str, via: str | None, ours: bool) -> None:
    assert plan.is_lab_route(dst, via) is ours


# --- network commands -----------------------------------------------------------------------------


def full(size: int) -> Observed:
    """What the machine holds once a lab of `size` is up."""
    hosts = plan.hosts(size)
    routes = {plan.ROOT_NS: plan.wanted_routes(range(1, size + 1), plan.ROOT_NS)}
    routes |= {h.netns: plan.wanted_routes(range(1, size + 1), h.netns) for h in hosts}
    return Observed(
        netns=frozenset(h.netns for h in hosts),
        links=frozenset({BRIDGE} | {h.veth for h in hosts}),
        routes=routes,
    )


def test_new_host_gets_netns_wire_address_default_route_and_forwarding() -> None:
    assert plan.host_commands(Host(2), Observed()) == [
        ("ip", "netns", "add", "shoal-h2"),
        ("ip", "link", "add", "shoal-h2-br", "type", "veth", "peer", "name", "eth0", "netns", "shoal-h2"),
        ("ip", "link", "set", "shoal-h2-br", "master", "shoal-br0", "up"),
        ("ip", "-n", "shoal-h2", "link", "set", "lo", "up"),
        ("ip", "-n", "shoal-h2", "link", "set", "eth0", "up"),
        ("ip", "-n", "shoal-h2", "addr", "replace", "198.18.0.12/24", "dev", "eth0"),
        ("ip", "-n", "shoal-h2", "route", "replace", "default", "via", "198.18.0.1"),
        ("nsenter", "--net=/run/netns/shoal-h2", "sysctl", "-qw", "net.ipv4.ip_forward=1"),
    ]


def test_bridge_is_created_once_and_records_its_owner() -> None:
    fresh = plan.bridge_commands(Observed(), "/var/tmp/shoal-lab")
    assert fresh[0] == ("ip", "link", "add", "shoal-br0", "type", "bridge")
    assert ("ip", "addr", "replace", "198.18.0.1/24", "dev", "shoal-br0") in fresh
    assert ("ip", "link", "set", "dev", "shoal-br0", "alias", "/var/tmp/shoal-lab") in fresh
    again = plan.bridge_commands(full(1), "/var/tmp/shoal-lab")
    assert not [c for c in again if "add" in c]


def test_fresh_lab_routes_every_container_subnet_from_every_other_namespace() -> None:
    cmds = plan.route_commands([1, 2, 3], Observed())
    assert ("ip", "route", "replace", "198.19.2.0/24", "via", "198.18.0.12", "dev", "shoal-br0") in cmds
    in_h1 = [c for c in cmds if c[:3] == ("ip", "-n", "shoal-h1")]
    assert in_h1 == [
        ("ip", "-n", "shoal-h1", "route", "replace", "198.19.2.0/24", "via", "198.18.0.12", "dev", "eth0"),
        ("ip", "-n", "shoal-h1", "route", "replace", "198.19.3.0/24", "via", "198.18.0.13", "dev", "eth0"),
    ]
    assert len(cmds) == 3 + 3 * 2  # root ns: 3, each host: the 2 others; never its own subnet


def test_up_again_creates_nothing_and_touches_no_route() -> None:
    cmds = plan.network_up_commands([1, 2, 3], full(3), "/lab")
    assert not [c for c in cmds if "add" in c or ("route" in c and "default" not in c)]


def test_grow_creates_only_the_new_host_and_adds_its_routes_everywhere() -> None:
    cmds = plan.network_up_commands([1, 2, 3], full(2), "/lab")
    assert [c for c in cmds if "add" in c] == [
        ("ip", "netns", "add", "shoal-h3"),
        ("ip", "link", "add", "shoal-h3-br", "type", "veth", "peer", "name", "eth0", "netns", "shoal-h3"),
    ]
    routes = {(c[:3], c[-5]) for c in cmds if "route" in c and "default" not in c}
    assert routes == {
        (("ip", "route", "replace"), "198.19.3.0/24"),
        (("ip", "-n", "shoal-h1"), "198.19.3.0/24"),
        (("ip", "-n", "shoal-h2"), "198.19.3.0/24"),
        (("ip", "-n", "shoal-h3"), "198.19.1.0/24"),
        (("ip", "-n", "shoal-h3"), "198.19.2.0/24"),
    }
    assert not [c for c in cmds if "del" in c]


def test_shrink_deletes_stale_routes_in_root_and_remaining_hosts() -> None:
    assert plan.route_commands([1, 2], full(3)) == [
        ("ip", "route", "del", "198.19.3.0/24", "via", "198.18.0.13"),
        ("ip", "-n", "shoal-h1", "route", "del", "198.19.3.0/24", "via", "198.18.0.13"),
        ("ip", "-n", "shoal-h2", "route", "del", "198.19.3.0/24", "via", "198.18.0.13"),
    ]


def test_start_brings_one_host_back_and_leaves_other_links_alone() -> None:
    observed = full(3)
    cmds = plan.start_commands(2, range(1, 4), observed)
    assert ("ip", "link", "set", "shoal-h2-br", "master", BRIDGE, "up") in cmds
    assert not [c for c in cmds if "shoal-h1-br" in c or "shoal-h3-br" in c]
    assert not [c for c in cmds if c[:3] == ("ip", "link", "add") or c[:3] == ("ip", "netns", "add")]


def test_start_of_a_rebooted_host_rebuilds_its_netns_and_routes() -> None:
    gone = Observed(
        netns=full(3).netns - {"shoal-h2"},
        links=full(3).links - {"shoal-h2-br"},
        routes={k: v for k, v in full(3).routes.items() if k != "shoal-h2"},
    )
    cmds = plan.start_commands(2, range(1, 4), gone)
    assert cmds[0] == ("ip", "netns", "add", "shoal-h2")
    assert ("ip", "-n", "shoal-h2", "route", "replace", "198.19.1.0/24", "via", "198.18.0.11", "dev", "eth0") in cmds


def test_removing_a_host_deletes_its_wire_before_its_netns() -> None:
    assert plan.host_remove_commands(3, full(3)) == [
        ("ip", "link", "del", "shoal-h3-br"),
        ("ip", "netns", "del", "shoal-h3"),
    ]
    assert plan.host_remove_commands(3, full(2)) == []


def test_down_removes_every_trace_it_finds_and_the_bridge_last() -> None:
    cmds = plan.network_down_commands(full(2))
    assert cmds == [
        ("ip", "route", "del", "198.19.1.0/24", "via", "198.18.0.11"),
        ("ip", "route", "del", "198.19.2.0/24", "via", "198.18.0.12"),
        ("ip", "link", "del", "shoal-h1-br"),
        ("ip", "netns", "del", "shoal-h1"),
        ("ip", "link", "del", "shoal-h2-br"),
        ("ip", "netns", "del", "shoal-h2"),
        ("ip", "link", "del", "shoal-br0"),
    ]


def test_down_of_a_half_built_lab_removes_only_what_exists() -> None:
    half = Observed(netns=frozenset({"shoal-h7"}), links=frozenset({"shoal-h8-br"}))
    assert plan.network_down_commands(half) == [
        ("ip", "netns", "del", "shoal-h7"),
        ("ip", "link", "del", "shoal-h8-br"),
    ]
    assert plan.network_down_commands(Observed()) == []


@pytest.mark.parametrize(
    ("present", "size", "add", "keep", "remove"),
    [
        (set(), 3, (1, 2, 3), (), ()),
        ({1, 2, 3}, 3, (), (1, 2, 3), ()),
        ({1, 2, 3}, 5, (4, 5), (1, 2, 3), ()),
        ({1, 2, 3}, 2, (), (1, 2), (3,)),
        ({1, 3, 9}, 3, (2,), (1, 3), (9,)),
    ],
)
def test_resize_diffs_present_hosts_against_h1_to_hn(
    present: set[int], size: int, add: tuple[int, ...], keep: tuple[int, ...], remove: tuple[int, ...]
) -> None:
    assert plan.resize(present, size) == plan.Resize(add=add, keep=keep, remove=remove)


def test_observed_indices_include_half_built_hosts() -> None:
    found = Observed(netns=frozenset({"shoal-h1", "other"}), links=frozenset({BRIDGE, "shoal-h4-br"}))
    assert found.indices() == {1, 4}


# --- agent command lines --------------------------------------------------------------------------


def test_commands_enter_only_the_network_namespace() -> None:
    # P1: `ip netns exec` remounts /sys and breaks podman; nsenter --net enters the netns alone.
    cmd = plan.in_netns(Host(3), ["podman", "ps"])
    assert cmd == ("nsenter", "--net=/run/netns/shoal-h3", "podman", "ps")


def test_first_host_initialises_the_cluster() -> None:
    assert plan.init_argv("/py", Host(1), "/lab/h1/data") == (
        "/py", "-m", "node", "init", "--data", "/lab/h1/data", "--cluster", "lab", "--name", "h1",
    )


def test_first_start_of_a_later_host_joins_through_h1_with_the_token() -> None:
    labels = {"zone": "b", "disk": "ssd"}
    argv = plan.agent_argv("/py", Host(2), "/lab/h2/data", "/lab/h2/podman.sock", labels, ("198.18.0.11:7946", "T"))
    assert argv == (
        "/py", "-m", "node", "agent", "--data", "/lab/h2/data", "--name", "h2",
        "--bind", "198.18.0.12:7946", "--api", "198.18.0.12:7947",
        "--podman-socket", "/lab/h2/podman.sock", "--subnet", "198.19.2.0/24",
        "--label", "disk=ssd", "--label", "zone=b",
        "--join", "198.18.0.11:7946", "--token", "T",
    )  # fmt: skip


def test_restart_relies_on_the_data_dir_alone() -> None:
    argv = plan.agent_argv("/py", Host(3), "/lab/h3/data", "/lab/h3/podman.sock", {}, None)
    assert "--join" not in argv and "--token" not in argv
    assert argv[-8:] == (
        "--bind", "198.18.0.13:7946", "--api", "198.18.0.13:7947",
        "--podman-socket", "/lab/h3/podman.sock", "--subnet", "198.19.3.0/24",
    )  # fmt: skip


def test_agent_runs_containers_through_its_hosts_podman_on_its_hosts_subnet() -> None:
    argv = plan.agent_argv("/py", Host(7), "/d", "/lab/h7/podman.sock", {}, None)
    assert ("--podman-socket", "/lab/h7/podman.sock") in itertools.pairwise(argv)
    assert ("--subnet", "198.19.7.0/24") in itertools.pairwise(argv)
    assert "--runtime" not in argv  # podman, the default


# --- labels ---------------------------------------------------------------------------------------


def test_label_names_host_key_and_value() -> None:
    assert plan.parse_label("h2:disk=ssd") == (2, "disk", "ssd")
    assert plan.parse_label("h1:note=a=b") == (1, "note", "a=b")
    assert plan.parse_label("h1:empty=") == (1, "empty", "")


@pytest.mark.parametrize("text", ["disk=ssd", "h1:disk", "h1:=ssd", "x1:disk=ssd", "h0:a=b"])
def test_malformed_label_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="label"):
        plan.parse_label(text)


def test_labels_merge_into_stored_ones_and_leave_with_removed_hosts() -> None:
    stored = {1: {"disk": "hdd"}, 3: {"zone": "c"}}
    merged = plan.merge_labels(stored, [(1, "disk", "ssd"), (2, "zone", "b")], size=2)
    assert merged == {1: {"disk": "ssd"}, 2: {"zone": "b"}}


def test_label_for_a_host_beyond_the_lab_names_the_hosts() -> None:
    with pytest.raises(ValueError, match="h5, but the lab will have h1, h2, h3"):
        plan.merge_labels({}, [(5, "k", "v")], size=3)


# --- convergence ------------------------------------------------------------------------------------


def members(**statuses: str) -> list[dict[str, object]]:
    return [
        {"name": n, "id": n, "address": "", "status": s, "incarnation": 1, "labels": {}}
        for n, s in statuses.items()
    ]


def view(**statuses: str) -> readiness.View:
    return readiness.View(statuses=readiness.member_statuses(members(**statuses)))


def test_members_payload_becomes_name_to_status() -> None:
    assert readiness.member_statuses(members(h1="alive", h2="dead")) == {"h1": "alive", "h2": "dead"}


def test_a_recreated_name_counts_as_alive_if_any_entry_is() -> None:
    payload = [*members(h1="alive"), {"name": "h3", "status": "left"}, {"name": "h3", "status": "alive"}]
    assert readiness.member_statuses(payload)["h3"] == "alive"


@pytest.mark.parametrize(
    "payload", [{"h1": "alive"}, ["h1"], [{"name": "h1"}], [{"name": 1, "status": "alive"}]]
)
def test_malformed_members_payload_is_refused(payload: object) -> None:
    with pytest.raises(ValueError):
        readiness.member_statuses(payload)


def test_converged_when_every_host_sees_every_host_alive() -> None:
    views = {n: view(h1="alive", h2="alive", h3="left") for n in ["h1", "h2"]}
    assert readiness.lagging(views, ["h1", "h2"]) == []


def test_lagging_hosts_are_those_missing_a_peer_or_not_answering() -> None:
    views = {
        "h1": view(h1="alive", h2="alive", h3="suspect"),
        "h2": view(h1="alive", h2="alive", h3="alive"),
        "h3": readiness.View(error="connection refused"),
    }
    assert readiness.lagging(views, ["h1", "h2", "h3"]) == ["h1", "h3"]


def test_description_says_who_sees_what() -> None:
    views = {"h1": view(h1="alive", h2="dead", h4="left"), "h2": readiness.View(error="timed out")}
    assert readiness.describe(views, ["h1", "h2"]) == (
        "h1 sees h1=alive h2=dead (also h4=left)\nh2: no answer (timed out)"
    )


# --- operator errors (no namespace is touched) --------------------------------------------------------


@pytest.fixture
def lab_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SHOAL_LAB_DIR", str(tmp_path / "lab"))
    return tmp_path / "lab"


def test_lab_commands_need_root(lab_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    for args in (["up", "2"], ["down"], ["status"], ["env", "h1"], ["exec", "h1", "--", "true"]):
        result = CliRunner().invoke(lab_group, args)
        assert result.exit_code == 1, args
        assert "shoal lab needs root (network namespaces)" in result.output
    assert not lab_dir.exists()


def test_help_needs_no_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert CliRunner().invoke(lab_group, ["up", "--help"]).exit_code == 0


@pytest.mark.parametrize("args", [["up", "0"], ["up", "x"], ["up", "--label", "disk=ssd"], ["exec", "h1"]])
def test_bad_usage_exits_2(args: list[str], lab_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert CliRunner().invoke(lab_group, args).exit_code == 2


def test_unknown_host_names_the_hosts_that_exist(lab_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    result = CliRunner().invoke(lab_group, ["env", "h9"])
    assert result.exit_code == 1 and "no lab is up" in result.output
    lab_dir.mkdir()
    (lab_dir / "lab.json").write_text(json.dumps({"size": 3, "labels": {}}))
    result = CliRunner().invoke(lab_group, ["env", "h9"])
    assert result.exit_code == 1 and "unknown host 'h9'; the lab has h1, h2, h3" in result.output


def test_env_points_clients_at_the_host_api_and_its_podman(lab_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    lab_dir.mkdir()
    (lab_dir / "lab.json").write_text(json.dumps({"size": 2, "labels": {}}))
    result = CliRunner().invoke(lab_group, ["env", "h2"])
    assert result.exit_code == 0
    assert result.output == (
        "export SHOAL_HOST=http://198.18.0.12:7947\n"
        f"export CONTAINER_HOST=unix://{lab_dir.absolute()}/h2/podman.sock\n"
    )
