"""The lab directory: where the lab keeps what it must remember between commands.

Role: layout of $SHOAL_LAB_DIR (default /var/tmp/shoal-lab) and small reads and writes in it:
  lab.json        {"size": N, "labels": {"h1": {"k": "v"}}}: the lab the operator asked for
  token           the cluster join token printed by `shoal init` on h1 (mode 0600)
  hI/data/        the agent's data dir;  hI/agent.log  its stdout+stderr;  hI/agent.pid  its pid
  hI/joined       present once the data dir holds a cluster identity, so restarts need no --join
  hI/containers.conf, storage.conf, registries.conf   the host's podman config (podmanconf.py)
  hI/storage/ run/ tmp/ networks/ volumes/           the host's podman state; hI/podman.sock its API service
  hI/podman.pid, podman.log                          that service's pid and output
  registry/       the image registry: config.yml, data/, registry.pid, registry.log
  builder/        a podman of its own that builds the demo images (removed once they are pushed)
Boundary: files only; no processes, no network. The directory itself is the lock for mutating commands.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from node.lab.errors import LabError
from node.lab.podmanconf import PodmanPaths

ENV_VAR = "SHOAL_LAB_DIR"
DEFAULT_DIR = "/var/tmp/shoal-lab"
_HOST_DIR = re.compile(r"h([1-9][0-9]{0,2})")


@dataclass
class LabConfig:
    """The lab the operator asked for with the last `lab up`."""

    size: int = 0
    labels: dict[int, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class LabDir:
    root: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LabDir:
        return cls(Path(environ.get(ENV_VAR) or DEFAULT_DIR).absolute())

    def host_dir(self, index: int) -> Path:
        return self.root / f"h{index}"

    def data_dir(self, index: int) -> Path:
        return self.host_dir(index) / "data"

    def log_file(self, index: int) -> Path:
        return self.host_dir(index) / "agent.log"

    def pid_file(self, index: int) -> Path:
        return self.host_dir(index) / "agent.pid"

    def joined_marker(self, index: int) -> Path:
        return self.host_dir(index) / "joined"

    def podman(self, index: int) -> PodmanPaths:
        """Host `index`'s podman: config, storage, run state and API socket, all in its host dir."""
        return PodmanPaths(self.host_dir(index))

    @property
    def builder(self) -> PodmanPaths:
        """The podman that builds the demo images, apart from every host's and from the machine's."""
        return PodmanPaths(self.root / "builder")

    @property
    def registry_dir(self) -> Path:
        return self.root / "registry"

    @property
    def token_file(self) -> Path:
        return self.root / "token"

    @property
    def config_file(self) -> Path:
        return self.root / "lab.json"

    def exists(self) -> bool:
        return self.config_file.exists()

    def host_indices(self) -> set[int]:
        """Indices of the hI/ dirs present (a half-built lab may have dirs lab.json does not count)."""
        if not self.root.is_dir():
            return set()
        found = (_HOST_DIR.fullmatch(p.name) for p in self.root.iterdir() if p.is_dir())
        return {int(m.group(1)) for m in found if m}

    def read_config(self) -> LabConfig:
        try:
            raw = json.loads(self.config_file.read_text())
        except FileNotFoundError:
            return LabConfig()
        except (OSError, ValueError) as exc:
            raise LabError(f"cannot read {self.config_file}: {exc}") from exc
        labels = {int(name[1:]): dict(pairs) for name, pairs in raw.get("labels", {}).items()}
        return LabConfig(size=int(raw.get("size", 0)), labels=labels)

    def write_config(self, config: LabConfig) -> None:
        raw = {
            "size": config.size,
            "labels": {f"h{i}": dict(sorted(kv.items())) for i, kv in sorted(config.labels.items()) if kv},
        }
        _write_atomic(self.config_file, json.dumps(raw, indent=2) + "\n")

    def read_token(self) -> str | None:
        try:
            return self.token_file.read_text().strip() or None
        except FileNotFoundError:
            return None

    def write_token(self, token: str) -> None:
        _write_atomic(self.token_file, token + "\n", mode=0o600)

    def read_pid(self, index: int) -> int | None:
        try:
            return int(self.pid_file(index).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def write_pid(self, index: int, pid: int) -> None:
        _write_atomic(self.pid_file(index), f"{pid}\n")

    def prepare_host(self, index: int) -> None:
        self.data_dir(index).mkdir(parents=True, exist_ok=True)

    def remove_host(self, index: int) -> None:
        shutil.rmtree(self.host_dir(index), ignore_errors=True)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialise mutating lab commands: a second `lab up` waits for the first instead of racing it."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write via a temp file and rename, so a crash never leaves a half-written pid or token."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)
