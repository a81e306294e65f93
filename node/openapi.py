"""The API's OpenAPI 3.0 document (served at /v1/openapi.json): every route, its parameters and answers.

Data only; node/api.py serves it, and tests/unit/desired/test_api_services.py checks that it names every route.
"""

from __future__ import annotations

import json
from typing import Any

Schema = dict[str, Any]


def _obj(props: dict[str, Schema], required: bool = True, **extra: Any) -> Schema:
    return {"type": "object", "properties": props, **({"required": sorted(props)} if required else {}), **extra}


_STR: Schema = {"type": "string"}
_INT: Schema = {"type": "integer"}
_GEN: Schema = {"type": "integer", "minimum": 0}
_ERROR = _obj({"error": _obj({"code": _STR, "message": _STR, "field": _STR}, required=False)})
_MEMBER = _obj({"name": _STR, "id": _STR, "address": _STR,
                "status": {"type": "string", "enum": ["alive", "suspect", "dead", "left"]},
                "incarnation": _INT, "labels": {"type": "object", "additionalProperties": _STR}})
_AUTHOR = _obj({"id": _STR, "name": _STR})
_SUMMARY = _obj({"name": _STR, "mode": {"type": "string", "enum": ["replicated", "global"]},
                 "replicas": {"type": "integer", "nullable": True, "description": "null for a global service"},
                 "running": _INT, "ready": _INT, "image": _STR, "generation": _INT},
                description="running/ready: distinct replica slots running (and ready) on live nodes, from the "
                            "observed state every node publishes")
_HISTORY = _obj({"generation": _INT, "author": _AUTHOR, "at": {"type": "string", "format": "date-time"},
                 "change": _STR, "deleted": {"type": "boolean"},
                 "outcome": {"type": "string", "enum": ["current", "superseded", "lost"],
                             "description": "lost: another write of the same generation won this conflict"}})
_DETAIL = _obj({"name": _STR, "generation": _INT, "mode": _STR, "replicas": {"type": "integer", "nullable": True},
                "image": _STR, "spec": {"type": "object", "description": "the canonical Compose service body"},
                "updated_by": _AUTHOR, "updated_at": {"type": "string", "format": "date-time"},
                "received_at": {"type": "number", "nullable": True,
                                "description": "epoch seconds when this node first held this generation; null if "
                                               "it was loaded from the data dir at start"},
                "history": {"type": "array", "items": _HISTORY, "description": "newest first"}})
_APPLIED = _obj({"services": {"type": "array", "items": _obj({
                    "name": _STR, "action": {"type": "string", "enum": ["created", "updated", "unchanged"]},
                    "generation": _INT, "changes": _STR})},
                 "warnings": {"type": "array", "items": _obj({"field": _STR, "message": _STR})}})
_WRITTEN = _obj({"name": _STR, "action": {"type": "string", "enum": ["updated", "unchanged"]},
                 "generation": {**_INT, "description": "the service's generation after the write"},
                 "changes": {**_STR, "description": "the history note of the new generation"}})
_ROLLOUT = _obj({
    "service": _STR, "generation": {**_INT, "description": "the newest generation the answering node holds"},
    "version": {**_STR, "description": "that generation's replica version"},
    "phase": {"type": "string", "enum": ["updating", "completed", "paused", "rolling-back", "rolled-back", "failed"]},
    "settled": {**_INT, "description": "slots running this version, ready and settled"},
    "failed": {**_INT, "description": "slots whose replica of this version failed"},
    "total": {**_INT, "description": "the service's placed slots"},
    "batch": {"type": "integer", "nullable": True, "description": "0-based batch now allowed to update; null once "
                                                                  "every batch is through"},
    "batches": _INT, "rollback_of": {"type": "integer", "nullable": True,
                                     "description": "the generation this one rolls back"},
    "message": _STR, "ended": {"type": "boolean", "description": "no progress comes without an operator (or a "
                                                                 "rollback generation, which follows)"},
    "exit_code": {"type": "integer", "nullable": True, "enum": [0, 1, None],
                  "description": "shoal rollout status's exit code: 0 completed; 1 paused, rolled back or failed; "
                                 "null while going on"}})
_DELETED = _obj({"name": _STR, "generation": _INT, "deleted": {"type": "boolean"}})

