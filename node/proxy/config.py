"""The proxy's knobs: one frozen dataclass, units in the names, the reason for each default beside it.

Boundary: values only, checked in `__post_init__`; the shell (proxy.py, listener.py) reads them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    connect_timeout_s: float = 1.0
    """Per connect attempt. A live replica answers a SYN within a millisecond on a LAN; a host that vanished
    answers nothing, so this bounds what a dead replica costs a client (one timeout, then the next endpoint)."""
    connect_attempts: int = 3
    """Endpoints tried per client connection before it is closed: one dead replica, or two during a host loss,
    cost a retry each, while an outage of every replica still ends in a prompt close rather than a long wait."""
    cool_down_s: float = 5.0
    """After a failed connect the endpoint sits out this long (unless nothing else is left), so until readiness
    removes a dead replica (a few probe periods) new connections do not keep paying a retry for it."""
    max_connections: int = 4096
    """Concurrent client connections per listener; more are closed on arrival. Each costs two descriptors,
    so the process's RLIMIT_NOFILE has to cover the sum over listeners."""
    idle_timeout_s: float = 600.0
    """A connection with no bytes either way for this long is closed (nginx stream's proxy_timeout default),
    so half-dead peers do not hold descriptors forever. Checked by a sweep every quarter of it, so the actual
    close comes between 1x and 1.25x."""
    backlog: int = 1024
    """Listen queue per listener: bursts of new connections wait in the kernel instead of being refused."""
    buffer_bytes: int = 64 * 1024
    """High-water mark of each transport's write buffer (low-water a quarter of it): when a side's peer reads
    slower than it writes, reading from that side pauses here. The write that crosses the mark can add one read
    (up to 256 KiB on both loops), so a connection holds at most 2 x (this + 256 KiB) = 640 KiB in the proxy,
    and only while both its directions stall. asyncio's and uvloop's own default."""
    listen_retry_s: float = 1.0
    """First retry after a listener fails to open (the VIP may not be on `lo` yet); doubled per failure."""
    listen_retry_max_s: float = 30.0
    """Cap of that backoff: a listener that cannot open is still retried twice a minute."""

    def __post_init__(self) -> None:
        positive = {"connect_timeout_s": self.connect_timeout_s, "idle_timeout_s": self.idle_timeout_s,
                    "listen_retry_s": self.listen_retry_s, "listen_retry_max_s": self.listen_retry_max_s}
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        for name, count in {"connect_attempts": self.connect_attempts, "max_connections": self.max_connections,
                            "backlog": self.backlog, "buffer_bytes": self.buffer_bytes}.items():
            if count < 1:
                raise ValueError(f"{name} must be >= 1, got {count}")
        if self.cool_down_s < 0:
            raise ValueError(f"cool_down_s must be >= 0, got {self.cool_down_s}")
