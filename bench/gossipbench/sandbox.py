"""One bench run's private world: a temp directory, a network namespace, and every process the run started.

`run_sandboxed` creates the namespace, moves the bench process into it, runs the bench's coroutine, and always
cleans up, on success, error, Ctrl-C or SIGTERM alike: every process in the registry is stopped by PID
(SIGCONT + SIGTERM, then SIGKILL), the namespace is deleted (its nft table with it) and the directory removed,
after copying agent logs if asked. Traffic never leaves the namespace's own loopback.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from gossipbench.fleet import ProcessRegistry
from gossipbench.netns import Namespace
from gossipbench.report import log


@dataclass
class Sandbox:
    workdir: Path
    ns: Namespace
    registry: ProcessRegistry


def preflight(program: str, binaries: list[str]) -> None:
    """Exit with a clear message unless we are root and every binary is on PATH."""
    if os.geteuid() != 0:
        sys.exit(f"{program}: needs root (network namespace)")
    if missing := [b for b in binaries if shutil.which(b) is None]:
        sys.exit(f"{program}: missing {', '.join(missing)} (apt-get install iproute2 nftables serf)")


def run_sandboxed(prefix: str, body: Callable[[Sandbox], Awaitable[None]], *, keep_logs: str | None = None) -> int:
    """Run `body` in a fresh sandbox; 130 if interrupted (Ctrl-C, SIGTERM), else 0. Exceptions propagate after
    the cleanup."""
    sandbox = Sandbox(Path(tempfile.mkdtemp(prefix=f"{prefix}-")), Namespace(f"{prefix}-{os.getpid():x}"),
                      ProcessRegistry())

    async def main() -> None:
        task = asyncio.current_task()
        if task is not None:  # also when the shell started us with SIGINT ignored (a background job)
            for sig in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().add_signal_handler(sig, task.cancel)
        await body(sandbox)

    try:
        sandbox.ns.create()
        sandbox.ns.enter()
        asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        log("interrupted: stopping agents, reporting what was measured")
        return 130
    finally:
        sandbox.registry.stop_all()
        sandbox.ns.delete()
        if keep_logs:
            _keep_logs(sandbox.workdir, keep_logs)
        shutil.rmtree(sandbox.workdir, ignore_errors=True)
    return 0


def _keep_logs(workdir: Path, dest: str) -> None:
    target = Path(dest)
    for path in workdir.glob("*/*.log"):
        (target / path.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target / path.parent.name / path.name)
    log(f"agent logs copied to {target}")
