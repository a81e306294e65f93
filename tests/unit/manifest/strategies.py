"""Hypothesis strategies: valid Compose service bodies in their many spellings (short and long forms).

Valid for Compose's schema too (test_compose_schema checks it): durations and memory sizes are strings, and no
value is null.
"""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Any

from hypothesis import strategies as st

from node.manifest import spec_from_payload

names = st.from_regex(r"[a-z]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
labels = st.from_regex(r"[a-z0-9_]([a-z0-9_.-]{0,8}[a-z0-9_])?", fullmatch=True)
images = st.builds(lambda registry, path, tag: f"{registry}{path}{tag}",
                   st.sampled_from(["", "198.18.0.1:5000/", "registry.example.com/", "localhost:5000/"]),
                   st.from_regex(r"[a-z0-9]{1,8}([._-][a-z0-9]{1,8}){0,2}(/[a-z0-9]{1,8}){0,2}", fullmatch=True),
                   st.sampled_from(["", ":1", ":latest", ":v1.2.3", "@sha256:" + "a" * 64]))
safe_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"), max_size=20)
args = st.lists(safe_text, max_size=5)
durations = st.one_of(st.integers(0, 86_400_000).map(lambda ms: f"{ms}ms"),
                      st.integers(0, 86_400).map(lambda s: f"{s}s"),
                      st.sampled_from(["0", "1m30s", "1.5s", "500ms", "1h", "10us", "2h3m4.5s"]))
ports = st.integers(1, 65535)
env_keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,8}", fullmatch=True)
env_values = st.one_of(safe_text, st.integers(-10**6, 10**6), st.booleans(),
                       st.floats(allow_nan=False, allow_infinity=False, width=32))
environments = st.one_of(st.dictionaries(env_keys, env_values, max_size=5),
                         st.dictionaries(env_keys, safe_text, max_size=5).map(
                             lambda d: [f"{k}={v}" for k, v in d.items()]))


def _optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


def _port(published: int, target: int, long: bool) -> object:
    return {"target": target, "published": published, "protocol": "tcp"} if long else f"{published}:{target}"


port_lists = st.lists(st.tuples(ports, ports, st.booleans()), max_size=4, unique_by=lambda p: p[0]).map(
    lambda items: [_port(*item) for item in items])
updates = _optional(parallelism=st.integers(0, 1000), delay=durations, monitor=durations,
                    max_failure_ratio=st.floats(0, 1), order=st.sampled_from(["stop-first", "start-first"]),
                    failure_action=st.sampled_from(["pause", "continue"]))
constraints = st.builds(lambda attr, op, value: f"{attr} {op} {value}",
                        st.one_of(st.just("node.id"), st.just("node.name"), labels.map(lambda k: f"node.labels.{k}")),
                        st.sampled_from(["==", "!="]), labels)
cpus = st.one_of(st.floats(0.01, 1024), st.integers(1, 1024), st.sampled_from(["0.5", "2", "0.25"]))
memory = st.one_of(st.integers(1, 2**40).map(str), st.integers(1, 1024).map(lambda n: f"{n}M"),
                   st.sampled_from(["512k", "64mb", "1.5g", "1GiB", "100b", "1t"]))
resources = _optional(limits=_optional(cpus=st.just(1024), memory=st.just("1T")),
                      reservations=_optional(cpus=cpus, memory=memory))
probe_actions = st.one_of(
    st.builds(lambda port, path: {"http_get": {"port": port, "path": path}}, ports,
              st.from_regex(r"/[a-z0-9/._-]{0,10}", fullmatch=True)),
    st.builds(lambda port: {"tcp_socket": {"port": port}}, ports),
    st.builds(lambda command: {"exec": {"command": command}}, st.lists(safe_text, min_size=1, max_size=3)))
