"""Errors of the gossip package, as a tree that says what the caller should do.

    GossipError
    ├── WireError          a datagram or frame that does not decode: count it, drop it
    ├── SignatureError     unsigned, forged, unknown sender, wrong cluster, replayed or stale: count, drop
    ├── CertificateError   a certificate not issued by this cluster's CA, expired, or for another node
    ├── TokenError         a join token that does not parse (operator input: show the message)
    ├── JoinRefused        a member refused our join (the reason is for the operator); fatal for the agent
    └── PersistError       the store could not be written to disk (full, read-only, I/O): the write did not happen
"""

from __future__ import annotations


class GossipError(Exception):
    """Base class for every error raised by the gossip package."""


class WireError(GossipError):
    """Bytes from the network that are not a valid message. Never fatal: count and drop."""


class SignatureError(GossipError):
    """A datagram that fails authentication. `reason` is a short counter name (e.g. "replayed")."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class CertificateError(GossipError):
    """A certificate that this cluster does not trust, with the reason why."""


class TokenError(GossipError):
    """A join token that is malformed; the message names what is wrong and the expected shape."""


class JoinRefused(GossipError):
    """The cluster refused to admit this node; the message is the reason shown to the operator."""


class PersistError(GossipError):
    """The store's database refused a write; nothing was stored (nor gossiped)."""
