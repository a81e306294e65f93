"""The `shoal` command line (click): agent commands and client commands over one node's HTTP API.

Client commands take --host (or SHOAL_HOST) before or after the subcommand. Exit codes (SPEC.md):
0 ok, 1 refused, 2 bad usage, 3 no node answered. Listings print a table, or a JSON array with --json.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from gossip.errors import GossipError
from gossip.identity import init_cluster
from node.client import DEFAULT_HOST, ClientError, request
from node.config import DEFAULT_DATA, ConfigError, build, load_file
from node.lab.commands import lab_group

F = TypeVar("F", bound=Callable[..., Any])


def host_option(func: F) -> F:
    return click.option("--host", "sub_host", metavar="URL", default=None,
                        help="Agent API URL (overrides SHOAL_HOST and a --host given before the command).")(func)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", metavar="URL", envvar="SHOAL_HOST", default=DEFAULT_HOST, show_default=True,
              help="Agent API URL (env SHOAL_HOST).")
@click.pass_context
def cli(ctx: click.Context, host: str) -> None:
    """Shoal: a peer-to-peer container orchestrator."""
    ctx.ensure_object(dict)
    ctx.obj["host"] = host


def _call(ctx: click.Context, sub_host: str | None, method: str, path: str, body: Any = None) -> Any:
    host = sub_host or ctx.obj["host"]
    try:
        return request(host, method, path, body)
    except ClientError as exc:
        click.echo(f"shoal: {exc}", err=True)
        sys.exit(exc.exit_code)


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
@click.option("--api", default=None, metavar="IP[:PORT]", help="HTTP API bind [127.0.0.1:7947].")
@click.option("--join", multiple=True, metavar="IP[:PORT]", help="A member to join through (repeatable).")
@click.option("--token", default=None, help="Join token from `shoal init` or `shoal join-token`.")
@click.option("--label", multiple=True, metavar="KEY=VALUE", help="Node label (repeatable).")
@click.option("--runtime", type=click.Choice(["podman", "none"]), default=None,
              help="Container runtime; `none` = control plane only [podman].")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="TOML config file ([agent], [gossip]).")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]))
@click.pass_context
def agent(ctx: click.Context, config_file: Path | None, log_level: str, **flags: Any) -> None:
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
    rows = _call(ctx, sub_host, "GET", "/v1/members")
    if as_json:
        click.echo(json.dumps(rows))
        return
    _table([[r["name"], r["id"][:12], r["address"], r["status"], str(r["incarnation"]),
             ",".join(f"{k}={v}" for k, v in sorted(r["labels"].items()))] for r in rows],
           ["NAME", "ID", "ADDRESS", "STATUS", "INC", "LABELS"])


@cli.command("join-token")
@host_option
@click.pass_context
def join_token(ctx: click.Context, sub_host: str | None) -> None:
    """Print the cluster's join token (asks the node's API)."""
    click.echo(_call(ctx, sub_host, "GET", "/v1/join-token")["token"])


cli.add_command(lab_group)
