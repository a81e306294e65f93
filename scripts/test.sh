#!/usr/bin/env bash
# The test command: install what the tests need, then run the whole suite (unit, simulation, real agent
# processes on loopback, and — as root — the network-namespace lab). Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
