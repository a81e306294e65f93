"""Support modules for bench/gossip_vs_serf.py: Serf and Shoal agents side by side on loopback.

netns (namespace + nft byte counters), procfs (CPU, RSS), serf_rpc (Serf's msgpack RPC),
fleet (spawning and reading the agents of one system), scenarios (join, idle, kills, stall),
report (percentiles, the table, the goals). Nothing here imports Shoal: the bench drives
`shoal` and `serf` as separate processes, exactly as an operator would.
"""
