"""The event loop every Shoal process runs on: uvloop. The one module that imports it, so the agent (node.main)
and its data-plane process (node.proxyworker) pick the same loop without either importing the other."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    return uvloop.run(main)
