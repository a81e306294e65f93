"""/v1/services through aiohttp's test client on loopback, over a fake agent holding a real store: the SPEC
shapes, 400 naming the field, 409 for a stale generation, 404, 413 for a 2 MiB body, and the OpenAPI document."""

from __future__ import annotations

import io
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gossip.entry import Record
from gossip.errors import PersistError
from gossip.store import MemoryBackend, Store
from node.openapi import OPENAPI
from tests.unit.desired.fakes import OTHER, START_MS, FakeAgent, call, with_client

STACK = b"services:\n  web:\n    image: reg/web:1\n    deploy: {replicas: 2}\n  api:\n    image: reg/api:1\n"


def applied(agent: FakeAgent, body: bytes = STACK, query: str = "") -> tuple[int, Any]:
    return call(agent, "POST", f"/v1/services{query}", data=body)


def test_apply_answers_each_service_action_generation_and_changes() -> None:
    agent = FakeAgent()
    status, body = applied(agent)
    assert status == 200
    assert body == {"services": [
        {"name": "api", "action": "created", "generation": 1, "changes": "created (image reg/api:1, 1 replica)"},
        {"name": "web", "action": "created", "generation": 1, "changes": "created (image reg/web:1, 2 replicas)"}],
        "warnings": []}
    status, body = applied(agent, STACK.replace(b"web:1", b"web:2"))
    assert [(s["name"], s["action"], s["generation"]) for s in body["services"]] == [
        ("api", "unchanged", 1), ("web", "updated", 2)]
    assert body["services"][1]["changes"] == "image reg/web:1 -> reg/web:2"


def test_apply_takes_json_and_returns_warnings_for_ignored_keys() -> None:
    status, body = applied(FakeAgent(), b'{"services": {"web": {"image": "x:1", "container_name": "w1"}}}')
    assert status == 200
    assert [w["field"] for w in body["warnings"]] == ["services.web.container_name"]


def test_an_invalid_manifest_is_400_naming_the_field_and_writes_nothing() -> None:
    agent = FakeAgent()
    status, body = applied(agent, STACK + b"    deploy: {replicas: -3}\n")
    assert status == 400
    assert body["error"]["code"] == "invalid_manifest"
    assert body["error"]["field"] == "services.api.deploy.replicas"
    assert "-3" in body["error"]["message"]
    assert agent.writes == []


def test_a_port_another_service_publishes_is_400_port_taken_and_writes_nothing() -> None:
    agent = FakeAgent()
    assert applied(agent, b"services:\n  web:\n    image: reg/web:1\n    ports: ['8080:80']\n")[0] == 200
    before = len(agent.writes)
    status, body = applied(agent, b"services:\n  api:\n    image: reg/api:1\n    ports: ['9090:90', '8080:80']\n")
    assert status == 400
    assert body["error"]["code"] == "port_taken"
    assert body["error"]["field"] == "services.api.ports"
    assert "port 8080 is already published by service web" in body["error"]["message"]
    assert len(agent.writes) == before


def test_a_port_moves_between_services_in_one_manifest_or_after_a_removal() -> None:
    agent = FakeAgent()
    applied(agent, b"services:\n  web:\n    image: reg/web:1\n    ports: ['8080:80']\n")
    moved = b"services:\n  web:\n    image: reg/web:1\n  api:\n    image: reg/api:1\n    ports: ['8080:80']\n"
    status, body = applied(agent, moved)
    assert status == 200, body
    assert applied(agent, moved)[0] == 200  # the service itself re-applied keeps its own port
    assert call(agent, "DELETE", "/v1/services/api")[0] == 200
    assert applied(agent, b"services:\n  web:\n    image: reg/web:1\n    ports: ['8080:80']\n")[0] == 200


def test_a_stale_expectation_is_409_naming_the_service_and_the_holder() -> None:
    agent = FakeAgent()
    applied(agent)
    applied(agent, STACK.replace(b"web:1", b"web:2"))
    status, body = applied(agent, STACK.replace(b"web:1", b"web:3"), "?expect=web:1&expect=api:1")
    assert status == 409
    assert body["error"]["code"] == "conflict"
    assert body["error"]["field"] == "services.web"
    assert "expected generation 1, the cluster holds 2 (written by n1" in body["error"]["message"]
    assert body["error"]["message"].endswith("re-read and apply again")
    assert len(agent.writes) == 3


