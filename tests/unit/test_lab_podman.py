"""The lab's podman, registry, demo image and power-cut decisions, as data: each host's podman config and
environment, the registry's config and what it lacks, what the demo image holds, which processes a power cut
of a host kills, and which tools send `lab up` to the host install script."""

from __future__ import annotations

import io
import ipaddress
import struct
import tarfile
from pathlib import Path

import pytest

from node.lab import demo_image, install, plan, podmanconf, power, registry
from node.lab.errors import LabError
from node.lab.podmanconf import PodmanPaths
from node.lab.power import Proc

H2 = PodmanPaths(Path("/lab/h2"))

# --- each host's podman -----------------------------------------------------------------------------------


def test_every_piece_of_a_hosts_podman_state_lives_in_its_dir() -> None:
    text = podmanconf.containers_conf(H2, ("nofile=20000:20000", "nproc=4096:4096"))
    for key, value in [
        ("tmp_dir", "/lab/h2/tmp"),
        ("static_dir", "/lab/h2/storage/libpod"),
        ("volume_path", "/lab/h2/volumes"),
        ("network_config_dir", "/lab/h2/networks"),
        ("events_logfile_path", "/lab/h2/tmp/events.log"),
    ]:
        assert f'{key} = "{value}"' in text
    storage = podmanconf.storage_conf(H2, "overlay")
    assert 'graphroot = "/lab/h2/storage"' in storage and 'runroot = "/lab/h2/run"' in storage
    assert 'driver = "overlay"' in storage


def test_host_podman_uses_runc_file_locks_cgroupfs_and_file_events() -> None:
    text = podmanconf.containers_conf(H2, ("nofile=20000:20000", "nproc=4096:4096"))
    for line in ['runtime = "runc"', 'lock_type = "file"', 'cgroup_manager = "cgroupfs"', 'events_logger = "file"',
                 'network_backend = "netavark"', 'default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]']:
        assert line in text


def test_default_network_subnet_is_in_the_lab_block_and_no_hosts_subnet() -> None:
    # The agent creates network `shoal` on 198.19.I.0/24; podman refuses a second network on a subnet in use.
    default = ipaddress.IPv4Network(podmanconf.DEFAULT_NETWORK_SUBNET)
    assert default.subnet_of(ipaddress.IPv4Network("198.19.0.0/16"))
    assert all(not default.overlaps(ipaddress.IPv4Network(h.subnet)) for h in plan.hosts(plan.MAX_HOSTS))
    assert f'default_subnet = "{default}"' in podmanconf.containers_conf(H2, ())


@pytest.mark.parametrize(
    ("nofile", "nproc", "want"),
    [
        (20000, 96365, ("nofile=20000:20000", "nproc=4096:4096")),
        (1024, 512, ("nofile=1024:1024", "nproc=512:512")),
        (-1, -1, ("nofile=1048576:1048576", "nproc=4096:4096")),  # RLIM_INFINITY
        (2**40, 2**40, ("nofile=1048576:1048576", "nproc=4096:4096")),
    ],
)
def test_container_ulimits_never_exceed_the_hard_limits_podman_runs_under(
    nofile: int, nproc: int, want: tuple[str, str]
) -> None:
    assert podmanconf.default_ulimits(nofile, nproc) == want


def test_paths_with_quotes_stay_valid_toml() -> None:
    odd = PodmanPaths(Path('/lab "x"/h1'))
    assert 'tmp_dir = "/lab \\"x\\"/h1/tmp"' in podmanconf.containers_conf(odd, ())


def test_registries_conf_marks_the_lab_registry_insecure() -> None:
    text = podmanconf.registries_conf(["198.18.0.1:5000"])
    assert '[[registry]]\nlocation = "198.18.0.1:5000"\ninsecure = true\n' in text


def test_host_env_points_podman_at_the_hosts_config_and_never_at_a_remote_socket() -> None:
    base = {"PATH": "/bin", "CONTAINER_HOST": "unix:///elsewhere.sock", "CONTAINER_CONNECTION": "x"}
    env = podmanconf.env(base, H2)
    assert env == {
        "PATH": "/bin",
        "CONTAINERS_CONF": "/lab/h2/containers.conf",
        "CONTAINERS_STORAGE_CONF": "/lab/h2/storage.conf",
        "CONTAINERS_REGISTRIES_CONF": "/lab/h2/registries.conf",
    }


