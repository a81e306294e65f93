"""Drives a protocol core with a transport, a clock and an exchanger: the thin shell around `Membership`.

Synchronous and callback-based, so it runs unchanged on asyncio (LoopClock + UDP) and in the simulator
(SimClock + SimNetwork). After every input it drains the core's outbox and re-arms one timer for the
core's next deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from gossip.clock import Clock, Handle
from gossip.members import MemberState
from gossip.replication import Fetch, StoreEvent
from gossip.swim import Exchange, MemberEvent, Membership, Send
from gossip.transport import DatagramTransport, Exchanger
from gossip.wire import Address

T = TypeVar("T")
Event = MemberEvent | StoreEvent


class Driver:
    def __init__(self, core: Membership, transport: DatagramTransport, clock: Clock,
                 exchanger: Exchanger, on_event: Callable[[Event], None]) -> None:
        self.core = core
        self._transport = transport
        self._clock = clock
        self._exchanger = exchanger
        self._on_event = on_event
        self._armed: tuple[float, Handle] | None = None
        self._closed = False

    def start(self) -> None:
        self.core.start(self._clock.now(), self._clock.wall())
        self._transport.start(self.receive)
        self._settle()

    def receive(self, data: bytes, src: Address) -> None:
        if not self._closed:
            self.core.receive(data, src, self._clock.now(), self._clock.wall())
            self._settle()

    def merge_remote(self, states: list[MemberState], peer_cert: bytes | None) -> bool:
        if self._closed:
            return False
        accepted = self.core.merge_remote(states, peer_cert, self._clock.now(), self._clock.wall())
        self._settle()
        return accepted

    def act(self, action: Callable[[Membership, float, float], T]) -> T:
        """Run `action(core, now, wall)` (a local write, fetched records, ...) and send what it caused. After
        close the core still answers (reads, a late reply's merge) but nothing is sent or re-armed."""
        result = action(self.core, self._clock.now(), self._clock.wall())
        if not self._closed:
            self._settle()
        return result

    def leave(self) -> None:
        self.core.leave(self._clock.now(), self._clock.wall())
        self._settle()

    def close(self) -> None:
        self._closed = True
        if self._armed is not None:
            self._armed[1].cancel()
            self._armed = None
        self._transport.close()

    def _tick(self) -> None:
        self._armed = None
        if not self._closed:
            self.core.advance(self._clock.now(), self._clock.wall())
            self._settle()

    def _settle(self) -> None:
        outbox, self.core.outbox = self.core.outbox, []
        for effect in outbox:
            if isinstance(effect, Send):
                self._transport.send(effect.data, effect.addr)
            elif isinstance(effect, Exchange):
                self._exchanger.exchange(effect.addr)
            elif isinstance(effect, Fetch):
                self._exchanger.fetch(effect.addr, effect.keys)
            else:
                self._on_event(effect)
        self._arm()

    def _arm(self) -> None:
        deadline = self.core.next_deadline()
        if self._closed or deadline is None:
            return
        if self._armed is not None:
            if self._armed[0] <= deadline:
                return  # the earlier wake-up will re-arm for this one
            self._armed[1].cancel()
        self._armed = (deadline, self._clock.call_at(deadline, self._tick))
