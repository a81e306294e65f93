"""`shoal rollout status`: a rollout's phase and progress as data, JSON and one line with a progress bar.

Pure. node.rollout.gate.assess computes a RolloutStatus from the same inputs on any node; this module only shapes
it for the API and the CLI. Exit codes follow SPEC.md: 0 when the followed rollout completed, 1 when it was
rolled back, paused or failed; None while it is still going.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.rollout.model import Phase

BAR_WIDTH = 20


@dataclass(frozen=True, slots=True)
class RolloutStatus:
    service: str
    generation: int
    version: str
    phase: Phase
    updated: int  # slots running this generation's version, ready and settled
    failed: int  # slots whose replica of this version failed (exited, or not ready within monitor)
    total: int  # the service's placed slots
    batch: int | None  # the batch now allowed to update (0-based); None once every batch is through
    batches: int
    rollback_of: int | None = None  # this generation rolls that one back
    message: str = ""

    @property
    def exit_code(self) -> int | None:
        if not self.phase.ended:
            return None
        return 0 if self.phase is Phase.COMPLETED else 1

    def to_json(self) -> dict[str, object]:
        return {"service": self.service, "generation": self.generation, "version": self.version,
                "phase": self.phase.value, "updated": self.updated, "failed": self.failed, "total": self.total,
                "batch": self.batch, "batches": self.batches, "rollback_of": self.rollback_of,
                "message": self.message, "ended": self.phase.ended}


def line(status: RolloutStatus, width: int = BAR_WIDTH) -> str:
    """e.g. `web generation 7 [##########----------] 2/4 updating (batch 2 of 4)`."""
    filled = width * status.updated // status.total if status.total else width
    bar = "#" * filled + "-" * (width - filled)
    text = f"{status.service} generation {status.generation} [{bar}] {status.updated}/{status.total} {status.phase}"
    if status.failed:
        text += f", {status.failed} failed"
    if status.batch is not None and status.phase in (Phase.UPDATING, Phase.ROLLING_BACK):
        text += f" (batch {status.batch + 1} of {status.batches})"
    if status.message:
        text += f": {status.message}"
    return text
