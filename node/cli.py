"""The `shoal` command line (click): agent commands and client commands over one node's HTTP API.

Client commands take --host (or SHOAL_HOST) before or after the subcommand. Exit codes (SPEC.md):
0 ok, 1 refused, 2 bad usage, 3 no node answered. Listings print a table, or a JSON array with --json.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import click

from gossip.errors import GossipError
from gossip.identity import init_cluster
from node.cli_services import (
    HISTORY_HEADER,
    NODE_HEADER,
    PS_HEADER,
    SERVICE_HEADER,
    applied_line,
    expect_params,
    follow,
    history_row,
    node_path,
    node_row,
    parse_scale,
    ps_row,
    service_path,
    service_row,
)
from node.client import DEFAULT_HOST, ClientError, request
from node.config import DEFAULT_DATA, ConfigError, build, load_file
from node.desired import InvalidRequest, parse_expect
from node.lab import lifecycle, plan
from node.lab.errors import LabError
from node.lab.state import ENV_VAR, LabDir
from node.manifest import MAX_TEXT_BYTES, ManifestError, parse_manifest

F = TypeVar("F", bound=Callable[..., Any])


def host_option(func: F) -> F:
    return click.option("--host", "sub_host", metavar="URL", default=None,
                        help="Agent API URL (overrides SHOAL_HOST and a --host given before the command).")(func)


def group_host_option(func: F) -> F:
    """--host between a group and its subcommand (`shoal node --host U ls`): the host for what follows."""
    def use(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value is not None:
            ctx.ensure_object(dict)["host"] = value
    return click.option("--host", metavar="URL", default=None, expose_value=False, callback=use,
                        help="Agent API URL (overrides SHOAL_HOST and a --host given before the group).")(func)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", metavar="URL", envvar="SHOAL_HOST", default=DEFAULT_HOST, show_default=True,
              help="Agent API URL (env SHOAL_HOST).")
@click.pass_context
def cli(ctx: click.Context, host: str) -> None:
    """Shoal: a peer-to-peer container orchestrator."""
    ctx.ensure_object(dict)
    ctx.obj["host"] = host


def _call(ctx: click.Context, sub_host: str | None, method: str, path: str, body: Any = None, **extra: Any) -> Any:
    """One API request; a refusal or no answer ends the command with SPEC's exit code."""
    try:
        return request(sub_host or ctx.obj["host"], method, path, body, **extra)
    except ClientError as exc:
        click.echo(f"shoal: {exc}", err=True)
        sys.exit(exc.exit_code)


def _each(ctx: click.Context, sub_host: str | None, method: str, path: str, body: Any = None) -> Any | None:
    """One of several requests: a refusal is reported and None returned (the caller goes on to the next);
    no answer at all still ends the command."""
    try:
        return request(sub_host or ctx.obj["host"], method, path, body)
    except ClientError as exc:
        click.echo(f"shoal: {exc}", err=True)
        if exc.exit_code != 1:
            sys.exit(exc.exit_code)
        return None


def _listing(rows: list[Any], as_json: bool, header: list[str], row: Callable[[Any], list[str]]) -> None:
    """A listing: with --json the array alone on stdout, else a table."""
    if as_json:
        click.echo(json.dumps(rows))
        return
    _table([row(r) for r in rows], header)


def _table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@cli.command()
@click.option("--data", type=click.Path(path_type=Path), default=DEFAULT_DATA, show_default=True)
@click.option("--cluster", "cluster_name", default="shoal", show_default=True, help="Cluster name.")
@click.option("--name", default=None, help="This node's name (default: generated).")
def init(data: Path, cluster_name: str, name: str | None) -> None:
    """Create a new cluster identity (CA) in DATA; the join token is the last line of output."""
    try:
        identity = init_cluster(data, cluster_name=cluster_name, node_name=name, now_s=time.time())
    except GossipError as exc:
        click.echo(f"shoal init: {exc}", err=True)
        sys.exit(1)
    click.echo(f"cluster {identity.cluster_name} ({identity.cluster_id}) created in {data}")
    click.echo(f"node {identity.node_name} ({identity.node_id})")
    click.echo("start this node with `shoal agent --data DIR`; join others with --join ADDRESS --token:")
    click.echo(str(identity.token))


