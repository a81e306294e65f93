"""node.hostnet without root: the exact `ip` and `nft` commands converge runs, against a fake host that
answers them like the kernel does (tests/e2e/test_hostnet.py runs the real ones in network namespaces)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import subprocess
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from node import hostnet
from node.hostnet import HostNetError, parse_routes, route_command
from node.routes import PeerNet, Route, RouteAction, RouteChange

OWN = "198.19.1.0/24"
B = PeerNet("node-b", "198.19.2.0/24", "198.18.0.12")
C = PeerNet("node-c", "198.19.3.0/24", "198.18.0.13")
SHOW = ["ip", "-4", "-j", "route", "show", "proto", "83"]
LIST = ["nft", "list", "table", "inet", "shoal"]
APPLY = ["nft", "-f", "-"]


def replace_b() -> list[str]:
    return ["ip", "route", "replace", "198.19.2.0/24", "via", "198.18.0.12", "proto", "83", "metric", "83"]


@dataclass
class FakeHost:
    """A routing table and an nft ruleset that answer `ip` and `nft` as the kernel would; records every
    command and the thread it ran on."""

    routes: list[dict[str, Any]] = field(default_factory=list)  # {"dst", "gateway", "protocol", "metric"}
    table: str | None = None  # the last script applied to Shoal's table
    unreachable: set[str] = field(default_factory=set)  # gateways the kernel refuses
    broken: set[str] = field(default_factory=set)  # first words of commands that fail outright ("ip", "nft")
    ran: list[list[str]] = field(default_factory=list)
    threads: set[str] = field(default_factory=set)

    def run(self, cmd: tuple[str, ...], *, input: str | None = None, **_: Any) -> subprocess.CompletedProcess[str]:
        self.ran.append(list(cmd))
        self.threads.add(threading.current_thread().name)
        if cmd[0] in self.broken:
            return self.done(cmd, 1, err="Error: Operation not permitted")
        if cmd[0] == "nft":
            return self.nft(cmd, input or "")
        return self.ip(list(cmd))

    def ip(self, cmd: list[str]) -> subprocess.CompletedProcess[str]:
        if cmd == SHOW:
            shown = [{k: v for k, v in r.items() if k != "protocol"} for r in self.routes if r["protocol"] == "83"]
            return self.done(cmd, 0, out=json.dumps(shown))
        verb, dst, args = cmd[2], cmd[3], dict(zip(cmd[4::2], cmd[5::2], strict=True))
        if verb == "replace":
            if args["via"] in self.unreachable:
                return self.done(cmd, 2, err="Error: Nexthop has invalid gateway.")
            self.routes = [r for r in self.routes if (r["dst"], r["metric"]) != (dst, int(args["metric"]))]
            self.routes.append({"dst": dst, "gateway": args["via"], "protocol": args["proto"],
                                "metric": int(args["metric"])})
            return self.done(cmd, 0)
        match = [r for r in self.routes if r["dst"] == dst and r["protocol"] == args["proto"]
                 and args.get("via", r["gateway"]) == r["gateway"]]
        if not match:
            return self.done(cmd, 2, err="RTNETLINK answers: No such process")
        self.routes.remove(match[0])
        return self.done(cmd, 0)

    def nft(self, cmd: tuple[str, ...], script: str) -> subprocess.CompletedProcess[str]:
        if list(cmd) == LIST:
            if self.table is None:
                return self.done(cmd, 1, err="Error: No such file or directory")
            return self.done(cmd, 0, out=self.table.split("delete table inet shoal\n")[1])
        self.table = script if "{" in script else None
        return self.done(cmd, 0)

    @staticmethod
    def done(cmd: Any, code: int, out: str = "", err: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(cmd, code, out, err)

    def changes(self) -> list[list[str]]:
        """The commands that changed something (every one but the two that observe)."""
        return [cmd for cmd in self.ran if cmd not in (SHOW, LIST)]


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    fake = FakeHost()
    monkeypatch.setattr(subprocess, "run", fake.run)
    return fake


def converge(own: str | None, peers: list[PeerNet]) -> list[str]:
    return asyncio.run(hostnet.converge(own, peers))


def test_first_converge_adds_the_route_and_the_table(host: FakeHost) -> None:
    assert converge(OWN, [B]) == []
    assert host.ran == [SHOW, replace_b(), LIST, APPLY]
    assert host.table is not None and "elements = { 198.19.1.0/24, 198.19.2.0/24 }" in host.table


def test_second_converge_only_observes(host: FakeHost) -> None:
    converge(OWN, [B])
    host.ran.clear()
    assert converge(OWN, [B]) == []
    assert host.ran == [SHOW, LIST]


def test_converge_runs_off_the_event_loop_thread(host: FakeHost) -> None:
    converge(OWN, [B])
    assert threading.main_thread().name not in host.threads


def test_gone_peer_loses_its_route_and_leaves_the_operators(host: FakeHost) -> None:
    operator = {"dst": "198.19.2.0/24", "gateway": "198.18.0.99", "protocol": "static", "metric": 0}
    host.routes.append(operator)
    converge(OWN, [B, C])
    host.ran.clear()
    converge(OWN, [C])
    assert host.changes() == [["ip", "route", "del", "198.19.2.0/24", "via", "198.18.0.12", "proto", "83"],
                              APPLY]
    assert operator in host.routes
    assert [r["dst"] for r in host.routes if r["protocol"] == "83"] == ["198.19.3.0/24"]


def test_changed_gateway_is_replaced_in_place(host: FakeHost) -> None:
    converge(OWN, [B])
    host.ran.clear()
    converge(OWN, [PeerNet(B.node_id, B.subnet, "198.18.0.42")])
    assert host.changes() == [["ip", "route", "replace", "198.19.2.0/24", "via", "198.18.0.42", "proto", "83",
                               "metric", "83"]]


def test_conflicts_and_refused_routes_are_warnings_and_the_rest_is_applied(host: FakeHost) -> None:
    host.unreachable.add("198.18.0.12")
    warnings = converge(OWN, [B, C, PeerNet("x", OWN, "198.18.0.20")])
    assert warnings == [
        "no route to 198.19.1.0/24 of member x: overlaps this node's subnet 198.19.1.0/24",
        "`ip route replace 198.19.2.0/24 via 198.18.0.12 proto 83 metric 83` failed (exit 2): "
        "Error: Nexthop has invalid gateway.",
    ]
    assert [r["dst"] for r in host.routes] == ["198.19.3.0/24"]
    assert host.table is not None


def test_a_route_already_gone_is_not_an_error(host: FakeHost) -> None:
    hostnet.apply([RouteChange(RouteAction.DELETE, Route("198.19.2.0/24", "198.18.0.12"))])


def test_failing_observation_raises_naming_the_command(host: FakeHost) -> None:
    host.broken.add("ip")
    with pytest.raises(HostNetError, match=r"`ip -4 -j route show proto 83` failed \(exit 1\): Error: Operation"):
        converge(OWN, [B])


def test_failing_nft_raises_naming_the_command(host: FakeHost) -> None:
    host.broken.add("nft")
    with pytest.raises(HostNetError, match=r"`nft list table inet shoal` failed \(exit 1\): Error: Operation"):
        converge(OWN, [B])


def test_withdraw_removes_shoals_routes_and_table_only(host: FakeHost) -> None:
    operator = {"dst": "198.19.9.0/24", "gateway": "198.18.0.99", "protocol": "static", "metric": 0}
    host.routes.append(operator)
    converge(OWN, [B, C])
    asyncio.run(hostnet.withdraw())
    asyncio.run(hostnet.withdraw())
    assert (host.routes, host.table) == ([operator], None)


def test_missing_tool_is_named(host: FakeHost, monkeypatch: pytest.MonkeyPatch) -> None:
    def absent(cmd: tuple[str, ...], **_: Any) -> subprocess.CompletedProcess[str]:
        raise FileNotFoundError(cmd[0])

    monkeypatch.setattr(subprocess, "run", absent)
    with pytest.raises(HostNetError, match="ip is not on PATH"):
        hostnet.observe_routes()


# --- pure helpers ---------------------------------------------------------------------------


def test_route_commands_carry_shoals_protocol_and_metric() -> None:
    route = Route("198.19.2.0/24", "198.18.0.12")
    assert route_command(RouteChange(RouteAction.REPLACE, route)) == tuple(replace_b())
    assert route_command(RouteChange(RouteAction.DELETE, route)) == (
        "ip", "route", "del", "198.19.2.0/24", "via", "198.18.0.12", "proto", "83")
    assert route_command(RouteChange(RouteAction.DELETE, Route("198.19.2.0/24", ""))) == (
        "ip", "route", "del", "198.19.2.0/24", "proto", "83")


@pytest.mark.parametrize(
    ("text", "routes"),
    [
        ("", set()),
        ("[]", set()),
        ('[{"dst":"198.19.2.0/24","gateway":"198.18.0.12","dev":"eth0","metric":83,"flags":[]}]',
         {Route("198.19.2.0/24", "198.18.0.12")}),
        ('[{"dst":"198.19.23.1","gateway":"198.18.0.12"}]', {Route("198.19.23.1/32", "198.18.0.12")}),
        ('[{"dst":"default","gateway":"198.18.0.1"}]', {Route("0.0.0.0/0", "198.18.0.1")}),
        ('[{"dst":"198.19.2.0/24","dev":"eth0"}]', {Route("198.19.2.0/24", "")}),
        ('[{"dst":"nonsense"}, 7]', set()),
    ],
)
def test_parse_routes(text: str, routes: set[Route]) -> None:
    assert parse_routes(text) == routes


def test_parse_routes_refuses_what_is_not_a_json_array() -> None:
    with pytest.raises(HostNetError, match="not a JSON array"):
        parse_routes('{"dst": "x"}')


def test_nat_model_holds_the_given_subnets() -> None:
    assert [str(n) for n in hostnet.nat_model(["198.19.2.0/24", OWN]).cluster_subnets] == [OWN, "198.19.2.0/24"]


LO = json.dumps([{"ifname": "lo", "addr_info": [
    {"family": "inet", "local": "127.0.0.1", "prefixlen": 8},
    {"family": "inet", "local": "198.19.0.10", "prefixlen": 32},
    {"family": "inet", "local": "198.19.0.53", "prefixlen": 32},
    {"family": "inet", "local": "10.9.9.9", "prefixlen": 32},
]}])


def test_held_addresses_are_the_32s_on_lo_inside_the_service_range() -> None:
    assert hostnet.parse_held(LO, ipaddress.IPv4Network("198.19.0.0/24")) == {"198.19.0.10", "198.19.0.53"}


def test_hold_addresses_adds_the_missing_and_removes_only_its_own_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[tuple[str, ...]] = []

    def run(cmd: tuple[str, ...]) -> str:
        ran.append(cmd)
        return LO if cmd[:3] == ("ip", "-4", "-j") else ""

    monkeypatch.setattr(hostnet, "_run", run)
    changes = asyncio.run(hostnet.hold_addresses(["198.19.0.53", "198.19.0.11", "10.1.1.1"], "198.19.0.0/24"))
    assert changes == ["add 198.19.0.11/32", "del 198.19.0.10/32"]
    assert ran[1:] == [("ip", "addr", "add", "198.19.0.11/32", "dev", "lo"),
                       ("ip", "addr", "del", "198.19.0.10/32", "dev", "lo")]


def test_keep_leaves_an_existing_table_as_it_is_and_still_makes_a_missing_one(host: FakeHost) -> None:
    """A restarted agent that has not rejoined yet: the last agent's table (its policies) stays enforced."""
    asyncio.run(hostnet.converge(OWN, [B], None, True))
    assert APPLY in host.ran  # nothing there: the null binding at least
    before = host.table
    host.ran.clear()
    asyncio.run(hostnet.converge(OWN, [B, C], None, True))
    assert APPLY not in host.ran and host.table == before  # a changed peer set does not touch it
    asyncio.run(hostnet.converge(OWN, [B, C], None, False))
    assert APPLY in host.ran and host.table != before


