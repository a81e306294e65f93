"""The machine's network as the lab sees it: observe shoal-* namespaces, links and routes; run `ip`.

Role: the I/O shell around plan.py. `observe()` reads only what the lab may own (netns and links named
shoal-*, routes to 198.19.0.0/16 via the lab LAN); `run()` executes the commands plan.py returns.
Boundary: never touches a name outside shoal-*, never flushes anything; decisions live in plan.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable
from typing import Any

from node.lab.errors import LabError
from node.lab.plan import BRIDGE, ROOT_NS, Cmd, Observed, Route, is_lab_route, netns_index, veth_index
from node.routes import ROUTE_PROTOCOL

# How `ip -j` names the agents' route protocol: its number, or `shoal` where rt_protos.d names it (networking.md).
AGENT_PROTOCOLS = frozenset({str(ROUTE_PROTOCOL), "shoal"})
REQUIRED_TOOLS = ("ip", "nsenter", "sysctl")


def require_tools() -> None:
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        packages = "iproute2, util-linux, procps"
        raise LabError(f"shoal lab needs {', '.join(missing)} on PATH (packages {packages})")


def run(cmd: Cmd) -> None:
    """Run one command; a failure names the command and quotes its stderr."""
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LabError(f"`{' '.join(cmd)}` failed (exit {done.returncode}): {done.stderr.strip()}")


def run_all(cmds: Iterable[Cmd]) -> None:
    for cmd in cmds:
        run(cmd)


def run_each(cmds: Iterable[Cmd]) -> list[str]:
    """Run every command even if some fail (teardown of a half-built lab); return the failures."""
    errors = []
    for cmd in cmds:
        try:
            run(cmd)
        except LabError as exc:
            errors.append(str(exc))
    return errors


def _ip_json(*args: str) -> list[dict[str, Any]]:
    """`ip -j ARGS` parsed; ip prints nothing at all (not `[]`) for some empty lists."""
    cmd = ("ip", "-j", *args)
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LabError(f"`{' '.join(cmd)}` failed (exit {done.returncode}): {done.stderr.strip()}")
    text = done.stdout.strip()
    parsed = json.loads(text) if text else []
    if not isinstance(parsed, list):
        raise LabError(f"`{' '.join(cmd)}` printed {text[:80]!r}, not a JSON array")
    return [item for item in parsed if isinstance(item, dict)]


def _lab_routes(namespace: str) -> frozenset[Route]:
    """The lab's own routes. An agent's route to the same subnet (protocol 83, node/routes.py) is the agent's:
    the lab neither counts nor deletes it."""
    args: tuple[str, ...] = ("route", "show") if namespace == ROOT_NS else ("-n", namespace, "route", "show")
    return frozenset(
        (str(r["dst"]), str(r["gateway"]))
        for r in _ip_json(*args)
        if is_lab_route(str(r.get("dst", "")), r.get("gateway")) and str(r.get("protocol")) not in AGENT_PROTOCOLS
    )


def _lab_links() -> list[dict[str, Any]]:
    return [
        link
        for link in _ip_json("link", "show")
        if link.get("ifname") == BRIDGE or veth_index(str(link.get("ifname", ""))) is not None
    ]


def observe() -> Observed:
    """Everything of the lab's network that exists now, including leftovers of a half-built lab."""
    netns = frozenset(
        str(n["name"]) for n in _ip_json("netns", "list") if netns_index(str(n.get("name", ""))) is not None
    )
    links = frozenset(str(link["ifname"]) for link in _lab_links())
    routes = {ROOT_NS: _lab_routes(ROOT_NS)} | {ns: _lab_routes(ns) for ns in netns}
    return Observed(netns=netns, links=links, routes=routes)


def link_states() -> dict[str, bool]:
    """Lab link name -> administratively up."""
    return {str(link["ifname"]): "UP" in link.get("flags", []) for link in _lab_links()}


def bridge_owner() -> str | None:
    """The lab dir recorded in the bridge's alias by the `lab up` that built it, if any."""
    for link in _lab_links():
        if link.get("ifname") == BRIDGE:
            alias = link.get("ifalias")
            return str(alias) if alias else None
    return None


def set_link(name: str, up: bool) -> None:
    run(("ip", "link", "set", name, "up" if up else "down"))

