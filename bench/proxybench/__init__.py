"""Helpers of bench/proxy.py and bench/dataplane.py: what they read off /proc and git, the report, and ending
the processes a bench started."""
