"""This node's traffic plumbing, from its view of the cluster: each service's VIP, and where the embedded proxy
listens and forwards (DESIGN §7, §7a).

Pure: every node computes the same VIPs and routes from the same desired state and statuses.
- VIPs: node.discovery.vip over the service names; the DNS responder answers each name with its VIP.
- The proxy listens on VIP:port for every target port in `ports` and every `expose` port, so `api:80` and
  `web:80` never collide, and on each of the node's own addresses at every published port (ingress: any node
  answers). Listening on the node's addresses rather than 0.0.0.0 keeps a published port from shadowing a
  VIP listener on the same port number.
- A route's endpoints are the service's replicas that some member alive or suspect reports running and ready,
  with a container address: local and remote alike (routed container subnets, §7a). A dead member's replicas
  leave every rotation as soon as membership says dead; the proxy retries a connect that fails before then.
- A service with a canary or blue-green sides (node.workloads) has one route over both sets: a canary's replicas
  take its weight in percent of new connections, a blue-green service's inactive side is listed at weight 0
  (node.rollout.canary / bluegreen.endpoints). Variants get no VIP or name of their own.
- `x-shoal.proxy_protocol: true` makes each proxied connection open with a PROXY v2 header (the client's
  address), for services that read it.
- Two services publishing one port: the first by name keeps it, the other is reported (the API refuses such a
  manifest when it sees both; one posted to another node can still arrive).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address

from node.discovery.vip import VipRange, assign_vips
from node.manifest.model import ServiceSpec
from node.observed import NodeStatus
from node.proxy.model import Address, Endpoint, Route
from node.rollout import bluegreen, canary

RUNNING = "running"


@dataclass(frozen=True, slots=True)
class Plumbing:
    vips: Mapping[str, IPv4Address]  # service -> VIP
    table: Mapping[tuple[str, int], Route]  # the proxy's listeners, by Address (ip, port)
    problems: tuple[str, ...] = ()  # what could not be served, for the log


def plumbing(services: Sequence[ServiceSpec], statuses: Mapping[str, NodeStatus], live: Collection[str],
             vip_range: VipRange, own_ips: Sequence[str]) -> Plumbing:
    """VIPs and proxy routes for `services`; `live` names the members whose replicas may serve, `own_ips` the
    addresses published ports answer on."""
    assigned = assign_vips([s.name for s in services], vip_range)
    problems = [f"service {name}: no free VIP in {vip_range.network}" for name in assigned.unplaced]
    ready = _ready(statuses, live)
    table: dict[tuple[str, int], Route] = {}
    published: dict[int, str] = {}
    for spec in sorted(services, key=lambda s: s.name):
        vip = assigned.vips.get(spec.name)
        for port in sorted({p.target for p in spec.ports} | set(spec.expose)):
            if vip is not None:
                table[Address(str(vip), port)] = _route(spec, ready, port)
        for p in spec.ports:
            if (owner := published.setdefault(p.published, spec.name)) != spec.name:
                problems.append(f"service {spec.name}: port {p.published} is already published by {owner}")
                continue
            for ip in own_ips:
                table[Address(ip, p.published)] = _route(spec, ready, p.target)
    return Plumbing(dict(assigned.vips), table, tuple(problems))


def _ready(statuses: Mapping[str, NodeStatus], live: Collection[str]) -> dict[str, list[str]]:
    """service -> addresses of its ready replicas, sorted, each once."""
    out: dict[str, set[str]] = {}
    for node_id, status in statuses.items():
        if node_id not in live:
            continue
        for r in status.replicas:
            if r.state == RUNNING and r.ready and _is_ipv4(r.address):  # decode_status checked it; a route must
                out.setdefault(r.service, set()).add(r.address)          # never fail on one bad report anyway
    return {name: sorted(addresses) for name, addresses in out.items()}


def _route(spec: ServiceSpec, ready: Mapping[str, Sequence[str]], port: int) -> Route:
    return Route(spec.name, endpoints(spec, ready, port), spec.x_shoal.proxy_protocol)


def endpoints(spec: ServiceSpec, ready: Mapping[str, Sequence[str]], port: int) -> tuple[Endpoint, ...]:
    """The service's ready replicas, and its variant's weighted beside them."""
    own = ready.get(spec.name, ())
    if spec.x_shoal.canary is not None:
        return canary.endpoints(spec, own, ready.get(canary.canary_name(spec.name), ()), port)
    if spec.x_shoal.blue_green is not None:
        green = ready.get(bluegreen.green_name(spec.name), ())
        return bluegreen.endpoints(spec.x_shoal.blue_green, own, green, port)
    return tuple(Endpoint(ip, port) for ip in own)


def _is_ipv4(text: str) -> bool:
    try:
        IPv4Address(text)
    except ValueError:
        return False
    return True
