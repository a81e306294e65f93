"""Canary: replica counts, the derived spec, the proxy's split by weight (measured with the proxy's own smooth
weighted round robin), promote and abort."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from node.manifest.model import GLOBAL, Canary, Deploy, ShoalSettings
from node.proxy.select import Rotation
from node.replica import version
from node.rollout import abort, canary_name, canary_replicas, canary_spec, promote, stable_name
from node.rollout.canary import endpoints
from tests.unit.rollout.helpers import V1

CANARY = Canary(weight_percent=1.0, image="reg/web:2", environment=(("MODE", "canary"),))
WEB = replace(V1, environment=(("GREETING", "hi"), ("MODE", "stable")), x_shoal=ShoalSettings(canary=CANARY))
STABLE = [f"10.0.0.{i}" for i in range(1, 5)]
CANARIES = ["10.0.1.1"]


@pytest.mark.parametrize(("stable", "weight", "count"), [
    (4, 1, 1), (4, 25, 1), (4, 26, 2), (4, 50, 2), (4, 100, 4), (10, 30, 3), (10, 30.000000000000004, 3),
    (3, 100 / 3, 1), (1, 0.01, 1), (0, 50, 1), (200, 0.5, 1), (200, 1, 2),
])
def test_the_canary_runs_ceil_n_weight_over_100_replicas_and_at_least_one(stable: int, weight: float,
                                                                          count: int) -> None:
    assert canary_replicas(stable, weight) == count


def test_the_canary_spec_is_the_service_with_the_canarys_image_and_environment() -> None:
    spec = canary_spec(WEB)
    assert spec is not None
    assert (spec.name, spec.image, spec.deploy.replicas) == ("web.canary", "reg/web:2", 1)
    assert spec.environment == (("GREETING", "hi"), ("MODE", "canary"))
    assert spec.x_shoal.canary is None and spec.ports == WEB.ports
    assert version(spec) != version(WEB)
    assert canary_name("web") == "web.canary" and stable_name("web.canary") == "web" and stable_name("web") is None


def test_a_canary_beside_a_global_service_is_counted_from_its_slots_one_per_node() -> None:
    glob = replace(WEB, deploy=Deploy(mode=GLOBAL), x_shoal=ShoalSettings(canary=replace(CANARY, weight_percent=20)))
    spec = canary_spec(glob, stable=10)
    assert spec is not None and spec.deploy.mode == "replicated" and spec.deploy.replicas == 2
    assert spec.deploy.placement.max_replicas_per_node == 1


def test_no_canary_no_canary_spec() -> None:
    assert canary_spec(V1) is None


def picks(routes: tuple[object, ...], count: int) -> Counter[str]:
    rotation = Rotation(routes)  # type: ignore[arg-type]
    return Counter(e.ip for _ in range(count) if (e := rotation.pick(0.0)) is not None)


def canary_share(weight: float, stable: list[str], canary: list[str], count: int = 10_000) -> float:
    spec = replace(WEB, x_shoal=ShoalSettings(canary=replace(CANARY, weight_percent=weight)))
    counts = picks(endpoints(spec, stable, canary, 8080), count)
    return sum(counts[ip] for ip in canary) / count


def test_weight_1_sends_1_percent_of_new_connections_to_the_canary() -> None:
    assert canary_share(1, STABLE, CANARIES) == 0.01


def test_weight_50_sends_half() -> None:
    assert canary_share(50, STABLE, CANARIES) == 0.5
    assert canary_share(50, STABLE, ["10.0.1.1", "10.0.1.2", "10.0.1.3"]) == 0.5


@pytest.mark.parametrize("weight", [0.5, 1, 5, 33.3, 99])
@pytest.mark.parametrize(("stable", "canary"), [(1, 1), (4, 1), (7, 3), (300, 2)])
def test_the_split_follows_the_weight_whatever_the_set_sizes(weight: float, stable: int, canary: int) -> None:
    share = canary_share(weight, [f"10.1.{i // 250}.{i % 250}" for i in range(stable)],
                         [f"10.2.0.{i}" for i in range(canary)], count=20_000)
    assert abs(share - weight / 100) <= 0.001


def test_the_connections_a_set_gets_are_spread_evenly_over_its_endpoints() -> None:
    spec = replace(WEB, x_shoal=ShoalSettings(canary=replace(CANARY, weight_percent=20)))
    counts = picks(endpoints(spec, STABLE, ["10.0.1.1", "10.0.1.2"], 8080), 1000)
    assert [counts[ip] for ip in STABLE] == [200] * 4 and counts["10.0.1.1"] == counts["10.0.1.2"] == 100


def test_weight_100_sends_everything_to_the_canary() -> None:
    assert canary_share(100, STABLE, CANARIES) == 1.0


def test_with_no_ready_canary_the_stable_replicas_take_everything_and_vice_versa() -> None:
    assert canary_share(50, STABLE, []) == 0.0
    assert canary_share(1, [], CANARIES) == 1.0


def test_without_a_canary_every_endpoint_weighs_one() -> None:
    assert {e.weight for e in endpoints(V1, STABLE, [], 8080)} == {1}


def test_promote_makes_the_canary_the_spec() -> None:
    promoted = promote(WEB)
    assert (promoted.image, promoted.environment) == ("reg/web:2", (("GREETING", "hi"), ("MODE", "canary")))
    assert promoted.x_shoal.canary is None
    canary = canary_spec(WEB)
    assert canary is not None and version(promoted) == version(canary)  # the stable slots roll to what it ran


def test_abort_drops_the_canary_and_restarts_no_stable_replica() -> None:
    aborted = abort(WEB)
    assert aborted.x_shoal.canary is None and version(aborted) == version(WEB)


def test_promote_or_abort_without_a_canary_is_refused() -> None:
    with pytest.raises(ValueError, match="no canary"):
        promote(V1)
    with pytest.raises(ValueError, match="no canary"):
        abort(V1)
