"""The lab's operations: up (build, grow, shrink, repair), down, stop, start, status, env.

Role: sequence the steps: observe -> plan (plan.py, podmanconf.py) -> run (netns.py) -> the registry and demo
images (registryd.py) -> each host's podman (hostpodman.py) -> agents (agents.py) -> wait. Every operation is
idempotent and converges from whatever it finds, including a half-built lab. A host is *off* when no process
of it runs (after `stop`, or a crash of everything in it); bringing an off host back is a reboot: what a
reboot clears goes first (hostpodman.boot_clean, a fresh network namespace), then its podman service, then
its agent.
Boundary: no argument parsing or printing (cli.py); progress goes through the `report` callback.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from node.lab import agents, hostpodman, install, netns, plan, podmanconf, registry, registryd
from node.lab.errors import LabError
from node.lab.plan import Host
from node.lab.state import LabConfig, LabDir

Report = Callable[[str], None]
CONVERGE_TIMEOUT_S = 60.0


def _quiet(_: str) -> None:
    pass


def _check_owner(lab: LabDir) -> None:
    """Host names are machine-wide, so one lab at a time: refuse to adopt another lab dir's network."""
    owner = netns.bridge_owner()
    if owner and Path(owner) != lab.root and LabDir(Path(owner)).exists():
        raise LabError(
            f"a lab built with SHOAL_LAB_DIR={owner} is up; use that SHOAL_LAB_DIR, "
            f"or run `SHOAL_LAB_DIR={owner} shoal lab down` first"
        )


def up(
    lab: LabDir,
    size: int,
    labels: Iterable[tuple[int, str, str]] = (),
    timeout_s: float = CONVERGE_TIMEOUT_S,
    report: Report = _quiet,
) -> None:
    """Make the lab exactly h1..h`size`: network, registry with the demo images, every host's podman service
    and agent running, every agent seeing all others alive."""
    if not 1 <= size <= plan.MAX_HOSTS:
        raise LabError(f"a lab has 1..{plan.MAX_HOSTS} hosts, not {size}")
    problem = podmanconf.socket_problem(lab.podman(size))
    if problem:
        raise LabError(problem)
    install.ensure_tools(report)
    _check_owner(lab)  # before the lock, which creates the lab dir
    with lab.lock():
        old = lab.read_config()
        try:
            wanted = plan.merge_labels(old.labels, labels, size)
        except ValueError as exc:
            raise LabError(str(exc)) from exc
        observed = netns.observe()
        change = plan.resize(set(range(1, old.size + 1)) | lab.host_indices() | observed.indices(), size)
        if change.remove:
            report(f"removing {plan.describe_hosts(change.remove)}")
            _remove_hosts(lab, change.remove, observed, report)
            observed = netns.observe()
        lab.write_config(LabConfig(size=size, labels=wanted))
        hosts = plan.hosts(size)
        if _reboot_off_hosts(lab, hosts, observed, report):
            observed = netns.observe()
        netns.run_all(plan.network_up_commands(range(1, size + 1), observed, str(lab.root)))
        registryd.ensure_registry(lab, report)
        registryd.ensure_demo_images(lab, report)
        _ensure_services(lab, hosts, report)
        _ensure_agents(lab, hosts, wanted, old.labels, timeout_s, report)
        report(f"waiting until every agent sees all {size} hosts alive")
        agents.wait_converged(lab, hosts, timeout_s)
        for i in range(1, size + 1):
            lab.joined_marker(i).touch()


def _is_off(lab: LabDir, host: Host) -> bool:
    """No process of the host runs. A running agent or podman service settles it without a process scan."""
    paths = lab.podman(host.index)
    if agents.running_pid(lab, host.index) is not None or hostpodman.service_pid(paths) is not None:
        return False
    return hostpodman.is_off(host, paths)


