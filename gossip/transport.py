"""The two boundaries the protocol core is driven through, as Protocols.

- `DatagramTransport`: best-effort datagrams (real UDP in gossip.udp, the seeded in-memory network in
  gossip.simnet). Delivery is a callback, so the same synchronous driver runs on both.
- `Exchanger`: one push-pull anti-entropy exchange with a peer, and fetches of store records (mutual TLS over
  TCP in gossip.cluster, delayed in-memory calls in gossip.simnet). Results come back through the driver.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from gossip.wire import Address

Receiver = Callable[[bytes, Address], None]


class DatagramTransport(Protocol):
    @property
    def local_addr(self) -> Address: ...

    def start(self, receiver: Receiver) -> None: ...

    def send(self, data: bytes, addr: Address) -> None: ...

    def close(self) -> None: ...


class Exchanger(Protocol):
    def exchange(self, addr: Address) -> None:
        """Start a push-pull (members, then the store) with `addr`; results come back through the driver."""

    def fetch(self, addr: Address, keys: tuple[str, ...]) -> None:
        """Fetch the records of `keys` from `addr`; the driver's core gets them (`replica.fetched`)."""
