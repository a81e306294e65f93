"""Network policy for one host: a model of the rules Shoal wants, rendered to an nftables script that replaces
Shoal's own table atomically (render.py, pure), applied by apply.py (the only module that runs `nft`).
Today the model holds the cluster's container subnets (a null binding so traffic between them keeps its source,
DESIGN §7a); the network-policy issue adds filter rules to the same table. Imports neither node nor gossip.
"""
