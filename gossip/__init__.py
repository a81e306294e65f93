"""Membership and (later) desired-state replication over signed SWIM with Lifeguard; knows no containers.

Public face: `gossip.cluster.Cluster` (asyncio: UDP + mutual-TLS TCP), `gossip.swim.Membership` (the
protocol core, free of I/O), `gossip.simnet.Simulation` (many cores on a simulated network, fake clock).
"""
