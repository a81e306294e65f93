#!/usr/bin/env bash
# The demo: install, build a 3-host lab (network namespaces, one agent each, first initialised, others
# joined), and show the cluster from host h2. `.venv/bin/shoal lab down` removes it all. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
shoal=.venv/bin/shoal
"$shoal" lab up "${1:-3}"
"$shoal" lab status
echo
echo "members as h2 sees them:"
"$shoal" --host http://198.18.0.12:7947 members
echo
echo "try: $shoal lab stop h3; $shoal --host http://198.18.0.11:7947 members   (h3 turns dead)"
echo "     $shoal lab start h3; $shoal lab down"
