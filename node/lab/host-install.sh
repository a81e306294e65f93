#!/usr/bin/env bash
# Shoal host install: the one installer for Shoal hosts. CI (scripts/install.sh), `shoal lab` and the Vagrant VMs
# all run it, so every host is set up the same way. Idempotent: it works out what differs from the wanted state
# and changes only that; a host that has everything costs a few reads and prints "nothing to do".
#
#   host-install.sh [--check] [--no-lab] [--shoal SOURCE] [--venv DIR] [--python PY] [--systemd] [--start]
#                   [--root DIR]
#
# Always (with no flags this is all it does: what CI and `shoal lab` need):
#   packages  podman (its API service runs the containers), runc (crun cannot run on cgroups-v1 hybrid hosts:
#             "crun: cgroups in hybrid mode not supported"), netavark + iptables (podman's network backend
#             and the tool it writes port-forwarding rules with), nftables (network policy), iproute2,
#             procps (sysctl), curl, and for the lab: docker-registry (the lab's image registry) and
#             busybox-static (the demo images are a static busybox).
#   podman    /etc/containers/containers.conf.d/50-shoal.conf: runtime "runc", and default ulimits no higher
#             than this process's hard limits (without CAP_SYS_RESOURCE, runc fails with "error setting
#             rlimit type 7" when a container asks for more). Rewritten only when its content would change.
# Behind flags (real hosts; docs/hosts.md):
#   --no-lab        leave out the lab-only packages (docker-registry, busybox-static).
#   --shoal SOURCE  install Shoal with pip into a venv (--venv, default /opt/shoal) from SOURCE: a checkout
#                   directory (copied to a temporary directory first, so the checkout is never written to), a
#                   wheel or sdist file, or any other pip requirement. Reinstalled only when SOURCE's content
#                   changed (a digest is kept in DIR/.shoal-install). Links /usr/local/bin/shoal to DIR/bin/shoal.
#                   Adds python3 and python3-venv to the packages; --python PY (default /usr/bin/python3, >= 3.11)
#                   makes the venv.
#   --systemd       install the agent's unit, /etc/systemd/system/shoal-agent.service (shoal-agent.service beside
#                   this script, ExecStart pointed at the venv), and /etc/shoal/agent.toml if absent (a commented
#                   template; never overwritten), and enable podman.socket (podman's API, its own unit, on
#                   /run/podman/podman.sock: the agent's default socket). A running agent whose unit or venv
#                   changed is restarted (containers keep running); the agent is not enabled or started.
#   --start         enable and start shoal-agent.service (after `shoal init`, or with join + token in the config).
#   --root DIR      write files under DIR instead of / (tests, image builds); apt and systemctl are left out.
#   --check         report what would change, change nothing.
# Exit status: 0 done, or with --check nothing to do; 1 failed, or with --check changes pending; 2 bad usage.
#
# Ships inside the `shoal` package (node/lab/host-install.sh, with shoal-agent.service); `shoal lab up` runs it
# when a tool is missing, scripts/install.sh runs it from the checkout. Debian/Ubuntu (apt); root only when there
# is work to do.
set -euo pipefail

BASE_PACKAGES=(podman runc netavark iptables nftables iproute2 procps curl)
LAB_PACKAGES=(docker-registry busybox-static)
PYTHON_PACKAGES=(python3 python3-venv)
NOFILE_CAP=1048576  # the kernel's default nr_open: more than any container here needs
NPROC_CAP=4096      # per-container process limit: enough for any service, small enough to stop a fork bomb
UNIT_NAME=shoal-agent.service
UNIT_SOURCE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/$UNIT_NAME
UNIT_EXEC=/opt/shoal/bin/shoal  # the ExecStart program in the shipped unit, replaced by --venv's
STAMP_NAME=.shoal-install

CHECK=0 LAB=1 SHOAL_SOURCE="" VENV=/opt/shoal PYTHON=/usr/bin/python3 SYSTEMD=0 START=0 ROOT=""

