"""Fixtures of the runtime contract: `backend` is each of [fake, podman] in turn; the podman one shares one private
podman per session (podman_env.py) and is reset after every test. The `podman` marker is registered here, so
`-m "not podman"` runs the contract against the fake alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.contract import podman_env
from tests.contract.backends import Backend, FakeBackend, PodmanBackend


@pytest.fixture(scope="session")
def private_podman() -> Iterator[podman_env.PodmanEnv]:
    reason = podman_env.available()
    if reason is not None:
        pytest.skip(f"podman contract: {reason}")
    with podman_env.podman_env() as env:
        yield env


@pytest.fixture
def podman_backend(private_podman: podman_env.PodmanEnv) -> Iterator[PodmanBackend]:
    backend = PodmanBackend(private_podman)
    try:
        yield backend
    finally:
        asyncio.run(backend.runtime.close())
        backend.close()


@pytest.fixture(params=["fake", pytest.param("podman", marks=pytest.mark.podman)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "podman":
        # looked up only here, so a run of the fake alone never builds the private podman
        yield request.getfixturevalue("podman_backend")
        return
    fake = FakeBackend()
    yield fake
    fake.close()
