"""Helpers of bench/dataplane.py: the nginx backend image."""
