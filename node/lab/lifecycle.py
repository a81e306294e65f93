"""The lab's operations: up (build, grow, shrink, repair), down, stop, start, status.

Role: sequence the steps: observe -> plan (plan.py) -> run (netns.py) -> agents (agents.py) -> wait.
Every operation is idempotent and converges from whatever it finds, including a half-built lab.
Boundary: no argument parsing or printing (commands.py); progress goes through the `report` callback.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from node.lab import agents, netns, plan
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
    """Make the lab exactly h1..h`size`, every agent running and seeing all others alive."""
    if not 1 <= size <= plan.MAX_HOSTS:
        raise LabError(f"a lab has 1..{plan.MAX_HOSTS} hosts, not {size}")
    netns.require_tools()
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
            _remove_hosts(lab, change.remove, observed)
            observed = netns.observe()
        lab.write_config(LabConfig(size=size, labels=wanted))
        netns.run_all(plan.network_up_commands(range(1, size + 1), observed, str(lab.root)))
        _ensure_agents(lab, plan.hosts(size), wanted, old.labels, timeout_s, report)
        report(f"waiting until every agent sees all {size} hosts alive")
        agents.wait_converged(lab, plan.hosts(size), timeout_s)
        for i in range(1, size + 1):
            lab.joined_marker(i).touch()


def _remove_hosts(lab: LabDir, indices: Sequence[int], observed: plan.Observed) -> None:
    """Shrink (P12): the agents leave gracefully, then their wires, netns and dirs go. Routes to
    their subnets are dropped by the route plan of the hosts that stay."""
    agents.stop(lab, indices)
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
    """Remove everything the lab made: agents (SIGTERM, then SIGKILL), routes, veths, netns, bridge,
    and the lab dir. Works on a half-built lab; fails only if something named shoal-* survives."""
    netns.require_tools()
    owner = netns.bridge_owner()
    dirs = [lab]
    if owner and Path(owner) != lab.root and LabDir(Path(owner)).exists():
        dirs.append(LabDir(Path(owner)))  # the lab that built the network: its agents must go too
    with contextlib.ExitStack() as locks:
        for each in dirs:
            locks.enter_context(each.lock())
            indices = each.host_indices()
            if indices:
                report(f"stopping agents of {plan.describe_hosts(indices)}")
            agents.stop(each, indices)
        errors = netns.run_each(plan.network_down_commands(netns.observe()))
        left = netns.observe()
        if left.netns or left.links or any(left.routes.values()):
            errors.append(f"still present: {sorted(left.netns | left.links)} {dict(left.routes)}")
        for each in dirs:
            each.remove()
    if errors:
        raise LabError("lab down did not remove everything:\n" + "\n".join(errors))


def resolve(lab: LabDir, name: str) -> Host:
    """The host called `name` in this lab; the error names the hosts that exist."""
    size = lab.read_config().size
    index = plan.parse_host(name)
    if index is None or not 1 <= index <= size:
        if size == 0:
            raise LabError(f"unknown host {name!r}: no lab is up in {lab.root} (run `shoal lab up`)")
        raise LabError(f"unknown host {name!r}; the lab has {plan.describe_hosts(range(1, size + 1))}")
    return Host(index)


def stop(lab: LabDir, name: str) -> None:
    """Fail a host hard, as if it lost power: SIGKILL its agent, cut its link."""
    netns.require_tools()
    with lab.lock():
        host = resolve(lab, name)
        pid = agents.running_pid(lab, host.index)
        if pid is not None:
            agents.kill(lab, {host.index: pid})
        netns.set_link(host.veth, up=False)


def start(lab: LabDir, name: str, timeout_s: float = CONVERGE_TIMEOUT_S, report: Report = _quiet) -> None:
    """Bring a host back: link up, agent restarted from its data dir; wait until every running
    agent sees every running agent alive."""
    netns.require_tools()
    with lab.lock():
        host = resolve(lab, name)
        netns.set_link(host.veth, up=True)
        if agents.running_pid(lab, host.index) is None:
            report(f"{host.name}: starting agent")
            _start_agent(lab, host, lab.read_config().labels.get(host.index, {}))
        config = lab.read_config()
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
        rows.append(
            HostStatus(
                name=h.name,
                netns=h.netns,
                address=h.address,
                api=h.api_url,
                agent="running" if pids[h.index] is not None else "stopped",
                pid=pids[h.index],
                link="missing" if h.veth not in links else ("up" if links[h.veth] else "down"),
                labels=dict(config.labels.get(h.index, {})),
                members=dict(view.statuses) if view and view.statuses is not None else None,
            )
        )
    return rows


def env(lab: LabDir, name: str) -> list[str]:
    """Shell exports that point client commands at `name`."""
    host = resolve(lab, name)
    return [f"export SHOAL_HOST={host.api_url}"]


def exec_argv(lab: LabDir, name: str, argv: Sequence[str]) -> plan.Cmd:
    """The command line that runs argv in the host's network namespace (only the netns: P1)."""
    netns.require_tools()
    host = resolve(lab, name)
    if not Path(host.netns_path).exists():
        raise LabError(f"{host.name} has no network namespace ({host.netns_path}); run `shoal lab up`")
    return plan.in_netns(host, argv)
