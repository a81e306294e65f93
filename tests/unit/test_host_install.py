"""The host install script, its systemd unit and the Vagrant cluster, checked without touching the machine.

Every run here writes under `--root TMP` (files only: no apt, no systemctl), so it needs no root. The machine-wide
runs (apt, a pip install into a venv) are in tests/e2e/test_host_install.py. Tools that are truly absent skip the
test that needs them with the reason; scripts/install.sh installs vagrant and shellcheck, and systemd-analyze
comes with systemd.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from node.config import AgentConfig, build, load_file
from node.manifest import parse_manifest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "node" / "lab" / "host-install.sh"
UNIT_SOURCE = REPO / "node" / "lab" / "shoal-agent.service"
VAGRANT = REPO / "vagrant"
# A venv that exists, so the installed unit's ExecStart names a real program (systemd-analyze verify checks it).
VENV = Path(sys.executable).parent.parent


def install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), "--root", str(root), *args], capture_output=True, text=True,
                          timeout=60, check=False)


def unit_settings(path: Path) -> dict[str, list[str]]:
    """KEY -> every value it is given, comments and section headers left out."""
    settings: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_check_reports_every_pending_change_and_changes_nothing(tmp_path: Path) -> None:
    done = install(tmp_path, "--systemd", "--venv", str(VENV), "--check")
    assert done.returncode == 1
    assert f"would write {tmp_path}/etc/containers/containers.conf.d/50-shoal.conf" in done.stderr
    assert f"would write {tmp_path}/etc/systemd/system/shoal-agent.service" in done.stderr
    assert f"would write {tmp_path}/etc/shoal/agent.toml (a commented template)" in done.stderr
    assert "3 change(s) pending" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_after_an_install_a_second_run_and_two_checks_have_nothing_to_do(tmp_path: Path) -> None:
    assert install(tmp_path, "--systemd", "--venv", str(VENV)).returncode == 0
    for args in [(), ("--check",), ("--check",)]:
        done = install(tmp_path, "--systemd", "--venv", str(VENV), *args)
        assert done.returncode == 0, done.stderr
        assert "nothing to do" in done.stderr and "wrote" not in done.stderr


def test_check_names_a_changed_unit_and_leaves_it_then_a_run_restores_it(tmp_path: Path) -> None:
    install(tmp_path, "--systemd", "--venv", str(VENV))
    unit = tmp_path / "etc/systemd/system/shoal-agent.service"
    wanted = unit.read_text()
    unit.write_text(wanted.replace("KillMode=mixed", "KillMode=control-group"))
    done = install(tmp_path, "--systemd", "--venv", str(VENV), "--check")
    assert done.returncode == 1 and f"would write {unit}" in done.stderr and "1 change(s) pending" in done.stderr
    assert "KillMode=control-group" in unit.read_text()
    assert install(tmp_path, "--systemd", "--venv", str(VENV)).returncode == 0
    assert unit.read_text() == wanted


def test_the_config_file_is_written_once_and_never_overwritten(tmp_path: Path) -> None:
    install(tmp_path, "--systemd", "--venv", str(VENV))
    config = tmp_path / "etc/shoal/agent.toml"
    assert config.stat().st_mode & 0o777 == 0o600  # it will hold the join token
    config.write_text('[agent]\nname = "mine"\n')
    done = install(tmp_path, "--systemd", "--venv", str(VENV))
    assert done.returncode == 0 and config.read_text() == '[agent]\nname = "mine"\n'


def test_the_config_template_loads_as_the_agent_defaults(tmp_path: Path) -> None:
    install(tmp_path, "--systemd", "--venv", str(VENV))
    assert build({}, load_file(tmp_path / "etc/shoal/agent.toml")) == AgentConfig()


def test_the_unit_runs_the_agent_from_the_venv_and_leaves_containers_running_on_stop(tmp_path: Path) -> None:
    install(tmp_path, "--systemd", "--venv", "/srv/shoal")
    settings = unit_settings(tmp_path / "etc/systemd/system/shoal-agent.service")
    assert settings["ExecStart"] == ["/srv/shoal/bin/shoal agent --config /etc/shoal/agent.toml"]
    assert settings["Restart"] == ["on-failure"] and settings["RestartPreventExitStatus"] == ["2"]
    assert settings["KillMode"] == ["mixed"]  # SIGTERM to the agent alone; containers belong to podman.service
    assert settings["StateDirectory"] == ["shoal"] and settings["StateDirectoryMode"] == ["0700"]
    assert settings["After"] == ["network-online.target podman.socket"]
    assert settings["Wants"] == ["network-online.target podman.socket"]
    assert settings["WantedBy"] == ["multi-user.target"]


def test_the_shipped_unit_names_the_default_venv() -> None:
    assert unit_settings(UNIT_SOURCE)["ExecStart"] == ["/opt/shoal/bin/shoal agent --config /etc/shoal/agent.toml"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_the_installed_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    install(tmp_path, "--systemd", "--venv", str(VENV))
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "etc/systemd/system/shoal-agent.service")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and "shoal-agent" not in done.stderr, done.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--bogus"], "unknown argument: --bogus"),
    (["--venv", "relative"], "--venv must be an absolute path"),
    (["--venv", "/opt/my shoal"], "--venv must not contain white space"),
    (["--shoal"], "--shoal needs a value"),
    (["--shoal", "./no-such-checkout"], "--shoal: no such file or directory: ./no-such-checkout"),
])
def test_bad_usage_exits_2_naming_the_argument(tmp_path: Path, args: list[str], message: str) -> None:
    done = install(tmp_path, *args)
    assert done.returncode == 2 and message in done.stderr and "host-install.sh [--check]" in done.stderr


def test_start_needs_systemd_on_the_machine_itself(tmp_path: Path) -> None:
    done = install(tmp_path, "--start", "--check")
    assert done.returncode == 1 and "--start needs systemd running" in done.stderr


def test_help_prints_the_usage() -> None:
    done = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0 and "Exit status: 0 done" in done.stdout and "--shoal SOURCE" in done.stdout


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed (scripts/install.sh does)")
def test_shellcheck_finds_nothing_in_the_install_and_provision_scripts() -> None:
    scripts = [SCRIPT, VAGRANT / "provision.sh", REPO / "scripts" / "install.sh"]
    done = subprocess.run(["shellcheck", *map(str, scripts)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout


# --- Vagrant ----------------------------------------------------------------------------------------------------


def vagrant_validate(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # Its state (~/.vagrant.d and vagrant/.vagrant) goes to the test's directory, not the user's or the checkout.
    environ = {**os.environ, "VAGRANT_HOME": str(tmp_path / "home"), "VAGRANT_DOTFILE_PATH": str(tmp_path / "dot"),
               "VAGRANT_CHECKPOINT_DISABLE": "1", **env}
    return subprocess.run(["vagrant", "validate", "--ignore-provider"], cwd=VAGRANT, env=environ,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(shutil.which("vagrant") is None, reason="vagrant is not installed (scripts/install.sh does)")
def test_vagrant_validate_passes_for_three_vms_and_for_a_count_from_the_environment(tmp_path: Path) -> None:
    done = vagrant_validate(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "validated successfully" in done.stdout and "node3" in done.stdout and "node4" not in done.stdout
    done = vagrant_validate(tmp_path, SHOAL_VMS="5", SHOAL_SYNC="rsync")
    assert done.returncode == 0 and "node5" in done.stdout, done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("vagrant") is None, reason="vagrant is not installed (scripts/install.sh does)")
def test_vagrant_refuses_a_bad_vm_count(tmp_path: Path) -> None:
    done = vagrant_validate(tmp_path, SHOAL_VMS="0")
    assert done.returncode != 0 and "SHOAL_VMS must be 1 to 200, got 0" in done.stdout + done.stderr


def test_the_vagrant_demo_manifest_spreads_over_the_vms_labels() -> None:
    manifest = parse_manifest((VAGRANT / "demo.yml").read_bytes())
    (web,) = manifest.services
    assert web.deploy.replicas == 4 and web.deploy.placement.spread == ("datacenter", "zone")
    assert manifest.warnings == ()


@pytest.mark.parametrize("token", ["", "SHOAL-1-abc-def"])
def test_the_vagrant_provisioners_agent_config_loads(tmp_path: Path, token: str) -> None:
    args = "node2 192.168.56.12 192.168.56.11 10.20.2.0/24 dc2 z2"
    text = subprocess.run(["bash", "-c", f'source "$1" {args}; config_text "$2"', "bash", str(VAGRANT / "provision.sh"),
                           token], capture_output=True, text=True, timeout=30, check=True).stdout
    (tmp_path / "agent.toml").write_text(text)
    config = build({}, load_file(tmp_path / "agent.toml"))
    assert config.name == "node2" and config.bind == ("192.168.56.12", 7946) and config.api == ("127.0.0.1", 7947)
    assert config.labels == (("datacenter", "dc2"), ("zone", "z2")) and config.subnet == "10.20.2.0/24"
    assert config.join == ((("192.168.56.11", 7946),) if token else ())
    assert config.token == (token or None)
