"""Shoal's embedded round-robin L4 (TCP) proxy (DESIGN §7): service VIPs and published ports forwarded to ready
replicas wherever they run, with weights, retries past dead replicas, draining, PROXY v2 and an admission hook.

Public face: `Proxy` (the shell: `async with Proxy(clock=...) as proxy: await proxy.update(table)`), the table's
values `Address`, `Route`, `Endpoint`, the knobs `ProxyConfig`, and the snapshot types `RouteStats`,
`EndpointStats`. Inside: model (values), select (pure rotation), table (pure diff), proxyv2 (pure header),
relay (the byte path), listener (one address), proxy (all of them), stats, config.
"""

from node.proxy.config import ProxyConfig
from node.proxy.listener import Admit
from node.proxy.model import Address, Endpoint, Route, Table
from node.proxy.proxy import Proxy
from node.proxy.stats import EndpointStats, RouteStats

__all__ = ["Address", "Admit", "Endpoint", "EndpointStats", "Proxy", "ProxyConfig", "Route", "RouteStats", "Table"]
