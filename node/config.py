"""Agent configuration: command-line flags over an optional TOML file over defaults, validated up front.

Errors name the setting, the value and what is allowed, so an operator can fix a bad flag or file at once.
File format (every key optional):
    [agent]   data, name, bind, advertise, api, join = [..], token, runtime, labels = {k = "v"},
              podman_socket, subnet, service_range, dns_address
    [gossip]  profile = "lan" | "local", and any GossipConfig field (e.g. probe_interval_s = 1.0)
"""

from __future__ import annotations

import dataclasses
import ipaddress
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gossip.config import PRESETS, GossipConfig
from gossip.wire import MAX_LABELS, MAX_LABELS_BYTES, MAX_NAME_LEN, Address, labels_size

GOSSIP_PORT = 7946
API_PORT = 7947
DEFAULT_DATA = Path("/var/lib/shoal")
RUNTIMES = ("podman", "none")
DEFAULT_PODMAN_SOCKET = Path("/run/podman/podman.sock")  # rootful podman's standard API socket
# The [agent] table's keys (README "Agent config file" documents each; a test holds the two together).
AGENT_KEYS = ("data", "name", "bind", "advertise", "api", "join", "token", "runtime", "labels", "podman_socket",
              "subnet", "service_range", "dns_address")
DEFAULT_SERVICE_RANGE = "198.19.0.0/24"  # service VIPs (DESIGN §7a); a range reserved for network testing
DEFAULT_DNS_ADDRESS = "198.19.0.53"  # the agent's DNS responder, on every node's lo, given to containers


class ConfigError(ValueError):
    """A setting with a bad value; the message names the setting, the value and what is allowed."""


@dataclass(frozen=True, slots=True)
class AgentConfig:
    data_dir: Path = DEFAULT_DATA
    name: str | None = None
    bind: Address = ("0.0.0.0", GOSSIP_PORT)
    advertise: Address | None = None
    api: Address = ("127.0.0.1", API_PORT)
    join: tuple[Address, ...] = ()
    token: str | None = None
    runtime: str = "podman"
    labels: tuple[tuple[str, str], ...] = ()
    podman_socket: Path = DEFAULT_PODMAN_SOCKET  # the agent starts `podman system service` there if absent
    subnet: str | None = None  # this node's container subnet (DESIGN §7a); None = podman picks a free one
    service_range: str = DEFAULT_SERVICE_RANGE  # every node of a cluster must use the same one
    dns_address: str = DEFAULT_DNS_ADDRESS  # inside service_range, alike on every node
    gossip: GossipConfig = field(default_factory=GossipConfig.lan)


def parse_address(text: str, *, setting: str, default_port: int) -> Address:
    """'IP', 'IP:PORT' or '[v6]:PORT' -> (ip, port); ConfigError naming `setting` otherwise."""
    text = text.strip()
    if text.startswith("["):  # [v6]:port
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    port_text = port_text or str(default_port)
    try:
        ipaddress.ip_address(host)
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"{setting}: {text!r} is not IP[:PORT] (e.g. 198.18.0.11:{default_port})") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{setting}: port {port} is outside 0-65535")
    return host, port


def parse_subnet(text: str) -> str:
    """An IPv4 network of /8../28 in canonical form; ConfigError naming `subnet` otherwise."""
    try:
        net = ipaddress.IPv4Network(text.strip(), strict=True)
    except ValueError as exc:
        raise ConfigError(f"subnet: {text!r} is not an IPv4 network like 198.19.1.0/24 ({exc})") from None
    if not 8 <= net.prefixlen <= 28:
        raise ConfigError(f"subnet: {text!r} has prefix /{net.prefixlen}; use /8 to /28 (e.g. a /24 per node)")
    return str(net)


def parse_label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or len(key) > MAX_NAME_LEN or len(value) > MAX_NAME_LEN:
        raise ConfigError(f"label: {text!r} must be KEY=VALUE, each at most {MAX_NAME_LEN} characters")
    return key, value


def load_file(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"--config: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config: {path} is not valid TOML: {exc}") from None