@cli.command()
@click.option("--data", type=click.Path(path_type=Path), default=None, help=f"Data dir [{DEFAULT_DATA}].")
@click.option("--name", default=None, help="Node name (default: generated and persisted).")
@click.option("--bind", default=None, metavar="IP[:PORT]", help="Gossip UDP+TCP bind [0.0.0.0:7946].")
@click.option("--advertise", default=None, metavar="IP[:PORT]", help="Address peers use to reach us.")
@click.option("--api", default=None, metavar="IP[:PORT]", help="HTTP API bind [--bind IP or 127.0.0.1, port 7947].")
@click.option("--join", multiple=True, metavar="IP[:PORT]", help="A member to join through (repeatable).")
@click.option("--token", default=None, help="Join token from `shoal init` or `shoal join-token`.")
@click.option("--label", multiple=True, metavar="KEY=VALUE", help="Node label (repeatable).")
@click.option("--runtime", type=click.Choice(["podman", "none"]), default=None,
              help="Container runtime; `none` = control plane only [podman].")
@click.option("--podman-socket", type=click.Path(path_type=Path), default=None,
              help="Podman API socket; started if absent [/run/podman/podman.sock].")
@click.option("--subnet", default=None, metavar="CIDR",
              help="This node's container subnet, e.g. 198.19.1.0/24 [podman picks one].")
@click.option("--service-range", default=None, metavar="CIDR",
              help="Service VIPs, alike on every node [198.19.0.0/24].")
@click.option("--dns-address", default=None, metavar="IP",
              help="The agent's DNS responder for containers, inside --service-range [198.19.0.53].")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="TOML config file ([agent], [gossip]).")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]))
@click.pass_context
def agent(ctx: click.Context, /, config_file: Path | None, log_level: str, **flags: Any) -> None:
    """Run the Shoal agent on this host."""
    flags["labels"] = flags.pop("label")
    try:
        config = build(flags, load_file(config_file) if config_file else {})
    except ConfigError as exc:
        click.echo(f"shoal agent: {exc}", err=True)
        sys.exit(2)
    sys.exit(ctx.obj["serve"](config, log_level))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@host_option
@click.pass_context
def members(ctx: click.Context, as_json: bool, sub_host: str | None) -> None:
    """List the cluster's members as the answering node sees them."""
    _listing(_call(ctx, sub_host, "GET", "/v1/members"), as_json, ["NAME", "ID", "ADDRESS", "STATUS", "INC", "LABELS"],
             lambda r: [r["name"], r["id"][:12], r["address"], r["status"], str(r["incarnation"]),
                        ",".join(f"{k}={v}" for k, v in sorted(r["labels"].items()))])


@cli.command("join-token")
@host_option
@click.pass_context
def join_token(ctx: click.Context, sub_host: str | None) -> None:
    """Print the cluster's join token (asks the node's API)."""
    click.echo(_call(ctx, sub_host, "GET", "/v1/join-token")["token"])


# ---- desired state: apply, services, rm, scale, history (output rules in node.cli_services) -------------


@cli.command()
@click.option("-f", "--file", "source", type=click.File("rb"), required=True, help="A Compose file, or - for stdin.")
@click.option("--expect", multiple=True, metavar="SERVICE:GEN",
              help="Apply only if SERVICE is still at generation GEN (0: absent); default: what was just read.")