# `ip -j -d -4 addr show` on a lab host (trimmed): the shoal network's bridge holds the subnet's gateway.
LINKS = json.dumps([
    {"ifindex": 1, "ifname": "lo", "address": "00:00:00:00:00:00",
     "addr_info": [{"local": "127.0.0.1", "prefixlen": 8}]},
    {"ifindex": 2, "ifname": "eth0", "address": "76:80:34:3c:24:aa", "linkinfo": {"info_kind": "veth"},
     "addr_info": [{"local": "198.18.0.13", "prefixlen": 24}]},
    {"ifindex": 3, "ifname": "podman0", "address": "0a:00:00:00:00:01", "linkinfo": {"info_kind": "bridge"},
     "addr_info": [{"local": "10.88.0.1", "prefixlen": 16}]},
    {"ifindex": 4, "ifname": "podman1", "address": "a6:af:fc:c3:1a:a2", "linkinfo": {"info_kind": "bridge"},
     "addr_info": [{"local": "198.19.3.1", "prefixlen": 24}]},
])
PIN = ("ip", "link", "set", "dev", "podman1", "address", "a6:af:fc:c3:1a:a2")


def test_the_bridge_of_a_subnet_is_the_bridge_holding_an_address_inside_it() -> None:
    assert hostnet.bridge_of("198.19.3.0/24", LINKS) == hostnet.Bridge("podman1", 4, "a6:af:fc:c3:1a:a2")
    assert hostnet.bridge_of("198.19.9.0/24", LINKS) is None  # no container on the network yet: no bridge
    assert hostnet.bridge_of("198.18.0.0/24", LINKS) is None  # an address inside, but on a veth, not a bridge
    assert hostnet.bridge_of("198.19.3.0/24", "") is None
    with pytest.raises(hostnet.HostNetError, match="not a JSON array"):
        hostnet.bridge_of("198.19.3.0/24", "{}")


