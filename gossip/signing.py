"""Ed25519 keys and the cluster's X.509 certificates: the only module that imports `cryptography`.

Role: make and check the cluster CA, node certificates and raw Ed25519 signatures.
Boundary: pure functions of bytes and an injected wall time (`now_s`); no files, no sockets.
Identity (gossip/identity.py) persists what this module makes; tls.py hands the PEM files to `ssl`.
Node certificates ride inside UDP datagrams, so they carry only what verification needs: CN = node id,
the CA's subject as issuer, an 8-byte authority key id, and `CA:FALSE` (about 360 B DER at most).
"""

from __future__ import annotations

import datetime
import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import NameOID

from gossip.errors import CertificateError

_HEX32 = re.compile(r"[0-9a-f]{32}")
_CA_VALID_DAYS = 3650
#: Certificates start this long before "now", so a member whose clock lags a little still accepts them.
_BACKDATE_S = 300.0
_CACHE_ENTRIES = 4096


class SigningKey:
    """An Ed25519 private key (a node's or the cluster CA's)."""

    __slots__ = ("_key",)

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, data: bytes) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise CertificateError(f"not an unencrypted PEM private key: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise CertificateError(f"expected an Ed25519 private key, got {type(key).__name__}")
        return cls(key)

    def to_pem(self) -> bytes:
        """PKCS8 PEM, unencrypted: the data dir's file mode (0600) is what protects it."""
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @property
    def public_bytes(self) -> bytes:
        """The 32-byte raw public key."""
        return self._key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def sign(self, data: bytes) -> bytes:
        """A 64-byte Ed25519 signature of `data`."""
        return self._key.sign(data)

    def __repr__(self) -> str:
        return f"SigningKey(public={self.public_bytes.hex()[:16]}...)"


class VerifyKey:
    """An Ed25519 public key that checks signatures."""

    __slots__ = ("_key", "raw")

    def __init__(self, key: Ed25519PublicKey) -> None:
        self._key = key
        self.raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @classmethod
    def from_bytes(cls, raw: bytes) -> VerifyKey:
        if len(raw) != 32:
            raise CertificateError(f"an Ed25519 public key has 32 bytes, got {len(raw)}")
        try:
            return cls(Ed25519PublicKey.from_public_bytes(raw))
        except ValueError as exc:
            raise CertificateError(f"not an Ed25519 public key: {exc}") from exc

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True when `signature` is this key's signature of `data`; never raises on a bad one."""
        try:
            self._key.verify(signature, data)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, slots=True)
class NodeCert:
    """A node certificate that chains to the cluster CA (times in Unix seconds)."""

    node_id: str
    public_key: bytes
    not_before_s: float
    not_after_s: float
    der: bytes


def _utc(now_s: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(int(now_s), tz=datetime.UTC)


def _key_id(public_raw: bytes) -> bytes:
    # 8 bytes, not SHA-1's 20: it only has to tell apart the CAs of one cluster (rotation by cross-signing).
    return hashlib.sha256(public_raw).digest()[:8]


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def create_ca(cluster_id: str, cluster_name: str, *, now_s: float) -> tuple[SigningKey, bytes]:
    """A new cluster CA: its key and its self-signed certificate (DER), valid for ten years."""
    key = SigningKey.generate()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster_id),
            x509.NameAttribute(NameOID.COMMON_NAME, f"shoal-ca {cluster_name}"),
        ]
    )
    start = _utc(now_s - _BACKDATE_S)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key._key.public_key())
        .serial_number(_serial(key.public_bytes, now_s))
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=_CA_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier(_key_id(key.public_bytes)), critical=False)
        .sign(key._key, None)
    )
    return key, _der(cert)


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
    )  # fmt: skip


def _serial(public_raw: bytes, now_s: float) -> int:
    # Unique per (key, issue second) and deterministic, so no randomness to inject; 63 bits keep it small.
    digest = hashlib.sha256(public_raw + int(now_s).to_bytes(8, "big")).digest()
    return int.from_bytes(digest[:8], "big") >> 1 or 1


def issue_node_cert(
    ca_key: SigningKey,
    ca_cert_der: bytes,
    node_id: str,
    node_public: bytes,
    *,
    now_s: float,
    valid_days: int = 365,
) -> bytes:
    """A node certificate (DER) binding `node_id` (CN) to its Ed25519 public key, signed by the CA."""
    if not _HEX32.fullmatch(node_id):
        raise CertificateError(f"node id must be 32 lowercase hex characters, got {node_id!r}")
    public = VerifyKey.from_bytes(node_public)
    ca_cert = _load(ca_cert_der)
    start = _utc(now_s - _BACKDATE_S)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_id)]))
        .issuer_name(ca_cert.subject)
        .public_key(public._key)
        .serial_number(_serial(node_public, now_s))
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_authority_key_id(ca_key.public_bytes), critical=False)
        .sign(ca_key._key, None)
    )
    return _der(cert)


