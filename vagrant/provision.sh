#!/usr/bin/env bash
# Vagrant's provisioner for one VM, run as root inside it: provision.sh NAME ADDRESS FIRST SUBNET DATACENTER ZONE
# (the Vagrantfile passes them; FIRST is node1's address). Safe to run again (`vagrant provision`).
#
# 1. The host install, the same script CI and `shoal lab` run (node/lab/host-install.sh): podman with runc,
#    nftables and the rest, Shoal in /opt/shoal from the synced checkout (/shoal), the shoal-agent unit and
#    podman.socket. --no-lab: a VM needs no lab registry or demo-image tools.
# 2. /etc/shoal/agent.toml for this VM: Vagrant owns it here, so it is rewritten (and a running agent restarted)
#    when it would change.
# 3. node1: `shoal init` (once), then the agent, then the join token into /shoal/vagrant/.shoal/token, so the
#    others find it through the synced folder. The others wait for that file, put join + token into their config
#    (used on the first start only: afterwards the data dir holds the identity) and start the agent.
# 4. Wait until this node's agent lists itself alive.
set -euo pipefail

checkout=/shoal
shared=$checkout/vagrant/.shoal
install=(bash "$checkout/node/lab/host-install.sh" --no-lab --shoal "$checkout" --systemd)
config=/etc/shoal/agent.toml
data=/var/lib/shoal
shoal=/opt/shoal/bin/shoal
TOKEN_WAIT_S=1200  # node1 may still be installing: packages and pip on a fresh VM take minutes
ALIVE_WAIT_S=120

say() { echo "provision $name: $*"; }

config_text() {  # config_text [TOKEN]: this VM's agent config; with a token it joins through node1
  cat <<EOF
# Written by vagrant/provision.sh (rewritten on every provision); keys: README "Agent config file".
[agent]
name = "$name"
bind = "$address"
api = "127.0.0.1"
subnet = "$subnet"
labels = { datacenter = "$datacenter", zone = "$zone" }
EOF
  if [ -n "${1:-}" ]; then
    printf 'join = ["%s"]\ntoken = "%s"\n' "$first" "$1"
  fi
}

write_config() {  # write_config [TOKEN]: restarts a running agent when the config changed
  local wanted
  wanted=$(config_text "$@")
  if [ "$(cat "$config" 2>/dev/null || true)" != "$wanted" ]; then
    (umask 077 && printf '%s\n' "$wanted" > "$config.tmp") && mv "$config.tmp" "$config"
    say "wrote $config"
    if systemctl is-active --quiet shoal-agent; then systemctl restart shoal-agent; fi
  fi
}

wait_until_alive() {
  local deadline=$((SECONDS + ALIVE_WAIT_S))
  until "$shoal" members --json 2>/dev/null | /opt/shoal/bin/python -c '
import json, sys
sys.exit(0 if any(m["name"] == sys.argv[1] and m["status"] == "alive" for m in json.load(sys.stdin)) else 1)
' "$name"; do
    if [ $SECONDS -ge $deadline ]; then
      say "the agent does not list itself alive after ${ALIVE_WAIT_S}s; its log:"
      journalctl -u shoal-agent -n 30 --no-pager || true
      return 1
    fi
    sleep 1
  done
  say "alive; the cluster as $name sees it:"
  "$shoal" members
}

main() {
  "${install[@]}"
  if [ "$address" = "$first" ]; then
    write_config
    if [ ! -f "$data/cluster.json" ]; then
      "$shoal" init --data "$data" --cluster vagrant --name "$name" >/dev/null
      say "initialised cluster 'vagrant' in $data"
    fi
    "${install[@]}" --start
    wait_until_alive
    mkdir -p "$shared"
    "$shoal" join-token > "$shared/token.tmp" && mv "$shared/token.tmp" "$shared/token"
    say "join token in $shared/token"
  else
    local deadline=$((SECONDS + TOKEN_WAIT_S))
    until [ -s "$shared/token" ]; do
      if [ $SECONDS -ge $deadline ]; then
        say "no join token in $shared/token after ${TOKEN_WAIT_S}s (is node1 up?)"
        return 1
      fi
      sleep 2
    done
    write_config "$(cat "$shared/token")"
    "${install[@]}" --start
    wait_until_alive
  fi
}

name=$1 address=$2 first=$3 subnet=$4 datacenter=$5 zone=$6
# Sourced (tests/unit/test_host_install.py reads config_text), it only defines the functions.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then main; fi
