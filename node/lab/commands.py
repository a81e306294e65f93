"""`shoal lab ...`: the command-line face of the lab (a click group, `lab_group`).

Role: parse arguments, check root, call lifecycle.py, print results; LabError becomes exit 1 with its
message on stderr, bad usage exit 2 (click). Progress goes to stderr; stdout carries only what a script
reads (`status`, `env`, and whatever `exec` runs).
Boundary: no lab logic here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable
from typing import TypeVar

import click

from node.lab import lifecycle, plan
from node.lab.errors import LabError
from node.lab.state import ENV_VAR, LabDir

T = TypeVar("T")


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


@click.group("lab")
def lab_group() -> None:
    """A local multi-host lab: N hosts, each its own network namespace with an agent.

    Host hI is netns shoal-hI at 198.18.0.(10+I) on bridge shoal-br0 (198.18.0.1); its API is
    http://198.18.0.(10+I):7947. State lives in $SHOAL_LAB_DIR (default /var/tmp/shoal-lab).
    """


@lab_group.command("up")
@click.argument("size", metavar="[N]", type=click.IntRange(1, plan.MAX_HOSTS), default=3, required=False)
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="HOST:KEY=VALUE",
    help="Agent label for one host, e.g. h1:disk=ssd; repeatable. Kept across later `up`s.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=lifecycle.CONVERGE_TIMEOUT_S,
    show_default=True,
    help="Seconds to wait for every agent to see all hosts alive.",
)
def up_command(size: int, labels: tuple[str, ...], timeout: float) -> None:
    """Build, grow or shrink the lab to N hosts (default 3); returns once all agents see all N alive."""
    try:
        parsed = [plan.parse_label(text) for text in labels]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--label") from exc
    _run(lambda: lifecycle.up(_lab(), size, parsed, timeout, _say))
    _say(f"{plan.describe_hosts(range(1, size + 1))} up; `shoal lab env h1` points clients at h1")


@lab_group.command("down")
def down_command() -> None:
    """Stop every agent, remove netns, links, routes and the lab dir."""
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
    """List the hosts: address, agent, link, and what each agent sees."""
    rows = _run(lambda: lifecycle.status(_lab()))
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
        return
    if not rows:
        _say(f"no lab in {_lab().root} ({ENV_VAR})")
        return
    table = [("HOST", "ADDRESS", "API", "AGENT", "LINK", "SEES", "LABELS")]
    for r in rows:
        agent = f"running ({r.pid})" if r.pid is not None else r.agent
        labels = ",".join(f"{k}={v}" for k, v in sorted(r.labels.items())) or "-"
        table.append((r.name, r.address, r.api, agent, r.link, _sees(r.members), labels))
    widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@lab_group.command("env")
@click.argument("host")
def env_command(host: str) -> None:
    """Print shell exports for HOST: eval "$(shoal lab env h1)"."""
    for line in _run(lambda: lifecycle.env(_lab(), host)):
        click.echo(line)


@lab_group.command(
    "exec",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("host")
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_command(host: str, cmd: tuple[str, ...]) -> None:
    """Run CMD inside HOST's network namespace: shoal lab exec h1 -- curl ...; exits with CMD's code."""
    argv = _run(lambda: lifecycle.exec_argv(_lab(), host, cmd))
    sys.stdout.flush()
    sys.stderr.flush()
    # exec, not a child: CMD gets our terminal, signals (Ctrl-C) and exit status exactly as if run
    # directly; nsenter in turn execs CMD.
    os.execvp(argv[0], argv)


@lab_group.command("stop")
@click.argument("host")
def stop_command(host: str) -> None:
    """Fail HOST hard: SIGKILL its agent, set its link down (as if it lost power)."""
    _run(lambda: lifecycle.stop(_lab(), host))
    _say(f"{host} stopped")


@lab_group.command("start")
@click.argument("host")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=lifecycle.CONVERGE_TIMEOUT_S,
    show_default=True,
    help="Seconds to wait for every running agent to see the others alive.",
)
def start_command(host: str, timeout: float) -> None:
    """Bring HOST back: link up, agent restarted from its data dir (it rejoins on its own)."""
    _run(lambda: lifecycle.start(_lab(), host, timeout, _say))
    _say(f"{host} started")
