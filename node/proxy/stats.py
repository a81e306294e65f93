"""Counters per route, and the plain snapshot of them that metrics will read later.

Role: `Counters` is the mutable tally the data path bumps (plain integer attributes: the cheapest thing to
increment per chunk of bytes); `RouteStats` is its frozen copy at one moment, with per-endpoint open
connections (an endpoint removed from the route stays listed while connections to it drain). Boundary: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.proxy.model import Address


class Counters:
    """Totals since the listener's route first appeared in the table (they survive route changes)."""

    __slots__ = ("accepted", "bytes_from_clients", "bytes_to_clients", "closed_full", "closed_idle",
                 "closed_no_endpoint", "connect_failures", "denied", "listen_failures", "open_by_endpoint",
                 "retries")

    def __init__(self) -> None:
        self.accepted = 0  # client connections admitted and forwarded (or being connected)
        self.bytes_from_clients = 0
        self.bytes_to_clients = 0
        self.connect_failures = 0  # connect attempts refused or timed out
        self.retries = 0  # attempts after a failed one, each on another endpoint
        self.closed_no_endpoint = 0  # clients closed for want of an endpoint (none, or every attempt failed)
        self.closed_full = 0  # clients closed on arrival because the listener was at max_connections
        self.closed_idle = 0
        self.denied = 0  # clients the admission hook refused
        self.listen_failures = 0
        self.open_by_endpoint: dict[Address, int] = {}  # upstream connections open now, per endpoint


@dataclass(frozen=True, slots=True)
class EndpointStats:
    address: Address
    weight: int | None  # None: no longer in the route, its connections draining
    open: int
    cooling_down: bool  # a connect to it failed recently; new connections avoid it


@dataclass(frozen=True, slots=True)
class RouteStats:
    listen: Address
    service: str
    listening: bool
    listen_error: str | None  # why the listener is not open, while it is not
    open: int  # client connections open now, including ones still connecting upstream
    buffered_bytes: int  # bytes held in this route's write buffers now (bounded by flow control)
    accepted: int
    bytes_from_clients: int
    bytes_to_clients: int
    connect_failures: int
    retries: int
    closed_no_endpoint: int
    closed_full: int
    closed_idle: int
    denied: int
    listen_failures: int
    endpoints: tuple[EndpointStats, ...]
