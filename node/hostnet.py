"""The host's side of cross-host container routing: Shoal's routes in the kernel and Shoal's nft table.

Role: the I/O shell around routes.py and netpolicy (DESIGN §7a). `converge(own_subnet, peers)` observes the
routes Shoal made (`ip -j route show proto 83`), applies routes.route_plan's changes, and keeps Shoal's table
(a null binding so traffic between cluster container subnets is not masqueraded) in step with the routed
subnets. Idempotent: with nothing to change it runs only the two read-only commands.
`hold_addresses(wanted, within)` keeps the service VIPs (and the DNS address) on `lo`. `BridgePin` keeps the
container bridge's MAC address from changing as containers come and go.
Boundary: only routes with Shoal's protocol number (routes.ROUTE_PROTOCOL), the table `inet shoal`, /32
addresses on `lo` inside the service range, and the MAC of the bridge holding this node's container subnet (set
to the one it already has); never another route, table, address or sysctl. Acts on the
calling process's network namespace. Blocking work runs in a thread, so the event loop never waits on `ip` or
`nft`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import re
import subprocess
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from netpolicy import apply as nft
from netpolicy.model import Ruleset
from netpolicy.render import fingerprint, listed_fingerprint, render, rule_counters
from node.routes import ROUTE_METRIC, ROUTE_PROTOCOL, PeerNet, Route, RouteAction, RouteChange, route_plan, routing

log = logging.getLogger("shoal.hostnet")

Cmd = tuple[str, ...]
TIMEOUT_S = 30.0  # `ip` answers in milliseconds; a stuck netlink call must not hold converge forever
_GONE = "No such process"  # `ip route del` of a route that is already gone: the wanted state, not an error
_LOCK = threading.Lock()  # one host, one routing table: converges never interleave, even from two threads
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
_IFNAME = re.compile(r"[^/\s]{1,15}")


class HostNetError(Exception):
    """A command failed or could not run; the message names each command and quotes its stderr."""

    def __init__(self, failures: Sequence[str]) -> None:
        super().__init__("; ".join(failures))
        self.failures = tuple(failures)


async def converge(own_subnet: str | None, peers: Iterable[PeerNet], policy: Ruleset | None = None,
                   keep: bool = False) -> list[str]:
    """Make this host's Shoal routes and table match `peers` (the alive members other than this node that
    advertise a subnet) and `policy` (the whole table: the null binding and the network policies; None: the
    null binding alone). `keep` (no policy yet: the agent has not rejoined) leaves an existing table as it is,
    so the last agent's rules stay enforced; a missing one still gets the null binding. Returns warnings for
    the agent to log: subnets refused (routes.Conflict) and routes the kernel refused (e.g. a peer not on this
    node's L2 segment); the next converge retries those.
    HostNetError when observing the routes or applying the table fails."""
    return await asyncio.to_thread(converge_now, own_subnet, tuple(peers), policy, keep)


async def withdraw() -> None:
    """Remove every route Shoal made and Shoal's table (a node leaving the cluster for good)."""
    await asyncio.to_thread(withdraw_now)


def converge_now(own_subnet: str | None, peers: Iterable[PeerNet], policy: Ruleset | None = None,
                 keep: bool = False) -> list[str]:
    """converge(), blocking."""
    wanted = routing(own_subnet, peers)
    warnings = [str(conflict) for conflict in wanted.conflicts]
    with _LOCK:
        changes = route_plan(wanted.routes, observe_routes())
        try:
            apply(changes)
        except HostNetError as exc:
            warnings += exc.failures
        if policy is not None:
            sync_nat(policy)
        elif not (keep and _table_present()):
            sync_nat(nat_model([*([own_subnet] if own_subnet else []), *(r.dst for r in wanted.routes)]))
    return warnings


def withdraw_now() -> None:
    """withdraw(), blocking: removes the table even when a route could not be deleted, then raises."""
    with _LOCK:
        failures: list[str] = []
        try:
            apply(route_plan(frozenset(), observe_routes()))
        except HostNetError as exc:
            failures += exc.failures
        try:
            with _nft_errors():
                nft.remove()
        except HostNetError as exc:
            failures += exc.failures
        if failures:
            raise HostNetError(failures)


async def hold_addresses(wanted: Iterable[str], within: str) -> list[str]:
    """Make the addresses Shoal holds on `lo` (each a /32 inside `within`, the service range: the service VIPs
    and the DNS responder's address, DESIGN §7a) exactly `wanted`. Returns the changes made, for the log;
    HostNetError naming each command that failed (the others are still applied)."""
    return await asyncio.to_thread(hold_addresses_now, tuple(wanted), within)


def hold_addresses_now(wanted: Iterable[str], within: str) -> list[str]:
    """hold_addresses(), blocking. Addresses on `lo` outside `within`, or not /32, are never touched."""
    network = ipaddress.IPv4Network(within)
    target = {str(ipaddress.IPv4Address(a)) for a in wanted if ipaddress.IPv4Address(a) in network}
    with _LOCK:
        held = parse_held(_run(("ip", "-4", "-j", "addr", "show", "dev", "lo")), network)
        commands = [("ip", "addr", "add", f"{a}/32", "dev", "lo") for a in sorted(target - held)]
        commands += [("ip", "addr", "del", f"{a}/32", "dev", "lo") for a in sorted(held - target)]
        failures: list[str] = []
        for cmd in commands:
            try:
                _run(cmd)
            except HostNetError as exc:
                failures += exc.failures
    if failures:
        raise HostNetError(failures)
    return [" ".join(cmd[2:4]) for cmd in commands]


def parse_held(text: str, network: ipaddress.IPv4Network) -> set[str]:
    """`ip -j addr show dev lo` -> its /32 addresses inside `network`."""
    return {str(address) for link in _json_array(text, "ip -j addr show") for address, prefix in _ipv4s(link)
            if prefix == 32 and address in network}


def _json_array(text: str, command: str) -> list[Any]:
    """What an `ip -j` command printed; `ip` prints nothing at all for some empty lists."""
    parsed = json.loads(text) if text.strip() else []
    if not isinstance(parsed, list):
        raise HostNetError([f"`{command}` printed {text[:80]!r}, not a JSON array"])
    return parsed


def _ipv4s(link: object) -> Iterator[tuple[ipaddress.IPv4Address, object]]:
    """(address, prefix length) of each IPv4 address in one link of `ip -j addr show`; anything else is skipped."""
    for info in link.get("addr_info", []) if isinstance(link, dict) else []:
        try:
            yield ipaddress.IPv4Address(str(info.get("local"))), info.get("prefixlen")
        except (ValueError, AttributeError):
            continue


@dataclass(frozen=True, slots=True)
class Bridge:
    name: str
    index: int  # the kernel's ifindex: a bridge made again after the network's last container left has a new one
    mac: str


class BridgePin:
    """Keeps the bridge that holds this node's container subnet at the MAC address it has (`pin`).

    Why: a Linux bridge whose address was never set takes the lowest of its ports' addresses. A container whose
    veth sorts lower changes it as it starts, and again as it goes; the other containers on the bridge go on
    sending to the old address, which nothing answers, until ARP catches up, and their connections wait out
    TCP retransmissions (200 ms, then 400 ms, each time a container on the host starts or stops: seen with
    bench/dataplane.py, docs/proxy.md). Setting the address, even to the one it has, makes the kernel keep it
    (addr_assign_type NET_ADDR_SET); Docker sets docker0's for the same reason. The address stays what it was.
    It remembers the bridges it pinned (name and ifindex) rather than asking the kernel: addr_assign_type is
    only in sysfs, which shows the network namespace it was mounted in, not necessarily the agent's (a lab
    host's agent runs under `nsenter --net`). So an agent pins each bridge once in its life."""

    def __init__(self) -> None:
        self._pinned: set[tuple[str, int]] = set()
        self._lock = threading.Lock()  # concurrent starts each call pin(); one of them does the work

    async def pin(self, subnet: str) -> str | None:
        """Pin the bridge of `subnet`; its name when pinned now, None when there is no bridge yet (the engine
        makes it with the network's first container) or this agent pinned it already. HostNetError when `ip`
        fails (nothing is remembered then: the next call tries again)."""
        return await asyncio.to_thread(self.pin_now, subnet)

    def pin_now(self, subnet: str) -> str | None:
        """pin(), blocking."""
        with self._lock:
            bridge = bridge_of(subnet, _run(("ip", "-j", "-d", "-4", "addr", "show")))
            if bridge is None or (bridge.name, bridge.index) in self._pinned:
                return None
            _run(("ip", "link", "set", "dev", bridge.name, "address", bridge.mac))
            self._pinned.add((bridge.name, bridge.index))
        log.info("container bridge's MAC address pinned", extra={"fields": {"bridge": bridge.name,
                                                                           "address": bridge.mac}})
        return bridge.name


def bridge_of(subnet: str, text: str) -> Bridge | None:
    """`ip -j -d -4 addr show` -> the bridge holding an address inside `subnet` (its gateway), or None."""
    network = ipaddress.IPv4Network(subnet, strict=False)
    for link in _json_array(text, "ip -j addr show"):
        if not isinstance(link, dict):
            continue
        info, name, index, mac = link.get("linkinfo"), link.get("ifname"), link.get("ifindex"), link.get("address")
        if not isinstance(info, dict) or info.get("info_kind") != "bridge" or not isinstance(name, str) \
                or not isinstance(index, int) or not isinstance(mac, str) or not _IFNAME.fullmatch(name) \
                or not _MAC.fullmatch(mac):
            continue
        if any(address in network for address, _ in _ipv4s(link)):
            return Bridge(name, index, mac)
    return None


async def policy_counters() -> list[dict[str, object]]:
    """The counted rules of Shoal's table on this host (what each admits or drops, packets, bytes); [] without
    a table. Counters restart whenever the table is replaced."""
    def read() -> list[dict[str, object]]:
        with _nft_errors():
            listing = nft.present()
        return [{"chain": c.chain, "rule": c.comment, "packets": c.packets, "bytes": c.bytes}
                for c in rule_counters(listing)]
    return await asyncio.to_thread(read)


def observe_routes() -> frozenset[Route]:
    """The routes Shoal made in the main table, whatever their gateway or metric."""
    return parse_routes(_run(("ip", "-4", "-j", "route", "show", "proto", str(ROUTE_PROTOCOL))))


def apply(changes: Iterable[RouteChange]) -> None:
    """Run every change, even after one fails; then HostNetError listing each failure."""
    failures: list[str] = []
    for change in changes:
        try:
            _run(route_command(change))
        except HostNetError as exc:
            if not (change.action is RouteAction.DELETE and _GONE in str(exc)):
                failures += exc.failures
            continue
        log.info("route %s", change.action.value, extra={"fields": {"dst": change.route.dst,
                                                                    "via": change.route.gateway}})
    if failures:
        raise HostNetError(failures)


def route_command(change: RouteChange) -> Cmd:
    """The `ip` command for one change; every route Shoal touches is marked with its protocol number."""
    route, proto = change.route, ("proto", str(ROUTE_PROTOCOL))
    if change.action is RouteAction.REPLACE:
        return ("ip", "route", "replace", route.dst, "via", route.gateway, *proto, "metric", str(ROUTE_METRIC))
    via = ("via", route.gateway) if route.gateway else ()
    return ("ip", "route", "del", route.dst, *via, *proto)  # no metric: also removes one at a stray metric


def parse_routes(text: str) -> frozenset[Route]:
    """`ip -j route show` output -> routes; `ip` prints nothing at all for some empty lists."""
    routes: set[Route] = set()
    for entry in _json_array(text, "ip -j route show"):
        dst = entry.get("dst") if isinstance(entry, dict) else None
        try:
            net = ipaddress.IPv4Network("0.0.0.0/0" if dst == "default" else str(dst))
        except ValueError:
            continue  # not a route Shoal could have made
        routes.add(Route(str(net), str(entry.get("gateway", ""))))
    return frozenset(routes)


def nat_model(subnets: Iterable[str]) -> Ruleset:
    """Shoal's table for these cluster container subnets (this node's and every routed peer's)."""
    return Ruleset.of(subnets)


def sync_nat(ruleset: Ruleset) -> bool:
    """Replace Shoal's table with `ruleset` unless its fingerprint shows it is already there; True if it did."""
    with _nft_errors():
        if listed_fingerprint(nft.present()) == fingerprint(ruleset):
            return False
        nft.apply(render(ruleset))
    log.info("nft table replaced", extra={"fields": {"cluster_subnets": len(ruleset.cluster_subnets)}})
    return True


def _table_present() -> bool:
    with _nft_errors():
        return nft.present() is not None


@contextlib.contextmanager
def _nft_errors() -> Iterator[None]:
    """NftError -> HostNetError, so the agent handles one error type from this module."""
    try:
        yield
    except nft.NftError as exc:
        raise HostNetError([str(exc)]) from exc


def _run(cmd: Cmd) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise HostNetError([f"`{' '.join(cmd)}`: {cmd[0]} is not on PATH (install iproute2)"]) from None
    except subprocess.TimeoutExpired:
        raise HostNetError([f"`{' '.join(cmd)}` did not finish within {TIMEOUT_S:.0f} s"]) from None
    if done.returncode != 0:
        raise HostNetError([f"`{' '.join(cmd)}` failed (exit {done.returncode}): {done.stderr.strip()}"])
    return done.stdout
