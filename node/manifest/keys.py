"""Which Compose keys Shoal reads, which it refuses and which it ignores: the one table, object by object.

supported   read and honoured.
unsupported a Compose key that would change behaviour users rely on if it were dropped (volumes, build,
            privileged...): an error "not supported by Shoal (yet)" with the reason or the alternative.
ignored     a Compose key with no meaning in Shoal (container_name, depends_on...): a ManifestWarning, once its
            value has the shape Compose allows there (shapes.py); a value Compose refuses is an error.
nullable    the keys whose value Compose's schema lets be null (`key:` with nothing after it): read as the key
            left out. Any other supported or ignored key with a null value is an error (Compose refuses it).
required    the keys an object cannot do without (each reader checks; the table only words the empty-value fix).
Any other key is not Compose at all: an error that lists what is allowed and suggests the closest.
`x-*` keys are Compose extensions, allowed and ignored everywhere except inside x-shoal, which is ours.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

from node.manifest import shapes

Ignored = tuple[str, shapes.Shape]  # an ignored key's warning text, and the shape of the value Compose allows
_NOT_YET = "not supported by Shoal (yet)"
_RESOURCES = f"{_NOT_YET}; use deploy.resources.limits"


@dataclass(frozen=True, slots=True)
class KeyTable:
    supported: tuple[str, ...]
    unsupported: Mapping[str, str] = field(default_factory=dict)  # key -> the error's text
    ignored: Mapping[str, Ignored] = field(default_factory=dict)  # key -> (the warning's text, the value's shape)
    extensions: bool = True  # `x-*` keys allowed (and ignored)
    nullable: frozenset[str] = frozenset()  # supported or ignored keys Compose lets be null: the key left out
    required: frozenset[str] = frozenset()  # supported keys the reader requires


def _table(supported: str, unsupported: dict[str, str] | None = None, ignored: dict[str, Ignored] | None = None,
           *, extensions: bool = True, nullable: str = "", required: str = "") -> KeyTable:
    return KeyTable(tuple(supported.split()), MappingProxyType(unsupported or {}), MappingProxyType(ignored or {}),
                    extensions, frozenset(nullable.split()), frozenset(required.split()))


_T = TypeVar("_T")


def _same(reason: _T, keys: str) -> dict[str, _T]:
    return dict.fromkeys(keys.split(), reason)


TOP = _table(
    "services networks",
    {"volumes": f"{_NOT_YET}: containers are stateless so far", "secrets": _NOT_YET, "configs": _NOT_YET,
     "include": f"{_NOT_YET}; put every service in one file", "models": _NOT_YET},
    {"version": ("ignored: the Compose file version is obsolete (Compose ignores it too)", shapes.STRING),
     "name": ("ignored: Shoal has no projects; each service is known by its key under services", shapes.STRING)},
    required="services")

SERVICE = _table(
    "image command environment ports expose networks deploy healthcheck x-shoal",
    {"build": f"{_NOT_YET}: build and push the image to a registry every node can pull from, and name it in image",
     "volumes": f"{_NOT_YET}: containers are stateless so far",
     "env_file": f"{_NOT_YET}: list the variables under environment",
     "network_mode": f"{_NOT_YET}: a service joins the sandbox networks listed under networks",
     "scale": f"{_NOT_YET}: use deploy.replicas",
     "mem_limit": _RESOURCES, "mem_reservation": _RESOURCES, "cpus": _RESOURCES,
     **_same(_NOT_YET, "blkio_config cpu_count cpu_percent cpu_shares cpu_quota cpu_period cpu_rt_period "
                       "cpu_rt_runtime cpuset cap_add cap_drop cgroup cgroup_parent configs credential_spec "
                       "device_cgroup_rules devices dns dns_opt dns_search domainname entrypoint extends "
                       "external_links extra_hosts gpus group_add hostname init ipc isolation label_file links "
                       "mac_address mem_swappiness memswap_limit models oom_kill_disable oom_score_adj pid "
                       "pids_limit platform post_start pre_stop privileged profiles provider pull_policy "
                       "read_only runtime secrets security_opt shm_size stop_signal storage_opt sysctls tmpfs "
                       "ulimits use_api_socket user userns_mode uts volumes_from working_dir")},
    {"container_name": ("ignored: Shoal names each replica's container itself", shapes.CONTAINER_NAME),
     "restart": ("ignored (as by Swarm): restarts follow deploy.restart_policy", shapes.STRING),
     "depends_on": ("ignored: services start independently; gate traffic with x-shoal.readiness", shapes.DEPENDS_ON),
     "labels": ("ignored: container labels are not applied", shapes.LIST_OR_DICT),
     "annotations": ("ignored: container annotations are not applied", shapes.LIST_OR_DICT),
     "logging": ("ignored: containers log through podman's default log driver", shapes.LOGGING),
     "stop_grace_period": ("ignored: containers are stopped with podman's default 10s grace period", shapes.DURATION),
     "tty": ("ignored: no terminal is attached to a replica", shapes.BOOLEAN),
     "stdin_open": ("ignored: no terminal is attached", shapes.BOOLEAN),
     "attach": ("ignored: replicas' output is not attached", shapes.BOOLEAN),
     "develop": ("ignored: compose watch only", shapes.DEVELOP)},
    nullable="command deploy develop x-shoal",  # as Compose's schema has it (x-shoal: as any x-* key)
    required="image")

DEPLOY = _table(
    "mode replicas placement update_config rollback_config restart_policy resources",
    ignored={"labels": ("ignored: service labels are not used", shapes.LIST_OR_DICT),
             "endpoint_mode": ("ignored: Shoal routes through its proxy on every node (like vip)", shapes.STRING)})
PLACEMENT = _table("constraints preferences max_replicas_per_node")
PREFERENCE = _table("spread", required="spread")
UPDATE = _table("parallelism delay failure_action monitor max_failure_ratio order")
RESTART = _table("condition delay max_attempts window")
RESOURCES = _table("limits reservations")
LIMITS = _table("cpus memory", {"pids": _NOT_YET})
RESERVATIONS = _table("cpus memory", _same(_NOT_YET, "devices generic_resources"))
HEALTHCHECK = _table("test interval timeout retries start_period disable", {"start_interval": _NOT_YET})
PORT = _table("target published protocol mode",
              {"host_ip": f"{_NOT_YET}: a published port listens on every address of every node"},
              _same(("ignored: port metadata is not used", shapes.STRING), "name app_protocol"))
NETWORK = _table(
    "",
    _same(_NOT_YET, "driver_opts ipam internal external enable_ipv6 enable_ipv4 name"),
    {"driver": ("ignored: Shoal builds its own sandbox networks", shapes.STRING),
     "labels": ("ignored: network labels are not used", shapes.LIST_OR_DICT),
     "attachable": ("ignored: any service may join a declared network", shapes.BOOLEAN)})
SERVICE_NETWORK = _table(
    "", _same(_NOT_YET, "aliases ipv4_address ipv6_address link_local_ips mac_address driver_opts"),
    _same(("ignored: Shoal does not order networks", shapes.NUMBER), "priority gw_priority"))

# x-shoal is ours: no extensions, unknown keys are errors, and null values too (the rule of the Compose keys, though
# Compose's schema lets an x-* value be anything). A new key is a row here and a reader in xshoal.py.
X_SHOAL = _table("readiness liveness canary blue_green proxy_protocol allow ingress", extensions=False)
PROBE = _table("http_get tcp_socket exec period timeout failure_threshold success_threshold initial_delay",
               extensions=False)
HTTP_GET = _table("path port", extensions=False, required="port")
TCP_SOCKET = _table("port", extensions=False, required="port")
EXEC = _table("command", extensions=False, required="command")
CANARY = _table("image command environment weight", extensions=False, required="weight")
BLUE_GREEN = _table("image command environment active", extensions=False)
ALLOW_RULE = _table("from ports", extensions=False, required="from")
FROM = _table("service network cidr", extensions=False)
INGRESS = _table("allow", extensions=False, required="allow")
