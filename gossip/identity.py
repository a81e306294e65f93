"""A node's identity on disk: node and cluster ids, keys, certificates, join secret, boot counter.

Role: create (`init_cluster`, `prepare_node`), persist (`save_grant`) and load (`load_identity`) the data dir.
Boundary: files only; keys and certificates come from signing.py; the join protocol lives in joining.py.
Ids are 16 random bytes (32 lowercase hex), never derived from the hostname. Files are written atomically
(tmp + fsync + rename + dir fsync), secrets 0600, the dir 0700. Layout: node.json {node_id, node_name},
node.key (0600), node.crt, ca.crt, ca.key (0600, optional), join.secret (0600, optional), boot (counter), and
cluster.json {cluster_id, cluster_name}, written last so that it marks a whole identity. Keys are PKCS8 PEM
and certificates PEM, because Python's ssl loads both from files.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeGuard

from gossip.errors import CertificateError, GossipError, TokenError
from gossip.signing import (
    SigningKey,
    TrustAnchor,
    cert_der_to_pem,
    cert_fingerprint,
    cert_pem_to_der,
    create_ca,
    issue_node_cert,
)

_HEX = re.compile(r"[0-9a-f]+")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
#: Cluster names sit in the CA subject, copied into every node certificate's issuer: keep them short.
MAX_CLUSTER_NAME = 32
MAX_NODE_NAME = 63
TOKEN_SHAPE = "SHOAL-1-<64 hex CA fingerprint>-<32 hex secret>"


def new_id() -> str:
    """A fresh node or cluster id: 16 random bytes as 32 lowercase hex characters."""
    return secrets.token_hex(16)


def is_id(text: object) -> TypeGuard[str]:
    """True for a node or cluster id: exactly 32 lowercase hex characters."""
    return isinstance(text, str) and len(text) == 32 and _HEX.fullmatch(text) is not None


def check_name(name: str, *, what: str, max_len: int) -> str:
    """`name` if it is 1..max_len of [A-Za-z0-9._-] starting alphanumeric; else GossipError naming `what`."""
    if not _NAME.fullmatch(name) or len(name) > max_len:
        raise GossipError(
            f"invalid {what} {name!r}: use 1-{max_len} letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True, slots=True)
class JoinToken:
    """What an operator copies to a new node: the CA fingerprint to trust and the secret to prove."""

    fingerprint: str
    secret: str = field(repr=False)

    @classmethod
    def parse(cls, text: str) -> JoinToken:
        parts = text.strip().split("-")
        if parts[0] != "SHOAL" or len(parts) < 2:
            raise TokenError(f"join token must start with 'SHOAL-'; expected {TOKEN_SHAPE}")
        if parts[1] != "1":
            raise TokenError(f"unsupported join token version {parts[1][:8]!r}; expected {TOKEN_SHAPE}")
        if len(parts) != 4:
            raise TokenError(f"join token has {len(parts)} parts, not 4; expected {TOKEN_SHAPE}")
        return cls(_token_hex(parts[2], "CA fingerprint", 64), _token_hex(parts[3], "secret", 32))

    def __str__(self) -> str:
        return f"SHOAL-1-{self.fingerprint}-{self.secret}"


def _token_hex(text: str, what: str, length: int) -> str:
    # Never echo the text: the secret must not end up in logs.
    if len(text) != length:
        raise TokenError(
            f"join token {what} has {len(text)} characters, not {length}; expected {TOKEN_SHAPE}"
        )
    lowered = text.lower()
    if not _HEX.fullmatch(lowered):
        raise TokenError(f"join token {what} is not hexadecimal; expected {TOKEN_SHAPE}")
    return lowered


@dataclass(frozen=True, slots=True)
class JoinGrant:
    """What a member hands a joiner (joining.py), and all `save_grant` needs besides the node key."""

    cluster_id: str
    cluster_name: str
    node_id: str
    node_name: str
    node_cert_der: bytes
    ca_cert_der: bytes
    ca_key_pem: bytes | None = field(repr=False)
    join_secret: str | None = field(repr=False)


@dataclass(frozen=True)
class Identity:
    """Everything a running agent knows about who it is (not slotted: `trust` is a cached property)."""

    data_dir: Path
    cluster_id: str
    cluster_name: str
    node_id: str
    node_name: str
    key: SigningKey = field(repr=False)
    cert_der: bytes = field(repr=False)
    ca_cert_der: bytes = field(repr=False)
    ca_key: SigningKey | None = field(repr=False)
    join_secret: str | None = field(repr=False)

    @property
    def token(self) -> JoinToken | None:
        """The join token for this cluster, when this node knows the join secret."""
        if self.join_secret is None:
            return None
        return JoinToken(cert_fingerprint(self.ca_cert_der), self.join_secret)

    @cached_property
    def trust(self) -> TrustAnchor:
        return TrustAnchor(self.ca_cert_der)

    @property
    def node_cert_path(self) -> Path:
        return self.data_dir / "node.crt"

    @property
    def node_key_path(self) -> Path:
        return self.data_dir / "node.key"

    @property
    def ca_cert_path(self) -> Path:
        return self.data_dir / "ca.crt"


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask must not loosen a key's mode
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise GossipError(f"cannot read {path}: {exc}") from exc
    if not isinstance(value, dict):
        raise GossipError(f"{path} does not hold a JSON object")
    return value


def _write_json(path: Path, value: dict[str, str]) -> None:
    write_atomic(path, json.dumps(value, indent=2, sort_keys=True).encode() + b"\n")


def _make_dir(data_dir: Path) -> None:
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)


def prepare_node(data_dir: Path, *, node_name: str | None) -> tuple[str, SigningKey, str]:
    """Load or create (and persist) this node's id, key and name, so a retried join keeps its id."""
    _make_dir(data_dir)
    key_path, meta_path = data_dir / "node.key", data_dir / "node.json"
    if key_path.exists():
        key = SigningKey.from_pem(key_path.read_bytes())
    else:
        key = SigningKey.generate()
        write_atomic(key_path, key.to_pem(), mode=0o600)
    meta = _read_json(meta_path) if meta_path.exists() else {}
    stored_id = meta.get("node_id")
    node_id = stored_id if is_id(stored_id) else new_id()
    stored = meta.get("node_name")
    name = node_name if node_name is not None else stored if isinstance(stored, str) else None
    name = check_name(name or f"node-{secrets.token_hex(3)}", what="node name", max_len=MAX_NODE_NAME)
    if meta != {"node_id": node_id, "node_name": name}:
        _write_json(meta_path, {"node_id": node_id, "node_name": name})
    return node_id, key, name


