"""The grammar of service and network names, shared by every reader that checks one.

Service names become DNS names (RFC 1035 labels, lowercase), so other services reach a service by its name;
network names also allow '_' (Compose's habit). Both also name nft sets and chains (netpolicy), which these
characters keep safe.
"""

from __future__ import annotations

import re

from node.manifest.limits import MAX_NAME_CHARS

NAME = re.compile(r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?")
NETWORK_NAME = re.compile(r"[a-z](?:[a-z0-9_-]{0,61}[a-z0-9])?")
NAME_RULE = f"a DNS label: lowercase letters, digits and '-', 1 to {MAX_NAME_CHARS} characters, starting with a " \
            "letter and not ending with '-'"
NETWORK_RULE = f"lowercase letters, digits, '-' and '_', 1 to {MAX_NAME_CHARS} characters, starting with a letter " \
               "and ending with a letter or digit"
DEFAULT_NETWORK = "default"  # the network of a service that lists none; never declared
