"""Rollback as data: the write that puts a service's previous spec back, as its next generation.

Pure. Any node whose gate sees a generation's failures pass max_failure_ratio (failure_action: rollback) makes
this write, and so may several at once (DESIGN §7b). The write is a function of the revision alone (the previous
spec, a note naming both generations), so every writer's payload and note are identical: the store's merge picks
one winner at the next generation, and all nodes end with the same content. `shoal rollback` makes the same write
by hand (its note says so). The note marks the generation as a rollback in the history, and `rollback_of` reads
that mark back, so every node knows the new generation is paced by rollback_config and is never rolled back itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from node.manifest.model import ServiceSpec
from node.rollout.model import Previous, Revision

_NOTE = re.compile(r"rollback of generation ([0-9]{1,18}) ")


@dataclass(frozen=True, slots=True)
class RollbackWrite:
    """Write `spec` to the service's record at generation expect + 1, storing `previous` beside it."""

    service: str
    spec: ServiceSpec  # the spec to write back: the failed generation's previous spec, unchanged
    previous: Previous  # what it replaces (the failed spec): a later `shoal rollback` swaps back to it
    note: str  # the history line; identical from every writer
    expect: int  # the generation rolled back: the write is stale (a Conflict, nothing written) once it moved on


def rollback(revision: Revision, *, by_hand: bool = False) -> RollbackWrite | None:
    """The write that rolls `revision` back; None if there is no previous spec to return to."""
    previous = revision.previous
    if previous is None:
        return None
    why = "requested by hand" if by_hand else "automatic: its replicas failed"
    note = f"rollback of generation {revision.generation} to the spec of generation {previous.generation} ({why})"
    return RollbackWrite(revision.service, previous.spec, Previous(revision.generation, revision.spec), note,
                         revision.generation)


def rollback_of(note: str) -> int | None:
    """The generation a history note says this one rolls back; None for any other change."""
    match = _NOTE.match(note)
    return int(match.group(1)) if match else None
