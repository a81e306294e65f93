"""node.desired: plans over a real store (created / updated / unchanged, conflicts, all-or-nothing, generations
across deletes), history outcomes, unreadable payloads, scale and delete rules, messages."""

from __future__ import annotations

import pytest

from gossip.store import Conflict
from node import desired
from node.desired import InvalidRequest, NotFound, Unreadable, Write, service_key
from node.manifest import Manifest, ManifestError, parse_manifest, spec_bytes
from tests.unit.desired.fakes import OTHER, START_MS, FakeAgent

WEB = "  web:\n    image: reg/web:{v}\n    deploy: {{replicas: {n}}}\n"
API = "  api:\n    image: reg/api:{v}\n"


def stack(web: str | None = "1", api: str | None = "1", replicas: int = 2) -> Manifest:
    text = "services:\n"
    if web is not None:
        text += WEB.format(v=web, n=replicas)
    if api is not None:
        text += API.format(v=api)
    return parse_manifest(text)


def apply(agent: FakeAgent, manifest: Manifest, expect: dict[str, int] | None = None) -> list[Write]:
    current = {s.name: agent.store.get(service_key(s.name)) for s in manifest.services}
    writes = desired.plan_apply(manifest, current, expect)
    desired.commit(writes, agent.write)
    return writes


def actions(writes: list[Write]) -> list[tuple[str, str, int]]:
    return [(w.name, w.action, w.generation) for w in writes]


def test_first_apply_creates_every_service_at_generation_one() -> None:
    agent = FakeAgent()
    writes = apply(agent, stack())
    assert actions(writes) == [("api", "created", 1), ("web", "created", 1)]
    assert writes[1].note == "created (image reg/web:1, 2 replicas)"
    assert [e.key for e in agent.writes] == ["service/api", "service/web"]


def test_identical_reapply_writes_nothing() -> None:
    agent = FakeAgent()
    apply(agent, stack())
    writes = apply(agent, stack())
    assert actions(writes) == [("api", "unchanged", 1), ("web", "unchanged", 1)]
    assert [w.note for w in writes] == ["", ""]
    assert len(agent.writes) == 2


def test_changed_service_is_updated_and_the_rest_unchanged() -> None:
    agent = FakeAgent()
    apply(agent, stack())
    writes = apply(agent, stack(web="2", replicas=3))
    assert actions(writes) == [("api", "unchanged", 1), ("web", "updated", 2)]
    assert writes[1].note == "image reg/web:1 -> reg/web:2; replicas 2 -> 3"
    assert agent.store.get("service/web").entry.note == writes[1].note  # type: ignore[union-attr]


def test_payload_is_canonical_whatever_the_key_order_of_the_file() -> None:
    a = parse_manifest("services:\n  web:\n    image: x:1\n    environment: {B: '2', A: '1'}\n")
    b = parse_manifest('{"services": {"web": {"environment": {"A": "1", "B": "2"}, "image": "x:1"}}}')
    assert spec_bytes(a.services[0]) == spec_bytes(b.services[0])


@pytest.mark.parametrize(("expect", "ok"), [({"web": 1, "api": 1}, True), ({"web": 1}, True),
                                            ({"web": 2}, False), ({"web": 0}, False), ({"api": 7}, False)])
def test_expectations_are_checked_against_live_generations(expect: dict[str, int], ok: bool) -> None:
    agent = FakeAgent()
    apply(agent, stack())
    if ok:
        assert actions(apply(agent, stack(web="2"), expect))[1] == ("web", "updated", 2)
    else:
        with pytest.raises(Conflict):
            apply(agent, stack(web="2"), expect)


def test_a_stale_expectation_on_one_service_writes_none_of_them() -> None:
    agent = FakeAgent()
    apply(agent, stack())
    apply(agent, stack(api="2"))  # api moves to generation 2 behind the caller's back
    with pytest.raises(Conflict) as caught:
        apply(agent, stack(web="2", api="3"), {"web": 1, "api": 1})
    assert caught.value.key == "service/api" and caught.value.expected == 1
    assert caught.value.current is not None and caught.value.current.entry.generation == 2
    assert agent.store.get("service/web").entry.generation == 1  # type: ignore[union-attr]
    assert len(agent.writes) == 3


