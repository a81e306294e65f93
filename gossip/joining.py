"""The join protocol: how a node holding a join token gets a certificate from any member.

Role: the member's side (`JoinService`: ops "join.hello", "join.request") and the joiner's (`request_join`).
Boundary: messages over one stream.py connection; keys and certificates from signing.py; persisting the
grant is identity.py's job. Flow: the joiner connects with no certificate, gets a nonce, the CA certificate
and the cluster id; checks the CA against the token's fingerprint and the server's TLS certificate against the
CA; then proves the token secret with HMAC(secret, nonce || node id || public key || server cert fingerprint),
which binds the proof to this connection's server, so a man in the middle cannot relay it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any, Protocol

from gossip.errors import CertificateError, GossipError, JoinRefused
from gossip.identity import MAX_CLUSTER_NAME, MAX_NODE_NAME, Identity, JoinGrant, JoinToken, check_name, is_id
from gossip.signing import SigningKey, TrustAnchor, cert_fingerprint, issue_node_cert
from gossip.stream import (
    Peer,
    RemoteError,
    RequestRefused,
    StreamClient,
    StreamError,
    StreamServer,
    open_stream,
)
from gossip.tls import bootstrap_context

__all__ = ["JoinGrant", "JoinService", "JoinUnreachable", "WallClock", "join_proof", "request_join"]

NONCE_BYTES = 32
#: A 128-bit secret is not guessable anyway; the bound keeps a prober from using one connection forever.
MAX_FAILED_ATTEMPTS = 3
_UNAVAILABLE = "unavailable"


class JoinUnreachable(GossipError):
    """This member cannot admit us now: unreachable, timed out, broke the stream or holds no CA key.

    Unlike JoinRefused (wrong token, wrong cluster), this is worth retrying with the next seed.
    """


class WallClock(Protocol):
    """The part of the agent's clock the join needs: Unix time for certificate validity."""

    def wall(self) -> float: ...


def join_proof(
    secret: str, nonce: bytes, node_id: str, public_key: bytes, server_cert_fingerprint: str
) -> bytes:
    """HMAC-SHA256 keyed by the token secret; fields have fixed lengths, so the concatenation is unique."""
    message = nonce + node_id.encode("ascii") + public_key + bytes.fromhex(server_cert_fingerprint)
    return hmac.new(bytes.fromhex(secret), message, hashlib.sha256).digest()


class JoinService:
    """A member's side of the join: answers join.hello and join.request for cert-less clients."""

    def __init__(
        self,
        identity_provider: Callable[[], Identity],
        clock: WallClock,
        *,
        nonce_source: Callable[[int], bytes] = secrets.token_bytes,
        cert_valid_days: int = 365,
    ) -> None:
        self._identity = identity_provider
        self._clock = clock
        self._nonce_source = nonce_source
        self._cert_valid_days = cert_valid_days

    def register(self, server: StreamServer) -> None:
        server.route("join.hello", self.hello, require_peer_cert=False)
        server.route("join.request", self.request, require_peer_cert=False)

    async def hello(self, peer: Peer, body: dict[str, Any]) -> dict[str, Any]:
        """A fresh nonce for this connection, plus what the joiner checks its token against."""
        _check_attempts(peer)
        identity = self._identity()
        nonce = self._nonce_source(NONCE_BYTES)
        peer.connection_state["join_nonce"] = nonce
        return {"nonce": nonce, "ca_cert": identity.ca_cert_der, "cluster_id": identity.cluster_id}

    async def request(self, peer: Peer, body: dict[str, Any]) -> dict[str, Any]:
        """Check the proof against the nonce of this connection's hello; issue a certificate if it holds."""
        _check_attempts(peer)
        try:
            return self._admit(peer, body)
        except RequestRefused as exc:
            if exc.code != _UNAVAILABLE:
                peer.connection_state["join_failures"] = peer.connection_state.get("join_failures", 0) + 1
            raise

    def _admit(self, peer: Peer, body: dict[str, Any]) -> dict[str, Any]:
        # Single use: a retry needs a new hello, so a captured proof is worth nothing.
        nonce = peer.connection_state.pop("join_nonce", None)
        if not isinstance(nonce, bytes):
            raise RequestRefused("send join.hello on this connection before join.request", code="protocol")
        node_id, public_key, name, proof = _request_fields(body)
        identity = self._identity()
        if identity.ca_key is None or identity.join_secret is None:
            raise RequestRefused("this member holds no CA key and cannot admit nodes", code=_UNAVAILABLE)
        own_cert = cert_fingerprint(identity.cert_der)  # what our TLS server presented to the joiner
        expected = join_proof(identity.join_secret, nonce, node_id, public_key, own_cert)
        if not hmac.compare_digest(expected, proof):
            raise RequestRefused("join token secret does not match this cluster", code="bad_proof")
        try:
            cert = issue_node_cert(
                identity.ca_key, identity.ca_cert_der, node_id, public_key,
                now_s=self._clock.wall(), valid_days=self._cert_valid_days,
            )  # fmt: skip
        except CertificateError as exc:
            raise RequestRefused(f"cannot issue a certificate: {exc}", code="malformed") from exc
        # DESIGN §8: every agent holds the CA key (all agents are identical), so any member can admit the next
        # joiner; the token secret is therefore the power to admit, and travels with it.
        return {
            "node_cert": cert,
            "ca_key_pem": identity.ca_key.to_pem(),
            "join_secret": identity.join_secret,
            "cluster_id": identity.cluster_id,
            "cluster_name": identity.cluster_name,
            "node_name": name,
        }


def _check_attempts(peer: Peer) -> None:
    if peer.connection_state.get("join_failures", 0) >= MAX_FAILED_ATTEMPTS:
        raise RequestRefused("too many failed join attempts on this connection", code="rate_limited")