@click.option("--json", "as_json", is_flag=True, help="Print the services' results as a JSON array.")
@host_option
@click.pass_context
def apply(ctx: click.Context, source: BinaryIO, expect: tuple[str, ...], as_json: bool, sub_host: str | None) -> None:
    """Create or update every service in a Compose file (checked here first); prints what changed.

    The apply is refused (409, exit 1) if a service changed since it was read, or since --expect's generation."""
    text = source.read(MAX_TEXT_BYTES + 1)
    if len(text) > MAX_TEXT_BYTES:
        click.echo(f"shoal apply: {source.name}: larger than {MAX_TEXT_BYTES} bytes (1 MiB), the most a manifest "
                   "may be", err=True)
        sys.exit(1)
    try:
        manifest = parse_manifest(text)
        given = parse_expect(expect)
    except ManifestError as exc:
        click.echo(f"shoal apply: {exc}", err=True)
        sys.exit(1)
    except InvalidRequest as exc:
        raise click.BadParameter(str(exc), param_hint="--expect") from None
    for warning in manifest.warnings:
        click.echo(f"shoal apply: warning: {warning}", err=True)
    params = expect_params(manifest, _call(ctx, sub_host, "GET", "/v1/services"), given)
    answer = _call(ctx, sub_host, "POST", "/v1/services", data=text, params=params,
                   headers={"Content-Type": "application/yaml"})
    if as_json:
        click.echo(json.dumps(answer["services"]))
        return
    for result in answer["services"]:
        click.echo(applied_line(result))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@host_option
@click.pass_context
def services(ctx: click.Context, as_json: bool, sub_host: str | None) -> None:
    """List the cluster's services (the desired state the answering node holds)."""
    _listing(_call(ctx, sub_host, "GET", "/v1/services"), as_json, SERVICE_HEADER, service_row)


@cli.command("rm")
@click.argument("names", metavar="SERVICE...", nargs=-1, required=True)
@host_option
@click.pass_context
def rm(ctx: click.Context, names: tuple[str, ...], sub_host: str | None) -> None:
    """Delete services; tries every one, exits 1 if any was refused (e.g. not found)."""
    refused = False
    for name in names:
        answer = _each(ctx, sub_host, "DELETE", service_path(name))
        refused |= answer is None
        if answer is not None:
            click.echo(f"{name}: deleted (generation {answer['generation']})")
    sys.exit(1 if refused else 0)


@cli.command()
@click.argument("targets", metavar="SERVICE=N...", nargs=-1, required=True)
@host_option
@click.pass_context
def scale(ctx: click.Context, targets: tuple[str, ...], sub_host: str | None) -> None:
    """Set replicated services' replica counts; tries every one, exits 1 if any was refused."""
    try:
        pairs = parse_scale(targets)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="SERVICE=N") from None
    refused = False
    for name, replicas in pairs:
        answer = _each(ctx, sub_host, "POST", service_path(name, "/scale"), {"replicas": replicas})
        refused |= answer is None
        if answer is not None:
            click.echo(f"{name}: {answer['replicas']} replicas (generation {answer['generation']})")
    sys.exit(1 if refused else 0)


@cli.command()
@click.argument("name", metavar="SERVICE")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@host_option
@click.pass_context
def history(ctx: click.Context, name: str, as_json: bool, sub_host: str | None) -> None:
    """A service's versions, newest first: who changed what, and which edits lost a conflict."""
    _listing(_call(ctx, sub_host, "GET", service_path(name))["history"], as_json, HISTORY_HEADER, history_row)


@cli.command()
@click.argument("name", metavar="SERVICE")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@host_option
@click.pass_context
def ps(ctx: click.Context, name: str, as_json: bool, sub_host: str | None) -> None:
    """Where each replica of SERVICE runs, its state and restarts (observed state, cluster-wide)."""
    _listing(_call(ctx, sub_host, "GET", service_path(name, "/replicas")), as_json, PS_HEADER, ps_row)


# ---- rollouts: status, rollback, canary, switch (docs/rollouts.md) -------------------------------------


@cli.group("rollout")
@group_host_option
def rollout_group() -> None:
    """Follow a service's rollout."""


@rollout_group.command("status")
@click.argument("name", metavar="SERVICE")
@click.option("--json", "as_json", is_flag=True, help="Print only the final status, as a JSON object.")
@click.option("--timeout", type=click.FloatRange(min=0), default=None, metavar="S",
              help="Give up after S seconds (exit 1) [wait until the rollout ends].")
