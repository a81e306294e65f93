"""PodmanRuntime: the Runtime protocol over podman's libpod API (podman-py), the only module importing `podman`.

Role: translate ContainerSpec into libpod create/start, libpod's list into Container values, and every engine
error into RuntimeFailure(temporary=...) with the image or container named and the engine's own words.
Boundary: podman-py is synchronous, so each operation runs in a thread of its own (at most WORKERS at once) and
the event loop never blocks. Not asyncio's default pool (min(32, CPUs + 4) threads: 6 on two cores): a stop
blocks its thread for up to the stop timeout, and twenty of them at once left the API and the route keeper,
which share that pool, waiting (seen: a POST timing out behind 20 stops). Daemon threads, not an executor's:
an executor's threads are joined at exit, so an agent told to stop waited out every stop in flight (seen: 9.3 s).
It lists only containers labelled LABEL_SERVICE; stop/remove take ids from that list.
Ulimits, OCI runtime and storage come from the service's containers.conf (research/lab.md), never per container.
Quirks handled here (podman 4.3.1 + podman-py 5.8): list items are sparse (`.status` raises TypeError: read
attrs); a failed pull is HTTP 200 with an `error` line (podman-py then returns an Image with id None); podman-py's
pull always sends tlsVerify=true, which overrides `insecure = true` in registries.conf, so we call the endpoint
ourselves without it; podman-py ignores `nano_cpus`, so CPU limits are a CFS quota over a 100 ms period; podman-py's
exec_run has no timeout and buffers all output, so exec drives libpod's exec endpoints itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import threading
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any, TypeVar

from podman import PodmanClient
from podman.errors import APIError, NotFound

from node.runtime.base import (
    CREATED,
    EXITED,
    LABEL_SERVICE,
    PAUSED,
    REMOVING,
    RUNNING,
    STOPPING,
    UNKNOWN,
    Container,
    ContainerSpec,
    RuntimeFailure,
)

T = TypeVar("T")

CPU_PERIOD_US = 100_000  # the kernel's default CFS period; quota = cpus x period (0.01 CPUs -> the 1 ms minimum)
REQUEST_TIMEOUT_S = 60.0  # one API call; the service answers list/inspect in ms, create+start in ~0.2 s here
PULL_TIMEOUT_S = 900.0  # a large image over a slow link; the read timeout restarts with every progress line
WORKERS = 64  # engine calls in flight at once; most of them wait (a stop waits out its timeout), few use CPU
EXEC_READ_BYTES = 65536  # an exec's output is read in pieces of at most this and thrown away

# libpod state -> protocol state; "configured"/"initialized" are created-but-never-started, "stopped" is exited
# (podman reports it for a container stopped while its exit was being recorded).
_STATES = {"created": CREATED, "configured": CREATED, "initialized": CREATED, "running": RUNNING,
           "exited": EXITED, "stopped": EXITED, "paused": PAUSED, "stopping": STOPPING, "removing": REMOVING}
# Engine causes that no retry can fix. podman 4.3 answers most of them with HTTP 500, so the status alone would
# call them temporary: "image not known", "network not found", "invalid argument" (bad name or option),
# "OCI runtime ..." (command not found, memory limit below usage), a subnet already taken.
_PERMANENT_CAUSES = ("image not known", "no such image", "network not found", "invalid argument", "oci runtime",
                     "already used on the host", "invalid cidr", "invalid reference format", "must be lowercase")
# Pull errors (the stream's `error` line) that mean the image is not there for us, rather than a registry
# that is down: distribution's "manifest unknown"/"name unknown", auth refusals, signature policy rejections,
# a registry that speaks HTTP where TLS is required (a registries.conf fix, not a retry).
_PERMANENT_PULL = ("manifest unknown", "name unknown", "not found", "unauthorized", "denied", "rejected",
                   "must be lowercase", "invalid reference format", "http response to https client")
_NAME_TAKEN = "that name is already in use"
_NOT_RUNNING = "container state improper"  # podman 4.3's cause for an exec in a container that is not running
_NO_TIME = -62135596800  # Go's zero time.Time as a Unix timestamp: "never" in libpod's list


class PodmanRuntime:
    """A host's podman, through its API service on a unix socket (started by node.runtime.service)."""

    def __init__(self, socket_path: Path, *, request_timeout_s: float = REQUEST_TIMEOUT_S,
                 pull_timeout_s: float = PULL_TIMEOUT_S) -> None:
        self._socket = socket_path
        self._url = f"unix://{socket_path}"
        self._client = PodmanClient(base_url=self._url, timeout=request_timeout_s, max_pool_size=WORKERS)
        self._request_timeout_s = request_timeout_s
        self._pull_timeout_s = pull_timeout_s
        # id -> (started_at, address). Only an inspect shows a container's IP; it cannot change while the same
        # run lasts, so each running container is inspected once per start, and listing stays one request.
        self._addresses: dict[str, tuple[float | None, str | None]] = {}
        self._slots = asyncio.Semaphore(WORKERS)

    async def ping(self) -> None:
        await self._call("ping the podman service", self._ping)

    async def containers(self) -> list[Container]:
        return await self._call("list containers", self._list_all)

    async def image_present(self, image: str) -> bool:
        return await self._call(f"look up image {image}", self._image_exists, image)

    async def pull(self, image: str) -> None:
        await self._call(f"pull {image}", self._pull, image)

    async def run(self, spec: ContainerSpec) -> Container:
        return await self._call(f"run container {spec.name} from {spec.image}", self._run, spec)

    async def stop(self, container_id: str, timeout_s: float) -> None:
        await self._call(f"stop container {container_id}", self._stop, container_id, timeout_s)

    async def remove(self, container_id: str) -> None:
        await self._call(f"remove container {container_id}", self._remove, container_id)

    async def exec(self, container_id: str, argv: Sequence[str], timeout_s: float) -> int:
        command = " ".join(argv)[:80]
        code = await self._call(f"exec {command!r} in container {container_id}", self._exec, container_id,
                                tuple(argv), timeout_s)
        if code is None:
            raise TimeoutError(f"exec {command!r} in container {container_id[:12]}: still running after "
                               f"{timeout_s:g} s")
        return code

    async def ensure_network(self, name: str, subnet: str | None) -> str:
        return await self._call(f"ensure network {name}", self._ensure_network, name, subnet)

    async def close(self) -> None:
        await _in_daemon_thread(self._client.close)

    # -- the blocking side: every method below runs in a worker thread --------------------------------------

    async def _call(self, action: str, fn: Callable[..., T], *args: Any) -> T:
        async with self._slots:
            return await _in_daemon_thread(functools.partial(self._translated, action, fn, *args))

    def _translated(self, action: str, fn: Callable[..., T], *args: Any) -> T:
        if not self._socket.exists():
            # Checked first, not learnt from podman-py: its UDS adapter leaks the socket of a failed connect
            # (a ResourceWarning when collected), and this message says what is missing.
            raise RuntimeFailure(f"{action}: no podman service socket at {self._socket} (service not started, or "
                                 f"stopped)", temporary=True)
        try:
            return fn(*args)
        except RuntimeFailure:
            raise
        except APIError as exc:
            raise _api_failure(action, exc, self._url) from exc
        except OSError as exc:  # requests' errors while streaming a body (ConnectionError, ChunkedEncodingError)
            raise RuntimeFailure(f"{action}: connection to podman at {self._url} failed: {exc}",
                                 temporary=True) from exc

    def _ping(self) -> None:
        self._client.api.get("/_ping").raise_for_status()

    def _list_all(self) -> list[Container]:
        """One libpod list request (sparse: no per-container inspect), plus one inspect per newly started one."""
        items = self._listed({"label": LABEL_SERVICE})
        listed = {attrs["Id"] for attrs in items}
        self._addresses = {key: value for key, value in self._addresses.items() if key in listed}
        return [_container(attrs, self._address(attrs)) for attrs in items]

    def _listed(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        """One value per filter key: podman-py str()s a dict's values, so a list would become "['x']"."""
        return [item.attrs for item in self._client.containers.list(all=True, filters=filters)]

    def _address(self, attrs: Mapping[str, Any]) -> str | None:
        if _state(attrs) != RUNNING:
            return None
        started = _epoch(attrs.get("StartedAt"))
        cached = self._addresses.get(attrs["Id"])
        if cached is not None and cached[0] == started:
            return cached[1]
        try:
            address = _ip(self._client.containers.get(attrs["Id"]).attrs)
        except NotFound:
            return None  # removed since the list was taken; the next listing will not show it
        self._addresses[attrs["Id"]] = (started, address)
        return address

    def _image_exists(self, image: str) -> bool:
        response = self._client.api.get(f"/images/{urllib.parse.quote_plus(image)}/exists")
        if response.status_code == 404:
            return False
        response.raise_for_status()
        return True

    def _pull(self, image: str) -> None:
        """libpod's pull endpoint directly: no tlsVerify (registries.conf decides), and a streamed report whose
        `error` line is the only sign of failure (the status is 200 by then)."""
        response = self._client.api.post("/images/pull", params={"reference": image, "policy": "always"},
                                         stream=True, timeout=self._pull_timeout_s)
        response.raise_for_status()
        error, pulled = None, None
        for line in response.iter_lines():
            report = _report(line)
            error = report.get("error") or error
            pulled = report.get("id") or pulled
        if error:
            temporary = not any(cause in error.lower() for cause in _PERMANENT_PULL)
            raise RuntimeFailure(f"pull {image}: {error}", temporary=temporary)
        if not pulled:
            raise RuntimeFailure(f"pull {image}: podman reported neither an image nor an error", temporary=True)

    def _run(self, spec: ContainerSpec) -> Container:
        if LABEL_SERVICE not in dict(spec.labels):
            raise RuntimeFailure(f"run container {spec.name}: no {LABEL_SERVICE} label, so Shoal could never list or "
                                 f"remove it", temporary=False)
        try:
            created = self._client.containers.create(spec.image, **_create_args(spec))
        except APIError as exc:
            if _NAME_TAKEN not in _cause(exc):
                raise
            self._free_name(spec.name)
            created = self._client.containers.create(spec.image, **_create_args(spec))
        try:
            created.start()
        except APIError:
            # a created-but-unstartable container would only be listed as debris; the start error is the news
            with contextlib.suppress(APIError, RuntimeFailure, OSError):
                self._remove(created.id)
            raise
        listed = self._listed({"id": created.id})
        if not listed:
            raise RuntimeFailure(f"container {spec.name} ({created.id[:12]}) vanished right after it started",
                                 temporary=True)
        return _container(listed[0], self._address(listed[0]))

    def _free_name(self, name: str) -> None:
        """The name's holder may be replaced only if it is Shoal's and not running (base.Runtime.run)."""
        try:
            holder = self._client.containers.get(name).attrs
        except NotFound:
            return  # removed meanwhile
        labels = holder.get("Config", {}).get("Labels") or {}
        state = _STATES.get(str(holder.get("State", {}).get("Status")), UNKNOWN)
        if LABEL_SERVICE not in labels:
            raise RuntimeFailure(f"name {name} is taken by container {holder['Id'][:12]}, which Shoal does not own "
                                 f"(no {LABEL_SERVICE} label)", temporary=False)
        if state in (RUNNING, PAUSED, STOPPING):
            raise RuntimeFailure(f"name {name} is taken by container {holder['Id'][:12]}, which is {state}",
                                 temporary=False)
        self._remove(holder["Id"])

    def _stop(self, container_id: str, timeout_s: float) -> None:
        grace = math.ceil(max(0.0, timeout_s))  # libpod takes whole seconds; never cut the grace short
        response = self._client.api.post(f"/containers/{container_id}/stop", params={"timeout": grace},
                                          timeout=grace + self._request_timeout_s)
        if response.status_code != 404:  # 304: already stopped; 404: gone. Neither is an error (protocol).
            response.raise_for_status()

    def _remove(self, container_id: str) -> None:
        response = self._client.api.delete(f"/containers/{container_id}", params={"force": True})
        if response.status_code == 404:
            return
        response.raise_for_status()
        errors = [str(report["Err"]) for report in _json_list(response) if report.get("Err")]
        if errors:
            raise RuntimeFailure(f"remove container {container_id}: {'; '.join(errors)}", temporary=True)

    def _exec(self, container_id: str, argv: tuple[str, ...], timeout_s: float) -> int | None:
        """libpod's exec endpoints, not podman-py's exec_run: that one has no timeout (it waits for the command, up to
        the client's 60 s) and reads the whole output into memory. podman refuses to start an exec attached to no
        stream, so it is attached, and the output is drained in pieces until the command ends (its exit code) or
        the deadline passes (None). A timer only raises a flag: closing the stream from another thread does not
        wake a blocked read; the read timeout (timeout_s) does, so a silent command ends the wait too."""
        body = {"Cmd": list(argv), "AttachStdout": True, "AttachStderr": True, "AttachStdin": False, "Tty": False}
        created = self._client.api.post(f"/containers/{container_id}/exec", data=json.dumps(body))
        try:
            created.raise_for_status()
        except APIError as exc:
            if exc.status_code == 404 or _NOT_RUNNING in _cause(exc):
                raise RuntimeFailure(f"exec in container {container_id}: {_cause(exc)}", temporary=False) from exc
            raise
        exec_id = str(created.json()["Id"])
        expired = threading.Event()
        timer = threading.Timer(timeout_s, expired.set)
        timer.daemon = True
        timer.start()
        try:
            started = self._client.api.post(f"/exec/{exec_id}/start", data=json.dumps({"Detach": False, "Tty": False}),
                                            stream=True, timeout=(self._request_timeout_s, timeout_s))
            started.raise_for_status()
            self._drain(started, expired)
        finally:
            timer.cancel()
        if expired.is_set():
            return None
        inspected = self._client.api.get(f"/exec/{exec_id}/json")
        inspected.raise_for_status()
        info = inspected.json()
        return None if info.get("Running") else int(info.get("ExitCode", -1))

    @staticmethod
    def _drain(response: Any, expired: threading.Event) -> None:
        """Read and discard until the end of the stream or the deadline. Any error while reading (the read timeout,
        a broken stream) also ends it: the exec session's own record, read next, says whether the command ended."""
        try:
            while not expired.is_set() and response.raw.read1(EXEC_READ_BYTES):
                pass
        except Exception:  # urllib3's ReadTimeoutError is no OSError; what matters is asked of the engine next
            pass
        finally:
            response.close()

    def _ensure_network(self, name: str, subnet: str | None) -> str:
        asked = _parse_subnet(subnet) if subnet is not None else None
        try:
            attrs = self._client.networks.get(name).attrs
        except NotFound:
            attrs = self._create_network(name, str(asked) if asked is not None else None)
        actual = _subnet(attrs)
        if actual is None:
            raise RuntimeFailure(f"network {name} exists but has no IPv4 subnet", temporary=False)
        if asked is not None and asked != ip_network(actual, strict=False):
            raise RuntimeFailure(f"network {name} exists with subnet {actual}, not the {subnet} asked for",
                                 temporary=False)
        return actual

    def _create_network(self, name: str, subnet: str | None) -> dict[str, Any]:
        """DNS disabled: Shoal answers service names itself; podman's resolver would take port 53 (DESIGN §7a)."""
        try:
            network = self._client.networks.create(name, driver="bridge", dns_enabled=False,
                                                   subnets=[{"subnet": subnet}] if subnet else None)
        except APIError as exc:
            if exc.status_code != 409:  # 409: created by a concurrent call; use theirs
                raise
            network = self._client.networks.get(name)
        attrs: dict[str, Any] = network.attrs
        return attrs


def _create_args(spec: ContainerSpec) -> dict[str, Any]:
    args: dict[str, Any] = {"name": spec.name, "hostname": spec.hostname, "labels": dict(spec.labels),
                            "environment": dict(spec.env)}
    if spec.command is not None:
        args["command"] = list(spec.command)
    if spec.network is not None:
        args["networks"] = {spec.network: {}}
    if spec.dns:
        args["dns"] = list(spec.dns)
    if spec.cpus is not None:
        args["cpu_period"] = CPU_PERIOD_US
        args["cpu_quota"] = round(spec.cpus * CPU_PERIOD_US)
    if spec.memory_bytes is not None:
        args["mem_limit"] = spec.memory_bytes
    return args


def _container(attrs: Mapping[str, Any], address: str | None) -> Container:
    """One libpod list item (sparse) as a Container; timestamps there are whole epoch seconds."""
    state = _state(attrs)
    exited = state == EXITED
    names = attrs.get("Names") or [attrs["Id"][:12]]
    return Container(
        id=str(attrs["Id"]),
        name=str(names[0]),
        image=str(attrs.get("Image", "")),
        labels=tuple(sorted((str(k), str(v)) for k, v in (attrs.get("Labels") or {}).items())),
        state=state,
        exit_code=int(attrs.get("ExitCode", 0)) if exited else None,
        started_at=_epoch(attrs.get("StartedAt")),
        finished_at=_epoch(attrs.get("ExitedAt")) if exited else None,
        address=address,
    )


def _state(attrs: Mapping[str, Any]) -> str:
    return _STATES.get(str(attrs.get("State", "")), UNKNOWN)


def _epoch(value: Any) -> float | None:
    """libpod lists 0 or Go's zero time for "never"."""
    return float(value) if isinstance(value, int | float) and value > 0 and value != _NO_TIME else None


def _ip(inspected: Mapping[str, Any]) -> str | None:
    networks = (inspected.get("NetworkSettings") or {}).get("Networks") or {}
    for settings in networks.values():
        if settings.get("IPAddress"):
            return str(settings["IPAddress"])
    return None


def _subnet(attrs: Mapping[str, Any]) -> str | None:
    for entry in attrs.get("subnets") or []:
        if ip_network(entry["subnet"], strict=False).version == 4:
            return str(entry["subnet"])
    return None


def _report(line: bytes) -> dict[str, Any]:
    """One line of a streamed pull report; anything else than a JSON object is progress noise to us."""
    try:
        report = json.loads(line)
    except ValueError:
        return {}
    return report if isinstance(report, dict) else {}


def _parse_subnet(subnet: str) -> IPv4Network | IPv6Network:
    try:
        return ip_network(subnet, strict=False)
    except ValueError as exc:
        raise RuntimeFailure(f"invalid subnet {subnet!r}: {exc}", temporary=False) from exc


def _json_list(response: Any) -> list[dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return []
    return [item for item in body if isinstance(item, dict)] if isinstance(body, list) else []


def _cause(exc: APIError) -> str:
    """podman's words: `explanation` holds its full message, args[0] its root cause."""
    return str(exc.explanation or (exc.args[0] if exc.args else exc))


def _os_error(exc: BaseException) -> str:
    """The system error under requests' and urllib3's wrappers, e.g. "[Errno 111] Connection refused"."""
    found: BaseException = exc
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if type(current).__module__ == "builtins" and isinstance(current, OSError):
            found = current
        pending.extend(e for e in (current.__cause__, current.__context__, *current.args)
                       if isinstance(e, BaseException))
    return str(found)


def _api_failure(action: str, exc: APIError, url: str) -> RuntimeFailure:
    """No status: the socket did not answer (not up yet, or the service died): temporary. 4xx: the request is
    wrong: permanent (except 408/429). 5xx: busy or broken engine, temporary, unless podman's cause is one
    that no retry fixes (podman 4.3 reports a missing image or network as 500)."""
    status = exc.status_code
    if status is None:
        return RuntimeFailure(f"{action}: podman at {url} is not answering: {_os_error(exc)}", temporary=True)
    cause = _cause(exc)
    if status < 500:
        return RuntimeFailure(f"{action}: {cause} (HTTP {status})", temporary=status in (408, 429))
    permanent = any(marker in cause.lower() for marker in _PERMANENT_CAUSES)
    return RuntimeFailure(f"{action}: {cause} (HTTP {status})", temporary=not permanent)


async def _in_daemon_thread(call: Callable[[], T]) -> T:
    """Run a blocking call on a daemon thread and await its result; the process may exit while it still runs."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def deliver(result: T | None, error: BaseException | None) -> None:
        if done.done():  # the awaiting coroutine was cancelled
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)  # type: ignore[arg-type]  # None only when error is set

    def work() -> None:
        try:
            outcome: tuple[T | None, BaseException | None] = (call(), None)
        except BaseException as exc:  # handed to the awaiting coroutine, which re-raises it
            outcome = (None, exc)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits for this any more
            loop.call_soon_threadsafe(deliver, *outcome)

    threading.Thread(target=work, name="podman", daemon=True).start()
    return await done
