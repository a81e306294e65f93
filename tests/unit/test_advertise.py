"""Which address an agent advertises: --advertise, a specific --bind, else the route to a seed."""

from __future__ import annotations

from node.config import build
from node.startup import advertise_address


def test_explicit_advertise_wins() -> None:
    assert advertise_address(build({"advertise": "198.18.0.99:7000", "bind": "127.0.0.2"}, {})) == (
        "198.18.0.99", 7000)


def test_a_specific_bind_is_advertised_as_is() -> None:
    assert advertise_address(build({"bind": "127.0.0.7:9001"}, {})) == ("127.0.0.7", 9001)


def test_a_wildcard_bind_advertises_the_address_that_routes_to_the_seed() -> None:
    assert advertise_address(build({"join": ("127.0.0.1:7946",)}, {})) == ("127.0.0.1", 7946)
