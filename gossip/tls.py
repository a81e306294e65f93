"""TLS contexts (stdlib ssl, TLS 1.3 only) for agent-to-agent TCP, built from a node's Identity.

Role: turn the identity's PEM files into the three contexts stream.py connects and listens with.
Boundary: no sockets here and no certificate parsing (signing.py); ssl loads the files identity.py wrote.
Servers ask for a client certificate but accept none, because a joiner has none yet; stream.py then refuses
every op except the join ops to a client without a verified certificate. Hostnames are not checked: peers are
addressed by IP, and their identity is the node id in a certificate issued by the cluster CA.
"""

from __future__ import annotations

import ssl

from gossip.identity import Identity


def _tls13(*, server: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def server_context(identity: Identity) -> ssl.SSLContext:
    """Presents the node certificate; verifies a client certificate against the CA if one is sent."""
    ctx = _tls13(server=True)
    ctx.load_cert_chain(certfile=identity.node_cert_path, keyfile=identity.node_key_path)
    ctx.load_verify_locations(cadata=identity.ca_cert_der)
    # Optional, not required: the join ops must admit a client that has no certificate yet.
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def client_context(identity: Identity) -> ssl.SSLContext:
    """Mutual TLS: presents the node certificate and requires a server certificate issued by the CA."""
    ctx = _tls13(server=False)
    ctx.load_cert_chain(certfile=identity.node_cert_path, keyfile=identity.node_key_path)
    ctx.load_verify_locations(cadata=identity.ca_cert_der)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def bootstrap_context() -> ssl.SSLContext:
    """For a joiner with no certificate and no CA yet: verifies nothing during the handshake.

    The joiner checks the server in band instead (joining.py): the CA it is sent must match the token's
    fingerprint, the server's certificate must be a node certificate of that CA, and the join proof binds
    the server certificate's fingerprint, so a man in the middle cannot relay the proof.
    """
    ctx = _tls13(server=False)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
