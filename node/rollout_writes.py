"""The rollout operations as desired-state writes: rollback (automatic or by hand), canary promote, abort and
weight, and the blue-green switch. Each is the service record's next generation, planned here from the record
the caller read and committed by it with no await in between (node.desired.commit), like every other write.

Pure. A rollback write is a function of the RollbackWrite alone (node.rollout.rollback), so every node planning
the same rollback writes the same bytes and note, and concurrent writers converge.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import replace

from gossip.entry import Record
from node.desired import (
    InvalidRequest,
    Write,
    check_expect,
    encode_payload,
    existing,
    field_of,
    history_note,
    plan_spec,
    revision,
)
from node.manifest import BLUE, GREEN, ServiceSpec, spec_from_payload, spec_to_payload
from node.rollout import bluegreen, canary
from node.rollout.rollback import RollbackWrite, rollback


def plan_change(name: str, record: Record | None, change: Callable[[ServiceSpec], ServiceSpec], field: str,
                expect: int | None = None) -> Write:
    """Write change(current spec) as the next generation (canary promote/abort/weight, blue-green switch):
    NotFound, Conflict, InvalidRequest naming `field` (the change's ValueError, e.g. no canary), or ManifestError if
    the result is no valid spec (re-read strictly, as every node will read it)."""
    view = existing(name, record)
    check_expect(name, record, expect)
    try:
        spec = change(view.spec)
    except ValueError as exc:
        raise InvalidRequest(field, str(exc), code="not_applicable") from None
    return plan_spec(spec_from_payload(name, spec_to_payload(spec)), view.record)


def canary_field(name: str) -> str:
    return f"{field_of(name)}.x-shoal.canary"


def blue_green_field(name: str) -> str:
    return f"{field_of(name)}.x-shoal.blue_green"


def plan_promote(name: str, record: Record | None, expect: int | None = None) -> Write:
    """The canary's image, command and environment become the service's (its replicas roll under update_config)."""
    return plan_change(name, record, canary.promote, canary_field(name), expect)


def plan_abort(name: str, record: Record | None, expect: int | None = None) -> Write:
    """The canary goes; the stable replicas are untouched (the previous spec is carried forward)."""
    return plan_change(name, record, canary.abort, canary_field(name), expect)


def plan_canary_weight(name: str, record: Record | None, weight: object, expect: int | None = None) -> Write:
    """Set the canary's weight, a number with 0 < weight <= 100 (InvalidRequest naming `weight` otherwise)."""
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) \
            or not 0 < weight <= 100:
        raise InvalidRequest("weight", f"weight must be a number of percent, 0 < weight <= 100; got "
                                       f"{json.dumps(weight)[:40]}")
    percent = float(weight)
    return plan_change(name, record, lambda spec: canary.with_weight(spec, percent), canary_field(name), expect)


def plan_switch(name: str, record: Record | None, to: object = None, expect: int | None = None) -> Write:
    """Make `to` (blue or green; None: the other side) the live side of a blue-green service; `unchanged` if it
    already is. Restarts nothing: `active` is no part of a replica's version."""
    if to is not None and to not in (BLUE, GREEN):
        raise InvalidRequest("to", f"to must be {BLUE} or {GREEN} (or left out: the other side); got "
                                   f"{json.dumps(to)[:40]}")
    side = str(to) if to is not None else None

    def flip(spec: ServiceSpec) -> ServiceSpec:
        sides = spec.x_shoal.blue_green
        if sides is None:
            raise ValueError(f"service {spec.name} has no blue_green sides to switch (x-shoal.blue_green)")
        return replace(spec, x_shoal=replace(spec.x_shoal, blue_green=bluegreen.switch(sides, side)))
    return plan_change(name, record, flip, blue_green_field(name), expect)


def plan_rollback(name: str, record: Record | None, expect: int | None = None) -> Write:
    """`shoal rollback`: write the previous spec back by hand (node.rollout.rollback); run again, it swaps back.
    NotFound, Conflict, or InvalidRequest (code no_previous_spec) when the record carries no previous spec."""
    view = existing(name, record)
    check_expect(name, record, expect)
    write = rollback(revision(view), by_hand=True)
    if write is None:
        raise InvalidRequest(field_of(name), f"service {name} has no previous spec to roll back to (generation "
                             f"{view.generation}): no change since its creation replaced what its replicas run, or "
                             "the previous spec did not fit beside the current one", code="no_previous_spec")
    return plan_rollback_write(write, view.record)


def plan_rollback_write(rw: RollbackWrite, record: Record | None) -> Write:
    """The store write for a RollbackWrite (automatic or by hand): payload {"spec": rw.spec, "previous":
    rw.previous} (the bare spec if both do not fit), note rw.note, at rw.expect + 1. A function of `rw` alone, so
    every node planning the same rollback writes the same bytes and note. Conflict if the service moved on."""
    check_expect(rw.service, record, rw.expect)
    payload, dropped = encode_payload(rw.spec, rw.previous)
    return Write(rw.service, "updated", rw.expect + 1, history_note(rw.note, dropped), payload, rw.expect)
