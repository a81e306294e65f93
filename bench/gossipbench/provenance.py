"""What a bench run measured: which Shoal, which Serf, on what host.

Agents run a source tree, not whatever `.venv` holds: scripts/install.sh installs Shoal non-editable (as an
operator would), so `.venv/bin/shoal` runs the tree as it was at the last install. The bench starts agents as
`python -m node` with the tree first on PYTHONPATH (`Shoal.env`): this checkout by default, or `--source DIR`,
e.g. a `git archive` of one commit, so that commits landing during a run cannot mix versions. It fingerprints
exactly what that command imports: a hash of its gossip/ and node/ sources, `git describe` where there is a
repository, and its LAN gossip settings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def add_agent_options(ap: argparse.ArgumentParser) -> None:
    """The options every bench shares: which agents to run, how long they may take to join, where logs go."""
    ap.add_argument("--serf", default=shutil.which("serf") or "serf", help="serf binary")
    ap.add_argument("--shoal", default=None, help="shoal command (default: `python -m node`)")
    ap.add_argument("--source", type=Path, default=REPO_ROOT, metavar="DIR",
                    help="the tree whose gossip/ and node/ Shoal runs, first on PYTHONPATH (default: this checkout; "
                         "a `git archive` of one commit pins the version)")
    ap.add_argument("--join-timeout", type=float, default=120.0, help="for all agents to see all alive (s)")
    ap.add_argument("--keep-logs", default=None, metavar="DIR", help="copy agent logs here before cleanup")


FINGERPRINT = """
import dataclasses, hashlib, json, pathlib
import gossip, node
from gossip.config import GossipConfig
digest = hashlib.sha256()
for pkg in (gossip, node):
    for path in sorted(pathlib.Path(pkg.__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
root = pathlib.Path(gossip.__file__).parents[1]
print(json.dumps({"source_sha256": digest.hexdigest()[:16], "root": str(root),
                  "gossip_lan": dataclasses.asdict(GossipConfig.lan())}))
"""


@dataclass(frozen=True)
class Shoal:
    """How to run Shoal: the agent command line and the source tree it runs."""

    command: list[str]
    source: Path

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Shoal:
        """--shoal's words, else this interpreter running `node`; the tree of --source."""
        return cls(args.shoal.split() if args.shoal else [sys.executable, "-m", "node"], args.source.resolve())

    def env(self) -> dict[str, str]:
        """The environment for Shoal processes: ours, with the source tree first on PYTHONPATH."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(self.source), env.get("PYTHONPATH", "")) if p)
        return env

    def fingerprint(self) -> dict[str, Any]:
        """Which Shoal the agents will run: a hash of the gossip/ and node/ sources the command imports, where they
        live, `git describe` there, and its default (LAN) gossip settings."""
        interpreter = self.command[0]
        if not Path(interpreter).name.startswith("python"):
            first = Path(interpreter).read_text(errors="replace").split("\n", 1)[0]
            interpreter = first[2:].strip() if first.startswith("#!") else sys.executable
        try:
            out = subprocess.run([interpreter, "-c", FINGERPRINT], capture_output=True, text=True, timeout=60,
                                 check=True, env=self.env(), cwd=self.source)  # `-c` puts the cwd first too
            found: dict[str, Any] = json.loads(out.stdout)
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            return {"error": str(exc)}
        git = subprocess.run(["git", "-C", found["root"], "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=10, check=False)
        found["git"] = git.stdout.strip() if git.returncode == 0 else None
        return found




def describe_shoal(fp: dict[str, Any] | None) -> str:
    """One line: where the code is, its git state and hash, and the gossip knobs that shape the figures."""
    if not fp or "gossip_lan" not in fp:
        return f"unknown ({(fp or {}).get('error', 'not read')})"
    g = fp["gossip_lan"]
    knobs = ", ".join(f"{k}={g[k]}" for k in ("probe_interval_s", "probe_timeout_s", "suspicion_mult",
                                               "suspicion_max_mult", "suspicion_confirmations", "gossip_interval_s",
                                               "gossip_nodes", "retransmit_mult", "push_pull_interval_s") if k in g)
    return f"{fp.get('root')} git {fp.get('git')} sha256 {fp.get('source_sha256')}; gossip lan: {knobs}"


def start_meta(args: argparse.Namespace, *, serf: bool, shoal: bool) -> dict[str, Any]:
    """What runs, read before the first agent starts: Serf's version, Shoal's command and fingerprint, the host."""
    build = Shoal.from_args(args)
    return {"serf_version": serf_version(args.serf) if serf else None, "shoal_command": build.command,
            "started_unix": time.time(), "host": host_line(),
            "shoal_source_start": build.fingerprint() if shoal else {}}


def end_meta(meta: dict[str, Any], args: argparse.Namespace, hashes: Iterable[str | None] = ()) -> None:
    """Fingerprint Shoal again at the end; flag a run whose sources changed (at start, end, or any `hashes`
    taken in between), since its figures may then mix versions."""
    meta["duration_s"] = time.time() - meta["started_unix"]
    if not meta["shoal_source_start"]:
        return  # Shoal did not run
    meta["shoal_source_end"] = Shoal.from_args(args).fingerprint()
    seen = {meta["shoal_source_start"].get("source_sha256"), meta["shoal_source_end"].get("source_sha256"),
            *hashes}
    meta["shoal_source_changed"] = len(seen) > 1


def header(meta: dict[str, Any]) -> str:
    """The lines that head a report: versions, host, Shoal's source, and a warning if it changed."""
    lines = [f"serf: {meta.get('serf_version')}   shoal: {' '.join(meta['shoal_command'])}",
             f"host: {meta['host']}", f"shoal source: {describe_shoal(meta.get('shoal_source_start'))}"]
    if meta.get("shoal_source_changed"):
        lines.append("WARNING: Shoal's sources changed while the bench ran (see shoal_source_* in the JSON); the "
                     "figures may mix versions")
    return "\n".join(lines)


def serf_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=10, check=False)
    except OSError as exc:
        return f"unavailable ({exc})"
    return " / ".join(line.strip() for line in out.stdout.splitlines() if line.strip()) or "?"


def host_line() -> str:
    return (f"{platform.node()} {platform.release()}, {os.cpu_count()} cores, "
            f"load {', '.join(f'{x:.2f}' for x in os.getloadavg())} at start")
