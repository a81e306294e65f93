"""`python -m node.lab ...`: the lab commands without the rest of the CLI (used by tests/e2e).

Role: entry point only; see commands.py.
"""

from node.lab.commands import lab_group

lab_group(prog_name="shoal lab")
