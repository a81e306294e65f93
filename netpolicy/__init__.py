"""Network policy for one host: policies in, an nftables table and an admission gate out (DESIGN §7a).

policy.py (each service's networks, allow rules, endpoint ports, ingress allow-list) -> compile.py
(+ endpoints from observed state, member addresses, container subnets -> model.Ruleset; pure) -> render.py
(Ruleset -> the script replacing Shoal's table `inet shoal` atomically; pure, golden-file tested) -> apply.py
(the only module that runs `nft`). gate.py answers the proxy's per-connection question from the same Ruleset.
Imports neither node nor gossip.
"""
