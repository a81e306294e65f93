"""Desired-state entries, their versions and histories, and the deterministic merge. Pure.

An `Entry` is one signed write: key, generation, HLC stamp, author, tombstone flag, payload, a short note
(what changed) and the author's Ed25519 signature over all of it. A `Record` is what a node holds per key: the
winning entry and a bounded history of the versions it has seen (newest first), so an edit that lost a
conflict stays visible. Merge (DESIGN.md §4): higher generation wins; at equal generation a delete beats an
edit (a concurrent delete is never undone by an edit made against the same generation); then the higher HLC
stamp, the author id, and finally a payload digest, so any two nodes pick the same winner. Records merge
as (max entry, the newest HISTORY_LIMIT of the union of histories): a join-semilattice, hence commutative,
associative and idempotent, whatever order gossip delivers things in.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from typing import Any

from gossip.codec import (
    NodeId,
    node_id_bytes,
    pack_value,
    read_bool,
    read_bytes,
    read_list,
    read_node,
    read_text,
    read_uint,
)
from gossip.errors import WireError
from gossip.hlc import MAX_COUNTER, Stamp
from gossip.signing import SigningKey, VerifyKey

KEY_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,15}/[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""`<kind>/<name>`, e.g. `service/web` or `status/<node id>`."""
MAX_KEY_LEN = 144
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_NOTE_LEN = 200
HISTORY_LIMIT = 16
DIGEST_BYTES = 8
SIGNATURE_BYTES = 64
_DOMAIN = "shoal-entry/1"  # signatures over entries can never be mistaken for signatures over anything else


def valid_key(key: object) -> bool:
    return isinstance(key, str) and len(key) <= MAX_KEY_LEN and KEY_PATTERN.fullmatch(key) is not None


def content_digest(payload: bytes, note: str) -> bytes:
    return hashlib.blake2b(payload + b"\0" + note.encode(), digest_size=DIGEST_BYTES).digest()


@dataclass(frozen=True, slots=True, order=True)
class Version:
    """The identity of one write, ordered exactly as the merge ranks writes (field order matters)."""

    generation: int
    tombstone: bool
    stamp: Stamp
    author: NodeId
    digest: bytes


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    generation: int
    stamp: Stamp
    author: NodeId
    tombstone: bool
    payload: bytes
    note: str
    signature: bytes = b""

    @property
    def version(self) -> Version:
        return Version(self.generation, self.tombstone, self.stamp, self.author,
                       content_digest(self.payload, self.note))

    def signed_bytes(self) -> bytes:
        return pack_value([_DOMAIN, self.key, self.generation, self.stamp.wall_ms, self.stamp.counter,
                           node_id_bytes(self.author), self.tombstone, self.payload, self.note])

    def signed(self, key: SigningKey) -> Entry:
        return replace(self, signature=key.sign(self.signed_bytes()))

    def verify(self, key: VerifyKey) -> bool:
        return len(self.signature) == SIGNATURE_BYTES and key.verify(self.signature, self.signed_bytes())


@dataclass(frozen=True, slots=True)
class Change:
    """One version in a key's history: who wrote it, when (its stamp), and what changed (the note)."""

    version: Version
    note: str


def change_of(entry: Entry) -> Change:
    return Change(entry.version, entry.note)


@dataclass(frozen=True, slots=True)
class Record:
    entry: Entry
    history: tuple[Change, ...]
    """Newest first; includes the current version; at most HISTORY_LIMIT."""

    @property
    def key(self) -> str:
        return self.entry.key

    def digest(self) -> bytes:
        """Identifies the whole record (entry and history): equal digests mean nothing to exchange."""
        parts = [_version_list(c.version) for c in self.history]
        return hashlib.blake2b(pack_value([_version_list(self.entry.version), parts]),
                               digest_size=DIGEST_BYTES).digest()

    def lost(self, change: Change) -> bool:
        """True when `change` lost a conflict: another write of the same generation outranks it."""
        return any(c.version.generation == change.version.generation and c.version > change.version
                   for c in self.history)


def record_of(entry: Entry) -> Record:
    return Record(entry, (change_of(entry),))


def merge(current: Record | None, incoming: Record) -> Record:
    """The deterministic join of two records of one key (see the module docstring)."""
    if current is None:
        return incoming
    # Equal versions can only differ in signature bytes (a forgery or a digest collision): break the tie on
    # them too, so every node keeps the same copy whatever arrived first.
    entry = max(current.entry, incoming.entry, key=lambda e: (e.version, e.signature))
    changes = {c.version: c for c in (*current.history, *incoming.history)}
    history = tuple(sorted(changes.values(), key=lambda c: c.version, reverse=True)[:HISTORY_LIMIT])
    return Record(entry, history)


# ---- encoding (lists of plain values for gossip.codec) ------------------------------------------------


def _version_list(v: Version) -> list[object]:
    return [v.generation, v.tombstone, v.stamp.wall_ms, v.stamp.counter, node_id_bytes(v.author), v.digest]


def encode_version(v: Version) -> list[object]:
    return _version_list(v)


def decode_version(raw: object) -> Version:
    gen, tomb, wall, counter, author, digest = _exactly(raw, 6, "version")
    return Version(read_uint(gen), read_bool(tomb), Stamp(read_uint(wall), read_uint(counter, MAX_COUNTER)),
                   read_node(author), read_bytes(digest, DIGEST_BYTES, exact=DIGEST_BYTES))


def encode_entry(e: Entry) -> list[object]:
    return [e.key, e.generation, e.stamp.wall_ms, e.stamp.counter, node_id_bytes(e.author), e.tombstone,
            e.payload, e.note, e.signature]


def decode_entry(raw: object) -> Entry:
    key, gen, wall, counter, author, tomb, payload, note, sig = _exactly(raw, 9, "entry")
    if not valid_key(key):
        raise WireError(f"entry key must match {KEY_PATTERN.pattern} (at most {MAX_KEY_LEN} characters)")
    tombstone = read_bool(tomb)
    body = read_bytes(payload, MAX_PAYLOAD_BYTES)
    if tombstone and body:
        raise WireError("a tombstone carries no payload")
    return Entry(key, read_uint(gen), Stamp(read_uint(wall), read_uint(counter, MAX_COUNTER)), read_node(author),
                 tombstone, body, read_text(note, MAX_NOTE_LEN),
                 read_bytes(sig, SIGNATURE_BYTES, exact=SIGNATURE_BYTES))


def encode_record(r: Record) -> list[object]:
    return [encode_entry(r.entry), [[*_version_list(c.version), c.note] for c in r.history]]


def decode_record(raw: object) -> Record:
    entry_raw, history_raw = _exactly(raw, 2, "record")
    entry = decode_entry(entry_raw)
    changes = []
    for item in read_list(history_raw, HISTORY_LIMIT, "history"):
        fields = _exactly(item, 7, "change")
        changes.append(Change(decode_version(fields[:6]), read_text(fields[6], MAX_NOTE_LEN)))
    # Rebuilt through merge: whatever order or duplicates a peer sent, the record is canonical.
    return merge(record_of(entry), Record(entry, tuple(changes)))


def _exactly(raw: object, count: int, what: str) -> list[Any]:
    if not isinstance(raw, list) or len(raw) != count:
        raise WireError(f"{what} must be a list of {count} fields")
    return raw
