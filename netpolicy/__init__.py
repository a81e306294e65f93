"""Network policies: policies in, an nftables ruleset out (model -> compile -> render -> apply).

A stub until the network-policy issue lands. It must never import `node` or `gossip` (tests/unit/test_layers).
"""