def _reboot_off_hosts(lab: LabDir, hosts: Sequence[Host], observed: plan.Observed, report: Report) -> bool:
    """Clear what a reboot clears for every host that ran before (its podman has run state) and is off now;
    True if any was. Its network namespace goes too (netavark's firewall rules and bridges with it): the
    network plan then builds it afresh, as a booting machine's network starts from nothing."""
    off = [h for h in hosts if lab.podman(h.index).tmp_dir.exists() and _is_off(lab, h)]
    for host in off:
        report(f"{host.name}: off; clearing what a reboot clears")
        for problem in hostpodman.boot_clean(host, lab.podman(host.index)):
            report(f"{host.name}: {problem}")
        netns.run_all(plan.host_remove_commands(host.index, observed))
    return bool(off)


def _ensure_services(lab: LabDir, hosts: Sequence[Host], report: Report) -> None:
    """Write each host's podman config; start the API services that do not run (restart those whose config
    changed); return once every one answers on its socket. Services start all at once, then are waited on."""
    driver = hostpodman.storage_driver(lab.root)
    for host in hosts:
        paths = lab.podman(host.index)
        changed = hostpodman.write_config(paths, driver)
        running = hostpodman.service_pid(paths) is not None
        if running and changed:
            report(f"{host.name}: podman config changed, restarting its podman service")
            hostpodman.stop_service(paths)
            running = False
        if not running:
            report(f"{host.name}: starting podman service ({paths.socket})")
            hostpodman.start_service(host, paths, os.environ)
    hostpodman.wait_answering([(h, lab.podman(h.index)) for h in hosts])


def _teardown_hosts(lab: LabDir, indices: Iterable[int], report: Report) -> None:
    """Every host's podman torn down (hostpodman.teardown), all hosts at once; problems reported."""
    found = sorted(indices)
    if not found:
        return
    with ThreadPoolExecutor(max_workers=min(8, len(found))) as pool:
        results = pool.map(lambda i: (i, hostpodman.teardown(Host(i), lab.podman(i))), found)
        for index, problems in results:
            for problem in problems:
                report(f"h{index}: {problem}")


def _remove_hosts(lab: LabDir, indices: Sequence[int], observed: plan.Observed, report: Report) -> None:
    """Shrink (P12): the agents leave gracefully, then the hosts' containers, podman services, wires, netns
    and dirs go. Routes to their subnets are dropped by the route plan of the hosts that stay."""
    agents.stop(lab, indices)
    _teardown_hosts(lab, indices, report)
    for i in indices:
        netns.run_all(plan.host_remove_commands(i, observed))
        lab.remove_host(i)


def _ensure_agents(
    lab: LabDir,
    hosts: Sequence[Host],
    labels: Mapping[int, Mapping[str, str]],
    old_labels: Mapping[int, Mapping[str, str]],
    timeout_s: float,
    report: Report,
) -> None:
    """Start every agent that is not running; restart those whose labels changed. h1 goes first and
    must answer before the others start, since they join through it."""
    for host in hosts:
        lab.prepare_host(host.index)
        running = agents.running_pid(lab, host.index) is not None
        if running and dict(labels.get(host.index, {})) != dict(old_labels.get(host.index, {})):
            report(f"{host.name}: labels changed, restarting its agent")
            agents.stop(lab, [host.index])
            running = False
        if not running:
            report(f"{host.name}: starting agent")
            _start_agent(lab, host, labels.get(host.index, {}))
        if host.index == 1:
            agents.wait_healthy(lab, host, timeout_s)


def _start_agent(lab: LabDir, host: Host, labels: Mapping[str, str]) -> None:
    """Start from the data dir if it already holds a cluster identity; otherwise begin afresh:
    h1 initialises the cluster, the others join it through h1 with the token."""
    joined = lab.joined_marker(host.index).exists()
    if not joined:
        # A data dir without the marker is the debris of a start that never completed.
        shutil.rmtree(lab.data_dir(host.index), ignore_errors=True)
        lab.prepare_host(host.index)
    join: tuple[str, str] | None = None
    if host.index == 1 and not joined:
        lab.write_token(agents.init_cluster(lab, host))
        lab.joined_marker(host.index).touch()
    elif not joined:
        token = lab.read_token()
        if token is None:
            raise LabError(f"no join token in {lab.token_file}; run `shoal lab down`, then `shoal lab up`")
        join = (Host(1).gossip, token)
    agents.start_agent(lab, host, labels, join)