def _request_fields(body: dict[str, Any]) -> tuple[str, bytes, str, bytes]:
    node_id, public_key = body.get("node_id"), body.get("public_key")
    name, proof = body.get("name"), body.get("proof")
    if not is_id(node_id):
        raise RequestRefused("malformed node_id: expected 32 lowercase hex characters", code="malformed")
    if not isinstance(public_key, bytes) or len(public_key) != 32:
        raise RequestRefused("malformed public_key: expected 32 bytes (raw Ed25519)", code="malformed")
    if not isinstance(proof, bytes) or len(proof) != 32:
        raise RequestRefused("malformed proof: expected 32 bytes (HMAC-SHA256)", code="malformed")
    if not isinstance(name, str):
        raise RequestRefused("malformed name: expected a string", code="malformed")
    try:
        check_name(name, what="node name", max_len=MAX_NODE_NAME)
    except GossipError as exc:
        raise RequestRefused(str(exc), code="malformed") from exc
    return node_id, public_key, name, proof


async def request_join(
    address: tuple[str, int],
    token: JoinToken,
    node_id: str,
    key: SigningKey,
    name: str,
    *,
    timeout_s: float,
    now_s: float,
) -> JoinGrant:
    """Join through the member at `address`: JoinRefused is final, JoinUnreachable means try another seed."""
    where = f"{address[0]}:{address[1]}"
    try:
        async with await open_stream(address, bootstrap_context(), timeout_s) as stream:
            trust, nonce, server_cert = await _hello(stream, where, token, now_s)
            proof = join_proof(token.secret, nonce, node_id, key.public_bytes, server_cert)
            body = {"node_id": node_id, "public_key": key.public_bytes, "name": name, "proof": proof}
            reply = await _call(stream, "join.request", body, where)
    except StreamError as exc:
        raise JoinUnreachable(f"cannot join through {where}: {exc}") from exc
    return _grant(reply, trust, token, node_id, key, name, now_s, where)


async def _call(stream: StreamClient, op: str, body: dict[str, Any], where: str) -> dict[str, Any]:
    try:
        return await stream.request(op, body)
    except RemoteError as exc:
        if exc.code == _UNAVAILABLE:
            raise JoinUnreachable(f"member at {where} cannot admit nodes: {exc.error}") from exc
        raise JoinRefused(f"member at {where} refused the join: {exc.error}") from exc


async def _hello(
    stream: StreamClient, where: str, token: JoinToken, now_s: float
) -> tuple[TrustAnchor, bytes, str]:
    """Check the member against the token before sending anything secret-derived.

    Returns the member's CA, the nonce, and the fingerprint of the TLS certificate the member presented.
    """
    hello = await _call(stream, "join.hello", {}, where)
    ca_cert, cluster_id, nonce = hello.get("ca_cert"), hello.get("cluster_id"), hello.get("nonce")
    if not isinstance(ca_cert, bytes) or not isinstance(nonce, bytes) or len(nonce) != NONCE_BYTES:
        raise JoinRefused(f"member at {where} sent a malformed join.hello")
    presented = cert_fingerprint(ca_cert)
    if presented != token.fingerprint:
        raise JoinRefused(
            f"CA fingerprint mismatch: token expects {token.fingerprint}, member at {where} presented "
            f"{presented}; check the token"
        )
    try:
        trust = TrustAnchor(ca_cert)
        server_cert = stream.peer_cert_der
        if server_cert is None:
            raise CertificateError("no certificate")
        trust.verify_node_cert(server_cert, now_s=now_s)
    except CertificateError as exc:
        message = f"member at {where} has no valid node certificate from the token's CA: {exc}"
        raise JoinRefused(message) from exc
    if trust.cluster_id != cluster_id:
        raise JoinRefused(f"member at {where} claims cluster {cluster_id!r} but its CA is {trust.cluster_id}")
    return trust, nonce, cert_fingerprint(server_cert)


def _grant(
    reply: dict[str, Any], trust: TrustAnchor, token: JoinToken, node_id: str, key: SigningKey, name: str,
    now_s: float, where: str,
) -> JoinGrant:  # fmt: skip
    """Check what the member granted before anyone persists it."""
    cert, ca_key_pem, secret = reply.get("node_cert"), reply.get("ca_key_pem"), reply.get("join_secret")
    cluster_name = reply.get("cluster_name")
    same_cluster = reply.get("cluster_id") == trust.cluster_id
    if not isinstance(cert, bytes) or not isinstance(cluster_name, str) or not same_cluster:
        raise JoinRefused(f"member at {where} sent a malformed join grant")
    try:
        check_name(cluster_name, what="cluster name", max_len=MAX_CLUSTER_NAME)
    except GossipError as exc:
        raise JoinRefused(f"member at {where} sent a bad cluster name: {exc}") from exc
    try:
        node = trust.verify_node_cert(cert, now_s=now_s)
        if node.node_id != node_id or node.public_key != key.public_bytes:
            raise CertificateError("it is for another node or key")
        if ca_key_pem is not None and not (
            isinstance(ca_key_pem, bytes) and trust.matches_key(SigningKey.from_pem(ca_key_pem))
        ):
            raise CertificateError("the CA key sent does not match the CA certificate")
    except CertificateError as exc:
        raise JoinRefused(f"member at {where} granted an unusable certificate: {exc}") from exc
    if secret is not None and secret != token.secret:
        raise JoinRefused(f"member at {where} sent a join secret that differs from the token's")
    return JoinGrant(
        cluster_id=trust.cluster_id,
        cluster_name=cluster_name,
        node_id=node_id,
        node_name=name,
        node_cert_der=cert,
        ca_cert_der=trust.der,
        ca_key_pem=ca_key_pem,
        join_secret=secret,
    )
