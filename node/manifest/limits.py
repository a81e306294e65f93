"""Every size limit on a manifest, in one place, each with the reason for its value.

A manifest is untrusted text (it arrives over the API and is gossiped to every node), so everything that can
grow is bounded: the text, the YAML node count and depth, each list, each string, each service's payload.
Errors quote these numbers; docs/manifest.md lists them.
"""

from __future__ import annotations

MAX_TEXT_BYTES = 1024 * 1024  # 1 MiB: a 100-service manifest is tens of KiB
MAX_YAML_NODES = 100_000  # nodes after alias expansion; bounds "billion laughs" (100 services ~ 30k nodes)
MAX_YAML_DEPTH = 32  # the deepest Compose path is ~7 levels; also keeps every walk far from the stack limit
MAX_SERVICES = 100
MAX_NETWORKS = 32  # declared at top level, and referenced by one service
MAX_PAYLOAD_BYTES = 32 * 1024  # a service's canonical JSON (compact, UTF-8); it is gossiped to every node
MAX_NAME_CHARS = 63  # service and network names are DNS labels (RFC 1035)
MAX_IMAGE_CHARS = 255  # as Docker's reference grammar
MAX_STRING_CHARS = 4096  # a command argument, an environment value
MAX_ARGS = 64  # command, healthcheck test, probe exec command
MAX_ENV = 256  # environment variables per service
MAX_ENV_KEY_CHARS = 256
MAX_PORTS = 64  # ports and expose entries per service
MAX_ALLOW_RULES = 64  # x-shoal allow rules per service: each is a rule in every node's nft table
MAX_INGRESS = 64  # networks in an x-shoal ingress allow-list
MAX_CONSTRAINTS = 32
MAX_PREFERENCES = 8
MAX_LABEL_CHARS = 128  # a label key or value in a placement constraint
MAX_PATH_CHARS = 1024  # an HTTP probe path
MAX_REPLICAS = 1000
MAX_PER_NODE = 1000  # max_replicas_per_node
MAX_RETRIES = 100  # healthcheck retries, probe thresholds, restart max_attempts use MAX_ATTEMPTS
MAX_ATTEMPTS = 1000
MAX_DURATION_MS = 24 * 3600 * 1000  # 24 h: longer timers are mistakes (a unit typo: '30h' for '30s')
MIN_CPUS = 0.01  # Docker's smallest CPU limit ("Range of CPUs is from 0.01 to ...")
MAX_CPUS = 1024.0
MIN_MEMORY_LIMIT = 6 * 1024 * 1024  # Docker's and podman's smallest memory limit ("minimum ... is 6MB")
MAX_MEMORY = 16 * 1024**4  # 16 TiB
