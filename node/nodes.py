"""Node management as desired state: labels an operator adds to a node, and whether it is drained.

Pure. A node's settings live at `node/<node id>` in the replicated store (any node may write them, so
`shoal node drain h3` works through any node, even while h3 is down). Placement reads them: a drained node gets
no replicas, and labels set here override the agent's `--label` flags of the same key. Every change is the next
generation of that key, so concurrent edits merge by the store's rules and the loser shows in its history.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from gossip.entry import Record
from gossip.members import MemberState
from gossip.store import live_generation
from gossip.wire import MAX_NAME_LEN
from node.manifest import LABEL_KEY

NODE_PREFIX = "node/"
ACTIVE, DRAIN = "active", "drain"
MAX_NODE_LABELS = 32


class NodeRequestError(ValueError):
    """A node command that cannot be done; names the field and what is allowed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class NodeNotFound(NodeRequestError):
    """No member by that name or id."""


@dataclass(frozen=True, slots=True)
class NodeSettings:
    labels: tuple[tuple[str, str], ...] = ()  # sorted
    availability: str = ACTIVE


@dataclass(frozen=True, slots=True)
class NodeWrite:
    key: str
    payload: bytes
    note: str
    expect: int


def node_key(node_id: str) -> str:
    return NODE_PREFIX + node_id


def encode(settings: NodeSettings) -> bytes:
    body = {"labels": dict(settings.labels), "availability": settings.availability}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def decode(record: Record | None) -> NodeSettings:
    """The settings a record holds; defaults for none, a tombstone or anything malformed."""
    if record is None or record.entry.tombstone:
        return NodeSettings()
    try:
        body = json.loads(record.entry.payload)
        labels = body["labels"]
        availability = body["availability"]
        if not isinstance(labels, dict) or availability not in (ACTIVE, DRAIN):
            return NodeSettings()
        pairs = tuple(sorted((str(k), str(v)) for k, v in labels.items() if _valid(str(k), str(v))))
    except (ValueError, KeyError, TypeError, RecursionError):
        return NodeSettings()
    return NodeSettings(pairs[:MAX_NODE_LABELS], availability)


def _valid(key: str, value: str) -> bool:
    return _key_ok(key) and len(value) <= MAX_NAME_LEN


def resolve(members: Sequence[MemberState], name: str) -> MemberState:
    """The member called `name` (or whose id is, or starts with, `name`); NodeRequestError if none or several."""
    exact = [m for m in members if name in (m.name, m.node)]
    found = exact or [m for m in members if len(name) >= 6 and m.node.startswith(name)]
    if len(found) == 1:
        return found[0]
    known = ", ".join(sorted(m.name for m in members)) or "none"
    if not found:
        raise NodeNotFound("node", f"no node named {name!r}; the members are: {known}")
    raise NodeRequestError("node", f"{name!r} names {len(found)} nodes; use the node id")


def parse_label_changes(items: Iterable[str]) -> tuple[dict[str, str], set[str]]:
    """`KEY=VALUE` sets a label, `KEY-` removes one (kubectl's habit)."""
    sets: dict[str, str] = {}
    removes: set[str] = set()
    for item in items:
        if item.endswith("-") and "=" not in item:
            key = item[:-1]
            removes.add(_check_key(key, item))
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise NodeRequestError("labels", f"{item!r} is neither KEY=VALUE (set) nor KEY- (remove)")
        if len(value) > MAX_NAME_LEN:
            raise NodeRequestError("labels", f"label {key}: the value has {len(value)} characters; at most "
                                             f"{MAX_NAME_LEN}")
        sets[_check_key(key, item)] = value
    if both := sets.keys() & removes:
        raise NodeRequestError("labels", f"label {sorted(both)[0]} is both set and removed")
    return sets, removes


def _key_ok(key: str) -> bool:
    """A key a placement constraint can name (the manifest's rule), short enough for a member label."""
    return len(key) <= MAX_NAME_LEN and LABEL_KEY.fullmatch(key) is not None


def _check_key(key: str, item: str) -> str:
    if not _key_ok(key):
        raise NodeRequestError("labels", f"{item!r}: a label key is 1-{MAX_NAME_LEN} letters, digits, '_', '.', "
                                         "'-', starting and ending with a letter, digit or '_'")
    return key


def plan_labels(node_id: str, record: Record | None, sets: Mapping[str, str],
                removes: Iterable[str]) -> NodeWrite | None:
    """The write that sets and removes labels; None when nothing would change."""
    current = decode(record)
    labels = dict(current.labels)
    labels.update(sets)
    for key in removes:
        labels.pop(key, None)
    if len(labels) > MAX_NODE_LABELS:
        raise NodeRequestError("labels", f"a node has at most {MAX_NODE_LABELS} labels set by `shoal node label`")
    changed = NodeSettings(tuple(sorted(labels.items())), current.availability)
    note = "labels: " + ", ".join([*(f"{k}={v}" for k, v in sorted(sets.items())),
                                   *(f"{k}-" for k in sorted(removes))])
    return _write(node_id, record, current, changed, note[:200])


def plan_availability(node_id: str, record: Record | None, availability: str) -> NodeWrite | None:
    current = decode(record)
    return _write(node_id, record, current, NodeSettings(current.labels, availability), availability)


def _write(node_id: str, record: Record | None, current: NodeSettings, changed: NodeSettings,
           note: str) -> NodeWrite | None:
    """None when nothing changes; else the write, expecting the generation read (0: none yet)."""
    if changed == current:
        return None
    return NodeWrite(node_key(node_id), encode(changed), note, live_generation(record))