def init_cluster(data_dir: Path, *, cluster_name: str, node_name: str | None, now_s: float) -> Identity:
    """Create a new cluster in `data_dir` (CA, join secret) with this node as its first member."""
    check_name(cluster_name, what="cluster name", max_len=MAX_CLUSTER_NAME)
    existing = data_dir / "cluster.json"
    if existing.exists():
        raise GossipError(
            f"{data_dir} already holds a cluster ({existing}); "
            "use another data dir, or remove this one to start over"
        )
    node_id, key, name = prepare_node(data_dir, node_name=node_name)
    cluster_id = new_id()
    ca_key, ca_cert = create_ca(cluster_id, cluster_name, now_s=now_s)
    cert = issue_node_cert(ca_key, ca_cert, node_id, key.public_bytes, now_s=now_s)
    grant = JoinGrant(
        cluster_id=cluster_id,
        cluster_name=cluster_name,
        node_id=node_id,
        node_name=name,
        node_cert_der=cert,
        ca_cert_der=ca_cert,
        ca_key_pem=ca_key.to_pem(),
        join_secret=secrets.token_hex(16),
    )
    return save_grant(data_dir, grant)


def save_grant(data_dir: Path, grant: JoinGrant) -> Identity:
    """Persist what a member granted us (or what init made); the node key must already be in `data_dir`."""
    key_path = data_dir / "node.key"
    if not key_path.exists():
        raise GossipError(f"{key_path} is missing: prepare the node before saving a join grant")
    previous = data_dir / "cluster.json"
    if previous.exists() and _read_json(previous).get("cluster_id") != grant.cluster_id:
        raise GossipError(f"{data_dir} already belongs to another cluster; use another data dir")
    identity = _identity(data_dir, grant, SigningKey.from_pem(key_path.read_bytes()))
    if grant.ca_key_pem is not None:
        write_atomic(data_dir / "ca.key", grant.ca_key_pem, mode=0o600)
    if grant.join_secret is not None:
        write_atomic(data_dir / "join.secret", grant.join_secret.encode() + b"\n", mode=0o600)
    write_atomic(data_dir / "ca.crt", cert_der_to_pem(grant.ca_cert_der))
    write_atomic(data_dir / "node.crt", cert_der_to_pem(grant.node_cert_der))
    _write_json(data_dir / "node.json", {"node_id": grant.node_id, "node_name": grant.node_name})
    _write_json(previous, {"cluster_id": grant.cluster_id, "cluster_name": grant.cluster_name})
    return identity


