"""The CLI's HTTP client for one node's API (aiohttp's client side, in this one module).

Failures map onto SPEC.md's exit codes: a refusal from the node (4xx/5xx) is 1, no answer at all is 3.
"""

from __future__ import annotations

import asyncio
import io
import urllib.parse
from typing import Any

import aiohttp

DEFAULT_HOST = "http://127.0.0.1:7947"
TIMEOUT_S = 10.0


class ClientError(Exception):
    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def request(host: str, method: str, path: str, body: Any = None, *, data: bytes | None = None,
            params: list[tuple[str, str]] | None = None, headers: dict[str, str] | None = None) -> Any:
    """One API call: `body` is sent as JSON, `data` as it is (a manifest); returns the decoded JSON answer."""
    host = checked_host(host)
    options: dict[str, Any] = {"params": params or [], "headers": headers or {}}
    options.update({"json": body} if data is None else {"data": io.BytesIO(data)})  # a stream: no 1 MiB copy
    return asyncio.run(_request(host.rstrip("/"), method, path, options))


def checked_host(host: str) -> str:
    """`host` if it is an http(s) URL with a host name; a usage error (exit 2) naming the fix otherwise. aiohttp
    would raise its own error for, say, `127.0.0.1:7947` (no scheme), which none of its connection errors covers."""
    try:
        parts = urllib.parse.urlsplit(host)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # an unclosed [IPv6 bracket, or a port out of range (.port raises)
        usable = False
    if not usable:
        raise ClientError(2, f"--host: {host!r} is not a URL like {DEFAULT_HOST} (http:// or https://, then the "
                             "node's address and API port)")
    return host


async def _request(host: str, method: str, path: str, options: dict[str, Any]) -> Any:
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, \
                session.request(method, host + path, **options) as response:
            answer = await _payload(response)
    except (aiohttp.ClientConnectionError, TimeoutError) as exc:
        raise ClientError(3, f"no answer from {host}: {exc or type(exc).__name__} "
                             "(is the agent running? set SHOAL_HOST or --host)") from None
    except aiohttp.InvalidURL:
        raise ClientError(2, f"--host: {host!r} is not a URL like {DEFAULT_HOST}") from None
    if response.status >= 400:
        raise ClientError(1, _error_text(response.status, answer))
    return answer


async def _payload(response: aiohttp.ClientResponse) -> Any:
    try:
        return await response.json(content_type=None)
    except ValueError:
        return {"error": {"message": (await response.text())[:200]}}


def _error_text(status: int, payload: Any) -> str:
    err = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(err, dict):
        field = f" (field {err['field']})" if err.get("field") else ""
        return f"error {status}: {err.get('message', 'request refused')}{field}"
    return f"error {status}: request refused"
