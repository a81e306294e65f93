"""This host's network policies: what the route keeper writes into Shoal's nft table, and what the proxy admits.

Role: the adapter between the agent's view (members, statuses, services) and netpolicy (compile, gate), with the
one rule that matters on restart: until the agent has rejoined, its view is its own alone, so the table is left as
it is (the last agent's rules keep being enforced) rather than replaced by one built from a partial view. The
agent owns the inputs; this class keeps what the proxy admits (node.admission, handed on through `on_admission`
whenever it changes) and the problems already logged.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from gossip.members import MemberState
from netpolicy.compile import compile_policies
from netpolicy.gate import Gate
from node.admission import Admission
from node.manifest.model import ServiceSpec
from node.observed import NodeStatus
from node.policies import endpoints_of, policies_of
from node.routekeeper import Inputs, peers
from node.schedule import PLACEABLE

log = logging.getLogger("shoal.agent")

Counters = Callable[[], Awaitable[list[dict[str, object]]]]


class PolicyKeeper:
    def __init__(self, me: str, service_range: str | None, counters: Counters | None,
                 on_admission: Callable[[Admission], None] | None = None) -> None:
        self._me = me
        self._counters = counters  # hostnet.policy_counters: this host's rule counters
        self._on_admission = on_admission
        self.admission = Admission(ipaddress.ip_network(service_range) if service_range is not None else None)
        """The proxy's view of the network policies: admits everyone until the first compile."""
        self._problems: tuple[str, ...] = ()

    def route_inputs(self, own: str | None, joined: bool, members: Sequence[MemberState],
                     statuses: dict[str, NodeStatus], specs: Callable[[], list[ServiceSpec]]) -> Inputs:
        """Routes to the peers' container subnets, and Shoal's table with this host's network policies (None with
        keep=True: leave the table as it is)."""
        found = peers(self._me, members, statuses)
        if own is None or not joined:
            return own, found, None, True
        live = [m for m in members if m.status in PLACEABLE]
        try:
            compiled = compile_policies(policies_of(specs()), endpoints_of(statuses, {m.node for m in live}),
                                        own_subnet=own, cluster_subnets=[p.subnet for p in found],
                                        members=[m.addr[0] for m in live])
        except ValueError as exc:  # never expected (inputs are validated); keep the last table rather than crash
            log.error("cannot compile network policies", extra={"fields": {"error": exc}})
            return own, found, None, True
        if compiled.problems != self._problems:
            for problem in compiled.problems:
                log.warning("network policy input left out", extra={"fields": {"problem": problem}})
            self._problems = compiled.problems
        self._admit_by(Gate.of(compiled.ruleset))
        return own, found, compiled.ruleset, False

    async def counters(self) -> list[dict[str, object]]:
        """Packets and bytes per rule of this host's network policies (`shoal node inspect`); [] if none."""
        if self._counters is None:
            return []
        try:
            return await self._counters()
        except Exception as exc:  # the table may be mid-replace or nft missing: the rest of inspect still answers
            log.warning("cannot read policy counters", extra={"fields": {"error": exc}})
            return []

    def _admit_by(self, gate: Gate) -> None:
        if gate == self.admission.gate:
            return  # most passes compile the same policies: the proxy keeps what it has
        self.admission = replace(self.admission, gate=gate)
        if self._on_admission is not None:
            self._on_admission(self.admission)
