"""The lab as data: host index -> names, addresses, routes, and the commands that build or remove them.

Role: every decision `shoal lab` makes about the network and the agents' command lines.
Boundary: pure; no process, file or clock. netns.py observes the machine into an `Observed` and runs the
commands returned here; agents.py runs the argv lists. Names and addresses are fixed by the project:
host i is netns `shoal-h<i>` at 198.18.0.(10+i)/24 on bridge `shoal-br0` (198.18.0.1), and owns the
container subnet 198.19.i.0/24, routed via its address from every other host and from the root ns.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

BRIDGE = "shoal-br0"
GATEWAY = "198.18.0.1"
LAN_PREFIX = 24
HOST_OFFSET = 10  # host i is 198.18.0.(10+i): .2-.10 stay free for lab services (registry on .1)
# The last host address must stay below the broadcast .255; the container subnet 198.19.i.0/24 fits too.
MAX_HOSTS = 254 - HOST_OFFSET
GOSSIP_PORT = 7946
API_PORT = 7947
NETNS_DIR = "/run/netns"
CLUSTER_NAME = "lab"
ROOT_NS = ""  # key of the root network namespace in route maps

_LAN = ipaddress.IPv4Network(f"{GATEWAY}/{LAN_PREFIX}", strict=False)
_CONTAINERS = ipaddress.IPv4Network("198.19.0.0/16")
_HOST_NAME = re.compile(r"h([1-9][0-9]{0,2})")
_NETNS_NAME = re.compile(r"shoal-h([1-9][0-9]{0,2})")
_VETH_NAME = re.compile(r"shoal-h([1-9][0-9]{0,2})-br")

Cmd = tuple[str, ...]
Route = tuple[str, str]
"""A container-subnet route as (destination, gateway), e.g. ("198.19.2.0/24", "198.18.0.12")."""


@dataclass(frozen=True, slots=True)
class Host:
    """One lab host; everything about it follows from its index."""

    index: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= MAX_HOSTS:
            raise ValueError(f"host index {self.index} is outside 1..{MAX_HOSTS}")

    @property
    def name(self) -> str:
        return f"h{self.index}"

    @property
    def netns(self) -> str:
        return f"shoal-h{self.index}"

    @property
    def netns_path(self) -> str:
        return f"{NETNS_DIR}/{self.netns}"

    @property
    def veth(self) -> str:
        """The root-ns end of the host's wire; its peer is `eth0` inside the netns."""
        return f"shoal-h{self.index}-br"

    @property
    def address(self) -> str:
        return str(_LAN.network_address + HOST_OFFSET + self.index)

    @property
    def subnet(self) -> str:
        return f"198.19.{self.index}.0/24"

    @property
    def gossip(self) -> str:
        return f"{self.address}:{GOSSIP_PORT}"

    @property
    def api(self) -> str:
        return f"{self.address}:{API_PORT}"

    @property
    def api_url(self) -> str:
        return f"http://{self.api}"

    @property
    def route(self) -> Route:
        """The route every other namespace needs to reach this host's containers."""
        return (self.subnet, self.address)


def hosts(size: int) -> list[Host]:
    """The hosts of a lab of `size`: h1..hN."""
    return [Host(i) for i in range(1, size + 1)]


def parse_host(text: str) -> int | None:
    """`h3` -> 3; anything else (including `h0`, `3`, `shoal-h3`) -> None."""
    match = _HOST_NAME.fullmatch(text)
    if match is None:
        return None
    index = int(match.group(1))
    return index if index <= MAX_HOSTS else None


def netns_index(name: str) -> int | None:
    """`shoal-h3` -> 3, for netns found on the machine; other names are not the lab's."""
    match = _NETNS_NAME.fullmatch(name)
    return int(match.group(1)) if match else None


def veth_index(name: str) -> int | None:
    """`shoal-h3-br` -> 3, for links found in the root ns."""
    match = _VETH_NAME.fullmatch(name)
    return int(match.group(1)) if match else None


def is_lab_route(dst: str, gateway: str | None) -> bool:
    """True for a route the lab may own: a /24 in 198.19.0.0/16 via an address on the lab LAN."""
    try:
        net = ipaddress.IPv4Network(dst)
        via = ipaddress.IPv4Address(gateway) if gateway else None
    except ValueError:
        return False
    return net.prefixlen == 24 and net.subnet_of(_CONTAINERS) and via is not None and via in _LAN


