"""The join protocol over real loopback TLS (gossip/joining.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gossip.errors import JoinRefused
from gossip.identity import Identity, JoinToken, init_cluster, load_identity, prepare_node, save_grant
from gossip.joining import JoinService, JoinUnreachable, join_proof, request_join
from gossip.signing import SigningKey, cert_fingerprint
from gossip.stream import RemoteError, StreamClient, StreamServer, open_stream
from gossip.tls import bootstrap_context, client_context, server_context

LOCAL = "127.0.0.1"


class Wall:
    """The clock JoinService reads; OpenSSL checks dates on the real clock, so this is the real time."""

    def __init__(self) -> None:
        self.now_s = time.time()

    def wall(self) -> float:
        return self.now_s


@pytest.fixture
def member(tmp_path: Path) -> Identity:
    return init_cluster(tmp_path / "member", cluster_name="prod", node_name="first", now_s=time.time())


def with_member(identity: Identity, scenario: Callable[[tuple[str, int]], Awaitable[None]]) -> StreamServer:
    server = StreamServer()
    JoinService(lambda: identity, Wall()).register(server)

    async def main() -> None:
        address = await server.start(LOCAL, 0, server_context(identity))
        try:
            await scenario(address)
        finally:
            await server.close()

    asyncio.run(main())
    return server


def token_of(identity: Identity) -> JoinToken:
    assert identity.token is not None
    return identity.token


def test_successful_join_yields_a_cert_the_cluster_trusts(member: Identity, tmp_path: Path) -> None:
    node_id, key, name = prepare_node(tmp_path / "joiner", node_name="second")

    async def scenario(address: tuple[str, int]) -> None:
        grant = await request_join(
            address, token_of(member), node_id, key, name, timeout_s=5.0, now_s=time.time()
        )
        node = member.trust.verify_node_cert(grant.node_cert_der, now_s=time.time())
        assert (node.node_id, node.public_key) == (node_id, key.public_bytes)
        assert (grant.cluster_id, grant.cluster_name, grant.node_name) == (
            member.cluster_id,
            "prod",
            "second",
        )
        assert grant.join_secret == member.join_secret and grant.ca_key_pem is not None
        joined = save_grant(tmp_path / "joiner", grant)
        assert load_identity(tmp_path / "joiner") is not None
        # The new member can now talk mutual TLS to the cluster.
        async with await open_stream(address, client_context(joined), 5.0) as client:
            with pytest.raises(RemoteError, match="unknown op"):
                await client.request("sync.digest", {})

    with_member(member, scenario)


def test_wrong_ca_fingerprint_is_refused_before_any_proof_is_sent(member: Identity) -> None:
    token = JoinToken("ab" * 32, token_of(member).secret)
    key = SigningKey.generate()

    async def scenario(address: tuple[str, int]) -> None:
        with pytest.raises(JoinRefused) as info:
            await request_join(address, token, "1" * 32, key, "n", timeout_s=5.0, now_s=time.time())
        assert str(info.value) == (
            f"CA fingerprint mismatch: token expects {'ab' * 32}, member at {LOCAL}:{address[1]} presented "
            f"{cert_fingerprint(member.ca_cert_der)}; check the token"
        )

    assert with_member(member, scenario).stats.requests == 1  # the hello only


def test_wrong_secret_is_refused(member: Identity) -> None:
    token = JoinToken(token_of(member).fingerprint, "0" * 32)

    async def scenario(address: tuple[str, int]) -> None:
        with pytest.raises(JoinRefused, match="join token secret does not match this cluster"):
            await request_join(
                address, token, "1" * 32, SigningKey.generate(), "n", timeout_s=5.0, now_s=time.time()
            )

    assert with_member(member, scenario).stats.refused == 1


def test_member_without_ca_key_sends_the_joiner_elsewhere(member: Identity) -> None:
    keyless = dataclasses.replace(member, ca_key=None)

    async def scenario(address: tuple[str, int]) -> None:
        with pytest.raises(JoinUnreachable, match="cannot admit nodes"):
            await request_join(
                address,
                token_of(member),
                "1" * 32,
                SigningKey.generate(),
                "n",
                timeout_s=5.0,
                now_s=time.time(),
            )

    with_member(keyless, scenario)


def test_unreachable_seed_is_retryable_not_refused(member: Identity) -> None:
    with socket.socket() as sock:
        sock.bind((LOCAL, 0))
        port = sock.getsockname()[1]
    join = request_join(
        (LOCAL, port),
        token_of(member),
        "1" * 32,
        SigningKey.generate(),
        "n",
        timeout_s=5.0,
        now_s=time.time(),
    )
    with pytest.raises(JoinUnreachable, match=f"cannot join through {LOCAL}:{port}"):
        asyncio.run(join)


def test_member_with_an_expired_cert_is_refused(member: Identity) -> None:
    async def scenario(address: tuple[str, int]) -> None:
        with pytest.raises(JoinRefused, match=r"no valid node certificate .* has expired"):
            await request_join(
                address, token_of(member), "1" * 32, SigningKey.generate(), "n",
                timeout_s=5.0, now_s=time.time() + 400 * 86_400,
            )  # fmt: skip

    with_member(member, scenario)


async def hello(client: StreamClient) -> bytes:
    nonce = (await client.request("join.hello", {}))["nonce"]
    assert isinstance(nonce, bytes) and len(nonce) == 32
    return nonce


def request_body(member: Identity, nonce: bytes, secret: str, **changes: Any) -> dict[str, Any]:
    key = SigningKey.generate()
    proof = join_proof(secret, nonce, "1" * 32, key.public_bytes, cert_fingerprint(member.cert_der))
    body = {"node_id": "1" * 32, "public_key": key.public_bytes, "name": "n", "proof": proof}
    body.update(changes)
    return body


def test_join_request_needs_a_hello_on_the_same_connection(member: Identity) -> None:
    async def scenario(address: tuple[str, int]) -> None:
        async with await open_stream(address, bootstrap_context(), 5.0) as first:
            nonce = await hello(first)
        async with await open_stream(address, bootstrap_context(), 5.0) as second:
            with pytest.raises(RemoteError, match=r"send join\.hello on this connection") as info:
                await second.request("join.request", request_body(member, nonce, str(member.join_secret)))
            assert info.value.code == "protocol"

    with_member(member, scenario)


def test_a_nonce_is_good_for_one_request_only(member: Identity) -> None:
    async def scenario(address: tuple[str, int]) -> None:
        async with await open_stream(address, bootstrap_context(), 5.0) as client:
            body = request_body(member, await hello(client), str(member.join_secret))
            assert "node_cert" in await client.request("join.request", body)
            with pytest.raises(RemoteError, match=r"send join\.hello"):
                await client.request("join.request", body)

    with_member(member, scenario)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("node_id", "host-1", "malformed node_id"),
        ("public_key", b"short", "malformed public_key"),
        ("proof", "not bytes", "malformed proof"),
        ("name", "bad name", "invalid node name"),
    ],
)
def test_malformed_join_request_names_the_field(
    member: Identity, field: str, value: object, problem: str
) -> None:
    async def scenario(address: tuple[str, int]) -> None:
        async with await open_stream(address, bootstrap_context(), 5.0) as client:
            body = request_body(member, await hello(client), str(member.join_secret), **{field: value})
            with pytest.raises(RemoteError, match=problem):
                await client.request("join.request", body)

    with_member(member, scenario)


def test_failed_attempts_per_connection_are_bounded(member: Identity) -> None:
    async def scenario(address: tuple[str, int]) -> None:
        async with await open_stream(address, bootstrap_context(), 5.0) as client:
            for _ in range(3):
                with pytest.raises(RemoteError, match="secret does not match"):
                    await client.request("join.request", request_body(member, await hello(client), "0" * 32))
            with pytest.raises(RemoteError, match="too many failed join attempts") as info:
                await hello(client)
            assert info.value.code == "rate_limited"

    with_member(member, scenario)


def test_proof_is_bound_to_the_server_certificate() -> None:
    args = ("0f" * 16, bytes(32), "1" * 32, bytes(32))
    assert join_proof(*args, "aa" * 32) != join_proof(*args, "bb" * 32)
    assert len(join_proof(*args, "aa" * 32)) == 32
