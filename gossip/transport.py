"""The two boundaries the protocol core is driven through, as Protocols.

- `DatagramTransport`: best-effort datagrams (real UDP in gossip.udp, the seeded in-memory network in
  gossip.simnet). Delivery is a callback, so the same synchronous driver runs on both.
- `Exchanger`: one push-pull anti-entropy exchange with a peer (mutual TLS over TCP in gossip.cluster, a
  delayed in-memory swap in gossip.simnet). The result comes back through the callback.
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
        """Start a push-pull with `addr`; on success the driver's `merge_remote` is called."""
