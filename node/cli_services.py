"""What the service and node commands (`shoal apply`, `services`, `ps`, `rm`, `scale`, `history`, `node`) print
and accept.

Pure and click-free (click lives in node/cli.py alone, which wires these to commands and requests): the
arguments' rules, the query an apply sends, and the lines and table rows made from the API's answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from node.manifest import Manifest


def service_path(name: str, suffix: str = "") -> str:
    return f"/v1/services/{quote(name, safe='')}{suffix}"


def parse_scale(args: Iterable[str]) -> list[tuple[str, int]]:
    """SERVICE=N arguments -> [(service, n)]; ValueError naming the first bad one (a usage error)."""
    pairs = []
    for arg in args:
        name, sep, count = arg.partition("=")
        if not sep or not name or not count.isdigit() or not count.isascii():
            raise ValueError(f"{arg!r} is not SERVICE=N with N a whole number >= 0, e.g. web=3")
        pairs.append((name, int(count)))
    return pairs


def expect_params(manifest: Manifest, listing: Iterable[Mapping[str, Any]],
                  given: Mapping[str, int] | None = None) -> list[tuple[str, str]]:
    """expect=NAME:GEN for every service of the manifest: the generation `given` (--expect), else the one the
    listing showed (0: absent), so the apply is refused if anyone changed a service since it was read."""
    held = {row["name"]: int(row["generation"]) for row in listing} | dict(given or {})
    return [("expect", f"{s.name}:{held.get(s.name, 0)}") for s in manifest.services] + \
        [("expect", f"{name}:{gen}") for name, gen in (given or {}).items() if manifest.service(name) is None]


def applied_line(result: Mapping[str, Any]) -> str:
    """`web: created (generation 1)`, `api: updated to generation 4: image a:1 -> a:2`, `db: unchanged (...)`."""
    name, action, generation = result["name"], result["action"], result["generation"]
    if action == "updated":
        return f"{name}: updated to generation {generation}: {result['changes']}"
    return f"{name}: {action} (generation {generation})"


SERVICE_HEADER = ["NAME", "MODE", "REPLICAS", "RUNNING", "READY", "IMAGE", "GENERATION"]


def service_row(row: Mapping[str, Any]) -> list[str]:
    replicas = "-" if row["replicas"] is None else str(row["replicas"])
    return [row["name"], row["mode"], replicas, str(row["running"]), str(row["ready"]), row["image"],
            str(row["generation"])]


HISTORY_HEADER = ["GENERATION", "AUTHOR", "AT", "OUTCOME", "CHANGE"]


def history_row(item: Mapping[str, Any]) -> list[str]:
    outcome = item["outcome"] + (" (deleted)" if item["deleted"] else "")
    return [str(item["generation"]), item["author"]["name"], item["at"], outcome, item["change"]]


PS_HEADER = ["REPLICA", "NODE", "STATE", "READY", "RESTARTS", "IMAGE", "CONTAINER"]


def ps_row(row: Mapping[str, Any]) -> list[str]:
    state = row["state"] + (f" ({row['error']})" if row.get("error") else "")
    return [f"{row['service']}.{row['replica']}", row["node"] or "-", state, "yes" if row["ready"] else "no",
            str(row["restarts"]), row["image"], row["container"][:12] or "-"]


NODE_HEADER = ["NAME", "ID", "ADDRESS", "STATUS", "AVAILABILITY", "RUNTIME", "RUNNING", "LABELS"]


def node_row(row: Mapping[str, Any]) -> list[str]:
    labels = ",".join(f"{k}={v}" for k, v in sorted(row["labels"].items())) or "-"
    return [row["name"], row["id"][:12], row["address"], row["status"], row["availability"], row["runtime"],
            str(row["replicas"]), labels]


def node_path(name: str, suffix: str = "") -> str:
    return f"/v1/nodes/{quote(name, safe='')}{suffix}"
