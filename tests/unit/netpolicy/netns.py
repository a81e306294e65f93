"""Private network namespaces for root tests: created with `ip netns add`, always deleted afterwards.

Names start with `np-test-` and carry the pid, so they never collide with the lab's hosts (`shoal-h*`) or a
parallel run, and a leftover is recognisable. Nothing here touches a namespace it did not create.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

_COUNT = itertools.count()

needs_root_nft = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("nft") is None or shutil.which("ip") is None,
    reason="needs root, nftables and iproute2")


@contextlib.contextmanager
def private_netns() -> Iterator[str]:
    """A fresh, empty network namespace's name; deleted (with everything in it) when the block ends."""
    name = f"np-test-{os.getpid()}-{next(_COUNT)}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, timeout=30)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True, timeout=30)


def run_in(netns: str, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", netns, *argv], input=stdin, capture_output=True, text=True,
                          timeout=60, check=False)
