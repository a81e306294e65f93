#!/usr/bin/env bash
# Shoal host install: the system packages a Shoal host (and `shoal lab`) needs, and podman configured for
# this kind of machine. Idempotent: a host that has everything costs two dpkg/cat reads and exits 0.
#
#   packages  podman (its API service runs the containers), runc (crun cannot run on cgroups-v1 hybrid hosts:
#             "crun: cgroups in hybrid mode not supported"), netavark + iptables (podman's network backend
#             and the tool it writes port-forwarding rules with), nftables (network policy), iproute2,
#             procps (sysctl), curl, and for the lab: docker-registry (the lab's image registry) and
#             busybox-static (the demo images are a static busybox).
#   podman    /etc/containers/containers.conf.d/50-shoal.conf: runtime "runc", and default ulimits no higher
#             than this process's hard limits (without CAP_SYS_RESOURCE, runc fails with "error setting
#             rlimit type 7" when a container asks for more). Rewritten only when its content would change.
#
# Ships inside the `shoal` package (node/lab/host-install.sh); `shoal lab up` runs it when a tool is missing,
# scripts/install.sh runs it from the checkout. Debian/Ubuntu (apt); root only when there is work to do.
set -euo pipefail

PACKAGES=(podman runc netavark iptables nftables iproute2 procps curl docker-registry busybox-static)
CONF_DIR=/etc/containers/containers.conf.d
CONF=$CONF_DIR/50-shoal.conf
NOFILE_CAP=1048576  # the kernel's default nr_open: more than any container here needs
NPROC_CAP=4096      # per-container process limit: enough for any service, small enough to stop a fork bomb

say() { echo "host-install: $*" >&2; }

# One hard limit, "unlimited" and values above the cap reduced to the cap. Must match
# node/lab/podmanconf.py default_ulimits(), which writes the same values into the lab hosts' configs.
capped() {
  local value=$1 cap=$2
  if [ "$value" = unlimited ] || [ "$value" -gt "$cap" ]; then echo "$cap"; else echo "$value"; fi
}

wanted_conf() {
  local nofile nproc
  nofile=$(capped "$(ulimit -Hn)" "$NOFILE_CAP")
  nproc=$(capped "$(ulimit -Hu)" "$NPROC_CAP")
  cat <<EOF
# Written by Shoal's host install (node/lab/host-install.sh); rewritten when the host's limits change.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
EOF
}

missing_packages() {
  # One dpkg-query for all packages; a package dpkg has never heard of prints nothing on stdout.
  local installed
  installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)
  for pkg in "${PACKAGES[@]}"; do
    grep -qx "$pkg installed" <<<"$installed" || echo "$pkg"
  done
}

main() {
  local missing conf
  missing=$(missing_packages | tr '\n' ' ')
  missing=${missing% }
  conf=$(wanted_conf)
  if [ -z "$missing" ] && [ "$(cat "$CONF" 2>/dev/null || true)" = "$conf" ]; then
    say "nothing to do (packages installed, $CONF current)"
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    say "run as root: ${missing:+packages missing: $missing; }$CONF needs writing"
    return 1
  fi
  if [ -n "$missing" ]; then
    command -v apt-get >/dev/null || { say "no apt-get here: install $missing with your package manager"; return 1; }
    say "installing $missing"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      --no-install-recommends $missing >/dev/null
    local still
    still=$(missing_packages | tr '\n' ' ')
    [ -z "$still" ] || { say "apt-get finished but these are still not installed: $still"; return 1; }
    # Debian's docker-registry package enables a system registry on :5000 (every address). Shoal only runs the
    # binary (`shoal lab` serves 198.18.0.1:5000 itself), so a service this install brought in is turned off.
    if [[ " $missing " == *" docker-registry "* ]] && [ -d /run/systemd/system ]; then
      systemctl disable --now docker-registry.service >/dev/null 2>&1 && say "disabled docker-registry.service"
    fi
  fi
  if [ "$(cat "$CONF" 2>/dev/null || true)" != "$conf" ]; then
    mkdir -p "$CONF_DIR"
    printf '%s\n' "$conf" > "$CONF.tmp"
    mv "$CONF.tmp" "$CONF"
    say "wrote $CONF"
  fi
  say "done"
}

main "$@"
