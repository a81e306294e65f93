"""The host install for real: on this machine (what CI's install step runs), and Shoal into a venv with pip.

The machine run is the one `shoal lab` and scripts/install.sh make (packages and podman's config; idempotent, as
root), followed by `--check` twice: the installer must leave nothing pending, and checking changes nothing. The
venv run installs this checkout with pip from the package index (~20 s) into a temporary venv and `--root`, as
`--shoal` does on a real host, then checks that a second look finds it current.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "node" / "lab" / "host-install.sh"

pytestmark = pytest.mark.install


def run(*args: str, timeout_s: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout_s,
                          check=False)


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="the host install changes the machine: root only")
def test_after_the_machine_install_check_twice_finds_nothing_to_do() -> None:
    installed = run()
    assert installed.returncode == 0, installed.stderr
    for _ in range(2):
        checked = run("--check")
        assert checked.returncode == 0, checked.stderr
        assert "nothing to do (packages installed, /etc/containers/containers.conf.d/50-shoal.conf current)" \
            in checked.stderr


def test_shoal_installs_into_a_venv_once_and_a_changed_source_is_pending(tmp_path: Path) -> None:
    venv = tmp_path / "opt" / "shoal"
    args = ("--root", str(tmp_path), "--shoal", str(REPO), "--venv", str(venv), "--python", sys.executable,
            "--systemd")
    installed = run(*args)
    assert installed.returncode == 0, installed.stderr
    assert f"installing Shoal from {REPO} into {venv}" in installed.stderr
    link = tmp_path / "usr" / "local" / "bin" / "shoal"
    assert os.readlink(link) == f"{venv}/bin/shoal"
    shoal = subprocess.run([str(link), "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert shoal.returncode == 0 and "Usage: shoal" in shoal.stdout
    shipped = list(venv.glob("lib/python*/site-packages/node/lab/shoal-agent.service"))
    assert shipped, "the unit is package data"

    checked = run(*args, "--check")
    assert checked.returncode == 0 and "Shoal in" in checked.stderr, checked.stderr

    stamp = venv / ".shoal-install"
    stamp.write_text(stamp.read_text().replace("digest=", "digest=0"))  # as if the checkout had changed
    checked = run(*args, "--check")
    assert checked.returncode == 1 and f"would install Shoal from {REPO} into {venv}" in checked.stderr
