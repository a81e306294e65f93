"""HTTP GET probes with aiohttp's client: the probes' only aiohttp import.

Role: `HttpProber.get(address, port, path, timeout_s)` is one probe: a GET to the container's address, success
for a status of 200-399 (Kubernetes' rule). Redirects are not followed (a 3xx is already a success), the body is
not read, nothing is kept alive between probes (each probe proves a fresh connection, as the kubelet's do), and
no proxy from the environment is used. One session per prober, opened and closed with `async with`.
Boundary: network I/O to a container only; the result is an Outcome, never an exception.
"""

from __future__ import annotations

from types import TracebackType

import aiohttp

from node.probes.model import Outcome, Result

USER_AGENT = "shoal-probe/1"
MAX_CONNECTIONS = 64  # probes in flight at once are bounded by the prober; this is a second, looser bound


class HttpProber:
    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpProber:
        connector = aiohttp.TCPConnector(force_close=True, limit=MAX_CONNECTIONS)
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False, trust_env=False,
                                              headers={"User-Agent": USER_AGENT, "Accept": "*/*"})
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get(self, address: str, port: int, path: str, timeout_s: float) -> Outcome:
        if self._session is None:
            raise RuntimeError("HttpProber used outside `async with`")
        host = f"[{address}]" if ":" in address else address
        url = f"http://{host}:{port}{path}"
        try:
            async with self._session.get(url, allow_redirects=False,
                                         timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
                status = response.status
        except TimeoutError:
            return Outcome(Result.FAILURE, f"GET {path} on {port}: no answer within {timeout_s:g} s")
        except (aiohttp.ClientError, OSError, ValueError) as exc:  # refused, reset, not HTTP, bad URL
            return Outcome(Result.FAILURE, f"GET {path} on {port}: {exc.__class__.__name__}: {exc}")
        result = Result.SUCCESS if 200 <= status < 400 else Result.FAILURE
        return Outcome(result, f"GET {path} on {port}: HTTP {status}")
