"""One Compose service body -> ServiceSpec: the name, ports, expose, networks, healthcheck, and the assembly.

image and environment are read by container.py, deploy and x-shoal by deploy.py and xshoal.py; this module
reads the rest, assembles the spec and checks its canonical size. It serves a manifest (warnings collected,
networks checked against the declared ones) and a payload from the network (strict: `notes=None`,
`declared=None`). Pure: data in, a spec or a ManifestError out.
"""

from __future__ import annotations

from collections.abc import Collection

from node.manifest.container import read_environment, read_image
from node.manifest.deploy import read_deploy
from node.manifest.errors import ManifestError, ManifestWarning, child, show
from node.manifest.fields import Notes, as_args, as_bool, as_int, as_list, as_mapping, as_port, as_str, read_object
from node.manifest.keys import HEALTHCHECK, PORT, SERVICE, SERVICE_NETWORK
from node.manifest.limits import MAX_NAME_CHARS, MAX_NETWORKS, MAX_PAYLOAD_BYTES, MAX_PORTS, MAX_RETRIES
from node.manifest.model import Healthcheck, Port, ServiceSpec
from node.manifest.names import NAME, NAME_RULE, NETWORK_NAME, NETWORK_RULE
from node.manifest.payload import spec_bytes
from node.manifest.policy import Facts
from node.manifest.units import read_duration_s
from node.manifest.xshoal import read_x_shoal

_TEST_KINDS = ("CMD", "CMD-SHELL", "NONE")


def read_service(name: object, body: object, *, notes: Notes, declared: Collection[str] | None,
                 services: Collection[str] | None = None) -> ServiceSpec:
    """A service body -> spec. declared: the top-level network names (None: any well-formed name); services:
    the manifest's service names, which x-shoal allow rules are checked against (None: not checked)."""
    field = child("services", str(name))
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ManifestError(field, name, f"service name {show(name)} is not {NAME_RULE}")
    keys = read_object(body, field, SERVICE, notes)
    if "image" not in keys:
        raise ManifestError(child(field, "image"), None, "is required, e.g. image: 198.18.0.1:5000/app:1")
    at = {key: child(field, key) for key in SERVICE.supported}
    ports = read_ports(keys.get("ports", []), at["ports"], notes)
    expose = read_expose(keys.get("expose", []), at["expose"])
    facts = Facts(ports=frozenset({p.target for p in ports} | set(expose)), published=bool(ports),
                  declared=declared, services=services)
    spec = ServiceSpec(
        name=name,
        image=read_image(keys["image"], at["image"]),
        command=as_args(keys["command"], at["command"]) if "command" in keys else None,
        environment=read_environment(keys.get("environment", {}), at["environment"]),
        ports=ports,
        expose=expose,
        networks=read_networks(keys.get("networks", ["default"]), at["networks"], notes, declared),
        deploy=read_deploy(keys.get("deploy"), at["deploy"], notes),
        healthcheck=read_healthcheck(keys["healthcheck"], at["healthcheck"], notes) if "healthcheck" in keys else None,
        x_shoal=read_x_shoal(keys.get("x-shoal"), at["x-shoal"], notes, facts),
    )
    size = len(spec_bytes(spec))
    if size > MAX_PAYLOAD_BYTES:
        raise ManifestError(field, None, f"the service's canonical form is {size} bytes; the limit is "
                                         f"{MAX_PAYLOAD_BYTES} (32 KiB): shorten its environment or command")
    return spec


def read_ports(value: object, field: str, notes: Notes) -> tuple[Port, ...]:
    ports = [_port(item, child(field, i), notes) for i, item in enumerate(as_list(value, field, max_items=MAX_PORTS))]
    seen: set[int] = set()
    for i, port in enumerate(ports):
        if port.published in seen:
            raise ManifestError(child(field, i), port.published, f"published port {port.published} is listed twice")
        seen.add(port.published)
    return tuple(sorted(ports, key=lambda p: p.published))


def _port(value: object, field: str, notes: Notes) -> Port:
    """"8080:80", "8080:80/tcp", or {target, published, protocol, mode}."""
    if isinstance(value, dict):
        keys = read_object(value, field, PORT, notes)
        if "target" not in keys:
            raise ManifestError(child(field, "target"), None, "is required: the container's port")
        if "published" not in keys:
            raise _bare(field, value, show(keys["target"]))
        if keys.get("mode", "ingress") != "ingress":
            raise ManifestError(child(field, "mode"), keys["mode"], f"{show(keys['mode'])} is not supported by Shoal "
                                "(yet): a published port is open on every node (mode: ingress)")
        _protocol(keys.get("protocol", "tcp"), child(field, "protocol"))
        return Port(as_port(keys["published"], child(field, "published")),
                    as_port(keys["target"], child(field, "target")))
    if isinstance(value, int) and not isinstance(value, bool):
        raise _bare(field, value, str(value))
    text = as_str(value, field, max_chars=64, what="a port mapping 'PUBLISHED:TARGET' or {target, published}")
    spec, _, protocol = text.partition("/")
    _protocol(protocol or "tcp", field)
    parts = spec.split(":")
    if len(parts) == 1:
        raise _bare(field, value, spec)
    if len(parts) > 2:
        raise ManifestError(field, value, f"{show(text)} binds a host address; not supported by Shoal (yet): a "
                                          "published port listens on every address of every node; write 'P:T'")
    if "-" in spec:
        raise ManifestError(field, value, f"{show(text)} is a port range; not supported by Shoal (yet): list each port")
    return Port(as_port(parts[0], field), as_port(parts[1], field))