def test_api_service_listens_on_the_hosts_socket_and_never_idles_out() -> None:
    assert podmanconf.service_argv(H2) == ("podman", "system", "service", "--time=0", "unix:///lab/h2/podman.sock")
    assert H2.url == "unix:///lab/h2/podman.sock"


@pytest.mark.parametrize(
    ("args", "ours"),
    [
        (["podman", "system", "service", "--time=0", "unix:///lab/h2/podman.sock"], True),
        (["/usr/bin/podman", "system", "service", "--time=0", "unix:///lab/h2/podman.sock"], True),
        (["podman", "system", "service", "--time=0", "unix:///lab/h3/podman.sock"], False),
        (["podman", "run", "unix:///lab/h2/podman.sock"], False),
        (["sleep", "system", "service", "unix:///lab/h2/podman.sock"], False),
        ([], False),  # a zombie, or a pid that is gone
    ],
)
def test_a_recorded_service_pid_counts_only_while_it_runs_that_hosts_service(args: list[str], ours: bool) -> None:
    assert podmanconf.is_service(args, H2) is ours


def test_removal_and_post_power_cut_stop_take_no_grace() -> None:
    assert podmanconf.remove_all_argv() == ("podman", "rm", "--all", "--force", "--time", "0")
    assert podmanconf.stop_all_argv() == ("podman", "stop", "--all", "--time", "0")


MOUNTINFO = """\
22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 22 0:26 / /tmp rw - tmpfs tmpfs rw
31 22 0:40 / /ci rw - overlay overlay rw,lowerdir=/a,upperdir=/b,workdir=/c
32 31 254:0 /x /ci/data rw - ext4 /dev/vda rw
"""


@pytest.mark.parametrize(
    ("path", "driver"),
    [("/var/tmp/shoal-lab", "overlay"), ("/tmp/lab", "overlay"), ("/ci/lab", "vfs"), ("/ci/data/lab", "overlay"),
     ("/cix/lab", "overlay")],
)
def test_storage_falls_back_to_vfs_only_on_an_overlayfs(path: str, driver: str) -> None:
    assert podmanconf.storage_driver(MOUNTINFO, Path(path)) == driver


def test_a_socket_path_too_long_for_a_unix_socket_is_refused_by_name() -> None:
    assert podmanconf.socket_problem(PodmanPaths(Path("/var/tmp/shoal-lab/h244"))) is None
    problem = podmanconf.socket_problem(PodmanPaths(Path("/" + "x" * 100 + "/h1")))
    assert problem is not None and "use a shorter SHOAL_LAB_DIR" in problem and "podman.sock" in problem


def test_container_ids_are_64_hex_names() -> None:
    cid = "a" * 64
    assert podmanconf.container_ids([cid, "volatile-containers.json", "A" * 64, "a" * 63, "tmp"]) == {cid}


