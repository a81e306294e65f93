"""The package's entry points: parse_manifest (text -> Manifest), spec_from_payload, with_replicas.

parse_manifest reads the top level (services, networks, ignored version/name, x-* extensions), hands each
service to service.py and checks what spans services: declared networks, published ports used once in the
whole manifest. spec_from_payload is the strict path for payloads from the network: the same validator, but
an ignored key is an error and network names are not checked against a manifest it does not have.
"""

from __future__ import annotations

import dataclasses

from node.manifest.errors import ManifestError, ManifestWarning, child, show
from node.manifest.fields import Notes, as_int, as_mapping, read_object
from node.manifest.keys import NETWORK, TOP
from node.manifest.limits import MAX_NETWORKS, MAX_REPLICAS, MAX_SERVICES
from node.manifest.load import load
from node.manifest.model import GLOBAL, Manifest, ServiceSpec
from node.manifest.names import NETWORK_NAME, NETWORK_RULE
from node.manifest.service import read_service


def parse_manifest(text: str | bytes) -> Manifest:
    """A Compose file (YAML or JSON) -> Manifest; ManifestError naming the field for anything Shoal won't run."""
    if not isinstance(text, str | bytes):
        raise ManifestError("", text, f"{show(text)} is not text; pass the file's contents")
    data = load(text)
    if data is None:
        raise ManifestError("", None, "is empty; a manifest needs at least services: {NAME: {image: ...}}")
    notes: list[ManifestWarning] = []
    if isinstance(data, dict) and "x-shoal" in data:
        notes.append(ManifestWarning("x-shoal", "ignored here: x-shoal belongs inside a service"))
    top = read_object(data, "", TOP, notes)
    networks = read_networks(top.get("networks"), "networks", notes)
    if "services" not in top:
        raise ManifestError("services", None, "is required: a mapping of service name -> {image: ...}")
    bodies = as_mapping(top["services"], "services")
    if not 1 <= len(bodies) <= MAX_SERVICES:
        raise ManifestError("services", None, f"has {len(bodies)} services; allowed 1 to {MAX_SERVICES}")
    specs = sorted((read_service(name, body, notes=notes, declared=networks, services=bodies.keys())
                    for name, body in bodies.items()), key=lambda spec: spec.name)
    _check_published_once(specs)
    return Manifest(services=tuple(specs), networks=tuple(sorted(networks)), warnings=tuple(notes))


def read_networks(value: object, field: str, notes: Notes) -> frozenset[str]:
    """Top-level networks: name -> null | {} | {ignored keys}. Shoal builds each as a sandbox."""
    declared = as_mapping(value, field) if value is not None else {}
    if len(declared) > MAX_NETWORKS:
        raise ManifestError(field, None, f"declares {len(declared)} networks; allowed at most {MAX_NETWORKS}")
    for name, body in declared.items():
        if not NETWORK_NAME.fullmatch(name):
            raise ManifestError(child(field, name), name, f"network name {show(name)} is not {NETWORK_RULE}")
        read_object(body, child(field, name), NETWORK, notes, null_ok=True)
    return frozenset(declared)


def _check_published_once(specs: list[ServiceSpec]) -> None:
    """A published port is open on every node and routes to one service, so two services cannot share one."""
    owner: dict[int, str] = {}
    for spec in specs:
        for port in spec.ports:
            if port.published in owner:
                raise ManifestError(child(child("services", spec.name), "ports"), port.published,
                                    f"published port {port.published} is already published by service "
                                    f"{owner[port.published]}; each published port routes to one service")
            owner[port.published] = spec.name


def spec_from_payload(name: str, payload: object) -> ServiceSpec:
    """A service payload from the network (e.g. gossip) -> spec, re-validated strictly; ManifestError if bad."""
    return read_service(name, payload, notes=None, declared=None)


def with_replicas(spec: ServiceSpec, replicas: int) -> ServiceSpec:
    """The spec scaled to `replicas` (for `shoal scale`); ManifestError for a global service or out of range."""
    field = child(child(child("services", spec.name), "deploy"), "replicas")
    if spec.mode == GLOBAL:
        raise ManifestError(field, replicas, f"service {spec.name} is global (one replica on every eligible node); "
                                             "it cannot be scaled")
    replicas = as_int(replicas, field, 0, MAX_REPLICAS)
    return dataclasses.replace(spec, deploy=dataclasses.replace(spec.deploy, replicas=replicas))
