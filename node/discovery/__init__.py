"""Service discovery: a stable VIP per service and the agent's DNS responder that answers service names with it.

Modules: vip (pure: names -> VIPs), answer (pure: one DNS query -> answer/forward/drop; dnslib's only module),
upstream (forwarding to the host's resolvers), resolvconf (which resolvers), dns (the UDP+TCP responder).
docs/discovery.md is the reference.
"""

from node.discovery.dns import DnsServer, Forwarder
from node.discovery.resolvconf import nameservers, upstreams
from node.discovery.upstream import Upstream
from node.discovery.vip import LAB_DNS, LAB_RANGE, VipRange, VipTable, assign_vips

__all__ = ["LAB_DNS", "LAB_RANGE", "DnsServer", "Forwarder", "Upstream", "VipRange", "VipTable", "assign_vips",
           "nameservers", "upstreams"]
