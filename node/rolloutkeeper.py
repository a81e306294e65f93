"""This node's part in every rollout: it judges the replicas it runs and runs the gate on its own view.

Role: the agent's rollout state, with no I/O: the watches of its own replicas (node.rollout.watch: watching, then
settled or failed, read from this node's clock) and the outcome marks it publishes. The agent feeds it reports
and views and performs what it returns: verdicts and marks go into its status, held slots to the reconciler's
plan, rollback writes to the store, and `due` to a timer (the passing of time alone settles or fails a replica).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from node.observed import NodeStatus, ReplicaReport, RolloutMark
from node.replica import SlotKey
from node.rollout import Watch, due, watch
from node.rollout.model import Revision
from node.rollouts import Steps, steps


class RolloutKeeper:
    def __init__(self) -> None:
        self._watches: dict[SlotKey, Watch] = {}
        self.marks: tuple[RolloutMark, ...] = ()  # what this node last saw end (published in its status)

    def judge(self, reports: Sequence[ReplicaReport], revisions: Mapping[str, Revision],
              now: float) -> tuple[tuple[ReplicaReport, ...], float | None]:
        """The reports with this node's verdicts, and when time alone next changes one (None: no watch pending).
        A slot with two rows (start-first: the old version still serving) is judged on the newer version's."""
        watches: dict[SlotKey, Watch] = {}
        out, next_due = [], None
        for report in reports:
            key, revision = SlotKey(report.service, report.replica), revisions.get(report.service)
            if revision is None or report.version != revision.version:
                out.append(report)  # an older version's replica (or an unknown service's): nothing to judge
                continue
            pacing = revision.pacing
            w = watch(self._watches.get(key), report, pacing, now)
            if w is None:
                out.append(report)
                continue
            watches[key] = w
            out.append(replace(report, verdict=w.verdict.value))
            at = due(w, pacing)
            if at is not None:
                next_due = at if next_due is None else min(next_due, at)
        self._watches = watches
        return tuple(out), next_due

    def gate(self, me: str, revisions: Sequence[Revision], by_slot: Mapping[tuple[str, int], str],
             statuses: Sequence[NodeStatus]) -> Steps:
        """The gate on this view; remembers the marks to publish."""
        result = steps(me, revisions, by_slot, statuses)
        self.marks = result.marks
        return result