_REPLICA = _obj({"service": _STR, "replica": _INT, "node": {"type": "string", "description": "node name; empty "
                                                                    "when no eligible node can take the slot"},
                 "container": {"type": "string", "description": "podman container id on that node; empty while "
                                                                "pending"},
                 "state": {"type": "string",
                           "enum": ["pending", "starting", "running", "exited", "failed", "removing"]},
                 "image": _STR, "ready": {"type": "boolean"}, "restarts": _INT, "address": _STR,
                 "since": {"type": "number", "description": "epoch seconds of the state's start"},
                 "generation": _INT, "error": _STR,
                 "verdict": {"type": "string", "enum": ["", "watching", "settled", "failed"],
                             "description": "the owner's rollout verdict on this replica; empty before it judged"}})
_NODE = _obj({"name": _STR, "id": _STR, "address": _STR, "status": _STR,
              "availability": {"type": "string", "enum": ["active", "drain"]},
              "runtime": {"type": "string", "description": "podman, none, or unknown before its first status"},
              "labels": {"type": "object", "additionalProperties": _STR,
                         "description": "agent --label flags, overridden by `shoal node label`"},
              "replicas": {"type": "integer", "description": "replicas running there"},
              "digest": {"type": "string", "description": "digest of that node's placement inputs: nodes that "
                                                          "disagree see different members, labels or specs"}})
_NODE_DETAIL = {**_NODE, "properties": {**_NODE["properties"], "agent_labels": {"type": "object"},
                                        "node_labels": {"type": "object"}, "incarnation": _INT, "subnet": _STR,
                                        "running": {"type": "array", "items": _REPLICA},
                                        "policy_counters": {
                                            "type": "array", "description": "only when the answering node is "
                                            "inspected: packets and bytes per network-policy rule of its table",
                                            "items": _obj({"chain": _STR, "rule": _STR, "packets": _INT,
                                                           "bytes": _INT})}}}
_NODE_NAME = {"name": "node", "in": "path", "required": True, "schema": _STR,
              "description": "node name, id, or an id prefix of at least 6 characters"}

_NAME = {"name": "name", "in": "path", "required": True, "schema": _STR}
_EXPECT = {**_GEN, "description": "the generation the caller read (like If-Match); 409 if the service moved on"}