def down(lab: LabDir, report: Report = _quiet) -> None:
    """Remove everything the lab made: agents (SIGTERM, then SIGKILL), every host's containers and podman
    service, the registry, the builder, routes, veths, netns, bridge, mounts and the lab dir. Works on a
    half-built lab; fails only if something survives (a process, a mount, a shoal-* name, the dir)."""
    netns.require_tools()
    owner = netns.bridge_owner()
    dirs = [lab]
    if owner and Path(owner) != lab.root and LabDir(Path(owner)).exists():
        dirs.append(LabDir(Path(owner)))  # the lab that built the network: its agents must go too
    errors: list[str] = []
    with contextlib.ExitStack() as locks:
        for each in dirs:
            locks.enter_context(each.lock())
            indices = each.host_indices()
            if indices:
                report(f"stopping agents of {plan.describe_hosts(indices)}")
            agents.stop(each, indices)
            if indices:
                report(f"removing the containers and podman services of {plan.describe_hosts(indices)}")
            _teardown_hosts(each, indices, report)
            try:
                registryd.stop_registry(each)
            except LabError as exc:
                errors.append(str(exc))
            hostpodman.unmount_under(each.builder.root)
        errors += netns.run_each(plan.network_down_commands(netns.observe()))
        left = netns.observe()
        if left.netns or left.links or any(left.routes.values()):
            errors.append(f"still present: {sorted(left.netns | left.links)} {dict(left.routes)}")
        for each in dirs:
            errors += _survivors(each)
            each.remove()
            if each.root.exists():
                errors.append(f"{each.root} could not be removed")
    if errors:
        raise LabError("lab down did not remove everything:\n" + "\n".join(errors))


def _survivors(lab: LabDir) -> list[str]:
    """Agents and podman services of the lab that still run, its registry, and whatever stays mounted under
    the lab dir after a last lazy unmount of everything there."""
    found = []
    for i in sorted(lab.host_indices()):
        if agents.running_pid(lab, i) is not None:
            found.append(f"the agent of h{i} still runs")
        pid = hostpodman.service_pid(lab.podman(i))
        if pid is not None:
            found.append(f"the podman service of h{i} (pid {pid}) still runs")
    if registryd.registry_pid(lab) is not None:
        found.append("the registry still runs")
    mounts = hostpodman.unmount_under(lab.root)
    if mounts:
        found.append(f"still mounted under {lab.root}: {', '.join(mounts)}")
    return found


def resolve(lab: LabDir, name: str) -> Host:
    """The host called `name` in this lab; the error names the hosts that exist."""
    size = lab.read_config().size
    index = plan.parse_host(name)
    if index is None or not 1 <= index <= size:
        if size == 0:
            raise LabError(f"unknown host {name!r}: no lab is up in {lab.root} (run `shoal lab up`)")
        raise LabError(f"unknown host {name!r}; the lab has {plan.describe_hosts(range(1, size + 1))}")
    return Host(index)


def stop(lab: LabDir, name: str) -> int:
    """Fail a host hard, as if it lost power: SIGKILL every process of it at once (agent, podman service,
    every container), cut its link. Returns how many processes were killed."""
    netns.require_tools()
    with lab.lock():
        host = resolve(lab, name)
        killed = hostpodman.power_off(host, lab.podman(host.index))
        if Path(host.netns_path).exists():
            netns.set_link(host.veth, up=False)
        return killed


