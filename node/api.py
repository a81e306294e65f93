"""The agent's HTTP API (aiohttp; the only server-side module importing it): JSON under /v1.

Routes only translate between HTTP and the agent's view; the desired-state rules are node.desired's. Errors are
JSON objects `{"error": {"code", "message", "field"?}}` with the status codes of SPEC.md; the refusals
node.desired raises map onto them in one middleware. A write plans and commits with no await in between, so
nothing can interleave on the event loop: a manifest is applied all-or-nothing on this node.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web
from aiohttp.typedefs import Middleware

from gossip.entry import Record
from gossip.errors import PersistError
from gossip.members import MemberState
from gossip.store import Conflict, Store
from node import desired, nodes, rollout_writes, views
from node.desired import InvalidRequest, NotFound, Unreadable, service_key
from node.manifest import ManifestError, parse_manifest
from node.nodes import NodeNotFound, NodeRequestError, NodeSettings
from node.observed import NodeStatus
from node.openapi import OPENAPI
from node.rollout.gate import assess
from node.rollout.status import RolloutStatus
from node.rollouts import placed_slots
from node.schedule import Share
from node.workloads import owner, workloads

MAX_BODY_BYTES = 1 << 20
log = logging.getLogger("shoal.api")


class AgentView(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def store(self) -> Store:
        """The replicated store, for reading (writes go through `write`)."""

    def members(self) -> list[MemberState]: ...

    def join_token(self) -> str | None: ...

    def counters(self) -> dict[str, Any]: ...

    def write(self, key: str, payload: bytes, *, note: str, expect: int | None,
              tombstone: bool = False) -> Record: ...

    def received_at(self, key: str) -> float | None:
        """Epoch seconds when this node first held the key's current generation; None if loaded at start."""

    def statuses(self) -> dict[str, NodeStatus]:
        """Every node's last published observed state, by node id."""

    def node_settings(self) -> dict[str, NodeSettings]: ...

    def services(self) -> list[desired.ServiceView]:
        """The live services, each decoded once per generation (an unreadable one is left out, logged on
        arrival)."""

    def share(self) -> Share:
        """This node's view of the placement."""

    @property
    def node_id(self) -> str: ...

    async def policy_counters(self) -> list[dict[str, object]]:
        """This host's network-policy rule counters."""


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


def live_statuses(agent: AgentView) -> dict[str, NodeStatus]:
    """The observed state the views show: statuses of members not known dead or gone."""
    return views.live(agent.statuses(), agent.members())


def names(agent: AgentView) -> dict[str, str]:
    return {m.node: m.name for m in agent.members()}


def json_errors(agent: AgentView) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            return error(413, "too_large", f"request body exceeds {MAX_BODY_BYTES} bytes (1 MiB)")
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
        except ManifestError as exc:
            return error(400, "invalid_manifest", str(exc), exc.field)
        except InvalidRequest as exc:
            return error(400, exc.code, str(exc), exc.field)
        except NodeNotFound as exc:
            return error(404, "not_found", str(exc), exc.field)
        except NodeRequestError as exc:
            return error(400, "invalid_request", str(exc), exc.field)
        except NotFound as exc:
            return error(404, "not_found", desired.not_found_message(exc, names(agent)))
        except Conflict as exc:
            name = desired.service_name(exc.key)
            return error(409, "conflict", desired.conflict_message(exc, names(agent)), desired.field_of(name))
        except PersistError as exc:  # the disk refused the write: this write is not stored nor gossiped
            log.error("cannot store a change", extra={"fields": {"error": exc}})
            return error(503, "store_unavailable", f"this node could not store the change ({exc}); a manifest's "
                         "services before the failing one may have been stored: fix the disk or use another node, "
                         "then apply again")
        except Unreadable as exc:
            log.warning("unreadable service spec", extra={"fields": {"error": exc}})
            return error(500, "unreadable_spec", f"this node cannot read {exc}; apply the service again")
    return middleware


