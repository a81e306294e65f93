"""The lab's image registry process, and the demo images pushed to it.

Role: `ensure_registry` starts Debian's `docker-registry serve` on 198.18.0.1:5000 (the bridge must have that
address first), or keeps the one whose recorded pid still runs it; `ensure_demo_images` builds
shoal-demo:1 and :2 (recipe: demo_image.py) with a podman of its own in builder/ and pushes them, unless the
registry already holds both; `stop_registry` ends it for `down`. Hosts never get the images preloaded: their
agents pull them from here, as real hosts would.
Boundary: runs in the root network namespace (the bridge address lives there); never touches the machine's
podman store; acts on the registry's pid only after its cmdline shows it serves this lab's config.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from node.lab import demo_image, hostpodman, procs, registry
from node.lab.errors import LabError
from node.lab.state import LabDir
from node.lab.wait import poll_until

START_S = 15.0  # the registry answers ~0.03 s after start (research); generous for a loaded CI box
STOP_S = 5.0
BUILD_S = 120.0  # import + push of a 2 MB image takes well under a second here
BUILDER_DRIVER = "vfs"  # import and push mount nothing with vfs, so the builder leaves no mount to undo

_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str) -> object | None:
    """GET a JSON document from the registry; None for 404."""
    try:
        with _HTTP.open(url, timeout=2.0) as response:
            parsed: object = json.loads(response.read() or b"null")
            return parsed
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def answers() -> bool:
    try:
        _get(f"{registry.URL}/v2/")
    except (OSError, ValueError):
        return False
    return True


def registry_pid(lab: LabDir) -> int | None:
    """The recorded pid of this lab's registry, if it still runs."""
    config = lab.registry_dir / "config.yml"
    try:
        pid = int((lab.registry_dir / "registry.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if registry.is_registry(procs.cmdline(pid), config) else None


def ensure_registry(lab: LabDir, report: Callable[[str], None]) -> int:
    """Make this lab's registry run and answer on 198.18.0.1:5000; return its pid."""
    d = lab.registry_dir
    config, log, pid_file = d / "config.yml", d / "registry.log", d / "registry.pid"
    (d / "data").mkdir(parents=True, exist_ok=True)
    text = registry.config_yaml(d / "data")
    changed = not config.exists() or config.read_text() != text
    if changed:
        config.write_text(text)
    pid = registry_pid(lab)
    if pid is not None and changed:
        stop_registry(lab)
        pid = None
    if pid is None:
        report(f"starting the image registry on {registry.ADDRESS} (data in {d / 'data'})")
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        pid = procs.spawn(registry.serve_argv(config), log, env)
        pid_file.write_text(f"{pid}\n")

    def up() -> bool:
        if registry_pid(lab) is None:
            raise LabError(
                f"the registry exited; {log}:\n{procs.tail(log)}\n(if another process listens on port "
                f"{registry.PORT}, e.g. Debian's docker-registry service: `systemctl disable --now docker-registry`)"
            )
        return answers()

    if not poll_until(up, START_S, interval_s=0.05):
        what = f"the registry did not answer on {registry.URL}/v2/ within {START_S:g} s"
        raise LabError(f"{what}; {log}:\n{procs.tail(log)}")
    return pid


def stop_registry(lab: LabDir) -> None:
    pid = registry_pid(lab)
    config = lab.registry_dir / "config.yml"
    if pid is not None and not procs.stop(pid, lambda p: registry.is_registry(procs.cmdline(p), config), STOP_S):
        raise LabError(f"the registry (pid {pid}) survived SIGKILL")


def missing_demo_tags() -> list[str]:
    try:
        return registry.missing_tags(_get(registry.tags_url()))
    except (OSError, ValueError) as exc:
        raise LabError(f"cannot read {registry.tags_url()}: {exc}") from exc


def _static_busybox() -> tuple[bytes, str]:
    """The busybox binary and its applet list; a LabError says how to get a static one."""
    path = shutil.which("busybox")
    if path is None:
        raise LabError("no busybox on PATH for the demo images; install busybox-static")
    binary = Path(path).resolve().read_bytes()
    if not demo_image.is_static_elf(binary):
        raise LabError(f"{path} is dynamically linked; the demo images need a static busybox (busybox-static)")
    listed = subprocess.run([path, "--list-full"], capture_output=True, text=True, check=False, timeout=30)
    if listed.returncode != 0 or not listed.stdout.strip():
        raise LabError(f"`{path} --list-full` failed (exit {listed.returncode}): {listed.stderr.strip()}")
    return binary, listed.stdout


def _builder_podman(lab: LabDir, *args: str) -> None:
    builder = lab.builder
    done = subprocess.run(["podman", *args], env=hostpodman.env(builder), capture_output=True, text=True,
                          timeout=BUILD_S, check=False)
    if done.returncode != 0:
        raise LabError(f"`podman {' '.join(args)}` (builder, {builder.root}) failed (exit {done.returncode}): "
                       f"{done.stderr.strip()}")


def ensure_demo_images(lab: LabDir, report: Callable[[str], None]) -> None:
    """Build and push the demo tags the registry lacks; nothing when it holds them all."""
    missing = missing_demo_tags()
    if not missing:
        return
    report(f"building {', '.join(registry.demo_image(t) for t in missing)} and pushing to the registry")
    binary, listed = _static_busybox()
    applets = demo_image.applets(listed)
    builder = lab.builder
    hostpodman.write_config(builder, BUILDER_DRIVER)
    try:
        for tag in missing:
            tar = builder.root / f"shoal-demo-{tag}.tar"
            with tar.open("wb") as out:
                demo_image.write_tar(demo_image.rootfs(binary, applets, tag), out)
            image = registry.demo_image(tag)
            changes = [arg for change in demo_image.IMPORT_CHANGES for arg in ("--change", change)]
            _builder_podman(lab, "import", "--quiet", *changes, str(tar), image)
            _builder_podman(lab, "push", "--quiet", "--tls-verify=false", image)
    finally:
        hostpodman.unmount_under(builder.root)
        shutil.rmtree(builder.root, ignore_errors=True)
    still = missing_demo_tags()
    if still:
        raise LabError(f"pushed the demo images, but {registry.tags_url()} still lacks tags {', '.join(still)}")
