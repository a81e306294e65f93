"""node.desired for rollouts: the previous spec travels in the service record (an envelope beside the spec, carried
forward by changes that keep the replicas' version, dropped when both would not fit an entry), the Revision a view
gives the gate, and the planned writes of rollback, canary promote/abort/weight and the blue-green switch."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from gossip.entry import MAX_NOTE_LEN, MAX_PAYLOAD_BYTES, Record
from gossip.store import Conflict
from node import desired, rollout_writes
from node.desired import InvalidRequest, Unreadable, Write, service_key
from node.manifest import ServiceSpec, UpdateConfig, parse_manifest, spec_bytes, spec_to_payload
from node.replica import version
from node.rollout.model import Previous
from node.rollout.rollback import rollback
from tests.unit.desired.fakes import OTHER, START_MS, FakeAgent

WEB = "services:\n  web:\n    image: reg/web:{image}\n    deploy: {{replicas: {replicas}}}\n{extra}"


def web(image: str = "1", replicas: int = 2, extra: str = "") -> ServiceSpec:
    return parse_manifest(WEB.format(image=image, replicas=replicas, extra=extra)).services[0]


def put(agent: FakeAgent, spec: ServiceSpec) -> Write:
    manifest = parse_manifest(json.dumps({"services": {spec.name: spec_to_payload(spec)}}))
    writes = desired.plan_apply(manifest, {spec.name: agent.store.get(service_key(spec.name))})
    desired.commit(writes, agent.write)
    return writes[0]


def record(agent: FakeAgent, name: str = "web") -> Record:
    found = agent.store.get(service_key(name))
    assert found is not None
    return found


def view(agent: FakeAgent, name: str = "web") -> desired.ServiceView:
    return desired.existing(name, record(agent, name))


def commit(agent: FakeAgent, write: Write) -> None:
    desired.commit([write], agent.write)


# ---- the envelope ----------------------------------------------------------------------------------------


def test_a_create_stores_the_bare_spec_and_has_no_previous() -> None:
    agent = FakeAgent()
    put(agent, web())
    assert record(agent).entry.payload == spec_bytes(web())
    assert view(agent).previous is None


def test_a_new_version_stores_the_replaced_spec_and_its_generation() -> None:
    agent = FakeAgent()
    put(agent, web("1"))
    write = put(agent, web("2"))
    assert (write.action, write.generation, write.note) == ("updated", 2, "image reg/web:1 -> reg/web:2")
    body = json.loads(record(agent).entry.payload)
    assert body == {"spec": spec_to_payload(web("2")), "previous": {"generation": 1, "spec": spec_to_payload(web("1"))}}
    assert record(agent).entry.payload == json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    assert (view(agent).spec, view(agent).previous) == (web("2"), Previous(1, web("1")))


@pytest.mark.parametrize("change", [
    web("2", replicas=5),
    web("2", extra="    x-shoal: {canary: {image: reg/web:3, weight: 5}}\n"),
    replace(web("2"), deploy=replace(web("2").deploy, update_config=UpdateConfig(parallelism=2))),
])
def test_a_change_that_keeps_the_version_carries_the_previous_forward(change: ServiceSpec) -> None:
    agent = FakeAgent()
    put(agent, web("1"))
    put(agent, web("2"))
    write = put(agent, change)
    assert (write.action, write.generation) == ("updated", 3)
    assert view(agent).previous == Previous(1, web("1"))  # not generation 2, whose replicas are the same
    assert version(view(agent).spec) == version(web("2"))


def test_a_change_of_version_after_a_carried_previous_replaces_it() -> None:
    agent = FakeAgent()
    for spec in (web("1"), web("2"), web("2", replicas=4), web("3", replicas=4)):
        put(agent, spec)
    assert view(agent).previous == Previous(3, web("2", replicas=4))


def test_a_version_keeping_change_of_a_created_service_stays_bare() -> None:
    agent = FakeAgent()
    put(agent, web())
    put(agent, web(replicas=3))
    assert record(agent).entry.payload == spec_bytes(web(replicas=3)) and view(agent).previous is None


def test_an_identical_reapply_of_an_enveloped_record_writes_nothing() -> None:
    agent = FakeAgent()
    put(agent, web("1"))
    put(agent, web("2"))
    write = put(agent, web("2"))
    assert (write.action, write.generation, write.expect) == ("unchanged", 2, 2)
    assert len(agent.writes) == 2


def test_a_rollback_generation_reads_back_as_a_revision_of_what_it_rolls_back() -> None:
    agent = FakeAgent()
    put(agent, web("1"))
    put(agent, web("2"))
    first = desired.revision(view(agent))
    assert (first.spec, first.generation, first.previous, first.rollback_of) == (web("2"), 2, Previous(1, web("1")),
                                                                                 None)
    write = rollback(first)
    assert write is not None
    commit(agent, rollout_writes.plan_rollback_write(write, record(agent)))
    back = desired.revision(view(agent))
    assert (back.spec, back.generation, back.previous, back.rollback_of) == (web("1"), 3, Previous(2, web("2")), 2)
    assert back.pacing == web("1").deploy.rollback_config


def _enveloped(spec: dict[str, object], previous: object, **extra: object) -> bytes:
    return json.dumps({"spec": spec, "previous": previous, **extra}).encode()


@pytest.mark.parametrize(("payload", "reason"), [
    (_enveloped(spec_to_payload(web("2")), {"generation": 1, "spec": spec_to_payload(web("1"))}, extra=1),
     "exactly the keys previous, spec"),
    (json.dumps({"spec": spec_to_payload(web("2"))}).encode(), "exactly the keys previous, spec"),
    (_enveloped(spec_to_payload(web("2")), [1]), "previous must be an object"),
    (_enveloped(spec_to_payload(web("2")), {"generation": 1}), "previous must be an object"),
    (_enveloped(spec_to_payload(web("2")), {"generation": 5, "spec": spec_to_payload(web("1"))}),
     "previous.generation must be an integer from 1 to 4"),
    (_enveloped(spec_to_payload(web("2")), {"generation": True, "spec": spec_to_payload(web("1"))}),
     "previous.generation must be"),
    (_enveloped(spec_to_payload(web("2")), {"generation": 0, "spec": spec_to_payload(web("1"))}),
     "previous.generation must be"),
    (_enveloped(spec_to_payload(web("2")), {"generation": 1, "spec": {"image": "Bad Image"}}), "image"),
    (_enveloped({"image": "x", "restart": "always"}, {"generation": 1, "spec": spec_to_payload(web("1"))}),
     "restart"),
])
def test_a_malformed_envelope_is_unreadable(payload: bytes, reason: str) -> None:
    agent = FakeAgent()
    agent.remote_write("service/web", 5, payload, "from elsewhere", wall_ms=START_MS)
    with pytest.raises(Unreadable, match=reason):
        desired.read_service(record(agent))


def _sized(image: str, target: int) -> ServiceSpec:
    """web at `image` whose canonical payload is exactly `target` bytes (padded through one variable)."""
    base = web(image)
    full = tuple((f"PAD{i}", "x" * 4000) for i in range(target // 4000))
    pad = target - len(spec_bytes(replace(base, environment=(*full, ("PADZ", "")))))
    spec = replace(base, environment=(*full, ("PADZ", "x" * pad)))
    assert len(spec_bytes(spec)) == target
    return spec


def test_a_previous_that_would_not_fit_is_dropped_and_the_note_says_so() -> None:
    agent = FakeAgent()
    put(agent, _sized("1", 32_760))
    write = put(agent, _sized("2", 32_760))
    assert write.action == "updated" and write.payload == spec_bytes(_sized("2", 32_760))
    assert write.note.endswith("(previous spec not kept: with it the entry exceeds 64 KiB)")
    assert len(write.note) <= MAX_NOTE_LEN and view(agent).previous is None
    with pytest.raises(InvalidRequest) as refused:
        rollout_writes.plan_rollback("web", record(agent))
    assert refused.value.code == "no_previous_spec"


def test_two_large_specs_that_fit_keep_the_previous() -> None:
    agent = FakeAgent()
    put(agent, _sized("1", 30_000))
    put(agent, _sized("2", 30_000))
    assert len(record(agent).entry.payload) <= MAX_PAYLOAD_BYTES
    assert view(agent).previous == Previous(1, _sized("1", 30_000))


# ---- rollback --------------------------------------------------------------------------------------------


def test_two_nodes_planning_the_same_rollback_write_the_same_bytes_and_note() -> None:
    here, there = FakeAgent(), FakeAgent()
    put(here, web("1"))
    put(here, web("2"))
    for entry in here.writes:
        there.remote_write(entry.key, entry.generation, entry.payload, entry.note, wall_ms=entry.stamp.wall_ms,
                           author=OTHER)
    writes = []
    for agent in (here, there):
        rw = rollback(desired.revision(view(agent)))
        assert rw is not None
        writes.append(rollout_writes.plan_rollback_write(rw, record(agent)))
    assert writes[0] == writes[1]
    assert (writes[0].generation, writes[0].expect) == (3, 2)
    assert writes[0].note == "rollback of generation 2 to the spec of generation 1 (automatic: its replicas failed)"
    assert json.loads(writes[0].payload) == {"spec": spec_to_payload(web("1")),
                                             "previous": {"generation": 2, "spec": spec_to_payload(web("2"))}}


def test_a_rollback_write_is_stale_once_the_service_moved_on() -> None:
    agent = FakeAgent()
    put(agent, web("1"))
    put(agent, web("2"))
    rw = rollback(desired.revision(view(agent)))
    assert rw is not None
    commit(agent, rollout_writes.plan_rollback_write(rw, record(agent)))  # another node's identical write won first
    with pytest.raises(Conflict):
        rollout_writes.plan_rollback_write(rw, record(agent))


def test_rollback_by_hand_writes_the_previous_spec_and_run_again_swaps_back() -> None:
    agent = FakeAgent()
    put(agent, web("1"))
    put(agent, web("2"))
    write = rollout_writes.plan_rollback("web", record(agent))
    assert write.note == "rollback of generation 2 to the spec of generation 1 (requested by hand)"
    commit(agent, write)
    assert (view(agent).spec, view(agent).generation) == (web("1"), 3)
    commit(agent, rollout_writes.plan_rollback("web", record(agent)))
    assert (view(agent).spec, view(agent).previous) == (web("2"), Previous(3, web("1")))
    assert desired.revision(view(agent)).rollback_of == 3


def test_rollback_without_a_previous_spec_is_refused_naming_the_service() -> None:
    agent = FakeAgent()
    put(agent, web())
    with pytest.raises(InvalidRequest) as refused:
        rollout_writes.plan_rollback("web", record(agent))
    assert (refused.value.code, refused.value.field) == ("no_previous_spec", "services.web")
    assert "no previous spec to roll back to (generation 1)" in str(refused.value)


def test_rollback_with_a_stale_expectation_is_a_conflict() -> None:
    agent = FakeAgent()
    put(agent, web("1"))
    put(agent, web("2"))
    with pytest.raises(Conflict):
        rollout_writes.plan_rollback("web", record(agent), expect=1)


# ---- canary and blue-green -------------------------------------------------------------------------------

CANARY = "    x-shoal: {canary: {image: reg/web:2, weight: 5, environment: {MODE: canary}}}\n"
SIDES = "    x-shoal: {blue_green: {image: reg/web:2}}\n"


def test_promote_makes_the_canary_the_spec_and_keeps_the_replaced_one() -> None:
    agent = FakeAgent()
    put(agent, web("1", extra=CANARY))
    write = rollout_writes.plan_promote("web", record(agent))
    assert (write.action, write.generation) == ("updated", 2)
    assert write.note == "image reg/web:1 -> reg/web:2; environment changed; canary removed"
    commit(agent, write)
    promoted = view(agent)
    assert (promoted.spec.image, promoted.spec.env, promoted.spec.x_shoal.canary) == ("reg/web:2",
                                                                                      {"MODE": "canary"}, None)
    assert promoted.previous == Previous(1, web("1", extra=CANARY))


def test_abort_drops_the_canary_and_carries_the_previous_forward() -> None:
    agent = FakeAgent()
    put(agent, web("1"))
    put(agent, web("2", extra=CANARY))
    commit(agent, rollout_writes.plan_abort("web", record(agent)))
    assert (view(agent).spec, view(agent).generation, view(agent).previous) == (web("2"), 3, Previous(1, web("1")))


def test_canary_weight_restarts_nothing_and_is_validated() -> None:
    agent = FakeAgent()
    put(agent, web("1", extra=CANARY))
    write = rollout_writes.plan_canary_weight("web", record(agent), 50)
    assert write.note == "canary changed"
    commit(agent, write)
    canary = view(agent).spec.x_shoal.canary
    assert canary is not None and canary.weight_percent == 50.0
    assert version(view(agent).spec) == version(web("1", extra=CANARY))
    for bad in (0, 100.5, -1, True, "5", None, float("nan")):
        with pytest.raises(InvalidRequest) as refused:
            rollout_writes.plan_canary_weight("web", record(agent), bad)
        assert refused.value.field == "weight"


@pytest.mark.parametrize("plan", [rollout_writes.plan_promote, rollout_writes.plan_abort,
                                  lambda name, record: rollout_writes.plan_canary_weight(name, record, 5)])
def test_canary_operations_without_a_canary_are_refused_naming_it(plan: object) -> None:
    agent = FakeAgent()
    put(agent, web())
    with pytest.raises(InvalidRequest) as refused:
        plan("web", record(agent))  # type: ignore[operator]
    assert (refused.value.code, refused.value.field) == ("not_applicable", "services.web.x-shoal.canary")
    assert "has no canary" in str(refused.value)


def test_switch_flips_the_live_side_and_back_restarting_nothing() -> None:
    agent = FakeAgent()
    put(agent, web("1", extra=SIDES))
    write = rollout_writes.plan_switch("web", record(agent))
    assert (write.generation, write.note) == (2, "blue_green active blue -> green")
    commit(agent, write)
    sides = view(agent).spec.x_shoal.blue_green
    assert sides is not None and sides.active == "green"
    assert version(view(agent).spec) == version(web("1", extra=SIDES)) and view(agent).previous is None
    assert rollout_writes.plan_switch("web", record(agent), "green").action == "unchanged"
    commit(agent, rollout_writes.plan_switch("web", record(agent), "blue"))
    assert view(agent).spec == web("1", extra=SIDES) and view(agent).generation == 3


def test_switch_refuses_an_unknown_side_and_a_service_without_sides() -> None:
    agent = FakeAgent()
    put(agent, web("1", extra=SIDES))
    with pytest.raises(InvalidRequest) as bad_side:
        rollout_writes.plan_switch("web", record(agent), "red")
    assert bad_side.value.field == "to"
    put(agent, web("1"))
    with pytest.raises(InvalidRequest) as no_sides:
        rollout_writes.plan_switch("web", record(agent))
    assert no_sides.value.field == "services.web.x-shoal.blue_green"


def test_operations_check_the_expected_generation_first() -> None:
    agent = FakeAgent()
    put(agent, web("1", extra=CANARY))
    put(agent, web("1", replicas=3, extra=CANARY))
    with pytest.raises(Conflict):
        rollout_writes.plan_promote("web", record(agent), expect=1)
    assert rollout_writes.plan_promote("web", record(agent), expect=2).generation == 3
