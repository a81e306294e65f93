"""The podman API service this host's runtime talks to: find it answering, or start it.

Role: `ensure_service(socket)` makes `podman system service` answer on a unix socket, starting it detached
(its own session, output to a log file) when nothing answers, and returns the pid it started.
Boundary: stdlib only (no podman-py; node/runtime/podman.py is the one importer). It never stops or signals a
service: whoever got a pid back owns that process. The service inherits the caller's environment (or `env`), so
CONTAINERS_CONF / CONTAINERS_STORAGE_CONF / CONTAINERS_REGISTRIES_CONF choose its state and config.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from node.runtime.base import RuntimeFailure

POLL_INTERVAL_S = 0.05  # the service answers ~0.3-1 s after exec here; 50 ms keeps the wait tight and cheap
PROBE_TIMEOUT_S = 2.0  # one /_ping; a live service answers in milliseconds
_PING = b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n"


def service_answers(socket_path: Path, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """True when an HTTP server on `socket_path` answers GET /_ping with 200 (podman answers `OK`)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(str(socket_path))
            sock.sendall(_PING)
            head = sock.recv(64)
    except OSError:
        return False
    return head.startswith(b"HTTP/1.") and head[9:12] == b"200"


def ensure_service(
    socket_path: Path,
    *,
    timeout_s: float = 10.0,
    log_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    prefix: Sequence[str] = (),
) -> int | None:
    """Make `podman system service` answer on `socket_path`; return the pid started, or None if one answered.

    `log_path` (default: `<socket>.log` beside the socket) gets the service's stdout and stderr; `env` replaces the
    inherited environment; `prefix` wraps the command (e.g. `nsenter --net=/run/netns/X`, which execs podman, so
    the pid is podman's own). RuntimeFailure(temporary=False) if the service exits before answering (its log's
    tail is in the message), temporary=True if it is still silent after `timeout_s`.
    """
    if service_answers(socket_path):
        return None
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_socket(socket_path)
    log = log_path or socket_path.with_name(socket_path.name + ".log")
    argv = [*prefix, "podman", "system", "service", "--time=0", f"unix://{socket_path}"]
    pid = _spawn_detached(argv, log, dict(os.environ if env is None else env))
    _await_answer(socket_path, pid, log, timeout_s)
    return pid


def _remove_stale_socket(socket_path: Path) -> None:
    """A socket file nobody listens on (a crashed service) would make the new service's bind fail."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(socket_path))
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno == errno.ECONNREFUSED:
            socket_path.unlink(missing_ok=True)


def _spawn_detached(argv: list[str], log: Path, env: dict[str, str]) -> int:
    """posix_spawn rather than Popen: no Popen object to warn when it is collected while the service runs,
    and setsid puts the service in its own session, so a terminal's SIGINT to the caller never reaches it."""
    program = shutil.which(argv[0], path=env.get("PATH"))
    if program is None:
        raise RuntimeFailure(f"cannot start the podman service: {argv[0]} is not on PATH", temporary=False)
    log.parent.mkdir(parents=True, exist_ok=True)
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    return os.posix_spawn(program, argv, env, file_actions=actions, setsid=True)


def _await_answer(socket_path: Path, pid: int, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not service_answers(socket_path):
        if _exited(pid):
            raise RuntimeFailure(
                f"podman system service for {socket_path} exited before answering: {_tail(log)}", temporary=False)
        if time.monotonic() >= deadline:
            _kill(pid)  # ours, and useless to a caller who gets no pid back
            raise RuntimeFailure(
                f"podman system service (pid {pid}) not answering on {socket_path} after {timeout_s:g} s; "
                f"log {log}: {_tail(log)}", temporary=True)
        time.sleep(POLL_INTERVAL_S)


def _exited(pid: int) -> bool:
    """Reaps the child if it has exited (it is ours: posix_spawn made it), so no zombie is left behind."""
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == pid
    return True


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, ChildProcessError):
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _tail(log: Path, limit: int = 600) -> str:
    try:
        text = log.read_text(errors="replace").strip()
    except OSError:
        return "(no log)"
    return text[-limit:] or "(empty log)"
