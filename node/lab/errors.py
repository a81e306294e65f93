"""The one error the lab raises for the operator.

Role: a failure `shoal lab` explains and cannot retry by itself (not root, unknown host, an agent that
did not converge); node/cli.py prints its message and exits 1.
Boundary: no logic.
"""


class LabError(Exception):
    """A lab operation failed; the message says what, where, and what to look at."""
