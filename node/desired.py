"""Desired state: the cluster's services as records of the replicated store, and the rules for changing them.

Pure: parsed manifests and store records in; plans (the writes to make) and read-only views out. The API
plans and commits on the event loop with no await in between, so what a plan checked still holds when it is
written, and a manifest is applied all-or-nothing on the node that takes it. A service lives at
`service/<name>`; its payload is the canonical JSON of its spec (node.manifest.spec_to_payload) or, once a
change replaced its replicas' version, an envelope `{"spec", "previous": {"generation", "spec"}}` carrying the
spec it replaced, so every node can roll back (docs/rollouts.md). An identical re-apply (same spec) writes
nothing. Generations follow gossip.store: they count up from 1 and keep counting across deletes; an expectation
of 0 means "must not exist (or be deleted)"; a stale expectation raises gossip.store.Conflict, before anything is
written. The rollout operations (rollback, canary, switch) plan in node.rollout_writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from gossip.codec import NodeId
from gossip.entry import MAX_NOTE_LEN, MAX_PAYLOAD_BYTES, Change, Record
from gossip.hlc import Stamp
from gossip.store import Conflict, live_generation, next_generation
from node.manifest import (
    GLOBAL,
    Manifest,
    ServiceSpec,
    describe_changes,
    spec_bytes,
    spec_from_payload,
    spec_to_payload,
    with_replicas,
)
from node.replica import version
from node.rollout.model import Previous, Revision
from node.rollout.rollback import rollback_of

SERVICE_PREFIX = "service/"
Action = Literal["created", "updated", "unchanged", "deleted"]
Outcome = Literal["current", "superseded", "lost"]
Names = Mapping[NodeId, str]
"""Node id -> node name, from the member list (an author no longer listed shows as its id prefix)."""


class InvalidRequest(ValueError):
    """A request parameter (not the manifest) that cannot be used, or an operation the service's spec does not
    allow (no canary to promote, no previous spec to roll back to: `code` says which); names the field."""

    def __init__(self, field: str, message: str, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.field = field
        self.code = code


class NotFound(LookupError):
    """No such service: never written, or deleted (`record` is then its tombstone)."""

    def __init__(self, name: str, record: Record | None) -> None:
        super().__init__(name)
        self.name = name
        self.record = record


class Unreadable(ValueError):
    """A stored payload this node cannot read back into a spec (e.g. written by a newer version)."""

    def __init__(self, record: Record, reason: str) -> None:
        super().__init__(f"{record.key} generation {record.entry.generation}: {reason}")
        self.record = record


def service_key(name: str) -> str:
    return SERVICE_PREFIX + name


def service_name(key: str) -> str:
    return key.removeprefix(SERVICE_PREFIX)


@dataclass(frozen=True, slots=True)
class ServiceView:
    """A live service as this node holds it: the spec read back from its record, and the spec it replaced."""

    spec: ServiceSpec
    record: Record
    previous: Previous | None = None  # None: created, or the previous spec was dropped (too large)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def generation(self) -> int:
        return self.record.entry.generation


def revision(view: ServiceView) -> Revision:
    """The service's current generation as the rollout reads it (a function, not a property of ServiceView):
    spec, generation, previous spec and, from the generation's note, which generation it rolls back."""
    return Revision(view.spec, view.generation, view.previous, rollback_of(view.record.entry.note))


def read_service(record: Record) -> ServiceView | None:
    """The service a record holds; None for a tombstone; Unreadable for a payload that is not a valid spec or
    envelope (checked as strictly as a spec: the payload came from the network)."""
    if record.entry.tombstone:
        return None
    try:
        spec, previous = decode_payload(service_name(record.key), record.entry.payload, record.entry.generation)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, ManifestError
        raise Unreadable(record, str(exc)) from None
    return ServiceView(spec, record, previous)


# ---- the payload: a bare spec, or {"spec", "previous"} -------------------------------------------------

ENVELOPE_KEYS = frozenset({"spec", "previous"})
PREVIOUS_KEYS = frozenset({"generation", "spec"})


