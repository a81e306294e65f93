"""The rollout gate over every workload, for this node: which of its slots to hold, which outcomes to publish,
which rollbacks to write (DESIGN §7b, node.rollout).

Pure glue between the store's revisions, the placement and node.rollout.gate.decide: every node runs it on its own
view, and since the gate is time-free and views only lag, no node opens a batch early. The agent performs the
result: held slots go to plan (node.plan.Observed.held), marks into its status, rollback writes into the store
(each with its `expect`, so a write that lost the race, or came late, writes nothing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from node.observed import NodeStatus, RolloutMark
from node.replica import SlotKey
from node.rollout import RollbackWrite, decide
from node.rollout.model import Revision
from node.rollout.status import RolloutStatus


@dataclass(frozen=True, slots=True)
class Steps:
    held: frozenset[SlotKey]
    marks: tuple[RolloutMark, ...]  # sorted, at most one per workload
    rollbacks: tuple[RollbackWrite, ...]
    statuses: Mapping[str, RolloutStatus]  # workload -> its rollout as this view shows it


def placed_slots(by_slot: Mapping[tuple[str, int], str], me: str) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """Per workload: every placed replica index, and those placed on `me`."""
    placed: dict[str, list[int]] = {}
    mine: dict[str, list[int]] = {}
    for (service, replica), node in by_slot.items():
        placed.setdefault(service, []).append(replica)
        if node == me:
            mine.setdefault(service, []).append(replica)
    return placed, mine


def steps(me: str, revisions: Sequence[Revision], by_slot: Mapping[tuple[str, int], str],
          statuses: Sequence[NodeStatus]) -> Steps:
    """The gate for each revision. `statuses`: live members' only (a dead node's rows describe nothing that runs)."""
    placed, mine = placed_slots(by_slot, me)
    held: set[SlotKey] = set()
    marks, rollbacks, shown = [], [], {}
    for revision in revisions:
        step = decide(revision, placed.get(revision.service, ()), statuses, mine.get(revision.service, ()))
        held |= step.held
        if step.mark is not None:
            marks.append(step.mark)
        if step.rollback is not None:
            rollbacks.append(step.rollback)
        shown[revision.service] = step.status
    return Steps(frozenset(held), tuple(sorted(marks)), tuple(rollbacks), shown)