say() { echo "host-install: $*" >&2; }
usage() { say "$1"; sed -n '6,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

parse_args() {
  while [ $# -gt 0 ]; do
    case $1 in
      --check) CHECK=1 ;;
      --no-lab) LAB=0 ;;
      --systemd) SYSTEMD=1 ;;
      --start) START=1 ;;
      --shoal | --venv | --python | --root)
        if [ $# -lt 2 ] || [ -z "$2" ]; then usage "$1 needs a value"; fi
        case $1 in
          --shoal) SHOAL_SOURCE=$2 ;;
          --venv) VENV=$2 ;;
          --python) PYTHON=$2 ;;
          --root) ROOT=${2%/} ;;
        esac
        shift ;;
      -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
      *) usage "unknown argument: $1" ;;
    esac
    shift
  done
  [[ $VENV == /* ]] || usage "--venv must be an absolute path, got $VENV"
  [[ $VENV != *[[:space:]]* ]] || usage "--venv must not contain white space (systemd's ExecStart), got '$VENV'"
  if [ -n "$SHOAL_SOURCE" ] && { [ -d "$SHOAL_SOURCE" ] || [ -f "$SHOAL_SOURCE" ]; }; then
    SHOAL_SOURCE=$(readlink -f "$SHOAL_SOURCE")
  elif [[ $SHOAL_SOURCE == */* || $SHOAL_SOURCE == .* ]] && [[ $SHOAL_SOURCE != *://* ]]; then
    usage "--shoal: no such file or directory: $SHOAL_SOURCE"
  fi
  CONF_DIR=$ROOT/etc/containers/containers.conf.d
  CONF=$CONF_DIR/50-shoal.conf
  UNIT=$ROOT/etc/systemd/system/$UNIT_NAME
  CONFIG=$ROOT/etc/shoal/agent.toml
  LINK=$ROOT/usr/local/bin/shoal
}

# systemctl only on the machine itself, and only where systemd runs (not in CI's containers, not under --root).
systemd_here() { [ -z "$ROOT" ] && [ -d /run/systemd/system ]; }

# --- packages --------------------------------------------------------------------------------------------------

wanted_packages() {
  printf '%s\n' "${BASE_PACKAGES[@]}"
  [ "$LAB" = 0 ] || printf '%s\n' "${LAB_PACKAGES[@]}"
  [ -z "$SHOAL_SOURCE" ] || printf '%s\n' "${PYTHON_PACKAGES[@]}"
}

missing_packages() {
  # One dpkg-query for all packages; a package dpkg has never heard of prints nothing on stdout.
  local installed pkgs
  mapfile -t pkgs < <(wanted_packages)
  installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${pkgs[@]}" 2>/dev/null || true)
  for pkg in "${pkgs[@]}"; do
    grep -qx "$pkg installed" <<<"$installed" || echo "$pkg"
  done
}

install_packages() {
  local missing=$1
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
}

# --- podman's machine-wide config ------------------------------------------------------------------------------

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

# --- files -----------------------------------------------------------------------------------------------------

differs() { [ "$(cat "$1" 2>/dev/null || true)" != "$2" ]; }

# write_file PATH MODE CONTENT: atomically (a temporary file renamed over PATH), creating the directory.
write_file() {
  mkdir -p "$(dirname "$1")"
  (umask 077 && printf '%s\n' "$3" > "$1.tmp")
  chmod "$2" "$1.tmp"
  mv "$1.tmp" "$1"
  say "wrote $1"
}

# --- Shoal in a venv -------------------------------------------------------------------------------------------

# The files of a checkout that make a package: not VCS data, caches, build output or venvs (all dot-dirs and
# build/, dist/, *.egg-info, __pycache__), NUL-separated, relative, sorted. The digest and the copy use the same.
source_files() {
  (cd "$1" && find . -mindepth 1 \( -name '.*' -o -name build -o -name dist -o -name '*.egg-info' \
    -o -name __pycache__ \) -prune -o -type f -print0 | LC_ALL=C sort -z)
}

wanted_stamp() {
  local digest
  if [ -d "$SHOAL_SOURCE" ]; then
    digest=$(source_files "$SHOAL_SOURCE" | (cd "$SHOAL_SOURCE" && xargs -0 -r sha256sum) | sha256sum)
  elif [ -f "$SHOAL_SOURCE" ]; then
    digest=$(sha256sum < "$SHOAL_SOURCE")
  else
    digest="requirement"  # pip resolves it; the text itself is what is compared
  fi
  printf 'source=%s\ndigest=%s\n' "$SHOAL_SOURCE" "${digest%% *}"
}

venv_current() {
  [ -x "$VENV/bin/shoal" ] && "$VENV/bin/python" -c '' 2>/dev/null \
    && ! differs "$VENV/$STAMP_NAME" "$(wanted_stamp)"
}

install_shoal() {
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || {
    say "Shoal needs Python >= 3.11: $PYTHON is $("$PYTHON" --version 2>&1 || echo missing); give --python PY"
    return 1
  }
  if [ -e "$VENV" ] && [ ! -f "$VENV/pyvenv.cfg" ] && [ -n "$(ls -A "$VENV")" ]; then
    say "$VENV exists and is not a venv: give --venv DIR (left it alone)"
    return 1
  fi
  if ! "$VENV/bin/python" -c '' 2>/dev/null; then
    say "creating the venv $VENV ($("$PYTHON" --version 2>&1))"
    "$PYTHON" -m venv --clear "$VENV"
  fi
  local target=$SHOAL_SOURCE tmp=""
  if [ -d "$SHOAL_SOURCE" ]; then  # pip builds in the source tree (build/, *.egg-info): give it a copy
    tmp=$(mktemp -d)
    source_files "$SHOAL_SOURCE" | tar -C "$SHOAL_SOURCE" --null -T - -cf - | tar -C "$tmp" -xf -
    target=$tmp
  fi
  say "installing Shoal from $SHOAL_SOURCE into $VENV"
  "$VENV/bin/pip" uninstall -q -y shoal >/dev/null 2>&1 || true  # so the same version number is replaced too
  local status=0
  "$VENV/bin/pip" install -q --disable-pip-version-check "$target" || status=$?
  [ -z "$tmp" ] || rm -rf "$tmp"
  [ "$status" = 0 ] || { say "pip install from $SHOAL_SOURCE failed (exit $status)"; return 1; }
  write_file "$VENV/$STAMP_NAME" 644 "$(wanted_stamp)"
}

link_pending() {
  if [ -L "$LINK" ]; then [ "$(readlink "$LINK")" != "$VENV/bin/shoal" ]
  elif [ -e "$LINK" ]; then say "$LINK exists and is not a link: left alone"; return 1
  else return 0
  fi
}

# --- systemd ---------------------------------------------------------------------------------------------------

wanted_unit() {
  local text
  text=$(cat "$UNIT_SOURCE")
  printf '%s\n' "${text//"$UNIT_EXEC"/"$VENV/bin/shoal"}"
}

config_template() {
  cat <<'EOF'
# Shoal agent config: `shoal agent --config /etc/shoal/agent.toml` (the shoal-agent unit) reads it.
# Written once by Shoal's host install (host-install.sh --systemd) and never overwritten. Every key is optional
# and a command-line flag wins over it; the README's "Agent config file" section describes each key.
[agent]
# data = "/var/lib/shoal"                     # data dir (identity, certificates, store); the unit's StateDirectory
# name = "web-1"                              # node name [generated, persisted]
# bind = "10.0.0.2:7946"                      # gossip UDP+TCP [0.0.0.0:7946]
# advertise = "10.0.0.2:7946"                 # address peers reach this node at [bind IP, or the routed one]
# api = "127.0.0.1:7947"                      # HTTP API, no auth yet [bind IP, or 127.0.0.1 if bind is 0.0.0.0]
# join = ["10.0.0.1:7946"]                    # members to join through (first start only)
# token = "SHOAL-1-..."                       # join token from `shoal init` / `shoal join-token` (first start only)
# runtime = "podman"                          # or "none": control plane only, runs no containers
# labels = { datacenter = "dc1", zone = "a" } # for placement constraints and spread
# podman_socket = "/run/podman/podman.sock"   # podman's API (podman.socket)
# subnet = "10.20.1.0/24"                     # this node's container subnet, one per node [podman picks]

[gossip]
# profile = "lan"                             # or "local"; then any GossipConfig field, e.g. probe_interval_s = 1.0
EOF
}

unit_active() { systemctl is-active --quiet "$1" 2>/dev/null; }
unit_enabled() { [ "$(systemctl is-enabled "$1" 2>/dev/null || true)" = enabled ]; }

# --- plan and apply --------------------------------------------------------------------------------------------

# Each pending change: one line, "KIND<TAB>what it is"; --check prints the second field, apply() acts on the first.
plan() {
  local missing
  if [ -z "$ROOT" ]; then
    missing=$(missing_packages | tr '\n' ' ')
    missing=${missing% }
    [ -z "$missing" ] || printf 'packages\tinstall packages: %s\n' "$missing"
  fi
  ! differs "$CONF" "$(wanted_conf)" || printf 'conf\twrite %s\n' "$CONF"
  if [ -n "$SHOAL_SOURCE" ]; then
    venv_current || printf 'venv\tinstall Shoal from %s into %s\n' "$SHOAL_SOURCE" "$VENV"
    ! link_pending || printf 'link\tlink %s to %s\n' "$LINK" "$VENV/bin/shoal"
  fi
  if [ "$SYSTEMD" = 1 ]; then
    ! differs "$UNIT" "$(wanted_unit)" || printf 'unit\twrite %s\n' "$UNIT"
    [ -e "$CONFIG" ] || printf 'config\twrite %s (a commented template)\n' "$CONFIG"
    if systemd_here && ! { unit_enabled podman.socket && unit_active podman.socket; }; then
      printf 'socket\tenable and start podman.socket\n'
    fi
  fi
  if [ "$START" = 1 ] && systemd_here && ! { unit_enabled "$UNIT_NAME" && unit_active "$UNIT_NAME"; }; then
    printf 'start\tenable and start %s\n' "$UNIT_NAME"
  fi
}

apply() {  # apply CHANGES (plan's lines); the lines come on fd 3, so apt, pip or systemctl cannot read them
  local kind what restart=0 started=0
  while IFS=$'\t' read -r -u 3 kind what; do
    case $kind in
      packages) install_packages "${what#install packages: }" ;;
      conf) write_file "$CONF" 644 "$(wanted_conf)" ;;
      venv) install_shoal; restart=1 ;;
      link) mkdir -p "$(dirname "$LINK")"; ln -sfn "$VENV/bin/shoal" "$LINK"; say "linked $LINK" ;;
      unit) write_file "$UNIT" 644 "$(wanted_unit)"; restart=1
            if systemd_here; then systemctl daemon-reload; fi ;;
      config) write_file "$CONFIG" 600 "$(config_template)" ;;
      socket) systemctl enable --now podman.socket; say "enabled podman.socket" ;;
      start) systemctl enable --now "$UNIT_NAME"; started=1; say "enabled and started $UNIT_NAME" ;;
    esac
  done 3<<<"$1"
  # An upgrade: a running agent picks up its new code or unit (it leaves and rejoins; containers keep running).
  if [ "$restart" = 1 ] && [ "$started" = 0 ] && systemd_here && unit_active "$UNIT_NAME"; then
    systemctl try-restart "$UNIT_NAME"
    say "restarted $UNIT_NAME"
  fi
}