def _authority_key_id(ca_public: bytes) -> x509.AuthorityKeyIdentifier:
    return x509.AuthorityKeyIdentifier(
        key_identifier=_key_id(ca_public), authority_cert_issuer=None, authority_cert_serial_number=None
    )


def cert_fingerprint(cert_der: bytes) -> str:
    """SHA-256 of the DER bytes, 64 lowercase hex characters (what join tokens carry)."""
    return hashlib.sha256(cert_der).hexdigest()


def cert_der_to_pem(cert_der: bytes) -> bytes:
    return _load(cert_der).public_bytes(serialization.Encoding.PEM)


def cert_pem_to_der(cert_pem: bytes) -> bytes:
    try:
        return _der(x509.load_pem_x509_certificate(cert_pem))
    except ValueError as exc:
        raise CertificateError(f"not a PEM certificate: {exc}") from exc


def _load(cert_der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(cert_der)
    except ValueError as exc:
        raise CertificateError(f"not a DER certificate: {exc}") from exc


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _single_attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    attrs = name.get_attributes_for_oid(oid)
    value = attrs[0].value if len(attrs) == 1 else None
    return value if isinstance(value, str) else None


class TrustAnchor:
    """The cluster CA as receivers see it: checks node certificates, caching by DER bytes."""

    def __init__(self, ca_cert_der: bytes) -> None:
        cert = _load(ca_cert_der)
        public = cert.public_key()
        if not isinstance(public, Ed25519PublicKey):
            raise CertificateError("CA certificate does not hold an Ed25519 key")
        if not _is_ca(cert) or cert.issuer != cert.subject:
            raise CertificateError("not a self-signed CA certificate")
        cluster_id = _single_attr(cert.subject, NameOID.ORGANIZATION_NAME)
        if cluster_id is None or not _HEX32.fullmatch(cluster_id):
            raise CertificateError("CA certificate subject carries no cluster id (O=<32 hex>)")
        self._cert = cert
        self._public = VerifyKey(public)
        self.der = ca_cert_der
        self.cluster_id = cluster_id
        self.fingerprint = cert_fingerprint(ca_cert_der)
        # Outcome per DER: a NodeCert or the reason it was refused (both deterministic, so both cached).
        self._cache: OrderedDict[bytes, NodeCert | str] = OrderedDict()

    def matches_key(self, key: SigningKey) -> bool:
        """True when `key` is this CA's private key."""
        return key.public_bytes == self._public.raw

    def verify_node_cert(self, cert_der: bytes, *, now_s: float) -> NodeCert:
        """The node certificate, if this CA issued it and it is valid at `now_s`; else CertificateError."""
        node = self.check_issued(cert_der)
        if now_s < node.not_before_s:
            raise CertificateError(f"certificate of node {node.node_id} is not yet valid")
        if now_s > node.not_after_s:
            raise CertificateError(f"certificate of node {node.node_id} has expired")
        return node

    def check_issued(self, cert_der: bytes) -> NodeCert:
        """Everything `verify_node_cert` checks except the validity period."""
        outcome = self._cache.get(cert_der)
        if outcome is None:
            try:
                outcome = self._inspect(cert_der)
            except CertificateError as exc:
                outcome = str(exc)
            self._cache[cert_der] = outcome
            if len(self._cache) > _CACHE_ENTRIES:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(cert_der)
        if isinstance(outcome, str):
            raise CertificateError(outcome)
        return outcome

    def _inspect(self, cert_der: bytes) -> NodeCert:
        cert = _load(cert_der)
        if cert.issuer != self._cert.subject:
            raise CertificateError(f"not signed by this cluster's CA (issuer {cert.issuer.rfc4514_string()})")
        try:
            cert.verify_directly_issued_by(self._cert)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise CertificateError("not signed by this cluster's CA (bad signature)") from exc
        public = cert.public_key()
        if not isinstance(public, Ed25519PublicKey):
            raise CertificateError("node certificate does not hold an Ed25519 key")
        if _is_ca(cert):
            raise CertificateError("a CA certificate is not a node certificate")
        node_id = _single_attr(cert.subject, NameOID.COMMON_NAME)
        if node_id is None or not _HEX32.fullmatch(node_id):
            raise CertificateError("bad CN: a node certificate's CN is the node id (32 lowercase hex)")
        return NodeCert(
            node_id=node_id,
            public_key=VerifyKey(public).raw,
            not_before_s=cert.not_valid_before_utc.timestamp(),
            not_after_s=cert.not_valid_after_utc.timestamp(),
            der=cert_der,
        )
