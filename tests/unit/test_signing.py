"""Ed25519 signatures, the cluster CA and node certificates (gossip/signing.py)."""

from __future__ import annotations

import pytest

from gossip.errors import CertificateError
from gossip.signing import (
    SigningKey,
    TrustAnchor,
    VerifyKey,
    cert_der_to_pem,
    cert_fingerprint,
    cert_pem_to_der,
    create_ca,
    issue_node_cert,
)

NOW = 1_750_000_000.0
DAY = 86_400.0
CLUSTER = "c" * 32
NODE = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def ca() -> tuple[SigningKey, bytes]:
    return create_ca(CLUSTER, "prod", now_s=NOW)


def node_cert(ca: tuple[SigningKey, bytes], key: SigningKey) -> bytes:
    return issue_node_cert(ca[0], ca[1], NODE, key.public_bytes, now_s=NOW)


def test_signature_verifies_with_the_signers_public_key() -> None:
    key = SigningKey.generate()
    signature = key.sign(b"alive 7")
    assert len(signature) == 64
    assert VerifyKey.from_bytes(key.public_bytes).verify(signature, b"alive 7")


def test_forged_signature_is_rejected_without_raising() -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    verifier = VerifyKey.from_bytes(key.public_bytes)
    signature = key.sign(b"alive 7")
    assert not verifier.verify(signature, b"alive 8")
    assert not verifier.verify(other.sign(b"alive 7"), b"alive 7")
    assert not verifier.verify(bytes(64), b"alive 7")
    assert not verifier.verify(signature[:10], b"alive 7")


def test_verify_key_needs_32_bytes() -> None:
    with pytest.raises(CertificateError, match="32 bytes, got 31"):
        VerifyKey.from_bytes(bytes(31))


def test_signing_key_survives_a_pem_round_trip() -> None:
    key = SigningKey.generate()
    pem = key.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert SigningKey.from_pem(pem).public_bytes == key.public_bytes


def test_garbage_pem_is_a_certificate_error() -> None:
    with pytest.raises(CertificateError, match="PEM private key"):
        SigningKey.from_pem(b"not a key")


def test_node_cert_verifies_against_its_ca(ca: tuple[SigningKey, bytes]) -> None:
    key = SigningKey.generate()
    der = node_cert(ca, key)
    node = TrustAnchor(ca[1]).verify_node_cert(der, now_s=NOW + DAY)
    assert (node.node_id, node.public_key, node.der) == (NODE, key.public_bytes, der)
    assert node.not_after_s == pytest.approx(NOW + 365 * DAY, abs=600)


def test_trust_anchor_reads_cluster_id_and_fingerprint(ca: tuple[SigningKey, bytes]) -> None:
    anchor = TrustAnchor(ca[1])
    assert anchor.cluster_id == CLUSTER
    assert anchor.fingerprint == cert_fingerprint(ca[1])
    assert anchor.matches_key(ca[0])
    assert not anchor.matches_key(SigningKey.generate())


def test_cert_from_another_ca_with_the_same_name_is_rejected(ca: tuple[SigningKey, bytes]) -> None:
    impostor = create_ca(CLUSTER, "prod", now_s=NOW)
    der = node_cert(impostor, SigningKey.generate())
    with pytest.raises(CertificateError, match="not signed by this cluster's CA"):
        TrustAnchor(ca[1]).verify_node_cert(der, now_s=NOW)


def test_cert_from_another_cluster_is_rejected(ca: tuple[SigningKey, bytes]) -> None:
    other = create_ca("d" * 32, "prod", now_s=NOW)
    with pytest.raises(CertificateError, match="not signed by this cluster's CA"):
        TrustAnchor(ca[1]).verify_node_cert(node_cert(other, SigningKey.generate()), now_s=NOW)


def test_expired_cert_is_rejected(ca: tuple[SigningKey, bytes]) -> None:
    der = node_cert(ca, SigningKey.generate())
    with pytest.raises(CertificateError, match="has expired"):
        TrustAnchor(ca[1]).verify_node_cert(der, now_s=NOW + 366 * DAY)


def test_cert_is_not_valid_before_its_issue_time(ca: tuple[SigningKey, bytes]) -> None:
    der = node_cert(ca, SigningKey.generate())
    with pytest.raises(CertificateError, match="not yet valid"):
        TrustAnchor(ca[1]).verify_node_cert(der, now_s=NOW - DAY)


def test_cached_verification_still_checks_time(ca: tuple[SigningKey, bytes]) -> None:
    anchor, der = TrustAnchor(ca[1]), node_cert(ca, SigningKey.generate())
    assert anchor.verify_node_cert(der, now_s=NOW).node_id == NODE
    assert anchor.verify_node_cert(der, now_s=NOW) == anchor.verify_node_cert(der, now_s=NOW)
    with pytest.raises(CertificateError, match="has expired"):
        anchor.verify_node_cert(der, now_s=NOW + 400 * DAY)


def test_cached_refusal_is_refused_again(ca: tuple[SigningKey, bytes]) -> None:
    anchor = TrustAnchor(ca[1])
    for _ in range(2):
        with pytest.raises(CertificateError, match="not a DER certificate"):
            anchor.verify_node_cert(b"\x30\x03junk", now_s=NOW)


def test_ca_cert_is_not_a_node_cert(ca: tuple[SigningKey, bytes]) -> None:
    with pytest.raises(CertificateError, match="CA certificate is not a node certificate"):
        TrustAnchor(ca[1]).verify_node_cert(ca[1], now_s=NOW)


def test_node_cert_cannot_serve_as_trust_anchor(ca: tuple[SigningKey, bytes]) -> None:
    with pytest.raises(CertificateError, match="not a self-signed CA"):
        TrustAnchor(node_cert(ca, SigningKey.generate()))


def test_issuing_refuses_a_node_id_that_is_not_32_lowercase_hex(ca: tuple[SigningKey, bytes]) -> None:
    for bad in ("host-1", NODE.upper(), NODE[:-1]):
        with pytest.raises(CertificateError, match="32 lowercase hex"):
            issue_node_cert(ca[0], ca[1], bad, SigningKey.generate().public_bytes, now_s=NOW)


def test_node_cert_fits_easily_in_a_datagram() -> None:
    # Measured: 360-361 bytes DER with the longest cluster name (32 chars; 332 with "prod"); the serial's
    # DER length varies by a byte. A datagram is 1,232 bytes, so a cert plus a signed message still fits.
    ca = create_ca(CLUSTER, "n" * 32, now_s=NOW)
    sizes = [len(node_cert(ca, SigningKey.generate())) for _ in range(20)]
    assert min(sizes) > 350 and max(sizes) <= 361


def test_fingerprint_is_64_lowercase_hex(ca: tuple[SigningKey, bytes]) -> None:
    fingerprint = cert_fingerprint(ca[1])
    assert len(fingerprint) == 64 and fingerprint == fingerprint.lower()
    int(fingerprint, 16)


def test_pem_and_der_convert_both_ways(ca: tuple[SigningKey, bytes]) -> None:
    pem = cert_der_to_pem(ca[1])
    assert pem.startswith(b"-----BEGIN CERTIFICATE-----")
    assert cert_pem_to_der(pem) == ca[1]
    with pytest.raises(CertificateError, match="not a PEM certificate"):
        cert_pem_to_der(b"nope")