def _identity(data_dir: Path, grant: JoinGrant, key: SigningKey) -> Identity:
    """Check that the pieces belong together (CA, cluster id, node cert, node key) and assemble them."""
    trust = TrustAnchor(grant.ca_cert_der)
    if trust.cluster_id != grant.cluster_id:
        raise CertificateError(f"CA certificate is for cluster {trust.cluster_id}, not {grant.cluster_id}")
    node = trust.check_issued(grant.node_cert_der)
    if node.node_id != grant.node_id or node.public_key != key.public_bytes:
        raise CertificateError(f"node certificate is not for node {grant.node_id} and its key")
    ca_key = SigningKey.from_pem(grant.ca_key_pem) if grant.ca_key_pem is not None else None
    if ca_key is not None and not trust.matches_key(ca_key):
        raise CertificateError("CA key does not match the CA certificate")
    secret = grant.join_secret
    if secret is not None and not (len(secret) == 32 and _HEX.fullmatch(secret)):
        raise GossipError("join secret must be 32 lowercase hex characters")
    return Identity(
        data_dir=data_dir,
        cluster_id=grant.cluster_id,
        cluster_name=grant.cluster_name,
        node_id=grant.node_id,
        node_name=grant.node_name,
        key=key,
        cert_der=grant.node_cert_der,
        ca_cert_der=grant.ca_cert_der,
        ca_key=ca_key,
        join_secret=grant.join_secret,
    )


def load_identity(data_dir: Path) -> Identity | None:
    """This node's identity, or None when it has neither initialised a cluster nor joined one."""
    cluster_path = data_dir / "cluster.json"
    if not cluster_path.exists():
        return None
    cluster, node = _read_json(cluster_path), _read_json(data_dir / "node.json")
    try:
        ca_key = data_dir / "ca.key"
        secret = data_dir / "join.secret"
        grant = JoinGrant(
            cluster_id=str(cluster["cluster_id"]),
            cluster_name=str(cluster["cluster_name"]),
            node_id=str(node["node_id"]),
            node_name=str(node["node_name"]),
            node_cert_der=cert_pem_to_der((data_dir / "node.crt").read_bytes()),
            ca_cert_der=cert_pem_to_der((data_dir / "ca.crt").read_bytes()),
            ca_key_pem=ca_key.read_bytes() if ca_key.exists() else None,
            join_secret=secret.read_text().strip() if secret.exists() else None,
        )
        key = SigningKey.from_pem((data_dir / "node.key").read_bytes())
    except (OSError, KeyError) as exc:
        raise GossipError(f"identity in {data_dir} is incomplete: {exc}") from exc
    return _identity(data_dir, grant, key)


def next_boot(data_dir: Path) -> int:
    """Increment and persist (fsynced) the boot counter; strictly increasing across agent starts."""
    _make_dir(data_dir)
    path = data_dir / "boot"
    # The lock makes two agents started on one data dir still draw distinct boot numbers.
    with open(data_dir / ".boot.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            text = path.read_text().strip() if path.exists() else "0"
            if not text.isdigit():
                # Restarting from 0 would make peers take our datagrams for replays: refuse instead.
                raise GossipError(f"{path} does not hold a boot counter; fix or remove it")
            boot = int(text) + 1
            write_atomic(path, f"{boot}\n".encode())
            return boot
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
