"""`shoal lab`: a local multi-host lab; each host is a network namespace with its own agent.

Role: lets one machine play N hosts for demos and end-to-end tests (see docs/lab.md).
Layout: plan.py and readiness.py decide (pure); state.py (lab dir), netns.py (`ip`, `nsenter`),
agents.py (processes, HTTP polls) act; lifecycle.py sequences operations; commands.py is the click
group `lab_group` that node/cli.py mounts. Nothing here reads the repository checkout at run time.
"""
