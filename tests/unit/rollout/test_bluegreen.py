"""Blue-green: the green side's spec, the switch (one spec change, no restart), and which side gets connections."""

from __future__ import annotations

import pytest

from node.proxy.select import Rotation
from node.replica import version
from node.rollout import BLUE, GREEN, BlueGreen, green_name, green_spec, switch
from node.rollout.bluegreen import endpoints
from tests.unit.rollout.helpers import V1

SIDES = BlueGreen(image="reg/web:2")
BLUES, GREENS = ["10.0.0.1", "10.0.0.2"], ["10.0.1.1", "10.0.1.2"]


def served(sides: BlueGreen, blue: list[str], green: list[str], count: int = 100) -> set[str]:
    rotation = Rotation(endpoints(sides, blue, green, 8080))
    return {e.ip for _ in range(count) if (e := rotation.pick(0.0)) is not None}


def test_the_green_side_is_the_service_with_greens_image_and_the_same_replicas() -> None:
    spec = green_spec(V1, SIDES)
    assert (spec.name, spec.image, spec.deploy.replicas, spec.deploy.mode) == ("web.green", "reg/web:2", 5,
                                                                                 "replicated")
    assert version(spec) != version(V1) and green_name("web") == "web.green"


def test_the_active_side_takes_every_new_connection() -> None:
    assert served(SIDES, BLUES, GREENS) == set(BLUES)
    assert served(switch(SIDES), BLUES, GREENS) == set(GREENS)


def test_switching_back_is_the_same_change_again() -> None:
    assert switch(switch(SIDES)) == SIDES
    assert switch(SIDES, GREEN).active == GREEN and switch(SIDES, BLUE) == SIDES


def test_a_side_with_no_ready_replica_leaves_the_other_serving() -> None:
    assert served(switch(SIDES), BLUES, []) == set(BLUES)  # switched too early: blue keeps serving
    assert served(SIDES, [], GREENS) == set(GREENS)


def test_only_blue_or_green_can_be_active() -> None:
    with pytest.raises(ValueError, match="active"):
        BlueGreen(active="red")
