"""Push-pull anti-entropy payloads: a member table as plain values and back, strictly validated.

A state travels as [status, alive-message] so it reuses the datagram codec's checks. The exchange itself
runs over mutual TLS (gossip.stream); this module only shapes what is exchanged.
"""

from __future__ import annotations

from typing import Any

from gossip.errors import WireError
from gossip.members import MemberState, Status
from gossip.wire import Alive, decode_message, encode_message

MAX_MEMBERS = 10_000


def encode_states(states: list[MemberState]) -> list[object]:
    return [[int(s.status), encode_message(s.alive_news())] for s in states]


def decode_states(raw: Any, now: float) -> list[MemberState]:
    if not isinstance(raw, list) or len(raw) > MAX_MEMBERS:
        raise WireError(f"members must be a list of at most {MAX_MEMBERS}")
    states = []
    for item in raw:
        if not isinstance(item, list) or len(item) != 2 or type(item[0]) is not int:
            raise WireError("member state must be [status, alive]")
        if item[0] not in tuple(Status):
            raise WireError(f"unknown member status {item[0]}")
        news = decode_message(item[1])
        if not isinstance(news, Alive):
            raise WireError("member state must carry an alive record")
        states.append(MemberState(news.node, news.name, news.addr, news.incarnation, Status(item[0]),
                                  news.labels, now))
    return states
