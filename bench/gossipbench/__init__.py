"""Support modules for the benches in bench/: Serf and Shoal agents side by side on loopback.

sandbox (temp dir + network namespace + every process started, always cleaned up), netns (the namespace,
nft byte counters), procfs (CPU, RSS), serf_rpc (Serf's msgpack RPC), provenance (which Shoal and Serf ran,
from which source tree), fleet (spawning and reading the agents of one system), scenarios (join, idle, kills,
stall), posts (dissemination: a write accepted -> held by every agent), report (percentiles, tables, goals).
These drive `shoal` and `serf` as separate processes, exactly as an operator would; only simposts imports
Shoal, to run gossip's own protocol cores in its simulator.
"""
