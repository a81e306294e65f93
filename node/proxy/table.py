"""What an update changes: the listen addresses to open, to close, and to re-route, from the old table to the new.

Role: the pure half of `Proxy.update`: the shell applies the result (open listeners, close them and let their
connections drain, swap a route in place so connections and counters stay). Boundary: pure, deterministic
(each list sorted), no sockets.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.proxy.model import Address, Table, check_address


@dataclass(frozen=True, slots=True)
class TableChange:
    opened: tuple[Address, ...]  # in the new table only: open a listener
    closed: tuple[Address, ...]  # in the old table only: stop accepting, let connections drain
    rerouted: tuple[Address, ...]  # in both with a different route: swap the route, keep the listener

    @property
    def empty(self) -> bool:
        return not (self.opened or self.closed or self.rerouted)


def diff(old: Table, new: Table) -> TableChange:
    for address in new:
        check_address(address)
    return TableChange(opened=tuple(sorted(new.keys() - old.keys())),
                       closed=tuple(sorted(old.keys() - new.keys())),
                       rerouted=tuple(sorted(a for a in new.keys() & old.keys() if new[a] != old[a])))