@host_option
@click.pass_context
def rollout_status(ctx: click.Context, name: str, as_json: bool, timeout: float | None, sub_host: str | None) -> None:
    """Follow the newest generation's rollout until it ends, with a progress bar.

    Exit 0 when it completed; 1 when it paused, was rolled back or failed (or --timeout passed)."""
    redraw = not as_json and sys.stdout.isatty()

    def show(text: str) -> None:
        if redraw:
            click.echo("\r\x1b[K" + text, nl=False)  # one line, redrawn in place
        elif not as_json:
            click.echo(text)

    try:
        final, timed_out = follow(lambda: _call(ctx, sub_host, "GET", service_path(name, "/rollout")), show,
                                  time.sleep, time.monotonic, timeout)
    except ValueError as exc:
        click.echo(f"shoal rollout status: {exc}", err=True)
        sys.exit(1)
    if redraw:
        click.echo()
    if as_json:
        click.echo(json.dumps(final))
    if timed_out:
        click.echo(f"shoal rollout status: {name} generation {final['generation']} is still {final['phase']} "
                   f"after {timeout:g}s", err=True)
        sys.exit(1)
    sys.exit(int(final["exit_code"]))


def _written(ctx: click.Context, sub_host: str | None, path: str, body: Any = None) -> None:
    """One rollout write; prints what was written like apply: `web: updated to generation 8: ...`."""
    click.echo(applied_line(_call(ctx, sub_host, "POST", path, body)))


@cli.command()
@click.argument("name", metavar="SERVICE")
@host_option
@click.pass_context
def rollback(ctx: click.Context, name: str, sub_host: str | None) -> None:
    """Write SERVICE's previous spec back as its next generation; run again, it swaps back."""
    _written(ctx, sub_host, service_path(name, "/rollback"))


@cli.group("canary")
@group_host_option
def canary_group() -> None:
    """A service's canary (x-shoal.canary): promote it, abort it, or set its weight."""


@canary_group.command("promote")
@click.argument("name", metavar="SERVICE")
@host_option
@click.pass_context
def canary_promote(ctx: click.Context, name: str, sub_host: str | None) -> None:
    """The canary's image, command and environment become SERVICE's; its replicas roll to them."""
    _written(ctx, sub_host, service_path(name, "/canary/promote"))


@canary_group.command("abort")
@click.argument("name", metavar="SERVICE")
@host_option
@click.pass_context
def canary_abort(ctx: click.Context, name: str, sub_host: str | None) -> None:
    """Remove SERVICE's canary; its own replicas are untouched."""
    _written(ctx, sub_host, service_path(name, "/canary/abort"))


@canary_group.command("weight")
@click.argument("name", metavar="SERVICE")
@click.argument("weight", metavar="W", type=click.FloatRange(min=0, max=100, min_open=True))
@host_option
@click.pass_context
def canary_weight(ctx: click.Context, name: str, weight: float, sub_host: str | None) -> None:
    """Send W percent (0 < W <= 100) of SERVICE's new connections to its canary; restarts nothing."""
    _written(ctx, sub_host, service_path(name, "/canary"), {"weight": weight})


@cli.command()
@click.argument("name", metavar="SERVICE")
@click.argument("side", metavar="[blue|green]", type=click.Choice(["blue", "green"]), required=False)
@host_option
@click.pass_context
def switch(ctx: click.Context, name: str, side: str | None, sub_host: str | None) -> None:
    """Blue-green: send SERVICE's new connections to SIDE (default: the side not live now); restarts nothing."""
    _written(ctx, sub_host, service_path(name, "/switch"), {"to": side} if side else None)


# ---- node management: ls, inspect, label, drain, activate ----------------------------------------------


@cli.group("node")
@group_host_option
def node_group() -> None:
    """List and inspect nodes; label, drain and activate them (desired state, written through any node)."""


@node_group.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@host_option
@click.pass_context
def node_ls(ctx: click.Context, as_json: bool, sub_host: str | None) -> None:
    """Every member with its availability, runtime, labels and running replicas."""
    _listing(_call(ctx, sub_host, "GET", "/v1/nodes"), as_json, NODE_HEADER, node_row)


