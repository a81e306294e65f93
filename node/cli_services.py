"""What the service and node commands (`shoal apply`, `services`, `ps`, `rm`, `scale`, `history`, `node`,
`rollout status`, `rollback`, `canary`, `switch`) print and accept.

Pure and click-free (click lives in node/cli.py alone, which wires these to commands and requests): the
arguments' rules, the query an apply sends, the lines and table rows made from the API's answers, and the loop
that follows a rollout (its fetch, output, sleep and clock are passed in).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote

from node.manifest import Manifest
from node.rollout.model import Phase
from node.rollout.status import RolloutStatus, line

POLL_S = 0.5  # how often `shoal rollout status` asks: a batch takes seconds (monitor defaults to 5s)


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


def status_from_json(body: Mapping[str, Any]) -> RolloutStatus:
    """GET /v1/services/{name}/rollout's answer -> RolloutStatus (for its line); ValueError if it is not one."""
    try:
        return RolloutStatus(str(body["service"]), int(body["generation"]), str(body["version"]),
                             Phase(body["phase"]), int(body["settled"]), int(body["failed"]), int(body["total"]),
                             None if body["batch"] is None else int(body["batch"]), int(body["batches"]),
                             None if body["rollback_of"] is None else int(body["rollback_of"]), str(body["message"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"the node's answer is not a rollout status ({exc!r:.80})") from None


def follow(fetch: Callable[[], Mapping[str, Any]], show: Callable[[str], None], sleep: Callable[[float], None],
           clock: Callable[[], float], timeout_s: float | None = None,
           poll_s: float = POLL_S) -> tuple[Mapping[str, Any], bool]:
    """Poll the newest generation's rollout until it ends (its exit_code is set) or `timeout_s` passes; `show`
    each line that differs from the last. Returns the last status and whether it timed out. A generation that is
    being rolled back has not ended: its rollback generation, which the node will hold next, is followed."""
    deadline = None if timeout_s is None else clock() + timeout_s
    shown = None
    while True:
        body = fetch()
        text = line(status_from_json(body))
        if text != shown:
            show(text)
            shown = text
        if body.get("exit_code") is not None:
            return body, False
        if deadline is not None and clock() >= deadline:
            return body, True
        sleep(poll_s if deadline is None else max(0.0, min(poll_s, deadline - clock())))