def encode_payload(spec: ServiceSpec, previous: Previous | None) -> tuple[bytes, bool]:
    """The record's payload and whether `previous` had to be dropped to fit an entry (MAX_PAYLOAD_BYTES, 64 KiB).
    Canonical (compact, key-sorted JSON), so every node encoding the same values writes the same bytes."""
    bare = spec_bytes(spec)
    if previous is None:
        return bare, False
    body = {"spec": spec_to_payload(spec),
            "previous": {"generation": previous.generation, "spec": spec_to_payload(previous.spec)}}
    wrapped = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return (bare, True) if len(wrapped) > MAX_PAYLOAD_BYTES else (wrapped, False)


def decode_payload(name: str, payload: bytes, generation: int) -> tuple[ServiceSpec, Previous | None]:
    """A record's payload -> (spec, previous); ValueError (ManifestError included) for anything malformed. An
    envelope has exactly the keys spec and previous; previous has exactly generation (an integer from 1 to below
    the record's own) and spec. A bare spec never has a `spec` key (Compose has none), so the forms never mix."""
    data = json.loads(payload)
    if not isinstance(data, dict) or "spec" not in data:
        return spec_from_payload(name, data), None
    if set(data) != ENVELOPE_KEYS:
        raise ValueError(f"an envelope has exactly the keys previous, spec; found {', '.join(sorted(data))[:80]}")
    old = data["previous"]
    if not isinstance(old, dict) or set(old) != PREVIOUS_KEYS:
        raise ValueError("previous must be an object with exactly the keys generation, spec")
    number = old["generation"]
    if type(number) is not int or not 1 <= number < generation:
        raise ValueError(f"previous.generation must be an integer from 1 to {generation - 1}; "
                         f"got {json.dumps(number)[:40]}")
    return spec_from_payload(name, data["spec"]), Previous(number, spec_from_payload(name, old["spec"]))


def live_services(records: Iterable[Record]) -> tuple[list[ServiceView], list[Unreadable]]:
    """The live services among `records`, and the unreadable ones set aside for the caller to report."""
    views, unreadable = [], []
    for record in records:
        try:
            view = read_service(record)
        except Unreadable as exc:
            unreadable.append(exc)
            continue
        if view is not None:
            views.append(view)
    return views, unreadable


# ---- planning ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Write:
    """One planned change of one service (or none: `unchanged`)."""

    name: str
    action: Action
    generation: int
    """The generation the service has after this write (its current one when unchanged)."""
    note: str
    """What changed, in one line (describe_changes); stored with the entry and shown in the history."""
    payload: bytes
    expect: int
    """The generation the plan read (0: absent or deleted), so the store re-checks what the plan checked."""
    tombstone: bool = False

    @property
    def key(self) -> str:
        return service_key(self.name)


class Writer(Protocol):
    """The agent's store write (gossip.cluster.Cluster.write): raises Conflict, writing nothing, if stale."""

    def __call__(self, key: str, payload: bytes, *, note: str, expect: int | None,
                 tombstone: bool = False) -> Record: ...


def check_expect(name: str, record: Record | None, expect: int | None) -> None:
    if expect is not None and expect != live_generation(record):
        raise Conflict(service_key(name), expect, record)


def plan_apply(manifest: Manifest, current: Mapping[str, Record | None],
               expect: Mapping[str, int] | None = None, others: Iterable[ServiceSpec] = ()) -> list[Write]:
    """One Write per service of the manifest, in its order; Conflict for the first stale expectation,
    InvalidRequest for an expectation about a service the manifest does not hold, and InvalidRequest (code
    port_taken) for a port published by one of `others` (the live services the manifest does not define), before
    anything is written."""
    expect = expect or {}
    if unknown := sorted(set(expect) - {s.name for s in manifest.services}):
        raise InvalidRequest("expect", f"expect names {', '.join(unknown)}, which the manifest does not define")
    check_ports(manifest, others)
    writes = []
    for spec in manifest.services:
        record = current.get(spec.name)
        check_expect(spec.name, record, expect.get(spec.name))
        writes.append(plan_spec(spec, record))
    return writes