@dataclass(frozen=True)
class Observed:
    """What of the lab's network exists on the machine now (only shoal-* names and lab routes)."""

    netns: frozenset[str] = frozenset()
    links: frozenset[str] = frozenset()  # root-ns link names: shoal-br0, shoal-hI-br
    # ROOT_NS or a netns name -> the lab routes (is_lab_route) present in it
    routes: Mapping[str, frozenset[Route]] = field(default_factory=dict)

    def indices(self) -> set[int]:
        """Host indices that left any trace: a netns or a veth."""
        found = {netns_index(n) for n in self.netns} | {veth_index(n) for n in self.links}
        return {i for i in found if i is not None}


@dataclass(frozen=True)
class Resize:
    """How a lab of the `present` hosts becomes a lab of `size` hosts."""

    add: tuple[int, ...]
    keep: tuple[int, ...]
    remove: tuple[int, ...]


def resize(present: Iterable[int], size: int) -> Resize:
    """Grow adds the missing indices up to `size`; shrink removes every index above it (P12)."""
    have = set(present)
    want = set(range(1, size + 1))
    return Resize(
        add=tuple(sorted(want - have)),
        keep=tuple(sorted(want & have)),
        remove=tuple(sorted(have - want)),
    )


def wanted_routes(indices: Iterable[int], namespace: str) -> frozenset[Route]:
    """Routes to every host's containers, except a host's own subnet inside that host."""
    return frozenset(Host(i).route for i in indices if Host(i).netns != namespace)


def bridge_commands(observed: Observed, owner: str) -> list[Cmd]:
    """Create (if missing) and configure the bridge; `owner` (the lab dir) goes in its alias."""
    cmds: list[Cmd] = []
    if BRIDGE not in observed.links:
        cmds.append(("ip", "link", "add", BRIDGE, "type", "bridge"))
    cmds += [
        ("ip", "addr", "replace", f"{GATEWAY}/{LAN_PREFIX}", "dev", BRIDGE),
        # The alias records which lab dir owns the network, so a second lab dir cannot adopt it.
        ("ip", "link", "set", "dev", BRIDGE, "alias", owner),
        ("ip", "link", "set", BRIDGE, "up"),
    ]
    return cmds


def host_commands(host: Host, observed: Observed) -> list[Cmd]:
    """Create (if missing) and configure one host; safe to repeat, and brings a stopped host's link up."""
    ns = ("ip", "-n", host.netns)
    cmds: list[Cmd] = []
    if host.netns not in observed.netns:
        cmds.append(("ip", "netns", "add", host.netns))
    if host.veth not in observed.links:
        peer = ("peer", "name", "eth0", "netns", host.netns)
        cmds.append(("ip", "link", "add", host.veth, "type", "veth", *peer))
    cmds += [
        ("ip", "link", "set", host.veth, "master", BRIDGE, "up"),
        (*ns, "link", "set", "lo", "up"),
        (*ns, "link", "set", "eth0", "up"),
        (*ns, "addr", "replace", f"{host.address}/{LAN_PREFIX}", "dev", "eth0"),
        # A default route lets software find its address by "connecting" to a public IP; the lab has
        # no NAT, so nothing leaves the machine.
        (*ns, "route", "replace", "default", "via", GATEWAY),
        # Forwarding in the host, so it can route to its containers' subnet.
        in_netns(host, ("sysctl", "-qw", "net.ipv4.ip_forward=1")),
    ]
    return cmds


def route_commands(indices: Iterable[int], observed: Observed) -> list[Cmd]:
    """Add missing container routes and delete stale ones, in the root ns and in every wanted host."""
    keep = sorted(set(indices))
    cmds: list[Cmd] = []
    for namespace in [ROOT_NS, *(Host(i).netns for i in keep)]:
        want = wanted_routes(keep, namespace)
        have = observed.routes.get(namespace, frozenset())
        prefix: Cmd = ("ip",) if namespace == ROOT_NS else ("ip", "-n", namespace)
        dev: Cmd = ("dev", BRIDGE) if namespace == ROOT_NS else ("dev", "eth0")
        for dst, via in sorted(have - want):
            cmds.append((*prefix, "route", "del", dst, "via", via))
        for dst, via in sorted(want - have):
            cmds.append((*prefix, "route", "replace", dst, "via", via, *dev))
    return cmds


def network_up_commands(indices: Sequence[int], observed: Observed, owner: str) -> list[Cmd]:
    """Everything to build or repair the network of the hosts `indices` (removal is separate)."""
    cmds = bridge_commands(observed, owner)
    for i in sorted(indices):
        cmds += host_commands(Host(i), observed)
    return cmds + route_commands(indices, observed)