def build(flags: dict[str, Any], file: dict[str, Any]) -> AgentConfig:
    """Merge flags (None = not given) over the file's [agent] table; validate everything."""
    unknown = set(file) - {"agent", "gossip"}
    if unknown:
        raise ConfigError(f"config file: unknown table(s) {sorted(unknown)}; allowed: [agent], [gossip]")
    agent = dict(file.get("agent", {}))
    allowed = set(AGENT_KEYS)
    if bad := set(agent) - allowed:
        raise ConfigError(f"config file: unknown [agent] key(s) {sorted(bad)}; allowed: {sorted(allowed)}")
    merged = {**agent, **{k: v for k, v in flags.items() if v not in (None, (), [])}}
    runtime = str(merged.get("runtime", "podman"))
    if runtime not in RUNTIMES:
        raise ConfigError(f"runtime: {runtime!r} is not one of {', '.join(RUNTIMES)}")
    labels = merged.get("labels", ())
    pairs = tuple(parse_label(f"{k}={v}") for k, v in labels.items()) if isinstance(labels, dict) \
        else tuple(parse_label(x) for x in _listed(labels))
    if len(pairs) > MAX_LABELS or labels_size(pairs) > MAX_LABELS_BYTES:
        raise ConfigError(f"label: at most {MAX_LABELS} labels of {MAX_LABELS_BYTES} bytes in all, got "
                          f"{len(pairs)} of {labels_size(pairs)} bytes")
    bind = parse_address(str(merged.get("bind", "0.0.0.0")), setting="bind", default_port=GOSSIP_PORT)
    # The API listens beside a specific gossip address (agents on 127.0.0.2, .3 … each get their own), and
    # on loopback only when gossip binds every interface.
    api_host = bind[0] if bind[0] not in ("0.0.0.0", "::") else "127.0.0.1"
    return AgentConfig(
        data_dir=Path(merged.get("data", DEFAULT_DATA)),
        name=merged.get("name"),
        bind=bind,
        advertise=parse_address(str(merged["advertise"]), setting="advertise", default_port=GOSSIP_PORT)
        if merged.get("advertise") else None,
        api=parse_address(str(merged.get("api", api_host)), setting="api", default_port=API_PORT),
        join=tuple(parse_address(str(j), setting="join", default_port=GOSSIP_PORT)
                   for j in _listed(merged.get("join", ()))),
        token=merged.get("token"),
        runtime=runtime,
        podman_socket=Path(merged.get("podman_socket", DEFAULT_PODMAN_SOCKET)),
        subnet=parse_subnet(str(merged["subnet"])) if merged.get("subnet") else None,
        **_service_addresses(merged),
        labels=tuple(sorted(dict(pairs).items())),
        gossip=_gossip(file.get("gossip", {})),
    )


def _service_addresses(merged: dict[str, Any]) -> dict[str, str]:
    """service_range (an IPv4 network, /16 to /28) and dns_address (inside it), or ConfigError naming them."""
    text = str(merged.get("service_range") or DEFAULT_SERVICE_RANGE)
    try:
        net = ipaddress.IPv4Network(text, strict=True)
    except ValueError as exc:
        raise ConfigError(f"service_range: {text!r} is not an IPv4 network like 198.19.0.0/24 ({exc})") from None
    if not 16 <= net.prefixlen <= 28:
        raise ConfigError(f"service_range: {text!r} has prefix /{net.prefixlen}; use /16 to /28")
    dns = str(merged.get("dns_address") or DEFAULT_DNS_ADDRESS)
    try:
        inside = ipaddress.IPv4Address(dns) in net
    except ValueError:
        raise ConfigError(f"dns_address: {dns!r} is not an IPv4 address") from None
    if not inside:
        raise ConfigError(f"dns_address: {dns} is not inside service_range {net}; pick an address in it")
    return {"service_range": str(net), "dns_address": dns}


def _listed(value: Any) -> tuple[Any, ...]:
    """A file's `join = "10.0.0.1"` or `labels = "zone=a"` means a list of one, not the string's characters."""
    return (value,) if isinstance(value, str) else tuple(value)


def _gossip(table: dict[str, Any]) -> GossipConfig:
    values = dict(table)
    profile = str(values.pop("profile", "lan"))
    if profile not in PRESETS:
        raise ConfigError(f"gossip.profile: {profile!r} is not one of {', '.join(PRESETS)}")
    base = PRESETS[profile]()
    known = {f.name for f in dataclasses.fields(GossipConfig)}
    if bad := set(values) - known:
        raise ConfigError(f"config file: unknown [gossip] key(s) {sorted(bad)}; allowed: {sorted(known)}")
    try:
        return base.replace(**values)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"config file [gossip]: {exc}") from None