def test_a_name_or_address_ip_would_not_take_is_never_passed_on() -> None:
    odd = json.dumps([{"ifindex": 5, "ifname": name, "address": mac, "linkinfo": {"info_kind": "bridge"},
                       "addr_info": [{"local": "198.19.3.1", "prefixlen": 24}]}
                      for name, mac in (("br 0", "a6:af:fc:c3:1a:a2"), ("br1", "up"), ("br2", "A6:AF:FC:C3:1A:A2"))])
    assert hostnet.bridge_of("198.19.3.0/24", odd) is None


class FakeIp:
    """`ip` as pin_now sees it: a listing that can change (`links`), and every command kept."""

    def __init__(self, links: str) -> None:
        self.links = links
        self.ran: list[tuple[str, ...]] = []

    def __call__(self, cmd: tuple[str, ...]) -> str:
        if cmd[:2] != ("ip", "-j"):
            self.ran.append(cmd)
        return self.links


def test_each_bridge_is_pinned_once_to_the_address_it_has(monkeypatch: pytest.MonkeyPatch) -> None:
    ip = FakeIp(LINKS)
    monkeypatch.setattr(hostnet, "_run", ip)
    pin = hostnet.BridgePin()
    assert asyncio.run(pin.pin("198.19.3.0/24")) == "podman1"
    assert asyncio.run(pin.pin("198.19.3.0/24")) is None  # later starts: nothing to do
    assert ip.ran == [PIN]
    # The network's last container left and the engine made the bridge again: a new ifindex, pinned again.
    ip.links = LINKS.replace('"ifindex": 4', '"ifindex": 9')
    assert pin.pin_now("198.19.3.0/24") == "podman1"
    assert ip.ran == [PIN, PIN]


def test_no_bridge_yet_means_nothing_to_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    ip = FakeIp("[]")
    monkeypatch.setattr(hostnet, "_run", ip)
    assert hostnet.BridgePin().pin_now("198.19.3.0/24") is None
    assert ip.ran == []


def test_a_refused_pin_is_tried_again_on_the_next_call(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, ...]] = []

    def refuse_once(cmd: tuple[str, ...]) -> str:
        if cmd[:2] == ("ip", "-j"):
            return LINKS
        calls.append(cmd)
        if len(calls) == 1:
            raise hostnet.HostNetError(["`ip link set` failed (exit 2): RTNETLINK answers: Device or resource busy"])
        return ""

    monkeypatch.setattr(hostnet, "_run", refuse_once)
    pin = hostnet.BridgePin()
    with pytest.raises(hostnet.HostNetError, match="busy"):
        pin.pin_now("198.19.3.0/24")
    assert pin.pin_now("198.19.3.0/24") == "podman1"
    assert calls == [PIN, PIN]
