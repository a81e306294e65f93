"""A replica's identity on a host: its slot, its version, its container's name, labels and spec.

Pure. A replica is the slot `(service, replica index)` placement gives a node. Its *version* is a hash of the
container-relevant fields of the service spec (DESIGN §7b), not the generation: a scale change or a rollback to
identical content restarts nothing. Containers carry their slot, version, generation, image and restart counts
as labels, so a restarted agent rebuilds its view from the engine alone and adopts what it already runs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from node.manifest import ServiceSpec
from node.runtime.base import (
    LABEL_GENERATION,
    LABEL_IMAGE,
    LABEL_REPLICA,
    LABEL_RESTARTS,
    LABEL_SERVICE,
    LABEL_VERSION,
    Container,
    ContainerSpec,
)

LABEL_ATTEMPTS = "shoal.attempts"  # restarts that count against restart_policy.max_attempts (reset by `window`)
LABEL_STREAK = "shoal.streak"  # consecutive short runs before this container: the crash-loop backoff's exponent
VERSION_CHARS = 12
MAX_COUNTER = 2**63 - 1  # a label value past this is not ours: treat it as malformed


@dataclass(frozen=True, slots=True, order=True)
class SlotKey:
    service: str
    replica: int

    def __str__(self) -> str:
        return f"{self.service}.{self.replica}"


@dataclass(frozen=True, slots=True)
class Wanted:
    """A replica this node should run: its slot and the spec (and generation) it should run."""

    key: SlotKey
    spec: ServiceSpec
    generation: int

    @property
    def version(self) -> str:
        return version(self.spec)


@dataclass(frozen=True, slots=True)
class Counters:
    """How often a slot was restarted, carried from each container to its replacement in labels."""

    restarts: int = 0  # in all; `shoal ps` shows it
    attempts: int = 0  # since the last run that lasted `window`; compared with max_attempts
    streak: int = 0  # consecutive runs shorter than SHORT_RUN_S; drives the crash-loop backoff


@dataclass(frozen=True, slots=True)
class Identity:
    """What a container's labels say it is; None from `identify` for a container whose labels are not ours."""

    key: SlotKey
    version: str
    generation: int
    image: str
    counters: Counters


def version(spec: ServiceSpec) -> str:
    """Hash of what the container is made of: image, command, environment, networks, resource limits."""
    limits = spec.deploy.resources.limits
    body = {"image": spec.image, "command": list(spec.command) if spec.command is not None else None,
            "environment": [list(kv) for kv in spec.environment], "networks": list(spec.networks),
            "cpus": limits.cpus, "memory": limits.memory_bytes}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.blake2b(canonical, digest_size=16).hexdigest()[:VERSION_CHARS]


def container_name(key: SlotKey, version_id: str) -> str:
    """Unique on the host even while an old and a new version of one slot both run (start-first)."""
    return f"shoal.{key.service}.{key.replica}.{version_id}"


def hostname(key: SlotKey) -> str:
    """Each replica's own hostname, e.g. web-3, or web-canary-0 for a variant's (a DNS label: service names are
    DNS labels, and a variant's dot becomes a dash)."""
    return f"{key.service.replace('.', '-')}-{key.replica}"[:63]


def container_spec(wanted: Wanted, counters: Counters, *, network: str | None,
                   dns: tuple[str, ...] = ()) -> ContainerSpec:
    spec, key = wanted.spec, wanted.key
    labels = {
        LABEL_SERVICE: key.service, LABEL_REPLICA: str(key.replica), LABEL_VERSION: wanted.version,
        LABEL_GENERATION: str(wanted.generation), LABEL_IMAGE: spec.image,
        LABEL_RESTARTS: str(counters.restarts), LABEL_ATTEMPTS: str(counters.attempts),
        LABEL_STREAK: str(counters.streak),
    }
    limits = spec.deploy.resources.limits
    return ContainerSpec(
        name=container_name(key, wanted.version), image=spec.image, command=spec.command, env=spec.environment,
        labels=tuple(sorted(labels.items())), hostname=hostname(key), network=network, dns=dns,
        cpus=limits.cpus, memory_bytes=limits.memory_bytes)


def identify(container: Container) -> Identity | None:
    """Read a container's labels back; None if any is missing or malformed (not a replica we made)."""
    labels = dict(container.labels)
    try:
        replica = _counter(labels.get(LABEL_REPLICA))
        generation = _counter(labels.get(LABEL_GENERATION))
        counters = Counters(_counter(labels.get(LABEL_RESTARTS, "0")), _counter(labels.get(LABEL_ATTEMPTS, "0")),
                            _counter(labels.get(LABEL_STREAK, "0")))
    except ValueError:
        return None
    service, version_id = labels.get(LABEL_SERVICE), labels.get(LABEL_VERSION)
    if not service or not version_id:
        return None
    return Identity(SlotKey(service, replica), version_id, generation, labels.get(LABEL_IMAGE, container.image),
                    counters)


def _counter(text: str | None) -> int:
    if text is None or not text.isascii() or not text.isdigit() or int(text) > MAX_COUNTER:
        raise ValueError(text)
    return int(text)
