"""SQLite persistence for the replicated store (the standard library's sqlite3; the only module using it).

One file in the data dir, WAL mode: every merged record is written before the change is acknowledged or
gossiped on, so a crash or restart of any or all agents loses nothing that was accepted. Records are stored as
the same bounded msgpack lists that travel on the wire, and decoded with the same strict checks on load (a
damaged row is skipped and counted, never fatal).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from gossip.codec import NodeId, pack_value, unpack_value
from gossip.entry import MAX_PAYLOAD_BYTES, Record, decode_record, encode_record
from gossip.errors import PersistError, WireError
from gossip.store import Image

log = logging.getLogger(__name__)
STORE_FILE = "store.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (key TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS certs (node TEXT PRIMARY KEY, der BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class SqliteBackend:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.skipped = 0
        self._db = sqlite3.connect(path, isolation_level=None)  # autocommit: each write is its own commit
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a process crash loses nothing; a power cut may lose the last commits but never
        # corrupts the file, and anti-entropy brings them back from peers.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    @classmethod
    def in_dir(cls, data_dir: Path) -> SqliteBackend:
        return cls(data_dir / STORE_FILE)

    def load(self) -> Image:
        records = []
        for key, body in self._db.execute("SELECT key, body FROM records"):
            try:
                record = decode_record(unpack_value(body, max_len=MAX_PAYLOAD_BYTES + 4096))
            except WireError as exc:
                self.skipped += 1
                log.warning("skipping unreadable record %r in %s: %s", key, self.path, exc)
                continue
            records.append(record)
        certs = tuple((str(n), bytes(d)) for n, d in self._db.execute("SELECT node, der FROM certs"))
        meta = tuple((str(n), int(v)) for n, v in self._db.execute("SELECT name, value FROM meta"))
        return Image(tuple(records), certs, meta)

    def save_record(self, record: Record) -> None:
        self._write("INSERT OR REPLACE INTO records VALUES (?, ?)", (record.key, pack_value(encode_record(record))))

    def delete_record(self, key: str) -> None:
        self._write("DELETE FROM records WHERE key = ?", (key,))

    def save_cert(self, node: NodeId, der: bytes) -> None:
        self._write("INSERT OR REPLACE INTO certs VALUES (?, ?)", (node, der))

    def save_meta(self, name: str, value: int) -> None:
        self._write("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))

    def _write(self, sql: str, args: tuple[object, ...]) -> None:
        try:
            self._db.execute(sql, args)
        except sqlite3.Error as exc:  # disk full, read-only, I/O: the caller must not act as if it were stored
            raise PersistError(f"{self.path}: {exc}") from exc

    def close(self) -> None:
        self._db.close()