@node_group.command("inspect")
@click.argument("node")
@host_option
@click.pass_context
def node_inspect(ctx: click.Context, node: str, sub_host: str | None) -> None:
    """One node as JSON: labels (and where each comes from), subnet, placement digest, replicas."""
    click.echo(json.dumps(_call(ctx, sub_host, "GET", node_path(node)), indent=2))


@node_group.command("label")
@click.argument("node")
@click.argument("changes", metavar="KEY=VALUE|KEY-...", nargs=-1, required=True)
@host_option
@click.pass_context
def node_label(ctx: click.Context, node: str, changes: tuple[str, ...], sub_host: str | None) -> None:
    """Set (KEY=VALUE) or remove (KEY-) node labels; placement constraints and spread read them."""
    answer = _call(ctx, sub_host, "POST", node_path(node, "/labels"), {"labels": list(changes)})
    click.echo(f"{answer['name']}: " + (",".join(f"{k}={v}" for k, v in sorted(answer["labels"].items())) or "-"))


@node_group.command("drain")
@click.argument("node")
@host_option
@click.pass_context
def node_drain(ctx: click.Context, node: str, sub_host: str | None) -> None:
    """Move every replica off NODE and place none there until `activate`."""
    _availability(ctx, node, sub_host, "/drain")


@node_group.command("activate")
@click.argument("node")
@host_option
@click.pass_context
def node_activate(ctx: click.Context, node: str, sub_host: str | None) -> None:
    """Let placement use NODE again."""
    _availability(ctx, node, sub_host, "/activate")


def _availability(ctx: click.Context, node: str, sub_host: str | None, action: str) -> None:
    answer = _call(ctx, sub_host, "POST", node_path(node, action))
    click.echo(f"{answer['name']}: {answer['availability']}")


# ---- shoal lab: the command-line face of node.lab (no lab logic here) ----------------------------------

T = TypeVar("T")
DEFAULT_LAB_SIZE = 3  # `shoal lab up` with no N, for a new lab


def _lab() -> LabDir:
    return LabDir.from_env(os.environ)


def _say(message: str) -> None:
    click.echo(f"lab: {message}", err=True)


def _run(action: Callable[[], T]) -> T:
    """Root first (checked per command, so `--help` works for anyone), then the action."""
    if os.geteuid() != 0:
        raise click.ClickException("shoal lab needs root (network namespaces)")
    try:
        return action()
    except LabError as exc:
        raise click.ClickException(str(exc)) from exc


def converge_timeout(help_text: str) -> Callable[[F], F]:
    return click.option("--timeout", type=click.FloatRange(min=1), default=lifecycle.CONVERGE_TIMEOUT_S,
                        show_default=True, help=help_text)


@click.group("lab")
def lab_group() -> None:
    """A local multi-host lab: N hosts, each its own network namespace with a podman and an agent.

    Host hI is netns shoal-hI at 198.18.0.(10+I) on bridge shoal-br0 (198.18.0.1); its API is
    http://198.18.0.(10+I):7947, its podman API $SHOAL_LAB_DIR/hI/podman.sock, its containers'
    subnet 198.19.I.0/24. The image registry is 198.18.0.1:5000 (shoal-demo:1 and :2). State lives
    in $SHOAL_LAB_DIR (default /var/tmp/shoal-lab).
    """


