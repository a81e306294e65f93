"""Placement: which node runs which replica, computed alike on every node (DESIGN §5)."""
