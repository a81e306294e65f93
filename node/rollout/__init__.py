"""Zero-downtime deployments, the pure core (DESIGN §7b, issue 6): rolling updates without a coordinator,
automatic rollback, canaries and blue-green.

Pure: specs, reports and statuses in; decisions, writes and weights out; no clock (times are arguments), no I/O.
The agent wires it: the owner of each replica judges it (watch -> ReplicaReport.verdict); every node runs the gate
on its own view (decide -> slots to hold for plan, an outcome mark to publish, a rollback to write); the API shows
assess; the proxy takes canary/blue-green endpoints. Modules: model (values), watch, gate, rollback, status,
variant (derived specs, weight split), canary, bluegreen. docs/rollouts.md is the operator's page.
"""

from node.rollout.bluegreen import BLUE, GREEN, BlueGreen, green_name, green_spec, switch
from node.rollout.canary import abort, canary_name, canary_replicas, canary_spec, promote, stable_name
from node.rollout.gate import Step, assess, decide, marks_of, rows_of
from node.rollout.model import Phase, Previous, Revision, Verdict
from node.rollout.rollback import RollbackWrite, rollback, rollback_of
from node.rollout.status import RolloutStatus, line
from node.rollout.variant import split
from node.rollout.watch import Watch, due, watch

__all__ = [
    "BLUE", "GREEN", "BlueGreen", "Phase", "Previous", "Revision", "RollbackWrite", "RolloutStatus", "Step",
    "Verdict", "Watch", "abort", "assess", "canary_name", "canary_replicas", "canary_spec", "decide", "due",
    "green_name", "green_spec", "line", "marks_of", "promote", "rollback", "rollback_of", "rows_of", "split",
    "stable_name", "switch", "watch",
]