def _bare(field: str, value: object, target: str) -> ManifestError:
    return ManifestError(field, value, f"{show(value)} has no published port; to publish it on every node write "
                                       f"'{target}:{target}' (published:target), or list it under expose to make "
                                       "it reachable only by other services")


def _protocol(value: object, field: str) -> None:
    if value in ("udp", "sctp"):
        raise ManifestError(field, value, f"{show(value)} is not supported: Shoal's proxy is TCP only (use tcp)")
    if value != "tcp":
        raise ManifestError(field, value, f"{show(value)} is not a protocol Shoal supports; allowed: tcp")


def read_expose(value: object, field: str) -> tuple[int, ...]:
    """Ports as ints or strings ("9090", "9090/tcp"); sorted and de-duplicated (the order means nothing)."""
    ports = set()
    for i, item in enumerate(as_list(value, field, max_items=MAX_PORTS)):
        at = child(field, i)
        if isinstance(item, str) and "/" in item:
            item, _, protocol = item.partition("/")
            _protocol(protocol, at)
        if isinstance(item, str) and "-" in item:
            raise ManifestError(at, item, f"{show(item)} is a port range; not supported by Shoal (yet): list each port")
        ports.add(as_port(item, at))
    return tuple(sorted(ports))


def read_networks(value: object, field: str, notes: Notes, declared: Collection[str] | None) -> tuple[str, ...]:
    """A list of names or a mapping {name: null | {}}; each must be declared at top level (or be `default`)."""
    if isinstance(value, dict):
        names = list(as_mapping(value, field))
        for name, attachment in value.items():
            read_object(attachment, child(field, name), SERVICE_NETWORK, notes, null_ok=True)
    else:
        names = [as_str(item, child(field, i), max_chars=MAX_NAME_CHARS, what="a network name")
                 for i, item in enumerate(as_list(value, field, max_items=MAX_NETWORKS))]
    if not names:
        raise ManifestError(field, value, "is empty; a service joins at least one network (leave networks out "
                                          "for the implicit `default` network)")
    for i, name in enumerate(names):
        at = child(field, name if isinstance(value, dict) else i)
        if not NETWORK_NAME.fullmatch(name):
            raise ManifestError(at, name, f"network name {show(name)} is not {NETWORK_RULE}")
        if declared is not None and name != "default" and name not in declared:
            allowed = ", ".join(sorted({"default", *declared}))
            raise ManifestError(at, name, f"network {show(name)} is not declared under the top-level networks; "
                                          f"declare it (networks: {{{name}: {{}}}}) or use one of: {allowed}")
    if len(set(names)) != len(names) or len(names) > MAX_NETWORKS:
        raise ManifestError(field, value, f"must list 1 to {MAX_NETWORKS} different networks")
    return tuple(sorted(names))


def read_healthcheck(value: object, field: str, notes: Notes) -> Healthcheck:
    keys = read_object(value, field, HEALTHCHECK, notes)
    at = {key: child(field, key) for key in HEALTHCHECK.supported}
    test = _test(keys["test"], at["test"]) if "test" in keys else None
    if as_bool(keys.get("disable", False), at["disable"]):
        if test not in (None, ("NONE",)):
            raise ManifestError(at["disable"], True, "true contradicts test; remove one of them")
        test = ("NONE",)
    if test is None and notes is not None:
        # Compose keeps the image's own HEALTHCHECK then, with these timings; the agent runs only checks the
        # manifest spells out (it does not read images' HEALTHCHECK), so say that nothing will run.
        notes.append(ManifestWarning(at["test"], "missing: the image's own HEALTHCHECK is not run by Shoal, so this "
                                                 "healthcheck checks nothing; give test (e.g. [\"CMD\", \"wget\", "
                                                 "\"-q\", \"-O-\", \"http://127.0.0.1:8080/\"]) or remove it"))
    default = Healthcheck()
    return Healthcheck(
        test=test,
        interval_s=read_duration_s(keys, "interval", field, default.interval_s, min_ms=1),  # Docker's minimum: 1ms
        timeout_s=read_duration_s(keys, "timeout", field, default.timeout_s, min_ms=1),
        retries=as_int(keys.get("retries", default.retries), at["retries"], 1, MAX_RETRIES),
        start_period_s=read_duration_s(keys, "start_period", field, default.start_period_s),
    )


def _test(value: object, field: str) -> tuple[str, ...]:
    """["CMD", arg...] | ["CMD-SHELL", "line"] | ["NONE"] | "line" (= CMD-SHELL), as Compose."""
    if isinstance(value, str):
        return ("CMD-SHELL", as_str(value, field))
    test = as_args(value, field, min_items=1)
    kind, args = test[0], test[1:]
    if kind not in _TEST_KINDS:
        raise ManifestError(child(field, 0), kind, f"{show(kind)} is not one of {', '.join(_TEST_KINDS)}; e.g. "
                                                   "[\"CMD\", \"wget\", \"-q\", \"http://127.0.0.1:8080/\"]")
    if (kind == "CMD" and not args) or (kind == "CMD-SHELL" and len(args) != 1) or (kind == "NONE" and args):
        raise ManifestError(field, value, f"{kind} takes " + {"CMD": "a command and its arguments",
                                                               "CMD-SHELL": "exactly one shell command line",
                                                               "NONE": "nothing after it"}[kind])
    return test
