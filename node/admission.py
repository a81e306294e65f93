"""What the proxy admits: this host's network policies as one immutable value, asked once per new connection.

Role: `Admission(service_range, gate).admit(client_ip, service, listen)` is the proxy's `Admit` hook
(node.proxy.listener). A listener on a service VIP serves the service's own port (netpolicy's `admits`); one on a
node address serves a published port (`admits_ingress`). The policy keeper makes a new value whenever the
policies compile to something else, and the data plane hands it to the proxy, in this process or in the
data-plane process (it is plain data, so it crosses the pipe as it is).
Boundary: pure; the keeper decides when it changes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from netpolicy.gate import Gate
from node.proxy.model import Address

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Admission:
    service_range: Network | None  # where the VIPs live; None: every listener is a published port
    gate: Gate | None = None  # None: no policy compiled yet (the agent is still rejoining): admit everyone

    def admit(self, client_ip: str, service: str, listen: Address) -> bool:
        gate = self.gate
        if gate is None:
            return True
        if self.service_range is not None and ipaddress.ip_address(listen.ip) in self.service_range:
            return gate.admits(client_ip, service, listen.port)
        return gate.admits_ingress(client_ip, service)