@lab_group.command("up")
@click.argument("size", metavar="[N]", type=click.IntRange(1, plan.MAX_HOSTS), default=None, required=False)
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="HOST:KEY=VALUE",
    help="Agent label for one host, e.g. h1:disk=ssd; repeatable. Kept across later `up`s.",
)
@converge_timeout("Seconds to wait for every agent to see all hosts alive.")
def up_command(size: int | None, labels: tuple[str, ...], timeout: float) -> None:
    """Build, grow or shrink the lab to N hosts (default: the lab's current size, or 3 for a new lab); returns
    once all agents see all N alive.

    Installs what is missing first (podman, runc, netavark, docker-registry, busybox-static: the host
    install script shipped with shoal), starts the registry and pushes the demo images if absent.
    """
    try:
        parsed = [plan.parse_label(text) for text in labels]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--label") from exc
    lab = _lab()
    # Without N, `up` brings the lab back as it was (a bare `up` must not shrink a 5-host lab to 3).
    hosts = size or _run(lambda: lab.read_config().size) or DEFAULT_LAB_SIZE
    _run(lambda: lifecycle.up(lab, hosts, parsed, timeout, _say))
    _say(f"{plan.describe_hosts(range(1, hosts + 1))} up; `shoal lab env h1` points clients at h1")


@lab_group.command("down")
def down_command() -> None:
    """Remove everything: agents, containers, podman services, registry, netns, links, routes, mounts, lab dir."""
    _run(lambda: lifecycle.down(_lab(), _say))
    _say("down")


def _sees(members: dict[str, str] | None) -> str:
    if members is None:
        return "-"
    alive = sum(1 for s in members.values() if s == "alive")
    others = " ".join(f"{n}={s}" for n, s in sorted(members.items()) if s != "alive")
    return f"{alive}/{len(members)} alive" + (f" ({others})" if others else "")


@lab_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="A JSON array on stdout, nothing else.")
def status_command(as_json: bool) -> None:
    """List the hosts: address, agent, podman service, link, what each agent sees; the registry (stderr)."""
    rows = _run(lambda: lifecycle.status(_lab()))
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
        return
    if not rows:
        _say(f"no lab in {_lab().root} ({ENV_VAR})")
        return
    table = []
    for r in rows:
        agent = f"running ({r.pid})" if r.pid is not None else r.agent
        podman = f"running ({r.podman_pid})" if r.podman_pid is not None else r.podman
        containers = "-" if r.containers is None else str(r.containers)
        labels = ",".join(f"{k}={v}" for k, v in sorted(r.labels.items())) or "-"
        table.append([r.name, r.address, r.api, agent, podman, containers, r.link, _sees(r.members), labels])
    _table(table, ["HOST", "ADDRESS", "API", "AGENT", "PODMAN", "CONTAINERS", "LINK", "SEES", "LABELS"])
    _say(_run(lambda: lifecycle.registry_status(_lab())))


@lab_group.command("env")
@click.argument("host")
def env_command(host: str) -> None:
    """Print shell exports for HOST (SHOAL_HOST, CONTAINER_HOST): eval "$(shoal lab env h1)"."""
    for line in _run(lambda: lifecycle.env(_lab(), host)):
        click.echo(line)


@lab_group.command(
    "exec",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("host")
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_command(host: str, cmd: tuple[str, ...]) -> None:
    """Run CMD inside HOST's network namespace: shoal lab exec h1 -- curl ...; exits with CMD's code.

    CMD gets HOST's podman config (CONTAINERS_CONF, ...), so `podman ps` there lists HOST's containers.
    """
    argv, env = _run(lambda: lifecycle.exec_argv(_lab(), host, cmd))
    sys.stdout.flush()
    sys.stderr.flush()
    # exec, not a child: CMD gets our terminal, signals (Ctrl-C) and exit status exactly as if run
    # directly; nsenter in turn execs CMD.
    os.execvpe(argv[0], argv, env)


@lab_group.command("stop")
@click.argument("host")
def stop_command(host: str) -> None:
    """Fail HOST hard, as if it lost power: SIGKILL its agent, podman service and containers; link down."""
    killed = _run(lambda: lifecycle.stop(_lab(), host))
    _say(f"{host} stopped ({killed} processes killed)")


@lab_group.command("start")
@click.argument("host")
@converge_timeout("Seconds to wait for every running agent to see the others alive.")
def start_command(host: str, timeout: float) -> None:
    """Bring HOST back as after a reboot: link up, podman service, agent from its data dir (it rejoins)."""
    _run(lambda: lifecycle.start(_lab(), host, timeout, _say))
    _say(f"{host} started")


cli.add_command(lab_group)