probes = st.builds(lambda action, rest: {**action, **rest}, probe_actions,
                   _optional(period=st.sampled_from(["100ms", "1s", "10s"]), timeout=st.sampled_from(["1ms", "1s"]),
                             failure_threshold=st.integers(1, 100), initial_delay=durations))
canaries = st.builds(lambda weight, image, rest: {"weight": weight, "image": image, **rest},
                     st.one_of(st.floats(0.001, 100), st.integers(1, 100)), images,
                     _optional(command=args, environment=environments))
blue_greens = st.builds(lambda image, rest: {"image": image, **rest}, images,
                        _optional(command=args, environment=environments, active=st.sampled_from(["blue", "green"])))
healthchecks = _optional(
    test=st.one_of(st.lists(safe_text, min_size=1, max_size=3).map(lambda a: ["CMD", *a]),
                   safe_text.filter(bool), st.just(["NONE"])),
    interval=st.sampled_from(["1ms", "2s", "1m"]), timeout=st.sampled_from(["1s", "30s"]),
    retries=st.integers(1, 100), start_period=durations)
deploys = st.one_of(
    _optional(mode=st.just("replicated"), replicas=st.integers(0, 1000),
              placement=_optional(constraints=st.lists(constraints, max_size=3),
                                  preferences=st.lists(labels, max_size=3, unique=True).map(
                                      lambda keys: [{"spread": f"node.labels.{k}"} for k in keys]),
                                  max_replicas_per_node=st.integers(0, 1000)),
              update_config=updates, rollback_config=updates, resources=resources,
              restart_policy=_optional(condition=st.sampled_from(["none", "on-failure", "any"]), delay=durations,
                                       max_attempts=st.integers(0, 1000), window=durations)),
    st.just({"mode": "global"}))
_bodies = st.builds(
    lambda image, rest: {"image": image, **rest}, images,
    _optional(command=st.one_of(args, st.sampled_from(["httpd -f -p 8080", "sh -c 'echo hi'"])),
              environment=environments, ports=port_lists,
              expose=st.lists(st.one_of(ports, ports.map(str), ports.map(lambda p: f"{p}/tcp")), max_size=3),
              networks=st.lists(names, min_size=1, max_size=3, unique=True),
              deploy=deploys, healthcheck=healthchecks,
              **{"x-shoal": st.builds(lambda rest, variant: {**rest, **variant},
                                      _optional(readiness=probes, liveness=probes, proxy_protocol=st.booleans()),
                                      st.one_of(_optional(canary=canaries),
                                                _optional(blue_green=blue_greens)))}))


def _cidr(address: int, prefix: int, bare: bool) -> str:
    network = IPv4Network((address, prefix), strict=False)
    return str(network.network_address) if prefix == 32 and bare else str(network)


cidrs = st.builds(_cidr, st.integers(0, 2**32 - 1), st.integers(0, 32), st.booleans())


@st.composite
def _with_policy(draw: st.DrawFn, body: dict[str, Any]) -> dict[str, Any]:
    """x-shoal allow and ingress that fit the body: rule ports among its own, networks among its own (so a
    manifest declaring the body's networks declares them), ingress only with a published port."""
    spec = spec_from_payload("web", body)
    own = sorted({p.target for p in spec.ports} | set(spec.expose))
    source = st.one_of(names.map(lambda n: {"service": n}), cidrs.map(lambda c: {"cidr": c}),
                       st.sampled_from(spec.networks).map(lambda n: {"network": n}))
    ports = st.lists(st.sampled_from(own), max_size=3) if own else st.just([])
    rule = st.builds(lambda src, p: {"from": src, **({"ports": p} if p else {})}, source, ports)
    policy: dict[str, Any] = draw(_optional(allow=st.lists(rule, max_size=4)))
    if spec.ports and draw(st.booleans()):
        policy["ingress"] = {"allow": draw(st.lists(cidrs, max_size=3))}
    return {**body, "x-shoal": {**body.get("x-shoal", {}), **policy}} if policy else body


service_bodies = _bodies.flatmap(_with_policy)