def test_expect_zero_refuses_to_overwrite_an_existing_service() -> None:
    agent = FakeAgent()
    applied(agent)
    status, body = applied(agent, STACK.replace(b"web:1", b"web:2"), "?expect=web:0")
    assert (status, body["error"]["field"]) == (409, "services.web")


def test_a_malformed_expectation_is_400_naming_expect() -> None:
    status, body = applied(FakeAgent(), STACK, "?expect=web")
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, "invalid_request", "expect")


@pytest.mark.parametrize("chunked", [False, True])
def test_a_two_mib_body_is_413_at_once(chunked: bool) -> None:
    payload = b"x" * (2 << 20)

    async def blocks() -> Any:
        for i in range(0, len(payload), 65536):
            yield payload[i:i + 65536]

    async def session(client: TestClient[Any, Any]) -> tuple[int, Any]:
        async with client.post("/v1/services", data=blocks() if chunked else io.BytesIO(payload)) as response:
            return response.status, await response.json()

    status, body = with_client(FakeAgent(), session)  # with_client fails the test after 20 s
    assert status == 413 and body["error"]["code"] == "too_large"


def test_list_is_sorted_and_shaped_as_in_the_spec() -> None:
    agent = FakeAgent()
    applied(agent, STACK + b"  agent:\n    image: x:1\n    deploy: {mode: global}\n")
    status, body = call(agent, "GET", "/v1/services")
    assert status == 200
    assert body == [
        {"name": "agent", "mode": "global", "replicas": None, "running": 0, "ready": 0, "image": "x:1",
         "generation": 1},
        {"name": "api", "mode": "replicated", "replicas": 1, "running": 0, "ready": 0, "image": "reg/api:1",
         "generation": 1},
        {"name": "web", "mode": "replicated", "replicas": 2, "running": 0, "ready": 0, "image": "reg/web:1",
         "generation": 1}]


def test_show_returns_spec_author_times_and_history_with_a_lost_edit() -> None:
    agent = FakeAgent()
    applied(agent)
    applied(agent, STACK.replace(b"web:1", b"web:2"))
    record = agent.store.get("service/web")
    assert record is not None
    agent.remote_write("service/web", 2, record.entry.payload.replace(b"web:2", b"web:9"), "image -> 9",
                       wall_ms=START_MS + 60_000)
    agent.received["service/web"] = 1_767_225_700.5
    status, body = call(agent, "GET", "/v1/services/web")
    assert status == 200
    assert {k: body[k] for k in ("name", "generation", "mode", "replicas", "image", "updated_by", "updated_at",
                                 "received_at")} == {
        "name": "web", "generation": 2, "mode": "replicated", "replicas": 2, "image": "reg/web:9",
        "updated_by": {"id": OTHER, "name": "n2"}, "updated_at": "2026-01-01T00:01:00.000Z",
        "received_at": 1_767_225_700.5}
    assert body["spec"]["image"] == "reg/web:9" and body["spec"]["deploy"]["replicas"] == 2
    assert [(h["generation"], h["author"]["name"], h["outcome"], h["deleted"]) for h in body["history"]] == [
        (2, "n2", "current", False), (2, "n1", "lost", False), (1, "n1", "superseded", False)]
    assert body["history"][1]["change"] == "image reg/web:1 -> reg/web:2"


def test_show_of_an_unknown_or_deleted_service_is_404_saying_which() -> None:
    agent = FakeAgent()
    assert call(agent, "GET", "/v1/services/web") == (
        404, {"error": {"code": "not_found", "message": "service web does not exist"}})
    applied(agent)
    assert call(agent, "DELETE", "/v1/services/web") == (200, {"name": "web", "generation": 2, "deleted": True})
    status, body = call(agent, "GET", "/v1/services/web")
    assert status == 404
    assert body["error"]["message"].startswith("service web was deleted at generation 2 (by n1 at 2026-")
    assert [s["name"] for s in call(agent, "GET", "/v1/services")[1]] == ["api"]


