"""`shoal lab`: a local multi-host lab; each host is a network namespace with its own podman and agent.

Role: lets one machine play N hosts for demos and end-to-end tests (see docs/lab.md).
Layout: plan.py, podmanconf.py, registry.py, demo_image.py, power.py and readiness.py decide (pure);
state.py (lab dir), netns.py (`ip`), procs.py (processes), hostpodman.py (each host's podman),
registryd.py (registry and demo images), install.py (tools, host-install.sh) and agents.py (agents,
HTTP polls) act; lifecycle.py sequences operations; node/cli.py's `lab_group` is the command line.
Package data: host-install.sh and shoal-agent.service (the host installer and the agent's systemd unit).
Nothing here reads the repository checkout at run time.
"""
