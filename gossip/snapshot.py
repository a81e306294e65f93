"""What an agent remembers across restarts besides its identity: its incarnation and its last peers.

Like Serf's snapshot: with it, a restarted agent rejoins from its data dir alone (no --join needed), and its
incarnation starts above anything it announced before, so its alive news is not ignored as old.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from gossip.identity import write_atomic
from gossip.wire import Address

SNAPSHOT_FILE = "snapshot.json"
MAX_PEERS = 64


@dataclass(frozen=True, slots=True)
class Snapshot:
    incarnation: int = 0
    peers: tuple[Address, ...] = ()


def load_snapshot(data_dir: Path) -> Snapshot:
    """The last snapshot, or an empty one if there is none or it is unreadable (it is only a hint)."""
    try:
        raw = json.loads((data_dir / SNAPSHOT_FILE).read_text())
        peers = tuple((str(h), int(p)) for h, p in raw["peers"][:MAX_PEERS])
        return Snapshot(int(raw["incarnation"]), peers)
    except (OSError, ValueError, KeyError, TypeError):
        return Snapshot()


def save_snapshot(data_dir: Path, snapshot: Snapshot) -> None:
    body = {"incarnation": snapshot.incarnation, "peers": [list(p) for p in snapshot.peers[:MAX_PEERS]]}
    write_atomic(data_dir / SNAPSHOT_FILE, json.dumps(body).encode())
