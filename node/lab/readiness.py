"""Judging convergence from what each host's agent says about its members.

Role: turn /v1/members answers into "who sees whom as what", decide whether the lab has converged,
and explain, host by host, what is missing when it has not.
Boundary: pure; agents.py fetches the answers and owns the deadline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# When one name has several entries (a host removed then re-created gets a new identity under the
# same name), the most alive one tells whether that name is served.
_RANK = {"alive": 0, "suspect": 1, "dead": 2, "left": 3}


@dataclass(frozen=True)
class View:
    """One host's answer: name -> status, or why there is no answer."""

    statuses: Mapping[str, str] | None = None
    error: str | None = None


def member_statuses(payload: object) -> dict[str, str]:
    """The name -> status map of a /v1/members body; ValueError if it is not the documented array."""
    if not isinstance(payload, list):
        raise ValueError("/v1/members did not return a JSON array")
    statuses: dict[str, str] = {}
    for entry in payload:
        if not isinstance(entry, dict):
            raise ValueError("/v1/members returned a non-object entry")
        name, status = entry.get("name"), entry.get("status")
        if not isinstance(name, str) or not isinstance(status, str):
            raise ValueError("/v1/members entry lacks a string name or status")
        best = statuses.get(name)
        if best is None or _RANK.get(status, 9) < _RANK.get(best, 9):
            statuses[name] = status
    return statuses


def lagging(views: Mapping[str, View], wanted: Iterable[str]) -> list[str]:
    """Names of the wanted hosts that do not yet see every wanted host alive; [] means converged."""
    names = sorted(wanted)
    late = []
    for name in names:
        view = views.get(name)
        seen = view.statuses if view is not None else None
        if seen is None or any(seen.get(other) != "alive" for other in names):
            late.append(name)
    return late


def describe(views: Mapping[str, View], wanted: Iterable[str]) -> str:
    """One line per wanted host: what it sees of the others, or why it did not answer."""
    names = sorted(wanted)
    lines = []
    for name in names:
        view = views.get(name, View(error="not asked"))
        if view.statuses is None:
            lines.append(f"{name}: no answer ({view.error})")
        else:
            seen = " ".join(f"{other}={view.statuses.get(other, 'missing')}" for other in names)
            extra = " ".join(f"{n}={s}" for n, s in sorted(view.statuses.items()) if n not in names)
            lines.append(f"{name} sees {seen}" + (f" (also {extra})" if extra else ""))
    return "\n".join(lines)