def start_commands(index: int, indices: Iterable[int], observed: Observed) -> list[Cmd]:
    """Bring one host's network back (`lab start`): its netns, wire and link, and every container route;
    unlike network_up_commands, no other host's link is touched (a host stopped beside it stays down)."""
    return host_commands(Host(index), observed) + route_commands(indices, observed)


def host_remove_commands(index: int, observed: Observed) -> list[Cmd]:
    """Remove one host's wire and netns. Deleting the veth first also removes its peer `eth0`."""
    host = Host(index)
    cmds: list[Cmd] = []
    if host.veth in observed.links:
        cmds.append(("ip", "link", "del", host.veth))
    if host.netns in observed.netns:
        cmds.append(("ip", "netns", "del", host.netns))
    return cmds


def network_down_commands(observed: Observed) -> list[Cmd]:
    """Remove every trace of the lab found on the machine: root routes, hosts, bridge."""
    cmds: list[Cmd] = [
        ("ip", "route", "del", dst, "via", via) for dst, via in sorted(observed.routes.get(ROOT_NS, ()))
    ]
    for i in sorted(observed.indices()):
        cmds += host_remove_commands(i, observed)
    if BRIDGE in observed.links:
        cmds.append(("ip", "link", "del", BRIDGE))
    return cmds


def in_netns(host: Host, argv: Sequence[str]) -> Cmd:
    """Run argv in the host's network namespace only. Not `ip netns exec` (P1): that also unshares
    the mount namespace and remounts /sys, which hides the cgroup mounts podman needs."""
    return ("nsenter", f"--net={host.netns_path}", *argv)


def init_argv(python: str, host: Host, data: str) -> Cmd:
    """`shoal init` for host 1: creates the cluster; the join token is the last line of stdout.
    The name is given here too: init persists the node's name, and the agent keeps a persisted one."""
    return (python, "-m", "node", "init", "--data", data, "--cluster", CLUSTER_NAME, "--name", host.name)


def agent_argv(
    python: str,
    host: Host,
    data: str,
    podman_socket: str,
    labels: Mapping[str, str],
    join: tuple[str, str] | None,
) -> Cmd:
    """The agent of `host`, running containers (the default runtime, podman) through the host's own podman
    API service on `podman_socket`, on the host's container subnet. `join` is (seed address, token) for a
    first start; None restarts the agent from what its data dir holds (or runs host 1, which created the
    cluster)."""
    argv: list[str] = [python, "-m", "node", "agent", "--data", data, "--name", host.name]
    argv += ["--bind", host.gossip, "--api", host.api]
    argv += ["--podman-socket", podman_socket, "--subnet", host.subnet]
    for key, value in sorted(labels.items()):
        argv += ["--label", f"{key}={value}"]
    if join is not None:
        argv += ["--join", join[0], "--token", join[1]]
    return tuple(argv)


def parse_label(text: str) -> tuple[int, str, str]:
    """`h2:disk=ssd` -> (2, "disk", "ssd"); raises ValueError saying what is wrong."""
    where, sep, pair = text.partition(":")
    key, eq, value = pair.partition("=")
    if not sep or not eq or not key:
        raise ValueError(f"label {text!r} is not HOST:KEY=VALUE (e.g. h1:disk=ssd)")
    index = parse_host(where)
    if index is None:
        raise ValueError(f"label {text!r}: host {where!r} is not a lab host name like h1")
    return index, key, value


def merge_labels(
    stored: Mapping[int, Mapping[str, str]],
    given: Iterable[tuple[int, str, str]],
    size: int,
) -> dict[int, dict[str, str]]:
    """Labels of a lab of `size`: stored ones kept, given ones set (the last of a key wins),
    hosts above `size` dropped. Raises ValueError for a label on a host beyond `size`."""
    merged = {i: dict(stored.get(i, {})) for i in range(1, size + 1)}
    for index, key, value in given:
        if index not in merged:
            will_have = describe_hosts(range(1, size + 1))
            raise ValueError(f"label for h{index}, but the lab will have {will_have}")
        merged[index][key] = value
    return merged


def describe_hosts(indices: Iterable[int]) -> str:
    """'h1, h2, h3' for messages; 'no hosts' when empty."""
    names = [Host(i).name for i in sorted(indices)]
    return ", ".join(names) if names else "no hosts"