def test_power_cut_leftovers_are_runc_state_and_one_cgroup_per_hierarchy() -> None:
    cid = "b" * 64
    roots = [Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/pids")]
    assert podmanconf.runtime_leftovers([cid], roots) == [
        Path(f"/run/runc/{cid}"),
        Path(f"/sys/fs/cgroup/libpod_parent/libpod-{cid}"),
        Path(f"/sys/fs/cgroup/pids/libpod_parent/libpod-{cid}"),
    ]


# --- the registry -------------------------------------------------------------------------------------------


def test_registry_listens_on_the_bridge_address_only_and_keeps_data_in_the_lab() -> None:
    text = registry.config_yaml(Path("/lab/registry/data"))
    assert "  addr: 198.18.0.1:5000\n" in text
    assert '    rootdirectory: "/lab/registry/data"\n' in text
    assert registry.serve_argv(Path("/lab/registry/config.yml")) == (
        "docker-registry", "serve", "/lab/registry/config.yml"
    )  # fmt: skip


def test_registry_pid_counts_only_while_it_serves_this_labs_config() -> None:
    config = Path("/lab/registry/config.yml")
    assert registry.is_registry(["/usr/bin/docker-registry", "serve", "/lab/registry/config.yml"], config)
    assert not registry.is_registry(["docker-registry", "serve", "/other/config.yml"], config)
    assert not registry.is_registry([], config)


def test_demo_images_are_fully_qualified_on_the_lab_registry() -> None:
    assert [registry.demo_image(t) for t in registry.DEMO_TAGS] == [
        "198.18.0.1:5000/shoal-demo:1", "198.18.0.1:5000/shoal-demo:2"
    ]  # fmt: skip
    assert registry.tags_url() == "http://198.18.0.1:5000/v2/shoal-demo/tags/list"


@pytest.mark.parametrize(
    ("answer", "missing"),
    [
        (None, ["1", "2"]),  # 404: the repository does not exist yet
        ({"name": "shoal-demo", "tags": ["2", "1"]}, []),
        ({"name": "shoal-demo", "tags": ["1", "latest"]}, ["2"]),
        ({"name": "shoal-demo", "tags": None}, ["1", "2"]),  # every tag deleted
    ],
)
def test_images_are_built_only_for_the_tags_the_registry_lacks(answer: object, missing: list[str]) -> None:
    assert registry.missing_tags(answer) == missing


@pytest.mark.parametrize("answer", [["1"], {"tags": "1"}, {"tags": [1]}])
def test_a_malformed_tag_list_is_refused(answer: object) -> None:
    with pytest.raises(ValueError, match="tag list"):
        registry.missing_tags(answer)


# --- the demo image -------------------------------------------------------------------------------------------


def elf(wide: bool, interp: bool) -> bytes:
    """A minimal little-endian ELF with one program header: PT_LOAD, or PT_INTERP for a dynamic binary."""
    p_type = 3 if interp else 1
    if wide:
        header = b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0, 64, 0, 0, 64, 56, 1,
                                                                    0, 0, 0)
        return header + struct.pack("<IIQQQQQQ", p_type, 0, 0, 0, 0, 0, 0, 0)
    header = b"\x7fELF\x01\x01\x01" + bytes(9) + struct.pack("<HHIIIIIHHHHHH", 2, 3, 1, 0, 52, 0, 0, 52, 32, 1, 0,
                                                                0, 0)
    return header + struct.pack("<IIIIIIII", p_type, 0, 0, 0, 0, 0, 0, 0)


@pytest.mark.parametrize("wide", [True, False])
def test_only_a_binary_without_an_interpreter_is_static(wide: bool) -> None:
    assert demo_image.is_static_elf(elf(wide, interp=False))
    assert not demo_image.is_static_elf(elf(wide, interp=True))


@pytest.mark.parametrize("blob", [b"", b"#!/bin/sh\n" + bytes(100), b"\x7fELF" + bytes(10)])
def test_what_is_not_an_elf_is_not_static(blob: bytes) -> None:
    assert not demo_image.is_static_elf(blob)


LIST_FULL = "\n".join(
    ["usr/bin/[", "bin/sh", "usr/sbin/httpd", "bin/hostname", "usr/bin/nc", "usr/bin/wget", "bin/sleep", "bin/busybox",
     "", "../x", ""]
)


def test_applets_are_the_listed_paths_without_busybox_itself_or_escapes() -> None:
    assert demo_image.applets(LIST_FULL) == [
        "usr/bin/[", "bin/sh", "usr/sbin/httpd", "bin/hostname", "usr/bin/nc", "usr/bin/wget", "bin/sleep"
    ]  # fmt: skip


def image(version: str) -> dict[str, tarfile.TarInfo]:
    out = io.BytesIO()
    demo_image.write_tar(demo_image.rootfs(b"BUSYBOX", demo_image.applets(LIST_FULL), version), out)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        return {m.name: m for m in tar.getmembers()}


def read(version: str, name: str) -> bytes:
    out = io.BytesIO()
    demo_image.write_tar(demo_image.rootfs(b"BUSYBOX", demo_image.applets(LIST_FULL), version), out)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        member = tar.extractfile(name)
        assert member is not None
        return member.read()


def test_every_applet_is_a_link_to_the_one_busybox() -> None:
    members = image("1")
    for applet in ["bin/sh", "usr/sbin/httpd", "bin/hostname", "usr/bin/nc", "usr/bin/wget", "bin/sleep"]:
        assert members[applet].issym() and members[applet].linkname == "/bin/busybox"
    assert members["bin/busybox"].isfile() and members["bin/busybox"].mode == 0o755


def test_the_two_versions_differ_in_version_file_and_web_root() -> None:
    assert read("1", "etc/shoal-demo-version") == b"1\n"
    assert read("2", "etc/shoal-demo-version") == b"2\n"
    assert read("2", "www/index.html") == b"shoal-demo 2\n"
    assert b"hostname" in read("1", "www/cgi-bin/hostname")
    assert image("1")["www/cgi-bin/hostname"].mode == 0o755