def test_delete_honours_if_match() -> None:
    agent = FakeAgent()
    applied(agent)
    status, body = call(agent, "DELETE", "/v1/services/web", headers={"If-Match": '"7"'})
    assert (status, body["error"]["code"]) == (409, "conflict")
    assert call(agent, "DELETE", "/v1/services/web", headers={"If-Match": "1"})[0] == 200
    assert call(agent, "DELETE", "/v1/services/web")[0] == 404
    status, body = call(agent, "DELETE", "/v1/services/api", headers={"If-Match": "one"})
    assert (status, body["error"]["field"]) == (400, "If-Match")


def test_scale_returns_the_updated_summary() -> None:
    agent = FakeAgent()
    applied(agent)
    status, body = call(agent, "POST", "/v1/services/web/scale", json={"replicas": 5})
    assert status == 200
    assert body == {"name": "web", "mode": "replicated", "replicas": 5, "running": 0, "ready": 0,
                    "image": "reg/web:1", "generation": 2}
    status, body = call(agent, "POST", "/v1/services/web/scale", json={"replicas": 6, "generation": 1})
    assert (status, body["error"]["code"]) == (409, "conflict")


@pytest.mark.parametrize(("body", "field"), [({"replicas": -1}, "services.web.deploy.replicas"),
                                             ({"replicas": "3"}, "replicas"), ({}, "replicas"),
                                             ({"replicas": 3, "generation": "x"}, "generation"), ([3], "body")])
def test_scale_with_a_bad_body_is_400_naming_the_field(body: Any, field: str) -> None:
    agent = FakeAgent()
    applied(agent)
    status, answer = call(agent, "POST", "/v1/services/web/scale", json=body)
    assert (status, answer["error"]["field"]) == (400, field)


def test_scale_of_a_global_or_missing_service_is_refused() -> None:
    agent = FakeAgent()
    applied(agent, b"services:\n  agent:\n    image: x:1\n    deploy: {mode: global}\n")
    status, body = call(agent, "POST", "/v1/services/agent/scale", json={"replicas": 3})
    assert (status, body["error"]["field"]) == (400, "services.agent.deploy.replicas")
    assert "global" in body["error"]["message"]
    assert call(agent, "POST", "/v1/services/nope/scale", json={"replicas": 3})[0] == 404


def test_an_unreadable_stored_spec_is_left_out_of_the_list_and_500_when_asked_for() -> None:
    agent = FakeAgent()
    applied(agent)
    agent.remote_write("service/api", 2, b'{"image": "x:1", "future": true}', "v2 format", wall_ms=START_MS)
    assert [s["name"] for s in call(agent, "GET", "/v1/services")[1]] == ["web"]
    status, body = call(agent, "GET", "/v1/services/api")
    assert (status, body["error"]["code"]) == (500, "unreadable_spec")
    assert "service/api generation 2" in body["error"]["message"]


def test_openapi_describes_every_route_the_app_serves() -> None:
    async def session(client: TestClient[Any, Any]) -> set[tuple[str, str]]:
        routes = {(r.method.lower(), r.resource.canonical) for r in client.app.router.routes()  # type: ignore[union-attr]
                  if r.resource is not None and r.method != "HEAD"}
        async with client.get("/v1/openapi.json") as response:
            assert await response.json() == OPENAPI
        return routes

    served = with_client(FakeAgent(), session)
    documented = {(method, path) for path, item in OPENAPI["paths"].items() for method in item
                  if method != "parameters"}
    assert served == documented
    assert OPENAPI["openapi"].startswith("3.0.")
    assert "/v1/services/{name}/scale" in OPENAPI["paths"]


class FullDisk(MemoryBackend):
    def save_record(self, record: Record) -> None:
        raise PersistError("store.db: database or disk is full")


def test_a_write_the_disk_refuses_is_503_and_nothing_is_stored() -> None:
    agent = FakeAgent()
    agent.store = Store(FullDisk())
    status, body = applied(agent)
    assert status == 503 and body["error"]["code"] == "store_unavailable"
    assert "disk is full" in body["error"]["message"]
    assert list(agent.store.scan("service/")) == []
