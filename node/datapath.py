"""Where the proxy runs: the data plane talks to it through `DataPath`, in the agent's process or in its own.

Role: `DataPath` is what node.dataplane needs of a proxy: `update(table)` (level-triggered, the whole table) and
`admit_by(admission)` (the network policies to apply to new connections). `InlineDataPath` runs node.proxy on the
agent's own event loop; node.proxyprocess.ProxyProcess runs it in a process of its own. Both are async context
managers: leaving the block closes every listener and connection.
Boundary: no decisions; the table and the admission are made elsewhere (node.traffic, node.policykeeper).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from gossip.clock import Clock
from node.admission import Admission
from node.proxy.config import ProxyConfig
from node.proxy.model import Address, Route
from node.proxy.proxy import Proxy

Routes = Mapping[tuple[str, int], Route]
"""The proxy's table as node.traffic builds it (Proxy.update's argument)."""


class DataPath(Protocol):
    async def update(self, table: Routes) -> None: ...

    def admit_by(self, admission: Admission) -> None: ...


OpenDataPath = AbstractAsyncContextManager[DataPath]


class InlineDataPath:
    """node.proxy on this event loop. Until `admit_by` is first called every connection is admitted."""

    def __init__(self, *, clock: Clock, config: ProxyConfig | None = None) -> None:
        self._proxy = Proxy(clock=clock, config=config, admit=self._admit)
        self._admission: Admission | None = None

    async def __aenter__(self) -> InlineDataPath:
        await self._proxy.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._proxy.__aexit__(*exc_info)

    async def update(self, table: Routes) -> None:
        await self._proxy.update(table)

    def admit_by(self, admission: Admission) -> None:
        self._admission = admission

    def _admit(self, client_ip: str, service: str, listen: Address) -> bool:
        admission = self._admission
        return admission is None or admission.admit(client_ip, service, listen)