def build_app(agent: AgentView) -> web.Application:
    app = web.Application(middlewares=[json_errors(agent)], client_max_size=MAX_BODY_BYTES)

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
    ServiceRoutes(agent).register(app.router)
    RolloutRoutes(agent).register(app.router)
    NodeRoutes(agent).register(app.router)
    return app


class ServiceRoutes:
    """/v1/services: the desired state. Each write plans (node.desired) and commits with no await between."""

    def __init__(self, agent: AgentView) -> None:
        self._agent = agent

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_get("/v1/services", self.list)
        router.add_post("/v1/services", self.apply)
        router.add_get("/v1/services/{name}", self.show)
        router.add_delete("/v1/services/{name}", self.delete)
        router.add_post("/v1/services/{name}/scale", self.scale)
        router.add_get("/v1/services/{name}/replicas", self.replicas)

    async def list(self, _: web.Request) -> web.Response:
        statuses = live_statuses(self._agent)
        return web.json_response([_with_counts(desired.summary(v), statuses) for v in self._agent.services()])

    async def replicas(self, request: web.Request) -> web.Response:
        """Observed state, cluster-wide: every replica every node reports, plus slots not yet reported. A variant
        (`web.canary`, `web.green`) is listed by its own name while its service derives it."""
        name = request.match_info["name"]
        view = self._live(owner(name))
        if name != view.name and name not in {v.name for v in workloads([view])}:
            raise desired.NotFound(name, None)
        statuses = live_statuses(self._agent)
        rows = views.replicas(name, statuses, names(self._agent), self._agent.share())
        return web.json_response(rows)

    async def apply(self, request: web.Request) -> web.Response:
        if (request.content_length or 0) > MAX_BODY_BYTES:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY_BYTES, actual_size=request.content_length or 0)
        text = await request.read()
        expect = desired.parse_expect(request.query.getall("expect", []))
        # Parsing up to 1 MiB of YAML takes a while: off the loop, so gossip keeps answering probes meanwhile.
        manifest = await asyncio.to_thread(parse_manifest, text)
        store = self._agent.store
        writes = desired.plan_apply(manifest, {s.name: store.get(service_key(s.name)) for s in manifest.services},
                                    expect, [view.spec for view in self._agent.services()])
        desired.commit(writes, self._agent.write)
        return web.json_response({
            "services": [{"name": w.name, "action": w.action, "generation": w.generation, "changes": w.note}
                         for w in writes],
            "warnings": [{"field": n.field, "message": n.message} for n in manifest.warnings]})

    async def show(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        view = self._live(name)
        detail = desired.detail(view, names(self._agent), self._agent.received_at(view.record.key))
        return web.json_response(dataclasses.asdict(detail), headers={"ETag": f'"{view.generation}"'})

    async def delete(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        expect = desired.parse_generation(request.headers.get("If-Match"), "If-Match")
        write = desired.plan_delete(name, self._agent.store.get(service_key(name)), expect)
        desired.commit([write], self._agent.write)
        return web.json_response({"name": name, "generation": write.generation, "deleted": True})

    async def scale(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await _json_object(request)
        if "replicas" not in body:
            raise InvalidRequest("replicas", 'the body must be {"replicas": N} (optionally "generation": G)')
        field = "generation" if "generation" in body else "If-Match"
        expect = desired.parse_generation(body.get("generation", request.headers.get("If-Match")), field)
        write = desired.plan_scale(name, self._agent.store.get(service_key(name)), body["replicas"], expect)
        desired.commit([write], self._agent.write)
        statuses = live_statuses(self._agent)
        return web.json_response(_with_counts(desired.summary(self._live(name)), statuses))

    def _live(self, name: str) -> desired.ServiceView:
        return desired.existing(name, self._agent.store.get(service_key(name)))


def _with_counts(summary: desired.ServiceSummary, statuses: dict[str, NodeStatus]) -> dict[str, Any]:
    running, ready = views.counts(summary.name, statuses)
    return dataclasses.asdict(dataclasses.replace(summary, running=running, ready=ready))


class RolloutRoutes:
    """/v1/services/{name}/rollout, /rollback, /canary, /switch: a rollout's status and the operator's writes.
    Each write is the next generation of the service record, planned by node.desired and committed at once."""

    def __init__(self, agent: AgentView) -> None:
        self._agent = agent

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_get("/v1/services/{name}/rollout", self.status)
        router.add_post("/v1/services/{name}/rollback", self.rollback)
        router.add_post("/v1/services/{name}/canary", self.canary_weight)
        router.add_post("/v1/services/{name}/canary/promote", self.promote)
        router.add_post("/v1/services/{name}/canary/abort", self.abort)
        router.add_post("/v1/services/{name}/switch", self.switch)

    async def status(self, request: web.Request) -> web.Response:
        """The newest generation this node holds, assessed on its view: placed slots and live nodes' reports."""
        agent, name = self._agent, request.match_info["name"]
        view = desired.existing(name, self._record(name))
        slots = placed_slots(agent.share().assignment.by_slot, agent.node_id)[0].get(view.name, [])
        status = assess(desired.revision(view), slots, list(live_statuses(agent).values()))
        return web.json_response(rollout_json(status))

    async def rollback(self, request: web.Request) -> web.Response:
        name, body = request.match_info["name"], await _optional_object(request)
        return self._commit(rollout_writes.plan_rollback(name, self._record(name), _expect(request, body)))

    async def canary_weight(self, request: web.Request) -> web.Response:
        name, body = request.match_info["name"], await _json_object(request)
        if "weight" not in body:
            raise InvalidRequest("weight", 'the body must be {"weight": W} with 0 < W <= 100 (optionally "expect": G)')
        return self._commit(rollout_writes.plan_canary_weight(name, self._record(name), body["weight"],
                                                       _expect(request, body)))

    async def promote(self, request: web.Request) -> web.Response:
        name, body = request.match_info["name"], await _optional_object(request)
        return self._commit(rollout_writes.plan_promote(name, self._record(name), _expect(request, body)))

    async def abort(self, request: web.Request) -> web.Response:
        name, body = request.match_info["name"], await _optional_object(request)
        return self._commit(rollout_writes.plan_abort(name, self._record(name), _expect(request, body)))

    async def switch(self, request: web.Request) -> web.Response:
        name, body = request.match_info["name"], await _optional_object(request)
        write = rollout_writes.plan_switch(name, self._record(name), body.get("to"), _expect(request, body))
        return self._commit(write)

    def _record(self, name: str) -> Record | None:
        return self._agent.store.get(service_key(name))

    def _commit(self, write: desired.Write) -> web.Response:
        desired.commit([write], self._agent.write)  # right after planning: no await in between
        return web.json_response({"name": write.name, "action": write.action, "generation": write.generation,
                                  "changes": write.note})


def rollout_json(status: RolloutStatus) -> dict[str, Any]:
    """GET /v1/services/{name}/rollout: RolloutStatus.to_json with its slot count named `settled`, and exit_code
    (null while the rollout goes on; 0 completed; 1 paused, rolled back or failed)."""
    body = status.to_json()
    body["settled"] = body.pop("updated")
    body["exit_code"] = status.exit_code
    return body


def _expect(request: web.Request, body: dict[str, Any]) -> int | None:
    """The generation the caller read: the body's `expect`, else an If-Match header; None: whatever is current."""
    if "expect" in body:
        return desired.parse_generation(body["expect"], "expect")
    return desired.parse_generation(request.headers.get("If-Match"), "If-Match")


class NodeRoutes:
    """/v1/nodes: members with their observed state; labels and drain are desired state (node.nodes)."""

    def __init__(self, agent: AgentView) -> None:
        self._agent = agent

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_get("/v1/nodes", self.list)
        router.add_get("/v1/nodes/{node}", self.inspect)
        router.add_post("/v1/nodes/{node}/labels", self.label)
        router.add_post("/v1/nodes/{node}/drain", self.drain)
        router.add_post("/v1/nodes/{node}/activate", self.activate)

    async def list(self, _: web.Request) -> web.Response:
        agent = self._agent
        return web.json_response(views.nodes(agent.members(), agent.statuses(), agent.node_settings()))

    async def inspect(self, request: web.Request) -> web.Response:
        member = nodes.resolve(self._agent.members(), request.match_info["node"])
        body = self._detail(member.node)
        if member.node == self._agent.node_id:  # only this host's table can be read from here
            body["policy_counters"] = await self._agent.policy_counters()
        return web.json_response(body)

    async def label(self, request: web.Request) -> web.Response:
        member = nodes.resolve(self._agent.members(), request.match_info["node"])
        body = await _json_object(request)
        items = body.get("labels")
        if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
            raise InvalidRequest("labels", 'the body must be {"labels": ["KEY=VALUE" (set) or "KEY-" (remove), ...]}')
        sets, removes = nodes.parse_label_changes(items)
        self._commit(nodes.plan_labels(member.node, self._record(member.node), sets, removes))
        return web.json_response(self._detail(member.node))

    async def drain(self, request: web.Request) -> web.Response:
        return self._availability(request, nodes.DRAIN)

    async def activate(self, request: web.Request) -> web.Response:
        return self._availability(request, nodes.ACTIVE)

    def _availability(self, request: web.Request, availability: str) -> web.Response:
        member = nodes.resolve(self._agent.members(), request.match_info["node"])
        self._commit(nodes.plan_availability(member.node, self._record(member.node), availability))
        return web.json_response(self._detail(member.node))

    def _record(self, node_id: str) -> Record | None:
        return self._agent.store.get(nodes.node_key(node_id))

    def _commit(self, write: nodes.NodeWrite | None) -> None:
        if write is not None:  # planned and written with no await in between
            self._agent.write(write.key, write.payload, note=write.note, expect=write.expect)

    def _detail(self, node_id: str) -> dict[str, Any]:
        agent = self._agent
        member = next(m for m in agent.members() if m.node == node_id)
        return views.node_detail(member, agent.statuses().get(node_id), agent.node_settings().get(node_id,
                                                                                                  NodeSettings()))


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise InvalidRequest("body", "the body must be a JSON object")
    return body


async def _optional_object(request: web.Request) -> dict[str, Any]:
    """A JSON object body, or {} when there is no body at all."""
    if not request.body_exists:
        return {}
    return await _json_object(request)


def _loopback_beside(host: str) -> str | None:
    """The loopback address of `host`'s family, or None when `host` is loopback already or every address."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # a name, not an address: leave it as it is
        return None
    if address.is_loopback or address.is_unspecified:
        return None
    return "127.0.0.1" if address.version == 4 else "::1"


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
    """The API on its address and, when that is a specific address of another interface, on the host's loopback
    too (same port): the CLI's default (http://127.0.0.1:7947) then reaches the node's own agent on every host,
    and `shoal join-token` works there without --host. Loopback adds no exposure beyond the host."""

    def __init__(self, agent: AgentView, host: str, port: int) -> None:
        self._runner = web.AppRunner(build_app(agent), access_log=None)
        self._host, self._port = host, port

    async def start(self) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        loopback = _loopback_beside(self._host)
        if loopback is None:
            return
        try:
            await web.TCPSite(self._runner, loopback, self._port).start()
        except OSError as exc:  # another agent on this host holds it: its own API answers there instead
            log.warning("API not on loopback too; the CLI needs --host here", extra={"fields": {
                "address": f"{loopback}:{self._port}", "error": exc.strerror or str(exc)}})

    async def close(self) -> None:
        await self._runner.cleanup()