def check_ports(manifest: Manifest, others: Iterable[ServiceSpec]) -> None:
    """A published port answers on every node for one service only: refuse a manifest that publishes a port an
    existing service (not redefined by this manifest) publishes. The manifest reader already refuses one port
    published twice within a manifest."""
    mine = {s.name for s in manifest.services}
    taken = {port.published: spec.name for spec in others if spec.name not in mine for port in spec.ports}
    for spec in manifest.services:
        for port in spec.ports:
            if (owner := taken.get(port.published)) is not None:
                raise InvalidRequest(f"services.{spec.name}.ports",
                                     f"port {port.published} is already published by service {owner}; publish "
                                     f"another port, or remove it from {owner} first (or apply both in one "
                                     "manifest)", code="port_taken")


def plan_spec(spec: ServiceSpec, record: Record | None) -> Write:
    """Write `spec` as the service's next generation. The spec it replaces travels with it as `previous` if the
    replicas' version changes; a change that keeps the version (scale, pacing, x-shoal) carries the current
    previous forward, so a rollback still returns to the last different content. Same spec: `unchanged`."""
    if record is None or record.entry.tombstone:
        return Write(spec.name, "created", next_generation(record), describe_changes(None, spec), spec_bytes(spec), 0)
    read = record.entry.generation
    try:
        view = read_service(record)
    except Unreadable:
        view = None
    if view is None:
        note = "replaced an unreadable spec: " + describe_changes(None, spec)
        return Write(spec.name, "updated", read + 1, note[:MAX_NOTE_LEN], spec_bytes(spec), read)
    if spec_bytes(view.spec) == spec_bytes(spec):  # the spec part: a previous beside it is no change
        return Write(spec.name, "unchanged", read, "", record.entry.payload, read)
    previous = Previous(read, view.spec) if version(view.spec) != version(spec) else view.previous
    payload, dropped = encode_payload(spec, previous)
    note = history_note(describe_changes(view.spec, spec), dropped)
    return Write(spec.name, "updated", read + 1, note, payload, read)


DROPPED_NOTE = f" (previous spec not kept: with it the entry exceeds {MAX_PAYLOAD_BYTES // 1024} KiB)"


def history_note(change: str, dropped: bool) -> str:
    """The history line, within MAX_NOTE_LEN; says so when the previous spec did not fit (rollback unavailable)."""
    if not dropped:
        return change[:MAX_NOTE_LEN]
    return change[:MAX_NOTE_LEN - len(DROPPED_NOTE)] + DROPPED_NOTE


def plan_scale(name: str, record: Record | None, replicas: object, expect: int | None = None) -> Write:
    """Scale a replicated service: NotFound, Conflict, InvalidRequest (not an integer) or ManifestError
    (global service, out of range); `unchanged` when it already has that many replicas."""
    view = existing(name, record)
    check_expect(name, record, expect)
    if type(replicas) is not int:
        raise InvalidRequest("replicas", f"replicas must be an integer, got {json.dumps(replicas)[:40]}")
    spec = with_replicas(view.spec, replicas)
    return plan_spec(spec, view.record)


def plan_delete(name: str, record: Record | None, expect: int | None = None) -> Write:
    """Delete a service (a tombstone at the next generation): NotFound, or Conflict if `expect` is stale."""
    if record is None or record.entry.tombstone:
        raise NotFound(name, record)
    check_expect(name, record, expect)
    return Write(name, "deleted", next_generation(record), "deleted", b"", record.entry.generation, tombstone=True)


def existing(name: str, record: Record | None) -> ServiceView:
    """The live service a record holds; NotFound if there is none or it was deleted."""
    view = read_service(record) if record is not None else None
    if view is None:
        raise NotFound(name, record)
    return view


def commit(writes: Sequence[Write], write: Writer) -> None:
    """Perform a plan. Call it right after planning, with no await in between, so nothing can interleave."""
    for w in writes:
        if w.action != "unchanged":
            write(w.key, w.payload, note=w.note, expect=w.expect, tombstone=w.tombstone)


def parse_expect(values: Iterable[str]) -> dict[str, int]:
    """`expect=NAME:GEN` query values -> {name: generation}; InvalidRequest naming the bad one."""
    expect: dict[str, int] = {}
    for text in values:
        name, sep, generation = text.rpartition(":")
        if not sep or not name or not generation.isdigit() or not generation.isascii():
            raise InvalidRequest("expect", f"expect={text!r} is not NAME:GENERATION, e.g. web:3 (0: must not exist)")
        if name in expect:
            raise InvalidRequest("expect", f"expect names service {name} twice")
        expect[name] = int(generation)
    return expect


