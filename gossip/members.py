"""Member records and SWIM's merge rules: which news about a member wins. Pure; no I/O, no timers.

Rules (SWIM §4.2, as in memberlist): a higher incarnation always wins; at the same incarnation the more
severe status wins, left > dead > suspect > alive. Only the member itself raises its incarnation (to refute).
A node that is not known yet is learnt only from `alive` news. Its key is learnt separately: from the
certificate it attaches to datagrams until we have answered it, or from its TLS certificate in a push-pull.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from gossip.wire import Address, Alive, Dead, MemberNews, NodeId, Suspect


class Status(enum.IntEnum):
    """Ordered by severity: at equal incarnation, the larger value wins."""

    ALIVE = 0
    SUSPECT = 1
    DEAD = 2
    LEFT = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class MemberState:
    node: NodeId
    name: str
    addr: Address
    incarnation: int
    status: Status
    labels: tuple[tuple[str, str], ...]
    since: float
    """Monotonic time of the last status change, on this node's clock."""

    def alive_news(self) -> Alive:
        return Alive(self.node, self.incarnation, self.name, self.addr, self.labels)


class Outcome(enum.Enum):
    IGNORED = "ignored"
    """Old or redundant news: drop it and do not gossip it further."""
    APPLIED = "applied"
    """The news changed our view: store the new state and gossip the news on."""
    CONFIRMED = "confirmed"
    """A suspicion we already hold, confirmed by another member (Lifeguard counts these)."""


@dataclass(frozen=True, slots=True)
class Merge:
    outcome: Outcome
    state: MemberState | None = None


_IGNORED = Merge(Outcome.IGNORED)


def merge(current: MemberState | None, news: MemberNews, now: float) -> Merge:
    """Apply one piece of news about a member other than ourselves."""
    if isinstance(news, Alive):
        return _merge_alive(current, news, now)
    if current is None or news.incarnation < current.incarnation:
        return _IGNORED
    if isinstance(news, Suspect):
        if current.status == Status.SUSPECT:
            return Merge(Outcome.CONFIRMED, current)
        if current.status != Status.ALIVE:
            return _IGNORED
        return Merge(Outcome.APPLIED, _with_status(current, Status.SUSPECT, news.incarnation, now))
    target = Status.DEAD if isinstance(news, Dead) else Status.LEFT
    if news.incarnation == current.incarnation and current.status >= target:
        return _IGNORED
    if news.incarnation > current.incarnation and current.status in (Status.DEAD, Status.LEFT) \
            and target == Status.DEAD:
        return _IGNORED  # already gone; a newer death certificate adds nothing
    return Merge(Outcome.APPLIED, _with_status(current, target, news.incarnation, now))


def _merge_alive(current: MemberState | None, news: Alive, now: float) -> Merge:
    if current is not None and news.incarnation <= current.incarnation:
        return _IGNORED
    state = MemberState(news.node, news.name, news.addr, news.incarnation, Status.ALIVE, news.labels, now)
    return Merge(Outcome.APPLIED, state)


def _with_status(state: MemberState, status: Status, incarnation: int, now: float) -> MemberState:
    return replace(state, status=status, incarnation=incarnation, since=now)


def needs_refute(my_incarnation: int, news: MemberNews, leaving: bool) -> bool:
    """Is this news about ourselves something we must contradict by raising our incarnation?"""
    if leaving:
        return False
    if isinstance(news, Alive):
        return news.incarnation > my_incarnation  # a stale view of an earlier life of ours
    return news.incarnation >= my_incarnation