def start(lab: LabDir, name: str, timeout_s: float = CONVERGE_TIMEOUT_S, report: Report = _quiet) -> None:
    """Bring a host back: if it is off, reboot it (clear what a reboot clears, fresh netns), link up, its
    podman service, then its agent from its data dir; wait until every running agent sees every running
    agent alive. Other hosts, stopped or not, are left as they are."""
    netns.require_tools()
    with lab.lock():
        host = resolve(lab, name)
        config = lab.read_config()
        observed = netns.observe()
        if _reboot_off_hosts(lab, [host], observed, report):
            observed = netns.observe()
        netns.run_all(plan.start_commands(host.index, range(1, config.size + 1), observed))
        _ensure_services(lab, [host], report)
        if agents.running_pid(lab, host.index) is None:
            report(f"{host.name}: starting agent")
            _start_agent(lab, host, config.labels.get(host.index, {}))
        running = [h for h in plan.hosts(config.size) if agents.running_pid(lab, h.index) is not None]
        agents.wait_converged(lab, running, timeout_s)
        lab.joined_marker(host.index).touch()


@dataclass
class HostStatus:
    """One row of `shoal lab status`."""

    name: str
    netns: str
    address: str
    api: str
    agent: str  # running | stopped
    pid: int | None
    link: str  # up | down | missing
    podman: str  # running | stopped: the host's podman API service
    podman_pid: int | None
    podman_socket: str
    containers: int | None  # as the host's podman service counts them (all states); None if it did not answer
    labels: dict[str, str] = field(default_factory=dict)
    members: dict[str, str] | None = None  # what its agent sees; None if it did not answer


def status(lab: LabDir) -> list[HostStatus]:
    config = lab.read_config()
    observed = netns.observe()
    indices = set(range(1, config.size + 1)) | lab.host_indices() | observed.indices()
    hosts = [Host(i) for i in sorted(indices)]
    links = netns.link_states()
    pids = {h.index: agents.running_pid(lab, h.index) for h in hosts}
    views = agents.fetch_views([h for h in hosts if pids[h.index] is not None])
    rows = []
    for h in hosts:
        view = views.get(h.name)
        paths = lab.podman(h.index)
        service = hostpodman.service_pid(paths)
        rows.append(
            HostStatus(
                name=h.name,
                netns=h.netns,
                address=h.address,
                api=h.api_url,
                agent="running" if pids[h.index] is not None else "stopped",
                pid=pids[h.index],
                link="missing" if h.veth not in links else ("up" if links[h.veth] else "down"),
                podman="running" if service is not None else "stopped",
                podman_pid=service,
                podman_socket=str(paths.socket),
                containers=hostpodman.count_containers(paths) if service is not None else None,
                labels=dict(config.labels.get(h.index, {})),
                members=dict(view.statuses) if view and view.statuses is not None else None,
            )
        )
    return rows


def registry_status(lab: LabDir) -> str:
    """One line about the lab's registry: where, whether it runs, which demo tags it holds."""
    pid = registryd.registry_pid(lab)
    if pid is None:
        return f"registry {registry.ADDRESS}: not running"
    try:
        missing = registryd.missing_demo_tags()
    except LabError as exc:
        return f"registry {registry.ADDRESS}: running (pid {pid}), {exc}"
    held = [registry.demo_image(t) for t in registry.DEMO_TAGS if t not in missing]
    return f"registry {registry.ADDRESS}: running (pid {pid}); " + (", ".join(held) or "no demo images")


def env(lab: LabDir, name: str) -> list[str]:
    """Shell exports that point client commands at `name`: Shoal's CLI at its agent, podman's at its
    podman service (CONTAINER_HOST makes `podman` a remote client of that socket)."""
    host = resolve(lab, name)
    return [f"export SHOAL_HOST={host.api_url}", f"export CONTAINER_HOST={lab.podman(host.index).url}"]


def exec_argv(lab: LabDir, name: str, argv: Sequence[str]) -> tuple[plan.Cmd, dict[str, str]]:
    """The command line that runs argv in the host's network namespace (only the netns: P1), and its
    environment: ours, pointed at the host's podman config, so a plain `podman ps` there lists the host's
    containers."""
    netns.require_tools()
    host = resolve(lab, name)
    if not Path(host.netns_path).exists():
        raise LabError(f"{host.name} has no network namespace ({host.netns_path}); run `shoal lab up`")
    return plan.in_netns(host, argv), hostpodman.env(lab.podman(host.index))

