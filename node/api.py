"""The agent's HTTP API (aiohttp; the only server-side module importing it): JSON under /v1.

Routes only translate between HTTP and the agent's view; they hold no logic. Errors are JSON objects
`{"error": {"code", "message", "field"?}}` with the status codes of SPEC.md.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from gossip.members import MemberState

MAX_BODY_BYTES = 1 << 20


class AgentView(Protocol):
    @property
    def name(self) -> str: ...

    def members(self) -> list[MemberState]: ...

    def join_token(self) -> str | None: ...

    def counters(self) -> dict[str, Any]: ...


def member_json(m: MemberState) -> dict[str, Any]:
    """One element of `shoal members --json` and GET /v1/members (SPEC.md)."""
    return {"name": m.name, "id": m.node, "address": f"{m.addr[0]}:{m.addr[1]}", "status": m.status.label,
            "incarnation": m.incarnation, "labels": dict(m.labels)}


def error(status: int, code: str, message: str, field: str | None = None) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return web.json_response({"error": body}, status=status)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return error(413, "too_large", f"request body exceeds {MAX_BODY_BYTES} bytes")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)


def build_app(agent: AgentView) -> web.Application:
    app = web.Application(middlewares=[json_errors], client_max_size=MAX_BODY_BYTES)

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "node": agent.name})

    async def members(_: web.Request) -> web.Response:
        return web.json_response([member_json(m) for m in agent.members()])

    async def join_token(request: web.Request) -> web.Response:
        if not _local_caller(request):
            return error(403, "forbidden", "the join token is served only to callers on this host (until RBAC "
                         "lands): run `shoal join-token` on the node itself")
        token = agent.join_token()
        if token is None:
            return error(404, "not_found", "this node holds no join secret")
        return web.json_response({"token": token})

    async def stats(_: web.Request) -> web.Response:
        return web.json_response({"node": agent.name, "counters": agent.counters()})

    async def openapi(_: web.Request) -> web.Response:
        return web.json_response(OPENAPI)

    app.router.add_get("/v1/health", health)
    app.router.add_get("/v1/members", members)
    app.router.add_get("/v1/join-token", join_token)
    app.router.add_get("/v1/agent", stats)
    app.router.add_get("/v1/openapi.json", openapi)
    return app


def _local_caller(request: web.Request) -> bool:
    """A caller on this host: from loopback, or from the very address it connected to (the kernel uses the
    destination as source when a host talks to one of its own addresses)."""
    remote = request.remote or ""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    return address.is_loopback or (sockname is not None and str(sockname[0]) == remote)


class ApiServer:
    def __init__(self, agent: AgentView, host: str, port: int) -> None:
        self._runner = web.AppRunner(build_app(agent), access_log=None)
        self._host, self._port = host, port

    async def start(self) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()

    async def close(self) -> None:
        await self._runner.cleanup()


def _op(summary: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"get": {"summary": summary, "responses": {"200": {
        "description": "OK", "content": {"application/json": {"schema": schema}}}}}}


_MEMBER = {"type": "object", "required": ["name", "id", "address", "status", "incarnation", "labels"],
           "properties": {"name": {"type": "string"}, "id": {"type": "string"},
                          "address": {"type": "string"},
                          "status": {"type": "string", "enum": ["alive", "suspect", "dead", "left"]},
                          "incarnation": {"type": "integer"},
                          "labels": {"type": "object", "additionalProperties": {"type": "string"}}}}

OPENAPI: dict[str, Any] = json.loads(json.dumps({
    "openapi": "3.0.3",
    "info": {"title": "Shoal agent API", "version": "1"},
    "paths": {
        "/v1/health": _op("Liveness of the agent", {"type": "object", "properties": {
            "status": {"type": "string"}, "node": {"type": "string"}}}),
        "/v1/members": _op("Cluster members as this node sees them", {"type": "array", "items": _MEMBER}),
        "/v1/join-token": _op("The cluster's join token (callers on the node's own host only)",
                              {"type": "object", "properties": {"token": {"type": "string"}}}),
        "/v1/agent": _op("This agent's counters (datagrams, drops by reason, push-pulls)",
                         {"type": "object"}),
    },
}))
