"""The lab for end-to-end tests: one shared 4-host lab per session, and labs of a test's own.

`lab` (session): h1..h4, built on first use with `shoal lab up 4` and these labels, taken down at the end:
    h1 datacenter=west zone=a    h2 datacenter=west zone=b    h3 datacenter=east zone=a
    h4 datacenter=east zone=b disk=ssd
It is a `Lab`: `run(...)` (the `shoal lab` CLI), `env(host)` (its `lab env` exports), `podman(host, ...)`
(`podman --remote` on that host's socket), `shoal(host, ...)` (client commands against its API), `api(host)`,
`members(host)`, `pid(host)`. A test may stop, start, grow or shrink it but must leave it as it found it (every
host running, size 4, same labels); `lab.restore()` does that.
`own_lab` (function): an empty lab dir for a test that must build or remove a lab itself. Host names are
machine-wide, so the shared lab is taken down first, and every test using `own_lab` runs after every other
test of the session (see pytest_collection_modifyitems), so the shared lab is built once.
Both skip unless run as root with the lab's tools installed (`bash scripts/install.sh`), and skip rather than
destroy a lab someone else has up.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import node.lab

# The CLI under test is the code this test imported, wherever it lives (checkout or install).
CODE_ROOT = str(Path(node.lab.__file__).resolve().parents[2])
SHARED_SIZE = 4
SHARED_LABELS: Mapping[str, Mapping[str, str]] = {
    "h1": {"datacenter": "west", "zone": "a"},
    "h2": {"datacenter": "west", "zone": "b"},
    "h3": {"datacenter": "east", "zone": "a"},
    "h4": {"datacenter": "east", "zone": "b", "disk": "ssd"},
}
TOOLS = ("ip", "nsenter", "podman", "runc", "docker-registry", "busybox", "curl")
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
LAB_NAME = re.compile(r"shoal-h\d+\b")
LAB_LINK = re.compile(r": shoal-(br0|h\d+-br)[:@]")


def lab_unavailable() -> str | None:
    """Why lab tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "the lab needs root"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"the lab needs {', '.join(missing)}: run `bash scripts/install.sh` as root"
    return None


def shoal_traces() -> list[str]:
    """Every lab netns (shoal-hN) and link (shoal-br0, shoal-hN-br), and every lab route, on the machine."""
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    routes = subprocess.run(["ip", "route", "show"], capture_output=True, text=True, check=True).stdout
    found = [line.split()[0] for line in netns.splitlines() if LAB_NAME.match(line)]
    found += [line.split(":")[1].strip() for line in links.splitlines() if LAB_LINK.search(line)]
    found += [line for line in routes.splitlines() if line.startswith("198.19.")]
    return found


def index(host: str) -> int:
    return int(host.removeprefix("h"))


