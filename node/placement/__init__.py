"""Placement: which node runs which replica, computed alike on every node (DESIGN §5); pure, no I/O.

`assign(nodes, services) -> Assignment` places every replica (rules in place.py), `inputs_digest(nodes,
services)` hashes exactly what it reads. Modules: model (values), eligible (constraints), quota (spread, even
spread, max per node), score (blake2b hashes, rendezvous scores), place (the walk), digest. Operators' guide:
docs/placement.md.
"""

from node.placement.digest import inputs_digest
from node.placement.model import Assignment, NodeInfo, Slot
from node.placement.place import LOAD_FACTOR
from node.placement.sticky import Current, assign

__all__ = ["LOAD_FACTOR", "Assignment", "Current", "NodeInfo", "Slot", "assign", "inputs_digest"]
