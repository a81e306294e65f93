"""Helpers of bench/proxy.py: what it reads off /proc and git, and the report it prints."""