# What a run with nothing to do has checked, e.g. "packages installed, /etc/containers/.../50-shoal.conf current".
summary() {
  local parts=() text
  [ -n "$ROOT" ] || parts+=("packages installed")
  parts+=("$CONF current")
  [ -z "$SHOAL_SOURCE" ] || parts+=("Shoal in $VENV current")
  [ "$SYSTEMD" = 0 ] || parts+=("$UNIT current")
  [ "$START" = 0 ] || parts+=("$UNIT_NAME running")
  printf -v text '%s, ' "${parts[@]}"
  echo "${text%, }"
}

main() {
  parse_args "$@"
  if [ "$SYSTEMD" = 1 ] && [ ! -f "$UNIT_SOURCE" ]; then say "$UNIT_SOURCE is missing"; return 1; fi
  if [ "$START" = 1 ] && ! systemd_here; then
    say "--start needs systemd running on this machine (and no --root)"
    return 1
  fi
  if [ "$SYSTEMD" = 1 ] && ! systemd_here && [ -z "$ROOT" ]; then
    say "systemd is not running here: the unit file is written, but podman.socket is left as it is"
  fi
  local changes
  changes=$(plan)
  if [ -z "$changes" ]; then
    say "nothing to do ($(summary))"
    return 0
  fi
  if [ "$CHECK" = 1 ]; then
    while IFS=$'\t' read -r _ what; do say "would $what"; done <<<"$changes"
    say "$(wc -l <<<"$changes") change(s) pending"
    return 1
  fi
  if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
    say "run as root: $(cut -f2 <<<"$changes" | paste -sd ';' | sed 's/;/; /g')"
    return 1
  fi
  apply "$changes"
  say "done"
}

main "$@"
