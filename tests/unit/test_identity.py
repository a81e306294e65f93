"""The data dir: ids, join tokens, cluster init, join grants, boot counter (gossip/identity.py)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gossip.errors import CertificateError, GossipError, TokenError
from gossip.identity import (
    TOKEN_SHAPE,
    JoinGrant,
    JoinToken,
    init_cluster,
    is_id,
    load_identity,
    new_id,
    next_boot,
    prepare_node,
    save_grant,
)
from gossip.signing import SigningKey, cert_fingerprint, issue_node_cert

NOW = 1_750_000_000.0
FP = "ab" * 32
SECRET = "0f" * 16


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_token_round_trips_through_its_text() -> None:
    token = JoinToken(FP, SECRET)
    assert str(token) == f"SHOAL-1-{FP}-{SECRET}"
    assert JoinToken.parse(f"  {token}\n") == token


def test_token_accepts_uppercase_hex_and_normalises_it() -> None:
    assert JoinToken.parse(f"SHOAL-1-{FP.upper()}-{SECRET.upper()}") == JoinToken(FP, SECRET)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "must start with 'SHOAL-'"),
        (f"SWARM-1-{FP}-{SECRET}", "must start with 'SHOAL-'"),
        (f"SHOAL-2-{FP}-{SECRET}", "unsupported join token version '2'"),
        (f"SHOAL-1-{FP}", "has 3 parts, not 4"),
        (f"SHOAL-1-{FP}-{SECRET}-x", "has 5 parts, not 4"),
        (f"SHOAL-1-{FP[:-2]}-{SECRET}", "CA fingerprint has 62 characters, not 64"),
        (f"SHOAL-1-{'zz' * 32}-{SECRET}", "CA fingerprint is not hexadecimal"),
        (f"SHOAL-1-{FP}-{SECRET}00", "secret has 34 characters, not 32"),
        (f"SHOAL-1-{FP}-{'g' * 32}", "secret is not hexadecimal"),
    ],
)
def test_malformed_token_names_the_problem_and_the_expected_shape(text: str, problem: str) -> None:
    with pytest.raises(TokenError) as info:
        JoinToken.parse(text)
    assert problem in str(info.value)
    assert TOKEN_SHAPE in str(info.value)


def test_token_errors_and_repr_never_show_the_secret() -> None:
    with pytest.raises(TokenError) as info:
        JoinToken.parse(f"SHOAL-1-{FP}-{SECRET}ff")
    assert SECRET not in str(info.value)
    assert SECRET not in repr(JoinToken(FP, SECRET))


def test_new_ids_are_random_32_lowercase_hex() -> None:
    ids = {new_id() for _ in range(100)}
    assert len(ids) == 100 and all(is_id(i) for i in ids)
    assert not is_id("A" * 32) and not is_id("a" * 31) and not is_id(None)


def test_init_cluster_creates_a_loadable_identity(tmp_path: Path) -> None:
    made = init_cluster(tmp_path, cluster_name="prod", node_name="alpha", now_s=NOW)
    assert is_id(made.cluster_id) and is_id(made.node_id) and made.cluster_id != made.node_id
    assert (made.cluster_name, made.node_name) == ("prod", "alpha")
    assert made.ca_key is not None and made.trust.matches_key(made.ca_key)
    assert made.trust.verify_node_cert(made.cert_der, now_s=NOW).public_key == made.key.public_bytes
    loaded = load_identity(tmp_path)
    assert loaded is not None
    assert (loaded.node_id, loaded.cluster_id, loaded.cert_der) == (
        made.node_id,
        made.cluster_id,
        made.cert_der,
    )
    assert loaded.join_secret == made.join_secret and loaded.key.public_bytes == made.key.public_bytes


def test_token_carries_the_ca_fingerprint_and_secret(tmp_path: Path) -> None:
    made = init_cluster(tmp_path, cluster_name="prod", node_name=None, now_s=NOW)
    assert made.token == JoinToken(cert_fingerprint(made.ca_cert_der), str(made.join_secret))
    assert JoinToken.parse(str(made.token)) == made.token


def test_init_generates_a_node_name_when_none_is_given(tmp_path: Path) -> None:
    made = init_cluster(tmp_path, cluster_name="prod", node_name=None, now_s=NOW)
    assert made.node_name.startswith("node-") and len(made.node_name) == 11


def test_init_refuses_a_dir_that_already_holds_a_cluster(tmp_path: Path) -> None:
    init_cluster(tmp_path, cluster_name="prod", node_name=None, now_s=NOW)
    with pytest.raises(GossipError, match="already holds a cluster"):
        init_cluster(tmp_path, cluster_name="other", node_name=None, now_s=NOW)


def test_init_refuses_a_bad_cluster_name(tmp_path: Path) -> None:
    for bad in ("", "-x", "a b", "x" * 33):
        with pytest.raises(GossipError, match="invalid cluster name"):
            init_cluster(tmp_path, cluster_name=bad, node_name=None, now_s=NOW)


def test_secret_files_are_0600_and_the_dir_0700(tmp_path: Path) -> None:
    data = tmp_path / "data"
    init_cluster(data, cluster_name="prod", node_name=None, now_s=NOW)
    assert mode(data) == 0o700
    for name in ("node.key", "ca.key", "join.secret"):
        assert mode(data / name) == 0o600, name
    assert mode(data / "node.crt") == 0o644
    assert not [p.name for p in data.iterdir() if p.name.endswith(".tmp")]


def test_load_identity_is_none_before_init_or_join(tmp_path: Path) -> None:
    assert load_identity(tmp_path) is None
    prepare_node(tmp_path, node_name=None)
    assert load_identity(tmp_path) is None


def test_prepared_node_keeps_its_id_and_key_across_calls(tmp_path: Path) -> None:
    first = prepare_node(tmp_path, node_name="alpha")
    again = prepare_node(tmp_path, node_name=None)
    assert (again[0], again[1].public_bytes, again[2]) == (first[0], first[1].public_bytes, "alpha")


def test_a_new_name_replaces_the_stored_one(tmp_path: Path) -> None:
    node_id, _, _ = prepare_node(tmp_path, node_name="alpha")
    assert prepare_node(tmp_path, node_name="beta")[::2] == (node_id, "beta")
    assert prepare_node(tmp_path, node_name=None)[2] == "beta"


def test_prepare_refuses_a_bad_node_name(tmp_path: Path) -> None:
    with pytest.raises(GossipError, match="invalid node name 'a/b'"):
        prepare_node(tmp_path, node_name="a/b")


def grant_for(member_dir: Path, joiner_dir: Path, **changes: object) -> JoinGrant:
    member = init_cluster(member_dir, cluster_name="prod", node_name=None, now_s=NOW)
    node_id, key, name = prepare_node(joiner_dir, node_name="joiner")
    assert member.ca_key is not None
    cert = issue_node_cert(member.ca_key, member.ca_cert_der, node_id, key.public_bytes, now_s=NOW)
    fields: dict[str, object] = {
        "cluster_id": member.cluster_id, "cluster_name": member.cluster_name, "node_id": node_id,
        "node_name": name, "node_cert_der": cert, "ca_cert_der": member.ca_cert_der,
        "ca_key_pem": member.ca_key.to_pem(), "join_secret": member.join_secret,
    }  # fmt: skip
    fields.update(changes)
    return JoinGrant(**fields)  # type: ignore[arg-type]


def test_saved_grant_loads_back_as_the_same_identity(tmp_path: Path) -> None:
    grant = grant_for(tmp_path / "a", tmp_path / "b")
    saved = save_grant(tmp_path / "b", grant)
    loaded = load_identity(tmp_path / "b")
    assert loaded is not None and saved.node_id == loaded.node_id == grant.node_id
    assert loaded.cluster_id == grant.cluster_id and loaded.ca_key is not None
    assert mode(tmp_path / "b" / "ca.key") == 0o600


def test_grant_without_ca_key_or_secret_is_saved_without_them(tmp_path: Path) -> None:
    grant = grant_for(tmp_path / "a", tmp_path / "b", ca_key_pem=None, join_secret=None)
    loaded = save_grant(tmp_path / "b", grant)
    assert loaded.ca_key is None and loaded.token is None
    assert not (tmp_path / "b" / "ca.key").exists()


def test_grant_for_another_key_is_refused(tmp_path: Path) -> None:
    grant = grant_for(tmp_path / "a", tmp_path / "b")
    (tmp_path / "b" / "node.key").write_bytes(SigningKey.generate().to_pem())
    with pytest.raises(CertificateError, match="not for node"):
        save_grant(tmp_path / "b", grant)
    assert load_identity(tmp_path / "b") is None


def test_grant_with_a_foreign_ca_key_is_refused(tmp_path: Path) -> None:
    grant = grant_for(tmp_path / "a", tmp_path / "b", ca_key_pem=SigningKey.generate().to_pem())
    with pytest.raises(CertificateError, match="CA key does not match"):
        save_grant(tmp_path / "b", grant)


def test_grant_needs_a_prepared_node(tmp_path: Path) -> None:
    grant = grant_for(tmp_path / "a", tmp_path / "b")
    with pytest.raises(GossipError, match="prepare the node"):
        save_grant(tmp_path / "c", grant)


def test_next_boot_strictly_increases_and_persists(tmp_path: Path) -> None:
    boots = [next_boot(tmp_path) for _ in range(5)]
    assert boots == [1, 2, 3, 4, 5]
    assert (tmp_path / "boot").read_text().strip() == "5"


def test_next_boot_refuses_a_corrupt_counter(tmp_path: Path) -> None:
    (tmp_path / "boot").write_text("garbage\n")
    with pytest.raises(GossipError, match="does not hold a boot counter"):
        next_boot(tmp_path)
