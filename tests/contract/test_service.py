"""ensure_service: start the podman API service when nothing answers, detached, and say why when it cannot.
A tiny HTTP server stands in for podman (through `prefix`), so these run without podman or root; the real
service is started the same way by the contract's private podman, and checked there once more."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.runtime.base import RuntimeFailure
from node.runtime.service import ensure_service, service_answers
from tests.contract.podman_env import PodmanEnv

pytestmark = pytest.mark.timeout(30)

# Called as `python -c SERVER podman system service --time=0 unix://PATH`: answers /_ping like podman, and
# reports its session and one env var, so the test can see the service is detached and got the environment.
SERVER = """
import os, socket, sys
path = sys.argv[-1].removeprefix("unix://")
server = socket.socket(socket.AF_UNIX)
server.bind(path)
server.listen()
while True:
    conn, _ = server.accept()
    conn.recv(1024)
    body = f"sid={os.getsid(0)} marker={os.environ.get('SHOAL_TEST_MARKER')}"
    conn.sendall(f"HTTP/1.0 200 OK\\r\\nContent-Length: {len(body)}\\r\\n\\r\\n{body}".encode())
    conn.close()
"""


@pytest.fixture
def started() -> Iterator[list[int]]:
    """Pids a test started; killed and reaped afterwards, by pid."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def ask(socket_path: Path) -> str:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(str(socket_path))
        sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
        return sock.recv(1024).decode().split("\r\n\r\n", 1)[1]


def test_starts_a_detached_service_with_the_given_env_and_makes_the_socket_dir(
        tmp_path: Path, started: list[int]) -> None:
    socket_path = tmp_path / "run" / "nested" / "podman.sock"
    env = dict(os.environ, SHOAL_TEST_MARKER="m42")
    pid = ensure_service(socket_path, env=env, prefix=(sys.executable, "-c", SERVER))
    assert pid is not None
    started.append(pid)
    assert f"sid={pid} marker=m42" == ask(socket_path)  # its own session: it leads it
    assert (tmp_path / "run" / "nested" / "podman.sock.log").exists()


def test_returns_none_when_a_service_already_answers(tmp_path: Path, started: list[int]) -> None:
    socket_path = tmp_path / "podman.sock"
    pid = ensure_service(socket_path, prefix=(sys.executable, "-c", SERVER))
    assert pid is not None
    started.append(pid)
    assert ensure_service(socket_path, prefix=("false",)) is None


def test_replaces_a_stale_socket_nobody_listens_on(tmp_path: Path, started: list[int]) -> None:
    socket_path = tmp_path / "podman.sock"
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(socket_path))  # bound, never listening: a crashed service leaves this behind
        assert not service_answers(socket_path)
        pid = ensure_service(socket_path, prefix=(sys.executable, "-c", SERVER))
    assert pid is not None
    started.append(pid)
    assert service_answers(socket_path)


def test_a_service_that_exits_before_answering_is_a_permanent_failure_quoting_its_log(tmp_path: Path) -> None:
    prefix = ("sh", "-c", "echo 'Error: bad containers.conf' >&2; exit 125", "sh")
    with pytest.raises(RuntimeFailure, match=r"bad containers\.conf") as caught:
        ensure_service(tmp_path / "podman.sock", prefix=prefix)
    assert caught.value.temporary is False


def test_a_silent_service_times_out_as_a_temporary_failure_and_is_killed(tmp_path: Path) -> None:
    with pytest.raises(RuntimeFailure, match="not answering") as caught:
        ensure_service(tmp_path / "podman.sock", timeout_s=0.5, prefix=("sh", "-c", "exec sleep 30", "sh"))
    assert caught.value.temporary is True
    pid = int(re.search(r"pid (\d+)", str(caught.value)).group(1))  # type: ignore[union-attr]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped, not left running


@pytest.mark.podman
def test_the_private_podman_service_answers_and_is_not_started_twice(private_podman: PodmanEnv) -> None:
    assert service_answers(private_podman.socket)
    assert ensure_service(private_podman.socket, env=private_podman.env) is None
