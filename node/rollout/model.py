"""Rollout values: the revision a rollout moves to, the phases it goes through, the owner's verdict on a replica.

Pure data. A `Revision` is a service's current desired spec as the rollout reads it: its generation, the spec it
replaced (`previous`, what a rollback writes back) and, for a generation that is itself a rollback, which one it
rolls back. Phases and verdicts are string enums because they travel in observed state (node.observed) and the API.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from node.manifest.model import ServiceSpec, UpdateConfig
from node.replica import version

ROLLBACK, PAUSE, CONTINUE = "rollback", "pause", "continue"  # update_config.failure_action
RUNNING = "running"  # a ReplicaReport state
ENDED_STATES = frozenset({"exited", "failed"})  # a replica in one of these has stopped on its own (or never ran)


class Phase(enum.StrEnum):
    """Where a generation's rollout stands. COMPLETED and PAUSED are the outcomes nodes publish (RolloutMark)."""

    UPDATING = "updating"  # batches advancing
    COMPLETED = "completed"  # every slot runs the generation's version, ready and settled
    PAUSED = "paused"  # failures passed max_failure_ratio with failure_action pause (or during a rollback)
    ROLLING_BACK = "rolling-back"  # failures passed the ratio; the previous spec is (being) written back
    ROLLED_BACK = "rolled-back"  # a rollback generation that completed
    FAILED = "failed"  # failures passed the ratio and there is nothing to roll back to

    @property
    def ended(self) -> bool:
        """No further progress comes without an operator (or a rollback generation, which is followed next)."""
        return self in (Phase.COMPLETED, Phase.PAUSED, Phase.ROLLED_BACK, Phase.FAILED)


class Verdict(enum.StrEnum):
    """The owner's judgement of one replica of one version (node.rollout.watch); sticky once not WATCHING."""

    WATCHING = "watching"  # started; not yet ready for monitor + delay
    SETTLED = "settled"  # stayed ready for monitor + delay: its batch may move on
    FAILED = "failed"  # exited, or not ready within monitor


@dataclass(frozen=True, slots=True)
class Previous:
    """The spec a generation replaced, and that spec's generation."""

    generation: int
    spec: ServiceSpec


@dataclass(frozen=True, slots=True)
class Revision:
    """A service's current desired state as the rollout reads it. `previous` must travel with the generation it
    precedes (docs/rollouts.md); `rollback_of` is read from the generation's note (rollback.rollback_of)."""

    spec: ServiceSpec
    generation: int
    previous: Previous | None = None  # None: created at this generation, or the previous spec is not known here
    rollback_of: int | None = None  # this generation rolls that generation back (automatically or by hand)

    @property
    def service(self) -> str:
        return self.spec.name

    @property
    def version(self) -> str:
        return version(self.spec)

    @property
    def pacing(self) -> UpdateConfig:
        """update_config, or rollback_config for a rollback generation. As in Swarm, a rollback is paced by the
        restored spec's own rollback_config (the spec this generation holds)."""
        deploy = self.spec.deploy
        return deploy.rollback_config if self.rollback_of is not None else deploy.update_config

    @property
    def changes_content(self) -> bool:
        """The previous spec is known and its replicas differ from this one's (not a scale or pacing change)."""
        return self.previous is not None and version(self.previous.spec) != self.version
