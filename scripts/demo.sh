#!/usr/bin/env bash
# The demo: install, build a 3-host lab (network namespaces, one agent each, first initialised, others
# joined), apply the example service through h1 and read it back from h3. `.venv/bin/shoal lab down` removes
# it all. Run as root.
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
echo "apply examples/demo.yml through h1:"
"$shoal" --host http://198.18.0.11:7947 apply -f examples/demo.yml
echo
echo "the desired state as h3 sees it:"
"$shoal" --host http://198.18.0.13:7947 services
echo
echo "try: $shoal --host http://198.18.0.12:7947 scale web=5; $shoal --host http://198.18.0.13:7947 history web"
echo "     $shoal lab stop h3; $shoal --host http://198.18.0.11:7947 members   (h3 turns dead)"
echo "     $shoal lab start h3; $shoal lab down"
