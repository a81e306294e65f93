"""Framed request/response over TLS on loopback (gossip/stream.py with gossip/tls.py contexts)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gossip.errors import WireError
from gossip.identity import Identity, JoinGrant, init_cluster, prepare_node, save_grant
from gossip.signing import issue_node_cert
from gossip.stream import (
    Peer,
    RemoteError,
    RequestRefused,
    StreamError,
    StreamLimits,
    StreamServer,
    encode_frame,
    open_stream,
)
from gossip.tls import bootstrap_context, client_context, server_context

LOCAL = "127.0.0.1"


def member_of(cluster: Identity, data_dir: Path, now_s: float) -> Identity:
    node_id, key, name = prepare_node(data_dir, node_name=None)
    assert cluster.ca_key is not None
    cert = issue_node_cert(cluster.ca_key, cluster.ca_cert_der, node_id, key.public_bytes, now_s=now_s)
    grant = JoinGrant(
        cluster.cluster_id, cluster.cluster_name, node_id, name, cert, cluster.ca_cert_der, None, None
    )
    return save_grant(data_dir, grant)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Identity, Identity]:
    # OpenSSL checks certificate dates against the real clock, so the injected wall time is the real one.
    now = time.time()
    base = tmp_path_factory.mktemp("stream")
    server = init_cluster(base / "a", cluster_name="test", node_name="a", now_s=now)
    return server, member_of(server, base / "b", now)


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Identity:
    return init_cluster(
        tmp_path_factory.mktemp("other"), cluster_name="other", node_name=None, now_s=time.time()
    )


async def echo(peer: Peer, body: dict[str, Any]) -> dict[str, Any]:
    peer.connection_state["calls"] = peer.connection_state.get("calls", 0) + 1
    return {"node_id": peer.node_id, "calls": peer.connection_state["calls"], "echo": body}


async def broken(peer: Peer, body: dict[str, Any]) -> dict[str, Any]:
    raise KeyError("bug")


async def refuse(peer: Peer, body: dict[str, Any]) -> dict[str, Any]:
    raise RequestRefused("not today", code="busy")


def serve(
    identity: Identity, scenario: Callable[[StreamServer, tuple[str, int]], Awaitable[None]],
    limits: StreamLimits | None = None,
) -> StreamServer:  # fmt: skip
    server = StreamServer(limits)
    server.route("echo", echo)
    server.route("open.echo", echo, require_peer_cert=False)
    server.route("broken", broken)
    server.route("refuse", refuse)

    async def main() -> None:
        address = await server.start(LOCAL, 0, server_context(identity))
        try:
            await scenario(server, address)
        finally:
            await server.close()

    asyncio.run(main())
    return server


def test_mutual_tls_request_reaches_the_handler_with_the_client_node_id(
    pair: tuple[Identity, Identity],
) -> None:
    a, b = pair

    async def scenario(server: StreamServer, address: tuple[str, int]) -> None:
        async with await open_stream(address, client_context(b), 5.0) as client:
            reply = await client.request("echo", {"x": b"\x00\x01", "n": [1, 2]})
            assert reply == {"node_id": b.node_id, "calls": 1, "echo": {"x": b"\x00\x01", "n": [1, 2]}}
            assert client.peer_cert_der == a.cert_der

    assert serve(a, scenario).stats.requests == 1


def test_one_connection_carries_several_requests_with_shared_state(pair: tuple[Identity, Identity]) -> None:
    async def scenario(server: StreamServer, address: tuple[str, int]) -> None:
        async with await open_stream(address, client_context(pair[1]), 5.0) as client:
            assert [(await client.request("echo", {}))["calls"] for _ in range(3)] == [1, 2, 3]

    serve(pair[0], scenario)


def test_certless_client_is_refused_for_a_non_join_op(pair: tuple[Identity, Identity]) -> None:
    async def scenario(server: StreamServer, address: tuple[str, int]) -> None:
        async with await open_stream(address, bootstrap_context(), 5.0) as client:
            with pytest.raises(RemoteError, match="requires a client certificate") as info:
                await client.request("echo", {})
            assert info.value.code == "unauthenticated"
            assert (await client.request("open.echo", {}))["node_id"] is None

    assert serve(pair[0], scenario).stats.refused == 1


def test_server_refuses_a_client_cert_from_another_cluster(
    pair: tuple[Identity, Identity], stranger: Identity
) -> None:
    # The stranger trusts our CA, so only the server's check of the client certificate can fail.
    ctx = client_context(stranger)
    ctx.load_verify_locations(cadata=pair[0].ca_cert_der)

    async def scenario(server: StreamServer, address: tuple[str, int]) -> None:
        with pytest.raises(StreamError):
            async with await open_stream(address, ctx, 5.0) as client:
                await client.request("open.echo", {})

    assert serve(pair[0], scenario).stats.requests == 0


def test_client_refuses_a_server_from_another_cluster(
    pair: tuple[Identity, Identity], stranger: Identity
) -> None:
    async def scenario(server: StreamServer, address: tuple[str, int]) -> None:
        with pytest.raises(StreamError, match="cannot connect"):
            await open_stream(address, client_context(pair[1]), 5.0)

    serve(stranger, scenario)


def test_handler_exception_becomes_an_error_and_the_connection_survives(
    pair: tuple[Identity, Identity],
) -> None:
    async def scenario(server: StreamServer, address: tuple[str, int]) -> None:
        async with await open_stream(address, client_context(pair[1]), 5.0) as client:
            with pytest.raises(RemoteError, match="internal error while handling 'broken'") as info:
                await client.request("broken", {})
            assert info.value.code == "internal" and "bug" not in info.value.error
            with pytest.raises(RemoteError, match="not today") as refused:
                await client.request("refuse", {})
            assert refused.value.code == "busy"
            assert (await client.request("echo", {}))["calls"] == 1

    stats = serve(pair[0], scenario).stats
    assert (stats.failures, stats.refused, stats.requests) == (1, 1, 3)


def test_unknown_op_is_an_error_response(pair: tuple[Identity, Identity]) -> None:
    async def scenario(server: StreamServer, address: tuple[str, int]) -> None:
        async with await open_stream(address, client_context(pair[1]), 5.0) as client:
            with pytest.raises(RemoteError, match="unknown op 'nope'"):
                await client.request("nope", {})

    serve(pair[0], scenario)


async def raw_exchange(address: tuple[str, int], data: bytes) -> bytes:
    """Send raw bytes over TLS and read until the server closes the connection."""
    reader, writer = await asyncio.open_connection(*address, ssl=bootstrap_context())
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(5.0):
            return await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()


def test_oversized_frame_is_refused_from_its_header_alone(pair: tuple[Identity, Identity]) -> None:
    # The header claims 4 GiB and no body follows: a server that waited for (or allocated) the body would hang
    # here until its 60 s read timeout; this one closes at once.
    async def scenario(server: StreamServer, address: tuple[str, int]) -> None:
        assert await raw_exchange(address, b"\xff\xff\xff\xff") == b""

    stats = serve(pair[0], scenario, StreamLimits(read_timeout_s=60.0, idle_timeout_s=60.0)).stats
    assert (stats.malformed_frames, stats.timeouts, stats.requests) == (1, 0, 0)


def test_malformed_frame_closes_the_connection(pair: tuple[Identity, Identity]) -> None:
    async def scenario(server: StreamServer, address: tuple[str, int]) -> None:
        assert await raw_exchange(address, b"\x00\x00\x00\x01\xc1") == b""  # 0xc1: never valid msgpack
        not_a_request = encode_frame({"op": 7}, max_frame_bytes=100)
        assert await raw_exchange(address, not_a_request) == b""

    assert serve(pair[0], scenario).stats.malformed_frames == 2


def test_client_refuses_an_oversized_request_before_sending() -> None:
    with pytest.raises(WireError, match="exceeds the 10-byte limit"):
        encode_frame({"op": "echo", "body": {"x": "y" * 20}}, max_frame_bytes=10)


def test_requests_per_connection_are_bounded(pair: tuple[Identity, Identity]) -> None:
    async def scenario(server: StreamServer, address: tuple[str, int]) -> None:
        async with await open_stream(address, client_context(pair[1]), 5.0) as client:
            await client.request("echo", {})
            await client.request("echo", {})
            with pytest.raises(StreamError, match="closed the connection"):
                await client.request("echo", {})

    serve(pair[0], scenario, StreamLimits(max_requests_per_connection=2))


def test_connections_beyond_the_limit_are_closed(pair: tuple[Identity, Identity]) -> None:
    async def scenario(server: StreamServer, address: tuple[str, int]) -> None:
        async with await open_stream(address, client_context(pair[1]), 5.0) as first:
            await first.request("echo", {})
            async with await open_stream(address, client_context(pair[1]), 5.0) as second:
                with pytest.raises(StreamError):
                    await second.request("echo", {})
            assert (await first.request("echo", {}))["calls"] == 2

    stats = serve(pair[0], scenario, StreamLimits(max_connections=1)).stats
    assert (stats.connections, stats.rejected_connections) == (1, 1)


def test_idle_connection_is_closed_by_the_server(pair: tuple[Identity, Identity]) -> None:
    async def scenario(server: StreamServer, address: tuple[str, int]) -> None:
        assert await raw_exchange(address, b"") == b""

    assert serve(pair[0], scenario, StreamLimits(idle_timeout_s=0.05)).stats.timeouts == 1


def test_close_ends_open_connections(pair: tuple[Identity, Identity]) -> None:
    async def main() -> None:
        server = StreamServer()
        server.route("echo", echo)
        address = await server.start(LOCAL, 0, server_context(pair[0]))
        async with await open_stream(address, client_context(pair[1]), 5.0) as client:
            await client.request("echo", {})
            await server.close()
            with pytest.raises(StreamError):
                await client.request("echo", {})

    asyncio.run(main())


def test_unreachable_peer_is_a_stream_error() -> None:
    with socket.socket() as sock:
        sock.bind((LOCAL, 0))
        port = sock.getsockname()[1]

    async def main() -> None:
        with pytest.raises(StreamError, match=f"cannot connect to {LOCAL}:{port}"):
            await open_stream((LOCAL, port), bootstrap_context(), 5.0)

    asyncio.run(main())


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="4-byte frame header"):
        StreamLimits(max_frame_bytes=1 << 32)
    with pytest.raises(ValueError, match="positive"):
        StreamLimits(idle_timeout_s=0)