def test_directories_come_before_what_they_hold() -> None:
    names = list(image("1"))
    for name in names:
        parent = name.rpartition("/")[0]
        assert not parent or names.index(parent) < names.index(name), name
    assert image("1")["tmp"].mode == 0o1777


def test_the_same_inputs_give_the_same_tar() -> None:
    # a fixed mtime and owner: the same layer digest on every build
    def tar_bytes() -> bytes:
        out = io.BytesIO()
        demo_image.write_tar(demo_image.rootfs(b"BB", ["bin/sh"], "1"), out)
        return out.getvalue()

    assert tar_bytes() == tar_bytes()


def test_the_image_serves_its_web_root_by_default() -> None:
    assert 'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]' in demo_image.IMPORT_CHANGES


# --- a power cut ------------------------------------------------------------------------------------------------

HOST_NS = (4, 100)
CID = "c" * 64
OTHER_CID = "d" * 64


def test_a_power_cut_takes_the_hosts_netns_its_descendants_and_its_containers() -> None:
    procs = [
        Proc(1, 0, (4, 1)),
        Proc(10, 1, HOST_NS),  # the agent
        Proc(11, 1, HOST_NS),  # the podman service
        Proc(12, 1, HOST_NS),  # conmon
        Proc(13, 12, (4, 200), CID),  # the container's init, in the container's own netns
        Proc(14, 13, (4, 200), CID),  # a process inside the container
        Proc(15, 1, (4, 300), CID),  # a container process whose conmon is already gone
        Proc(20, 1, (4, 1)),  # something else on the machine
        Proc(21, 1, (4, 400), OTHER_CID),  # another podman's container
    ]
    assert power.of_host(procs, HOST_NS, [CID]) == {10, 11, 12, 13, 14, 15}


def test_a_power_cut_spares_the_command_that_asked_for_it() -> None:
    procs = [Proc(10, 1, HOST_NS), Proc(30, 10, HOST_NS), Proc(31, 30, HOST_NS)]
    assert power.of_host(procs, HOST_NS, [], spare={30, 31}) == {10}


@pytest.mark.parametrize(
    ("cgroup", "cid"),
    [
        (f"12:pids:/libpod_parent/libpod-{CID}\n0::/libpod_parent/libpod-{CID}\n", CID),
        (f"0::/machine.slice/libpod-{CID}.scope\n", CID),
        (f"0::/machine.slice/libpod-{CID}.scope/container\n", CID),
        ("0::/libpod_parent/conmon\n", None),
        ("0::/user.slice\n", None),
    ],
)
def test_a_process_belongs_to_the_container_its_cgroup_names(cgroup: str, cid: str | None) -> None:
    assert power.container_of(cgroup) == cid


# --- the host install -----------------------------------------------------------------------------------------------


def test_a_missing_program_or_network_backend_sends_up_to_the_host_install(tmp_path: Path) -> None:
    assert install.missing(["sh", "no-such-tool-here"], [str(tmp_path)]) == ["no-such-tool-here", "netavark"]
    (tmp_path / "netavark").touch()
    assert install.missing(["sh"], [str(tmp_path)]) == []


def test_the_host_install_script_ships_in_the_package() -> None:
    assert install.SCRIPT.name == "host-install.sh" and install.SCRIPT.is_file()
    text = install.SCRIPT.read_text()
    for package in ["podman", "runc", "netavark", "nftables", "iproute2", "docker-registry", "busybox-static", "curl"]:
        assert package in text
    assert "DPkg::Lock::Timeout=600" in text and "/etc/containers/containers.conf.d/50-shoal.conf" in text


def test_up_runs_the_host_install_when_a_tool_is_missing_and_fails_naming_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran = tmp_path / "ran"
    script = tmp_path / "host-install.sh"
    script.write_text(f"touch {ran}\n")
    monkeypatch.setattr(install, "SCRIPT", script)
    answers = iter([["docker-registry"], []])
    monkeypatch.setattr(install, "missing", lambda: next(answers))
    said: list[str] = []
    install.ensure_tools(said.append)
    assert ran.exists() and said == [f"docker-registry missing: running the host install ({script})"]

    monkeypatch.setattr(install, "missing", lambda: ["busybox"])
    with pytest.raises(LabError, match=r"busybox is still missing; install busybox-static"):
        install.ensure_tools(said.append)


def test_nothing_is_installed_when_every_tool_is_there(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(install, "missing", list)
    monkeypatch.setattr(install, "SCRIPT", Path("/nonexistent/host-install.sh"))
    install.ensure_tools(pytest.fail)
