"""/v1/services/{name}/rollout, /rollback, /canary(/promote|/abort), /switch through aiohttp's test client over a
fake agent holding a real store: the status the gate assesses from placed slots and live reports, and what each
write stores (payload, generation), with 400 naming the field, 404 and 409 for a stale generation."""

from __future__ import annotations

import json

import pytest

from node.openapi import OPENAPI
from tests.unit.desired.fakes import FakeAgent, call
from tests.unit.desired.rollouts import CANARY, SIDES, put, record, report, text

FIELDS = {"service", "generation", "version", "phase", "settled", "failed", "total", "batch", "batches",
          "rollback_of", "message", "ended", "exit_code"}


def updated(image: str = "2", update: str = "{}") -> FakeAgent:
    """web created at reg/web:1, then updated to `image` (generation 2)."""
    agent = FakeAgent()
    put(agent, "1", update)
    put(agent, image, update)
    return agent


def test_a_completed_rollout_exits_0() -> None:
    agent = updated()
    report(agent, {0: ("2", "running", "settled"), 1: ("2", "running", "settled")})
    status, body = call(agent, "GET", "/v1/services/web/rollout")
    assert status == 200 and set(body) == FIELDS
    assert (body["phase"], body["settled"], body["total"], body["generation"]) == ("completed", 2, 2, 2)
    assert (body["ended"], body["exit_code"], body["batch"], body["rollback_of"]) == (True, 0, None, None)


def test_an_updating_rollout_shows_its_batch_and_no_exit_code() -> None:
    agent = updated()
    report(agent, {0: ("2", "running", "settled"), 1: ("1", "running", "settled")})
    body = call(agent, "GET", "/v1/services/web/rollout")[1]
    assert (body["phase"], body["settled"], body["total"], body["batch"], body["batches"]) == ("updating", 1, 2, 1, 2)
    assert (body["ended"], body["exit_code"]) == (False, None)


def test_a_paused_rollout_exits_1_and_says_why() -> None:
    agent = updated(update="{failure_action: pause}")
    report(agent, {0: ("2", "exited", "failed"), 1: ("1", "running", "settled")})
    body = call(agent, "GET", "/v1/services/web/rollout")[1]
    assert (body["phase"], body["failed"], body["exit_code"]) == ("paused", 1, 1)
    assert body["message"].startswith("1 of 2 replicas failed")


def test_a_failing_rollout_under_rollback_is_rolling_back_and_not_ended() -> None:
    agent = updated(update="{failure_action: rollback}")
    report(agent, {0: ("2", "exited", "failed"), 1: ("1", "running", "settled")})
    body = call(agent, "GET", "/v1/services/web/rollout")[1]
    assert (body["phase"], body["exit_code"]) == ("rolling-back", None)
    assert body["message"].endswith("rolling back to the spec of generation 1")


def test_rollout_of_a_missing_service_is_404() -> None:
    assert call(FakeAgent(), "GET", "/v1/services/nope/rollout")[0] == 404


def test_rollback_writes_the_previous_spec_as_the_next_generation() -> None:
    agent = updated()
    status, body = call(agent, "POST", "/v1/services/web/rollback")
    assert status == 200
    assert body == {"name": "web", "action": "updated", "generation": 3,
                    "changes": "rollback of generation 2 to the spec of generation 1 (requested by hand)"}
    stored = json.loads(record(agent).entry.payload)
    assert stored["spec"]["image"] == "reg/web:1"
    assert (stored["previous"]["generation"], stored["previous"]["spec"]["image"]) == (2, "reg/web:2")
    assert call(agent, "GET", "/v1/services/web/rollout")[1]["rollback_of"] == 2


def test_rollback_with_a_stale_expectation_is_409_and_writes_nothing() -> None:
    agent = updated()
    status, body = call(agent, "POST", "/v1/services/web/rollback", json={"expect": 1})
    assert (status, body["error"]["code"], body["error"]["field"]) == (409, "conflict", "services.web")
    assert record(agent).entry.generation == 2
    assert call(agent, "POST", "/v1/services/web/rollback", json={"expect": 2})[1]["generation"] == 3
    assert call(agent, "POST", "/v1/services/web/rollback", headers={"If-Match": '"2"'})[0] == 409


def test_rollback_without_a_previous_spec_is_400_and_says_so() -> None:
    agent = FakeAgent()
    put(agent)
    status, body = call(agent, "POST", "/v1/services/web/rollback")
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, "no_previous_spec", "services.web")
    assert "no previous spec to roll back to" in body["error"]["message"]
    assert call(agent, "POST", "/v1/services/nope/rollback")[0] == 404