def test_expect_zero_means_must_not_exist() -> None:
    agent = FakeAgent()
    assert actions(apply(agent, stack(api=None), {"web": 0})) == [("web", "created", 1)]
    with pytest.raises(Conflict):
        apply(agent, stack(api=None, web="2"), {"web": 0})


def test_an_expectation_about_a_service_not_in_the_manifest_is_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        desired.plan_apply(stack(api=None), {}, {"db": 0})
    assert caught.value.field == "expect" and "db" in str(caught.value)


def test_generations_keep_counting_across_a_delete_and_recreate() -> None:
    agent = FakeAgent()
    apply(agent, stack(api=None))
    apply(agent, stack(api=None, web="2"))
    delete = desired.plan_delete("web", agent.store.get("service/web"), expect=2)
    desired.commit([delete], agent.write)
    assert (delete.action, delete.generation) == ("deleted", 3)
    assert agent.store.get("service/web").entry.tombstone  # type: ignore[union-attr]
    writes = apply(agent, stack(api=None, web="3"), {"web": 0})  # deleted counts as absent
    assert actions(writes) == [("web", "created", 4)]
    assert agent.store.get("service/web").entry.generation == 4  # type: ignore[union-attr]


def test_delete_of_an_absent_or_deleted_service_is_not_found() -> None:
    agent = FakeAgent()
    with pytest.raises(NotFound) as absent:
        desired.plan_delete("web", None)
    assert absent.value.record is None
    apply(agent, stack(api=None))
    desired.commit([desired.plan_delete("web", agent.store.get("service/web"))], agent.write)
    with pytest.raises(NotFound) as deleted:
        desired.plan_delete("web", agent.store.get("service/web"))
    message = desired.not_found_message(deleted.value, {OTHER: "n2", "a" * 32: "n1"})
    assert message == "service web was deleted at generation 2 (by n1 at 2026-01-01T00:00:02.000Z)"


def test_delete_with_a_stale_generation_is_a_conflict() -> None:
    agent = FakeAgent()
    apply(agent, stack(api=None))
    with pytest.raises(Conflict):
        desired.plan_delete("web", agent.store.get("service/web"), expect=5)


def test_scale_changes_replicas_only_and_equal_count_is_unchanged() -> None:
    agent = FakeAgent()
    apply(agent, stack(api=None))
    write = desired.plan_scale("web", agent.store.get("service/web"), 5)
    assert (write.action, write.generation, write.note) == ("updated", 2, "replicas 2 -> 5")
    desired.commit([write], agent.write)
    assert desired.plan_scale("web", agent.store.get("service/web"), 5).action == "unchanged"


REPLICAS = "services.web.deploy.replicas"


@pytest.mark.parametrize(("replicas", "error", "field"), [
    (True, InvalidRequest, "replicas"), ("3", InvalidRequest, "replicas"), (-1, ManifestError, REPLICAS),
    (10_001, ManifestError, REPLICAS)])
def test_scale_refuses_a_bad_count_naming_the_field(replicas: object, error: type[Exception], field: str) -> None:
    agent = FakeAgent()
    apply(agent, stack(api=None))
    with pytest.raises(error) as caught:
        desired.plan_scale("web", agent.store.get("service/web"), replicas)
    assert caught.value.field == field  # type: ignore[attr-defined]


def test_scale_of_a_global_service_is_refused() -> None:
    agent = FakeAgent()
    apply(agent, parse_manifest("services:\n  agent:\n    image: x:1\n    deploy: {mode: global}\n"))
    with pytest.raises(ManifestError) as caught:
        desired.plan_scale("agent", agent.store.get("service/agent"), 3)
    assert caught.value.field == "services.agent.deploy.replicas" and "global" in str(caught.value)


def test_scale_of_a_missing_service_is_not_found() -> None:
    with pytest.raises(NotFound):
        desired.plan_scale("web", None, 3)


