"""A minimal asyncio client for the Serf agent's RPC (msgpack over TCP, IPC version 1).

Only what the benches use: `handshake`, `members` and `event` (a user event). Framing: a request is a msgpack
header map {"Command", "Seq"} followed, for commands that take one, by a body map; a response is a header
{"Seq", "Error"} followed by a body map for `members`. One request is in flight per connection.
Serf returns Addr as binary, so responses are decoded with raw=False and surrogateescape.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack


class SerfRpcError(Exception):
    """The agent answered with an error, or the connection broke."""


class SerfRpc:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._unpacker = msgpack.Unpacker(raw=False, unicode_errors="surrogateescape", strict_map_key=False)
        self._seq = 0

    @classmethod
    async def connect(cls, host: str, port: int, timeout_s: float) -> SerfRpc:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port)
            client = cls(reader, writer)
            await client.request("handshake", {"Version": 1}, has_body=False)
        return client

    async def members(self) -> list[dict[str, Any]]:
        """This agent's member list: [{"Name", "Status": alive|leaving|left|failed, ...}]."""
        body = await self.request("members", None, has_body=True)
        members = body.get("Members") if isinstance(body, dict) else None
        return [m for m in members or [] if isinstance(m, dict)]

    async def event(self, name: str, payload: bytes, *, coalesce: bool) -> None:
        """Send a user event through this agent (the agent gossips it; its handlers run on every member)."""
        await self.request("event", {"Name": name, "Payload": payload, "Coalesce": coalesce}, has_body=False)

    async def request(self, command: str, body: dict[str, Any] | None, *, has_body: bool) -> Any:
        seq = self._seq
        self._seq += 1
        data = msgpack.packb({"Command": command, "Seq": seq})
        if body is not None:
            data += msgpack.packb(body)
        self._writer.write(data)
        await self._writer.drain()
        while True:
            header = await self._next()
            if isinstance(header, dict) and header.get("Seq") == seq:
                break
        if header.get("Error"):
            raise SerfRpcError(f"{command}: {header['Error']}")
        return await self._next() if has_body else None

    async def _next(self) -> Any:
        while True:
            for obj in self._unpacker:
                return obj
            chunk = await self._reader.read(65536)
            if not chunk:
                raise SerfRpcError("connection closed by the agent")
            self._unpacker.feed(chunk)

    def close(self) -> None:
        self._writer.close()
