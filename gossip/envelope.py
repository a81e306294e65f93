"""The signed envelope around every datagram, and the checks a receiver runs before trusting one.

Layout (big-endian): magic "SW" | version u8 | cluster tag 8 B | sender id 16 B | boot u32 | seq u64 |
sent ms u64 | cert length u16 | [sender certificate DER] | body | Ed25519 signature 64 B over all before it.
The sender attaches its certificate until the peer has shown it knows us, so a receiver can always check a
datagram from a node it has not heard of yet against the cluster CA. Receivers drop and count anything
malformed, from another cluster, from an untrusted or unknown key, forged, replayed or stale.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from gossip.codec import NodeId, node_id_bytes
from gossip.errors import CertificateError, SignatureError, WireError
from gossip.replay import Verdict, Window, check
from gossip.signing import NodeCert, SigningKey, TrustAnchor, VerifyKey
from gossip.wire import MAX_CERT_BYTES, MAX_DATAGRAM_BYTES

MAGIC = b"SW"
VERSION = 1
HEADER = struct.Struct("!2sB8s16sIQQH")
SIGNATURE_BYTES = 64
OVERHEAD = HEADER.size + SIGNATURE_BYTES


def cluster_tag(cluster_id: str) -> bytes:
    """8 bytes naming the cluster in every datagram, so another cluster's traffic is dropped cheaply."""
    return hashlib.blake2b(cluster_id.encode(), digest_size=8).digest()


@dataclass(frozen=True, slots=True)
class Opened:
    sender: NodeId
    boot: int
    seq: int
    sent_ms: int
    cert: bytes
    body: bytes


def seal(key: SigningKey, tag: bytes, sender: NodeId, boot: int, seq: int, sent_ms: int,
         cert: bytes, body: bytes) -> bytes:
    head = HEADER.pack(MAGIC, VERSION, tag, node_id_bytes(sender), boot, seq, sent_ms, len(cert))
    signed = head + cert + body
    data = signed + key.sign(signed)
    if len(data) > MAX_DATAGRAM_BYTES:
        raise WireError(f"datagram of {len(data)} bytes exceeds {MAX_DATAGRAM_BYTES}")
    return data


def parse(data: bytes) -> tuple[Opened, bytes, bytes]:
    """Split a datagram into its fields, the signed part and the signature; structure only, no trust."""
    if not OVERHEAD <= len(data) <= MAX_DATAGRAM_BYTES:
        raise WireError(f"datagram of {len(data)} bytes is outside {OVERHEAD}..{MAX_DATAGRAM_BYTES}")
    magic, version, tag, sender, boot, seq, sent_ms, cert_len = HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION:
        raise WireError("not a shoal gossip datagram (magic/version)")
    if cert_len > MAX_CERT_BYTES or HEADER.size + cert_len > len(data) - SIGNATURE_BYTES:
        raise WireError("certificate length out of bounds")
    cert_end = HEADER.size + cert_len
    opened = Opened(sender.hex(), boot, seq, sent_ms, data[HEADER.size:cert_end],
                    data[cert_end:-SIGNATURE_BYTES])
    return opened, tag, data[-SIGNATURE_BYTES:]


class Authenticator:
    """Holds what this node knows of its peers' keys and replay windows; opens datagrams."""

    def __init__(self, trust: TrustAnchor, cluster_id: str, *, window: int, max_skew_s: float) -> None:
        self._trust = trust
        self._tag = cluster_tag(cluster_id)
        self._window = window
        self._max_skew_ms = int(max_skew_s * 1000)
        self._keys: dict[NodeId, tuple[VerifyKey, float]] = {}
        self._certs: dict[NodeId, bytes] = {}
        self._windows: dict[NodeId, Window] = {}

    @property
    def tag(self) -> bytes:
        return self._tag

    @property
    def trust(self) -> TrustAnchor:
        return self._trust

    def key_of(self, node: NodeId) -> VerifyKey | None:
        """The key of a member whose certificate we have checked (None if we have not met it yet)."""
        entry = self._keys.get(node)
        return None if entry is None else entry[0]

    def cert_of(self, node: NodeId) -> bytes | None:
        return self._certs.get(node)

    def learn(self, cert: bytes, wall: float) -> NodeCert:
        """Trust a certificate (raises CertificateError unless our CA issued it and it is valid now)."""
        node_cert = self._trust.verify_node_cert(cert, now_s=wall)
        self._remember(node_cert)
        return node_cert

    def _remember(self, node_cert: NodeCert) -> None:
        known = self._keys.get(node_cert.node_id)
        if known is None or known[1] != node_cert.not_after_s:  # building a key object costs; reuse it
            self._keys[node_cert.node_id] = (VerifyKey.from_bytes(node_cert.public_key), node_cert.not_after_s)
            self._certs[node_cert.node_id] = node_cert.der

    def knows(self, node: NodeId) -> bool:
        return node in self._keys

    def forget(self, node: NodeId) -> None:
        self._keys.pop(node, None)
        self._certs.pop(node, None)
        self._windows.pop(node, None)

    def open(self, data: bytes, wall: float) -> Opened:
        """Return the datagram's fields if it is authentic, fresh and ours; else raise SignatureError."""
        try:
            opened, tag, signature = parse(data)
        except WireError as exc:
            raise SignatureError("malformed", str(exc)) from exc
        if tag != self._tag:
            raise SignatureError("wrong_cluster")
        key = self._key_for(opened, wall)
        # The cheap checks go before the signature (~117 us): a replay flood is dropped without verifying.
        # The window is only moved once the signature holds, so a forgery cannot burn sequence numbers.
        if abs(opened.sent_ms - wall * 1000) > self._max_skew_ms:
            raise SignatureError("stale", f"{opened.sender} stamped {opened.sent_ms} ms; clocks skewed?")
        verdict, window = check(self._windows.get(opened.sender), opened.boot, opened.seq, self._window)
        if verdict is not Verdict.FRESH:
            raise SignatureError(verdict.value, f"{opened.sender} boot {opened.boot} seq {opened.seq}")
        if not key.verify(signature, data[:-SIGNATURE_BYTES]):
            raise SignatureError("forged", f"bad signature from {opened.sender}")
        assert window is not None
        self._windows[opened.sender] = window
        return opened

    def _key_for(self, opened: Opened, wall: float) -> VerifyKey:
        if opened.cert:
            try:
                node_cert = self._trust.verify_node_cert(opened.cert, now_s=wall)
            except CertificateError as exc:
                raise SignatureError("untrusted_cert", str(exc)) from exc
            if node_cert.node_id != opened.sender:
                raise SignatureError("forged", "certificate is for another node")
            self._remember(node_cert)
        entry = self._keys.get(opened.sender)
        if entry is None:
            raise SignatureError("unknown_sender", opened.sender)
        if entry[1] < wall:
            raise SignatureError("untrusted_cert", f"certificate of {opened.sender} expired")
        return entry[0]
