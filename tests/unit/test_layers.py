"""Architecture rules, checked: node -> gossip, netpolicy (never back, never sideways), and each third-party
library imported by exactly one module."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gossip", "node", "netpolicy")
THIRD_PARTY = {"msgpack", "asyncio_dgram", "cryptography", "uvloop", "click", "podman", "yaml", "dnslib"}
# aiohttp: the API server and the CLI's client are one module each (DESIGN.md §2). The HTTP probes read only a
# status line, on the agent's event loop, and do it with asyncio alone (node/probes/http.py says why).
ALLOWED_TWICE = {"aiohttp": {"node/api.py", "node/client.py"}}


def imports() -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
                for name in names:
                    found[str(path.relative_to(ROOT))].add(name.split(".")[0])
    return found


def test_gossip_and_netpolicy_never_import_node_or_each_other() -> None:
    for module, names in imports().items():
        package = module.split("/")[0]
        if package == "gossip":
            assert not names & {"node", "netpolicy"}, module
        if package == "netpolicy":
            assert not names & {"node", "gossip"}, module


def test_each_third_party_library_is_imported_by_one_module() -> None:
    users: dict[str, set[str]] = defaultdict(set)
    for module, names in imports().items():
        for name in names & (THIRD_PARTY | set(ALLOWED_TWICE)):
            users[name].add(module)
    for library, modules in users.items():
        allowed = ALLOWED_TWICE.get(library)
        assert modules == allowed if allowed else len(modules) == 1, f"{library}: {sorted(modules)}"
