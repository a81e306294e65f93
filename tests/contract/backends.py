"""The two things the runtime contract runs against, behind one small interface.

Role: a Backend hands the contract a Runtime plus what it needs around it: an image that is present, one that
only the registry has, one that exists nowhere, a way to add a container Shoal does not own, a runtime whose
engine is down, and `inspect` to see what a container was really created with.
Boundary: FakeBackend wraps FakeRuntime; PodmanBackend wraps PodmanRuntime on the private podman of
podman_env.py and reads behind the adapter's back through the podman CLI.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from node.runtime.base import ContainerSpec, Runtime
from node.runtime.fake import FakeRuntime
from node.runtime.podman import PodmanRuntime
from tests.contract.podman_env import DEFAULT_SUBNET, IMAGE, SUBNET_POOL, PodmanEnv

# Both backends use the same names, so one test body fits both.
PULLABLE = "127.0.0.1:5000/shoal-contract:1"  # pushed to the env's registry; not in local storage
MISSING = "127.0.0.1:5000/shoal-nowhere:1"  # in no registry
# A command that keeps running and ends at once on SIGTERM (pid 1 ignores SIGTERM without a handler).
SLEEPING = ("sh", "-c", "trap 'exit 0' TERM; sleep 300 & wait")


def exiting(code: int) -> tuple[str, ...]:
    """A command that ends at once with `code`."""
    return ("sh", "-c", f"exit {code}")


def sleeping_for(seconds: int) -> tuple[str, ...]:
    """A command that ends with 0 after `seconds`, printing nothing."""
    return ("sleep", str(seconds))


NOT_FOUND = ("/no/such/program",)  # a command the container cannot find: exit 127, as a shell says


@dataclass(frozen=True)
class Inspected:
    """What the engine says a container was created with."""

    hostname: str
    env: dict[str, str]
    command: tuple[str, ...]
    memory_bytes: int  # 0: unlimited
    cpu_quota_us: int  # 0: unlimited
    cpu_period_us: int
    dns: tuple[str, ...]


class FakeBackend:
    name = "fake"

    def __init__(self) -> None:
        self.fake = FakeRuntime(clock=time.time, images={IMAGE}, registry={PULLABLE}, default_subnet=DEFAULT_SUBNET,
                                subnet_pool=SUBNET_POOL, exits=_fake_exit_code, exec_result=_fake_exec_result)
        self.runtime: Runtime = self.fake

    def add_foreign(self, name: str) -> None:
        self.fake.add_foreign(name)

    def down_runtime(self) -> Runtime:
        down = FakeRuntime(clock=time.time)
        down.down = True
        return down

    def network(self, suffix: str) -> str:
        return f"contract-{suffix}"

    def inspect(self, container_id: str) -> Inspected:
        spec = self.fake.spec_of(container_id)
        cpu_quota = round(spec.cpus * 100_000) if spec.cpus is not None else 0
        return Inspected(hostname=spec.hostname, env=dict(spec.env), command=spec.command or (),
                         memory_bytes=spec.memory_bytes or 0, cpu_quota_us=cpu_quota,
                         cpu_period_us=100_000 if cpu_quota else 0, dns=spec.dns)

    def close(self) -> None:
        pass


def _fake_exit_code(spec: ContainerSpec) -> int | None:
    """The fake runs no commands; it reads the one the contract uses to mean "exit at once with N"."""
    command = spec.command or ()
    if len(command) == 3 and command[:2] == ("sh", "-c") and command[2].startswith("exit "):
        return int(command[2].removeprefix("exit "))
    return None


def _fake_exec_result(spec: ContainerSpec, argv: tuple[str, ...], timeout_s: float) -> int | Exception:
    """The fake runs no commands; it reads the ones the contract execs (exiting, sleeping_for, NOT_FOUND)."""
    if len(argv) == 3 and argv[:2] == ("sh", "-c") and argv[2].startswith("exit "):
        return int(argv[2].removeprefix("exit "))
    if len(argv) == 2 and argv[0] == "sleep":
        return TimeoutError(f"{argv} still running after {timeout_s} s") if float(argv[1]) > timeout_s else 0
    if argv == NOT_FOUND:
        return 127
    raise AssertionError(f"the fake backend cannot tell what {argv} would do")


class PodmanBackend:
    name = "podman"

    def __init__(self, env: PodmanEnv) -> None:
        self.env = env
        self.runtime: Runtime = PodmanRuntime(env.socket)
        self._default_networks = set(env.network_names())

    def add_foreign(self, name: str) -> None:
        self.env.podman("run", "-d", "--name", name, "--label", "owner=someone-else", IMAGE, *SLEEPING)

    def down_runtime(self) -> Runtime:
        return PodmanRuntime(self.env.root / "no-service-here.sock", request_timeout_s=5.0)

    def network(self, suffix: str) -> str:
        return f"{self.env.netns}-{suffix}"

    def inspect(self, container_id: str) -> Inspected:
        attrs = json.loads(self.env.podman("inspect", "--format", "json", container_id).stdout)[0]
        config, host = attrs["Config"], attrs["HostConfig"]
        env = dict(item.split("=", 1) for item in config.get("Env") or [])
        return Inspected(hostname=config["Hostname"], env=env, command=tuple(config.get("Cmd") or ()),
                         memory_bytes=int(host.get("Memory") or 0), cpu_quota_us=int(host.get("CpuQuota") or 0),
                         cpu_period_us=int(host.get("CpuPeriod") or 0), dns=tuple(host.get("Dns") or ()))

    def close(self) -> None:
        """Back to the state every test starts from: no containers, default networks only, PULLABLE absent."""
        self.env.podman("rm", "-a", "-f", "-t", "0")
        extra = [name for name in self.env.network_names() if name not in self._default_networks]
        if extra:
            self.env.podman("network", "rm", "-f", *extra)
        self.env.podman("rmi", "-f", PULLABLE, check=False)
        for directory in (Path("/var/lib/cni/networks") / name for name in extra):
            if self.env.network_backend == "cni" and directory.is_dir():
                for lease in directory.iterdir():
                    lease.unlink()
                directory.rmdir()


Backend = FakeBackend | PodmanBackend