@dataclass
class Lab:
    """A lab driven through the `shoal lab` CLI, with helpers for reaching its hosts."""

    dir: Path
    size: int = 0
    labels: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def hosts(self) -> list[str]:
        return [f"h{i}" for i in range(1, self.size + 1)]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ, SHOAL_LAB_DIR=str(self.dir))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (CODE_ROOT, env.get("PYTHONPATH")) if p)
        env.pop("CONTAINER_HOST", None)
        return env

    def run(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """`shoal lab ARGS`; a failure (with check) fails the test with the command's stderr."""
        done = subprocess.run([sys.executable, "-m", "node", "lab", *args], env=self._env(), capture_output=True,
                              text=True, timeout=timeout, check=False)
        if check and done.returncode != 0:
            pytest.fail(f"shoal lab {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
        return done

    def up(self, size: int, labels: Mapping[str, Mapping[str, str]] | None = None) -> None:
        """`shoal lab up SIZE` with these labels (kept by the lab for later `up`s)."""
        flags = [f"--label={h}:{k}={v}" for h, pairs in sorted((labels or {}).items()) for k, v in pairs.items()]
        self.run("up", str(size), *flags)
        self.size = size
        for host, pairs in (labels or {}).items():
            self.labels.setdefault(host, {}).update(pairs)
        self.labels = {h: kv for h, kv in self.labels.items() if index(h) <= size}

    def env(self, host: str) -> dict[str, str]:
        """The variables `shoal lab env HOST` exports (SHOAL_HOST, CONTAINER_HOST)."""
        out = {}
        for line in self.run("env", host).stdout.splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            out[key] = value
        return out

    def socket(self, host: str) -> Path:
        return self.dir / host / "podman.sock"

    def podman(self, host: str, *args: str, check: bool = True, timeout: float = 120
               ) -> subprocess.CompletedProcess[str]:
        """`podman --remote ARGS` against HOST's podman service (from the root namespace, as a client would)."""
        env = {k: v for k, v in os.environ.items() if k != "CONTAINER_HOST"}
        argv = ["podman", "--remote", "--url", f"unix://{self.socket(host)}", *args]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        if check and done.returncode != 0:
            pytest.fail(f"podman {' '.join(args)} on {host} exited {done.returncode}:\n{done.stderr}")
        return done

    def exec(self, host: str, *argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`shoal lab exec HOST -- ARGV`: ARGV in HOST's network namespace, with HOST's podman config."""
        return self.run("exec", host, "--", *argv, check=check, timeout=timeout)

    def shoal(self, host: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """A client command (`shoal ARGS`) against HOST's API."""
        return subprocess.run([sys.executable, "-m", "node", "--host", self.api(host), *args], env=self._env(),
                              capture_output=True, text=True, timeout=timeout, check=False)

    def api(self, host: str) -> str:
        return f"http://198.18.0.{10 + index(host)}:7947"

    def address(self, host: str) -> str:
        return f"198.18.0.{10 + index(host)}"

    def members(self, host: str) -> dict[str, str]:
        """name -> status as HOST's agent reports it."""
        with HTTP.open(f"{self.api(host)}/v1/members", timeout=2) as response:
            return {m["name"]: m["status"] for m in json.loads(response.read())}

    def pid(self, host: str) -> int:
        """The pid of HOST's agent, as the lab recorded it."""
        return int((self.dir / host / "agent.pid").read_text())

    def podman_pid(self, host: str) -> int:
        """The pid of HOST's podman API service, as the lab recorded it."""
        return int((self.dir / host / "podman.pid").read_text())


@dataclass
class SharedLab(Lab):
    """The session's lab; `restore()` puts it back to four running hosts with the shared labels."""

    built: bool = False

    def ensure(self) -> None:
        if not self.built:
            traces = shoal_traces()
            if traces:
                pytest.skip(f"a shoal lab is already up on this machine ({traces}); `shoal lab down` first")
            self.up(SHARED_SIZE, SHARED_LABELS)
            self.built = True

    def restore(self) -> None:
        self.up(SHARED_SIZE, SHARED_LABELS)

    def down(self) -> None:
        if self.built:
            self.run("down", check=False)
            self.built = False


@pytest.fixture(scope="session")
def _shared_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedLab]:
    shared = SharedLab(tmp_path_factory.mktemp("shared") / "lab")
    try:
        yield shared
    finally:
        shared.down()


@pytest.fixture(scope="session")
def lab(_shared_lab: SharedLab) -> SharedLab:
    """The shared 4-host lab (see the module docstring), built on first use."""
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    _shared_lab.ensure()
    return _shared_lab


@pytest.fixture
def own_lab(_shared_lab: SharedLab, tmp_path: Path) -> Iterator[Lab]:
    """An empty lab dir of this test's own (build it with `own_lab.up(N)`); taken down afterwards."""
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    _shared_lab.down()
    traces = shoal_traces()
    if traces:
        pytest.skip(f"a shoal lab is already up on this machine ({traces}); `shoal lab down` first")
    own = Lab(tmp_path / "lab")
    try:
        yield own
    finally:
        own.run("down", check=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that take the shared lab down (they use `own_lab`) run after all others, in their order."""
    own = [item for item in items if "own_lab" in getattr(item, "fixturenames", ())]
    if own:
        rest = [item for item in items if "own_lab" not in getattr(item, "fixturenames", ())]
        items[:] = rest + own