def test_promote_and_abort_write_the_next_generation() -> None:
    agent = FakeAgent()
    put(agent, extra=CANARY)
    status, body = call(agent, "POST", "/v1/services/web/canary/promote")
    assert (status, body["generation"], body["changes"]) == (200, 2, "image reg/web:1 -> reg/web:9; canary removed")
    assert json.loads(record(agent).entry.payload)["spec"]["image"] == "reg/web:9"
    status, body = call(agent, "POST", "/v1/services/web/canary/abort")
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, "not_applicable",
                                                                       "services.web.x-shoal.canary")
    put(agent, "9", extra=CANARY)
    status, body = call(agent, "POST", "/v1/services/web/canary/abort", json={"expect": 3})
    assert (status, body["generation"], body["changes"]) == (200, 4, "canary removed")
    assert "x-shoal" not in json.loads(record(agent).entry.payload)["spec"]


def test_canary_weight_sets_the_weight_and_names_a_bad_one() -> None:
    agent = FakeAgent()
    put(agent, extra=CANARY)
    status, body = call(agent, "POST", "/v1/services/web/canary", json={"weight": 25})
    assert (status, body["generation"], body["changes"]) == (200, 2, "canary changed")
    assert json.loads(record(agent).entry.payload)["x-shoal"]["canary"]["weight"] == 25.0
    for bad in ({"weight": 0}, {"weight": 101}, {"weight": "5"}, {}):
        status, body = call(agent, "POST", "/v1/services/web/canary", json=bad)
        assert (status, body["error"]["field"]) == (400, "weight")
    assert call(agent, "POST", "/v1/services/web/canary", json={"weight": 5, "expect": 1})[0] == 409


def test_switch_flips_the_live_side_or_sets_the_one_asked_for() -> None:
    agent = FakeAgent()
    put(agent, extra=SIDES)
    status, body = call(agent, "POST", "/v1/services/web/switch")
    assert (status, body["generation"], body["changes"]) == (200, 2, "blue_green active blue -> green")
    assert json.loads(record(agent).entry.payload)["x-shoal"]["blue_green"]["active"] == "green"
    status, body = call(agent, "POST", "/v1/services/web/switch", json={"to": "green"})
    assert (status, body["action"], body["generation"]) == (200, "unchanged", 2)
    status, body = call(agent, "POST", "/v1/services/web/switch", json={"to": "red"})
    assert (status, body["error"]["field"]) == (400, "to")
    status, body = call(agent, "POST", "/v1/services/web/switch", data=b"[1]")
    assert (status, body["error"]["field"]) == (400, "body")


def test_switch_without_sides_is_400_naming_blue_green() -> None:
    agent = FakeAgent()
    put(agent)
    status, body = call(agent, "POST", "/v1/services/web/switch")
    assert (status, body["error"]["field"]) == (400, "services.web.x-shoal.blue_green")


def test_a_service_with_both_a_canary_and_blue_green_is_refused_on_apply() -> None:
    both = text(extra="    x-shoal: {canary: {image: x, weight: 5}, blue_green: {image: y}}\n")
    status, body = call(FakeAgent(), "POST", "/v1/services", data=both.encode())
    assert (status, body["error"]["field"]) == (400, "services.web.x-shoal.blue_green")


@pytest.mark.parametrize("path", ["/rollout", "/rollback", "/canary", "/canary/promote", "/canary/abort", "/switch"])
def test_openapi_documents_the_rollout_routes(path: str) -> None:
    assert f"/v1/services/{{name}}{path}" in OPENAPI["paths"]


def test_show_reads_an_enveloped_record_as_its_current_spec() -> None:
    agent = updated()
    status, body = call(agent, "GET", "/v1/services/web")
    assert (status, body["generation"], body["image"]) == (200, 2, "reg/web:2")
    assert body["spec"]["image"] == "reg/web:2" and "previous" not in body["spec"]


def test_a_variant_lists_its_own_replicas_while_its_service_derives_it() -> None:
    from node.observed import NodeStatus, ReplicaReport, encode_status, status_key
    from tests.unit.desired.fakes import OTHER, START_MS
    agent = FakeAgent()
    put(agent, "1", extra=CANARY)
    canary = ReplicaReport("web.canary", 0, "running", image="reg/web:9", ready=True)
    stable = ReplicaReport("web", 1, "running", image="reg/web:1", ready=True)
    agent.remote_write(status_key(OTHER), 1, encode_status(NodeStatus("podman", (canary, stable))), "status",
                       wall_ms=START_MS, author=OTHER)
    status, rows = call(agent, "GET", "/v1/services/web.canary/replicas")
    assert status == 200 and [(r["service"], r["replica"], r["image"]) for r in rows] == [
        ("web.canary", 0, "reg/web:9")]
    assert call(agent, "GET", "/v1/services/web.green/replicas")[0] == 404  # web has no blue-green sides
    assert call(agent, "GET", "/v1/services/api.canary/replicas")[0] == 404
