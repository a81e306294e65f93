"""The rollout gate: from a revision and every node's reports, which of this node's slots may take the new version.

Pure and time-free (the owners' verdicts carry all the timing, node.rollout.watch), so every node computes the
same answer from the same view, and a lagging view answers as an earlier one did (DESIGN §7b):
- the service's placed slots, sorted, form batches of `parallelism` (0: one batch); a slot is *through* when a
  replica of the new version runs there ready and settled (or, under failure_action continue, failed);
- the *frontier* is the first batch with a slot not through. A slot up to the frontier may be replaced; one past
  it is *held*: its running older replica is kept. Settled is asserted by the replica's owner only once true, and
  views only lag, so no node opens a batch before every earlier one was truly through, and replacements under
  way never span two batches: parallelism holds cluster-wide. (A held slot with no running replica at all, e.g.
  its node vanished, starts the new version: there is nothing to keep, so nothing is replaced.)
- failed slots over max_failure_ratio of all slots trigger the failure action: pause (hold everything), continue,
  or rollback (hold everything and write the previous spec back; a rollback is never rolled back, it pauses);
- COMPLETED and PAUSED are published by each node that sees them (RolloutMark in its status). A mark for the
  current generation settles the outcome for everyone, so a replica failing after completion (e.g. re-placed
  after a node died) triggers nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from node.observed import NodeStatus, ReplicaReport, RolloutMark
from node.replica import SlotKey
from node.rollout.model import CONTINUE, PAUSE, RUNNING, Phase, Revision, Verdict
from node.rollout.rollback import RollbackWrite, rollback
from node.rollout.status import RolloutStatus

MARKED = (Phase.COMPLETED, Phase.PAUSED)


@dataclass(frozen=True, slots=True)
class Step:
    """What this node does about one service's rollout now."""

    status: RolloutStatus
    held: frozenset[SlotKey]  # this node's slots whose running replica of another version must be kept as is
    mark: RolloutMark | None  # an outcome to publish in this node's status (replacing the service's older one)
    rollback: RollbackWrite | None  # the write to make now (if the store still holds `rollback.expect`)


@dataclass(frozen=True, slots=True)
class _Tally:
    order: tuple[int, ...]
    batch_of: dict[int, int]
    batches: int
    settled: frozenset[int]
    failed: frozenset[int]
    frontier: int | None


def rows_of(statuses: Iterable[NodeStatus], service: str) -> list[ReplicaReport]:
    """Every reported replica of `service`. Pass the statuses of live members only (node.views.live): a dead
    node's last report describes replicas that no longer run."""
    return [r for status in statuses for r in status.replicas if r.service == service]


def marks_of(statuses: Iterable[NodeStatus], revision: Revision) -> frozenset[Phase]:
    """The outcomes any node has published for this generation of the service."""
    return frozenset(Phase(m.phase) for s in statuses for m in s.marks
                     if m.service == revision.service and m.generation == revision.generation)


def assess(revision: Revision, slots: Iterable[int], statuses: Sequence[NodeStatus]) -> RolloutStatus:
    """The rollout's status as this view shows it (what `shoal rollout status` prints)."""
    tally = _tally(revision, slots, statuses)
    return _status(revision, tally, _phase(revision, tally, marks_of(statuses, revision)))


def decide(revision: Revision, slots: Iterable[int], statuses: Sequence[NodeStatus],
           mine: Collection[int]) -> Step:
    """The gate for this node's slots `mine` (replica indices) of `revision`'s service."""
    tally = _tally(revision, slots, statuses)
    phase = _phase(revision, tally, marks_of(statuses, revision))
    status = _status(revision, tally, phase)
    if phase is Phase.COMPLETED:
        held: Iterable[int] = ()
    elif phase is Phase.UPDATING and tally.frontier is not None:
        # A slot of ours that `slots` lacks (two views of placement differ for a moment) waits as if it came last.
        held = [i for i in mine if tally.batch_of.get(i, tally.batches) > tally.frontier]
    else:  # paused, failed, or this generation is being rolled back: no slot moves on
        held = mine
    mark = RolloutMark(revision.service, revision.generation, phase.value) if phase in MARKED else None
    write = rollback(revision) if phase is Phase.ROLLING_BACK else None
    return Step(status, frozenset(SlotKey(revision.service, i) for i in held), mark, write)


def _tally(revision: Revision, slots: Iterable[int], statuses: Sequence[NodeStatus]) -> _Tally:
    order = tuple(sorted(set(slots)))
    placed, target = set(order), revision.version
    rows = [r for r in rows_of(statuses, revision.service) if r.replica in placed and r.version == target]
    settled = frozenset(r.replica for r in rows if r.state == RUNNING and r.ready and r.verdict == Verdict.SETTLED)
    failed = frozenset(r.replica for r in rows if r.verdict == Verdict.FAILED) - settled
    size = revision.pacing.parallelism or len(order) or 1
    batch_of = {slot: i // size for i, slot in enumerate(order)}
    through = settled | failed if revision.pacing.failure_action == CONTINUE else settled
    frontier = min((batch_of[s] for s in order if s not in through), default=None)
    return _Tally(order, batch_of, -(-len(order) // size), settled, failed, frontier)


def _phase(revision: Revision, tally: _Tally, marks: frozenset[Phase]) -> Phase:
    """The internal phase: UPDATING, COMPLETED, PAUSED, ROLLING_BACK (this generation is to be written back) or
    FAILED. A rollback generation's own progress shows as ROLLING_BACK / ROLLED_BACK only in its status."""
    pacing = revision.pacing
    if Phase.COMPLETED in marks or tally.frontier is None:
        return Phase.COMPLETED
    if Phase.PAUSED in marks:
        return Phase.PAUSED
    over = len(tally.failed) / len(tally.order) > pacing.max_failure_ratio  # as Swarm: a ratio of all slots
    if not over or pacing.failure_action == CONTINUE:
        return Phase.UPDATING
    if revision.rollback_of is not None or pacing.failure_action == PAUSE:
        return Phase.PAUSED  # as in Swarm, a failing rollback pauses rather than rolling back again
    return Phase.ROLLING_BACK if revision.changes_content else Phase.FAILED


def _status(revision: Revision, tally: _Tally, phase: Phase) -> RolloutStatus:
    shown, message = phase, ""
    if revision.rollback_of is not None:
        shown = {Phase.UPDATING: Phase.ROLLING_BACK, Phase.COMPLETED: Phase.ROLLED_BACK}.get(phase, phase)
        message = f"generation {revision.rollback_of} rolled back" if phase is Phase.COMPLETED else \
            f"rolling generation {revision.rollback_of} back"
    total, failed = len(tally.order), len(tally.failed)
    if phase in (Phase.PAUSED, Phase.ROLLING_BACK, Phase.FAILED) and failed:
        ratio = revision.pacing.max_failure_ratio
        message = f"{failed} of {total} replicas failed (max_failure_ratio {ratio:g})"
    if phase is Phase.ROLLING_BACK and revision.previous is not None:
        message += f"; rolling back to the spec of generation {revision.previous.generation}"
    elif phase is Phase.FAILED:
        message += "; no earlier spec to roll back to"
    elif phase is Phase.PAUSED:
        message = (message + "; " if message else "") + "paused: apply a fixed spec or run shoal rollback"
    elif phase is Phase.COMPLETED and failed:
        message = f"completed; {failed} of its replicas failed"
    batch = tally.frontier if phase is not Phase.COMPLETED else None
    return RolloutStatus(revision.service, revision.generation, revision.version, shown, len(tally.settled),
                         failed, total, batch, tally.batches, revision.rollback_of, message)
