"""The tools the lab needs on this machine, and the host install script that provides them.

Role: `ensure_tools` checks that every program the lab runs is present and, when one is missing, runs the
host install script shipped in this package (host-install.sh: apt packages and podman's machine-wide
config), its progress streamed to stderr, then checks again.
Boundary: runs the script only when something is missing (as root: the CLI checks that first); never
edits anything itself.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from node.lab.errors import LabError

SCRIPT = Path(__file__).with_name("host-install.sh")
INSTALL_S = 900.0  # apt may wait up to 600 s for another apt's lock, then downloads and unpacks ~35 MB
# program -> the Debian package that provides it
TOOLS: Mapping[str, str] = {
    "ip": "iproute2",
    "nsenter": "util-linux",
    "sysctl": "procps",
    "podman": "podman",
    "runc": "runc",
    "docker-registry": "docker-registry",
    "busybox": "busybox-static",
}
# podman looks for its network backend in these directories (containers.conf helper_binaries_dir default)
HELPER_DIRS = ("/usr/local/libexec/podman", "/usr/local/lib/podman", "/usr/libexec/podman", "/usr/lib/podman")


def missing(tools: Iterable[str] = TOOLS, helper_dirs: Iterable[str] = HELPER_DIRS) -> list[str]:
    """The programs of `tools` not on PATH, and "netavark" if podman's network backend is absent."""
    gone = [tool for tool in tools if shutil.which(tool) is None]
    if not any(Path(d, "netavark").exists() for d in helper_dirs):
        gone.append("netavark")
    return gone


def ensure_tools(report: Callable[[str], None]) -> None:
    """Run the host install script if a tool is missing; LabError if one still is afterwards."""
    lacking = missing()
    if not lacking:
        return
    report(f"{', '.join(lacking)} missing: running the host install ({SCRIPT})")
    try:
        done = subprocess.run(["bash", str(SCRIPT)], stdout=sys.stderr, check=False, timeout=INSTALL_S)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"the host install ({SCRIPT}) did not finish within {INSTALL_S:g} s") from exc
    still = missing()
    if done.returncode != 0 or still:
        packages = sorted({TOOLS.get(tool, tool) for tool in still or lacking})
        raise LabError(
            f"the host install ({SCRIPT}) exited {done.returncode}"
            + (f" and {', '.join(still)} is still missing" if still else "")
            + f"; install {' '.join(packages)} (e.g. `bash {SCRIPT}` as root) and retry"
        )