def parse_generation(value: object, field: str) -> int | None:
    """An If-Match header (an ETag's quotes allowed) or a `generation` field: a non-negative integer."""
    if value is None or (type(value) is int and value >= 0):
        return value
    bare = value.strip().removeprefix("W/").strip('"') if isinstance(value, str) else ""
    if not bare.isdigit() or not bare.isascii():
        raise InvalidRequest(field, f"{field}: {json.dumps(value)[:40]} is not a generation (an integer >= 0)")
    return int(bare)


# ---- views -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Author:
    id: NodeId
    name: str


@dataclass(frozen=True, slots=True)
class HistoryItem:
    generation: int
    author: Author
    at: str
    change: str
    deleted: bool
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class ServiceSummary:
    """One row of `shoal services` (SPEC.md). running/ready are filled by the API from observed state (views.counts)."""

    name: str
    mode: str
    replicas: int | None
    """None for a global service (one replica per eligible node)."""
    running: int
    ready: int
    image: str
    generation: int


@dataclass(frozen=True, slots=True)
class ServiceDetail:
    name: str
    generation: int
    mode: str
    replicas: int | None
    image: str
    spec: dict[str, object]
    updated_by: Author
    updated_at: str
    received_at: float | None
    history: tuple[HistoryItem, ...]


def author(node: NodeId, names: Names) -> Author:
    return Author(node, names.get(node) or node[:12])


def iso_utc(stamp: Stamp) -> str:
    """An HLC stamp's wall time as ISO-8601 UTC with milliseconds, e.g. 2026-01-31T12:00:00.250Z."""
    moment = datetime.fromtimestamp(stamp.wall_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def summary(view: ServiceView) -> ServiceSummary:
    spec = view.spec
    return ServiceSummary(spec.name, spec.mode, _replicas(spec), 0, 0, spec.image, view.generation)


def detail(view: ServiceView, names: Names, received_at: float | None) -> ServiceDetail:
    spec, entry = view.spec, view.record.entry
    return ServiceDetail(spec.name, entry.generation, spec.mode, _replicas(spec), spec.image, spec_to_payload(spec),
                         author(entry.author, names), iso_utc(entry.stamp), received_at,
                         history(view.record, names))


def history(record: Record, names: Names) -> tuple[HistoryItem, ...]:
    """Newest first: every version this node has seen, and whether it is current, superseded, or lost a
    conflict (another write of the same generation won, so that edit never took effect)."""
    return tuple(HistoryItem(c.version.generation, author(c.version.author, names), iso_utc(c.version.stamp),
                             c.note, c.version.tombstone, _outcome(record, c)) for c in record.history)


def _outcome(record: Record, change: Change) -> Outcome:
    if change.version == record.entry.version:
        return "current"
    return "lost" if record.lost(change) else "superseded"


def _replicas(spec: ServiceSpec) -> int | None:
    return None if spec.mode == GLOBAL else spec.replicas


# ---- messages ----------------------------------------------------------------------------------------


def conflict_message(conflict: Conflict, names: Names) -> str:
    held = conflict.current
    if held is None:
        holds = "holds no such service"
    elif held.entry.tombstone:
        holds = f"holds it deleted at generation {held.entry.generation} ({_by(held, names)})"
    else:
        holds = f"holds {held.entry.generation} (written {_by(held, names)}: {held.entry.note})"
    return (f"service {service_name(conflict.key)}: expected generation {conflict.expected}, the cluster {holds}; "
            "re-read and apply again")


def not_found_message(error: NotFound, names: Names) -> str:
    if error.record is None:
        return f"service {error.name} does not exist"
    deleted = error.record.entry.generation
    return f"service {error.name} was deleted at generation {deleted} ({_by(error.record, names)})"


def _by(record: Record, names: Names) -> str:
    return f"by {author(record.entry.author, names).name} at {iso_utc(record.entry.stamp)}"


def field_of(name: str) -> str:
    """The manifest field a service-level refusal points at."""
    return f"services.{name}"