def _write_body(props: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    schema = _obj({**props, "expect": _EXPECT}, required=False)
    if required:
        schema["required"] = list(required)
    return {"required": bool(required), "content": {"application/json": {"schema": schema}}}
_IF_MATCH = {"name": "If-Match", "in": "header", "required": False, "schema": _STR,
             "description": "the generation the caller read; 409 if the service has moved on"}


def _json(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, schema: Schema, *, errors: tuple[int, ...] = (), **extra: Any) -> Schema:
    reasons = {400: "invalid input (names the field)", 404: "no such service or node",
               409: "conflict: a stale generation", 413: "body larger than 1 MiB",
               500: "the stored spec cannot be read by this node",
               503: "store_unavailable: the node could not persist the write; nothing was written"}
    codes = (*errors, 503) if 409 in errors else errors  # every write (409 on a stale one) may fail to persist
    responses = {"200": _json("OK", schema), **{str(c): _json(reasons[c], _ERROR) for c in codes}}
    return {"summary": summary, "responses": responses, **extra}


OPENAPI: dict[str, Any] = json.loads(json.dumps({
    "openapi": "3.0.3",
    "info": {"title": "Shoal agent API", "version": "1",
             "description": "No authentication until the RBAC issue: keep the API on loopback or a management "
                            "network. Errors are {\"error\": {\"code\", \"message\", \"field\"}}."},
    "paths": {
        "/v1/health": {"get": _op("Liveness of the agent", _obj({"status": _STR, "node": _STR}))},
        "/v1/members": {"get": _op("Cluster members as this node sees them", {"type": "array", "items": _MEMBER})},
        "/v1/join-token": {"get": _op("The cluster's join token (callers on the node's own host only)",
                                      _obj({"token": _STR}))},
        "/v1/agent": {"get": _op("This agent's counters (datagrams, drops by reason, push-pulls)",
                                 {"type": "object"})},
        "/v1/openapi.json": {"get": _op("This document", {"type": "object"})},
        "/v1/services": {
            "get": _op("The cluster's services (desired state as this node holds it), sorted by name",
                       {"type": "array", "items": _SUMMARY}),
            "post": _op("Apply a manifest: create or update each of its services, all or nothing",
                        _APPLIED, errors=(400, 409, 413), parameters=[{
                            "name": "expect", "in": "query", "required": False, "style": "form", "explode": True,
                            "schema": {"type": "array", "items": {"type": "string", "pattern": "^[^:]+:[0-9]+$"}},
                            "description": "NAME:GENERATION the caller read (0: must not exist); repeatable"}],
                        requestBody={"required": True, "description": "a Compose file, YAML or JSON, at most 1 MiB",
                                     "content": {"application/yaml": {"schema": _STR},
                                                 "application/json": {"schema": {"type": "object"}}}}),
        },
        "/v1/services/{name}": {
            "parameters": [_NAME],
            "get": _op("One service: spec, author, history (lost conflicts included)", _DETAIL, errors=(404, 500)),
            "delete": _op("Delete a service", _DELETED, errors=(400, 404, 409), parameters=[_IF_MATCH]),
        },
        "/v1/services/{name}/scale": {
            "parameters": [_NAME],
            "post": _op("Set a replicated service's replica count", _SUMMARY, errors=(400, 404, 409, 500),
                        parameters=[_IF_MATCH], requestBody={"required": True, "content": {"application/json": {
                            "schema": {**_obj({"replicas": _GEN, "generation": {
                                **_GEN, "description": "the generation the caller read (like If-Match)"}}),
                                "required": ["replicas"]}}}}),
        },
        "/v1/services/{name}/rollout": {
            "parameters": [_NAME],
            "get": _op("The rollout of the newest generation this node holds, on its view of the cluster",
                       _ROLLOUT, errors=(404, 500)),
        },
        "/v1/services/{name}/rollback": {
            "parameters": [_NAME],
            "post": _op("Write the previous spec back as the next generation (run again, it swaps back); 400 "
                        "no_previous_spec if the record carries none", _WRITTEN, errors=(400, 404, 409, 500),
                        parameters=[_IF_MATCH], requestBody=_write_body({})),
        },
        "/v1/services/{name}/canary": {
            "parameters": [_NAME],
            "post": _op("Set the canary's weight (percent of new connections; restarts nothing); 400 not_applicable "
                        "without a canary", _WRITTEN, errors=(400, 404, 409, 500), parameters=[_IF_MATCH],
                        requestBody=_write_body({"weight": {"type": "number", "exclusiveMinimum": True,
                                                            "minimum": 0, "maximum": 100}}, ("weight",))),
        },
        "/v1/services/{name}/canary/promote": {
            "parameters": [_NAME],
            "post": _op("The canary's image, command and environment become the service's; the canary goes",
                        _WRITTEN, errors=(400, 404, 409, 500), parameters=[_IF_MATCH], requestBody=_write_body({})),
        },
        "/v1/services/{name}/canary/abort": {
            "parameters": [_NAME],
            "post": _op("The canary goes; the stable replicas are untouched", _WRITTEN, errors=(400, 404, 409, 500),
                        parameters=[_IF_MATCH], requestBody=_write_body({})),
        },
        "/v1/services/{name}/switch": {
            "parameters": [_NAME],
            "post": _op("Blue-green: make `to` (default: the other side) the live side; restarts nothing",
                        _WRITTEN, errors=(400, 404, 409, 500), parameters=[_IF_MATCH],
                        requestBody=_write_body({"to": {"type": "string", "enum": ["blue", "green"]}})),
        },
        "/v1/services/{name}/replicas": {
            "parameters": [_NAME],
            "get": _op("Where each replica runs (observed state, cluster-wide), plus slots not yet reported",
                       {"type": "array", "items": _REPLICA}, errors=(404,)),
        },
        "/v1/nodes": {"get": _op("Every member with availability, runtime, labels, running replicas, placement "
                                 "digest", {"type": "array", "items": _NODE})},
        "/v1/nodes/{node}": {"parameters": [_NODE_NAME],
                             "get": _op("One node in detail", _NODE_DETAIL, errors=(404,))},
        "/v1/nodes/{node}/labels": {
            "parameters": [_NODE_NAME],
            "post": _op("Set (KEY=VALUE) or remove (KEY-) node labels", _NODE_DETAIL, errors=(400, 404, 409),
                        requestBody={"required": True, "content": {"application/json": {"schema": _obj({
                            "labels": {"type": "array", "items": _STR}})}}}),
        },
        "/v1/nodes/{node}/drain": {"parameters": [_NODE_NAME], "post": _op(
            "Drain: placement gives the node no replicas (they move off it)", _NODE_DETAIL, errors=(404, 409))},
        "/v1/nodes/{node}/activate": {"parameters": [_NODE_NAME], "post": _op(
            "Let placement use the node again", _NODE_DETAIL, errors=(404, 409))},
    },
}))
