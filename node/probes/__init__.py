"""Readiness and liveness probes, run by the agent (podman without systemd schedules no health checks here).

Modules: model (Check per kind from a ServiceSpec: x-shoal readiness/liveness, Compose healthcheck; Outcome;
Target) -> state (the pure per-(replica, kind) state machine and schedule) -> runners (TCP, exec; ProbeRunner) and
http (HTTP GET, aiohttp) -> prober (the shell: tasks on the injected clock, bounded, changes to a callback);
timing (sleep and deadline on the injected clock). docs/probes.md is the reference.
"""

from node.probes.http import HttpProber
from node.probes.model import Check, Kind, Outcome, Result, Target, checks_for
from node.probes.prober import Change, Health, Prober
from node.probes.runners import ExecFn, HttpGetFn, ProbeRunner, run_exec, tcp_connect
from node.probes.state import ProbeState, Transition, initial, observe

__all__ = [
    "Change", "Check", "ExecFn", "Health", "HttpGetFn", "HttpProber", "Kind", "Outcome", "ProbeRunner", "ProbeState",
    "Prober", "Result", "Target", "Transition", "checks_for", "initial", "observe", "run_exec", "tcp_connect",
]
