"""The table's values refuse what the data path cannot use, and the diff says exactly which listeners to open,
close and re-route."""

from __future__ import annotations

import pytest

from node.proxy.config import ProxyConfig
from node.proxy.model import Address, Endpoint, Route
from node.proxy.table import diff

WEB = Route("web", (Endpoint("10.0.0.1", 80), Endpoint("10.0.0.2", 80)))
API = Route("api", (Endpoint("10.0.0.3", 8080),))
V1, V2, V3 = Address("198.19.0.1", 80), Address("198.19.0.2", 80), Address("198.19.0.3", 80)


def test_new_addresses_open_and_gone_ones_close() -> None:
    change = diff({V1: WEB, V2: API}, {V2: API, V3: WEB})
    assert (change.opened, change.closed, change.rerouted) == ((V3,), (V1,), ())


def test_a_changed_route_at_the_same_address_is_rerouted_not_reopened() -> None:
    moved = Route("web", (Endpoint("10.0.0.1", 80),))
    change = diff({V1: WEB, V2: API}, {V1: moved, V2: API})
    assert (change.opened, change.closed, change.rerouted) == ((), (), (V1,))


def test_a_weight_change_is_a_route_change() -> None:
    canary = Route("web", (Endpoint("10.0.0.1", 80, 99), Endpoint("10.0.0.2", 80, 1)))
    assert diff({V1: WEB}, {V1: canary}).rerouted == (V1,)


def test_the_same_table_changes_nothing() -> None:
    assert diff({V1: WEB}, {V1: Route("web", WEB.endpoints)}).empty


def test_lists_are_sorted_whatever_the_input_order() -> None:
    change = diff({}, {V3: WEB, V1: WEB, V2: API})
    assert change.opened == (V1, V2, V3)


def test_a_name_is_not_a_listen_address() -> None:
    with pytest.raises(ValueError):
        diff({}, {Address("localhost", 80): WEB})


@pytest.mark.parametrize("bad", [lambda: Endpoint("10.0.0.1", 0), lambda: Endpoint("10.0.0.1", 65536),
                                 lambda: Endpoint("api.shoal", 80), lambda: Endpoint("10.0.0.1", 80, -1),
                                 lambda: Route(""), lambda: Route("x", (Endpoint("10.0.0.1", 80),) * 2)])
def test_values_the_data_path_cannot_use_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        bad()  # type: ignore[operator]


@pytest.mark.parametrize("field", ["connect_timeout_s", "idle_timeout_s", "connect_attempts", "max_connections",
                                   "backlog", "buffer_bytes", "listen_retry_s"])
def test_config_refuses_zero_for_a_bound(field: str) -> None:
    with pytest.raises(ValueError):
        ProxyConfig(**{field: 0})
