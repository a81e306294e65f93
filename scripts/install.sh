#!/usr/bin/env bash
# Install what Shoal's demo and tests need on a Debian/Ubuntu host, idempotently:
# - the host install (node/lab/host-install.sh, shipped in the package too): podman with runc and netavark,
#   iptables, nftables, iproute2, procps, curl, docker-registry and busybox-static for the lab, and podman's
#   machine-wide config (/etc/containers/containers.conf.d/50-shoal.conf: runc, ulimits within the hard limits);
#   then its --check, which must find nothing left to do (the installer's own idempotence, checked on every run);
# - serf (for the gossip benchmark), python3-venv, and for the host tests vagrant (`vagrant validate` of
#   vagrant/Vagrantfile; no provider or box needed) and shellcheck (the install and provision scripts);
# - a Python venv in .venv on the distribution's python3, with Shoal installed from this checkout (non-editable, as
#   an operator would install it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash node/lab/host-install.sh
bash node/lab/host-install.sh --check || { echo "install.sh: the host install left changes pending" >&2; exit 1; }
need=()
for pkg in serf python3-venv vagrant shellcheck; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then echo "install.sh: run as root to install ${need[*]}" >&2; exit 1; fi
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  # No recommends: vagrant's would bring vagrant-libvirt and libvirt, which `vagrant validate` does not need.
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    "${need[@]}" >/dev/null
fi
# The venv is built on the distribution's python3, the interpreter host-install.sh gives installed agents, so the
# tests, the lab and the benchmarks run what production runs. PATH may put another python3 first: pyenv's default
# build has no PGO or LTO, and its calls are about 15% slower than Debian's (the proxy's CPU per request shows it,
# docs/proxy.md). An older distribution python3 (< 3.11) falls back to the python3 on PATH.
python=/usr/bin/python3
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || python=python3
home=$("$python" -c 'import os, sys; print(os.path.dirname(sys.executable))')
if [ -f .venv/pyvenv.cfg ] && ! grep -qx "home = $home" .venv/pyvenv.cfg; then
  echo "install.sh: rebuilding .venv on $home/python3"
  "$python" -m venv --clear .venv
else
  "$python" -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/pip install -q ".[test]"
echo "install.sh: ready ($(.venv/bin/shoal --help >/dev/null && echo shoal ok))"