def test_history_marks_current_superseded_and_lost_edits() -> None:
    agent = FakeAgent()
    apply(agent, stack(api=None))
    apply(agent, stack(api=None, web="2"))  # generation 2 by n1
    # n2 wrote generation 2 concurrently, later by the HLC: it wins, and n1's edit lost the conflict.
    agent.remote_write("service/web", 2, spec_bytes(stack(api=None, web="9").services[0]),
                       "image reg/web:1 -> reg/web:9", wall_ms=START_MS + 60_000)
    record = agent.store.get("service/web")
    assert record is not None
    items = desired.history(record, {"a" * 32: "n1", OTHER: "n2"})
    assert [(i.generation, i.author.name, i.outcome) for i in items] == [
        (2, "n2", "current"), (2, "n1", "lost"), (1, "n1", "superseded")]
    assert items[1].change == "image reg/web:1 -> reg/web:2"
    view = desired.read_service(record)
    assert view is not None and view.spec.image == "reg/web:9"


def test_history_shows_a_delete_and_unknown_authors_by_id_prefix() -> None:
    agent = FakeAgent()
    apply(agent, stack(api=None))
    desired.commit([desired.plan_delete("web", agent.store.get("service/web"))], agent.write)
    items = desired.history(agent.store.get("service/web"), {})  # type: ignore[arg-type]
    assert [(i.generation, i.deleted, i.outcome, i.author.name) for i in items] == [
        (2, True, "current", "a" * 12), (1, False, "superseded", "a" * 12)]


@pytest.mark.parametrize("payload", [b"\xff\xfe", b"not json", b"[1, 2]", b'{"image": 5}', b"[" * 5000,
                                     b'{"image": "x:1", "bogus": 1}'])
def test_an_unreadable_payload_is_set_aside_not_fatal(payload: bytes) -> None:
    agent = FakeAgent()
    apply(agent, stack(api=None))
    agent.remote_write("service/api", 1, payload, "from a future version", wall_ms=START_MS)
    views, unreadable = desired.live_services(agent.store.scan(desired.SERVICE_PREFIX))
    assert [v.name for v in views] == ["web"]
    assert [u.record.key for u in unreadable] == ["service/api"]
    with pytest.raises(Unreadable):
        desired.read_service(agent.store.get("service/api"))  # type: ignore[arg-type]
    writes = apply(agent, stack(web="1", api="1"))  # re-applying replaces it
    assert actions(writes) == [("api", "updated", 2), ("web", "unchanged", 1)]
    assert writes[0].note.startswith("replaced an unreadable spec: created (image reg/api:1")


def test_a_tombstone_reads_as_no_service() -> None:
    agent = FakeAgent()
    apply(agent, stack(api=None))
    desired.commit([desired.plan_delete("web", agent.store.get("service/web"))], agent.write)
    assert desired.read_service(agent.store.get("service/web")) is None  # type: ignore[arg-type]
    assert desired.live_services(agent.store.scan("service/")) == ([], [])


def test_conflict_message_names_generations_author_and_what_to_do() -> None:
    agent = FakeAgent()
    apply(agent, stack(api=None))
    apply(agent, stack(api=None, web="2"))
    with pytest.raises(Conflict) as caught:
        apply(agent, stack(api=None, web="3"), {"web": 1})
    message = desired.conflict_message(caught.value, {"a" * 32: "n1"})
    assert message == ("service web: expected generation 1, the cluster holds 2 (written by n1 at "
                       "2026-01-01T00:00:02.000Z: image reg/web:1 -> reg/web:2); re-read and apply again")


@pytest.mark.parametrize("values", [["web"], ["web:"], [":3"], ["web:-1"], ["web:x"], ["web:1", "web:2"],
                                    ["web:\u0661"]])
def test_bad_expect_parameters_are_refused(values: list[str]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        desired.parse_expect(values)
    assert caught.value.field == "expect"


def test_expect_parameters_parse() -> None:
    assert desired.parse_expect(["web:3", "api:0"]) == {"web": 3, "api": 0}


@pytest.mark.parametrize(("value", "parsed"), [(None, None), ("3", 3), ('"3"', 3), ('W/"0"', 0), (4, 4)])
def test_generation_values_parse(value: object, parsed: int | None) -> None:
    assert desired.parse_generation(value, "If-Match") == parsed


@pytest.mark.parametrize("value", ["", "x", "-1", -1, True, 1.5, "*"])
def test_bad_generation_values_are_refused(value: object) -> None:
    with pytest.raises(InvalidRequest):
        desired.parse_generation(value, "If-Match")
