#!/usr/bin/env bash
# The demo: install, build a 3-host lab (network namespaces, each with its own podman API service and agent,
# the first initialised, the others joined; a registry on 198.18.0.1:5000 holding shoal-demo:1 and :2), apply the
# example service through h1, wait until its replicas run, show where (shoal ps), and list each host's containers
# through its podman socket.
# `.venv/bin/shoal lab down` removes it all. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
shoal=.venv/bin/shoal
size=${1:-3}
"$shoal" lab up "$size"
"$shoal" lab status
echo
echo "members as h2 sees them:"
"$shoal" --host http://198.18.0.12:7947 members
echo
echo "apply examples/demo.yml through h1:"
"$shoal" --host http://198.18.0.11:7947 apply -f examples/demo.yml
echo
echo "waiting until every replica runs (the agents place them and pull the image from the lab's registry):"
for _ in $(seq 120); do
  "$shoal" --host http://198.18.0.13:7947 services --json | python3 -c \
    'import json,sys; s=json.load(sys.stdin); sys.exit(0 if s and all(x["running"]==x["replicas"] for x in s) else 1)' \
    && break
  sleep 0.5
done
echo "the services as h3 sees them:"
"$shoal" --host http://198.18.0.13:7947 services
echo
echo "where each replica runs (shoal ps web, through h2):"
"$shoal" --host http://198.18.0.12:7947 ps web
echo
containers() {  # every host's containers, each through that host's own podman API socket (`shoal lab env`)
  local i
  for ((i = 1; i <= size; i++)); do
    ( eval "$("$shoal" lab env "h$i")"; podman --remote ps --format "h$i  {{.Names}}  {{.Image}}  {{.Status}}" )
  done
}
for _ in $(seq 40); do [ -n "$(containers)" ] && break; sleep 0.5; done
echo "containers on the hosts (podman --remote ps with each host's CONTAINER_HOST):"
listing=$(containers)
echo "$listing"
first=${listing%%$'\n'*}
if [ -n "$first" ]; then  # a container's own address answers from every host: the lab routes 198.19.I.0/24 via hI
  ip=$( eval "$("$shoal" lab env "${first%% *}")"
        podman --remote inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' \
          "$(echo "$first" | awk '{print $2}')" )
  echo
  echo "h$size asks ${first%% *}'s container at $ip:8080 which replica it is:"
  "$shoal" lab exec "h$size" -- curl -s -m 3 "http://$ip:8080/cgi-bin/hostname" || true
fi
echo
echo "the published port 8080 on every host, round robin over the ready replicas (the embedded proxy):"
for _ in $(seq 60); do  # readiness probes pass within a second or two of the start
  "$shoal" --host http://198.18.0.11:7947 services --json | python3 -c \
    'import json,sys; s=json.load(sys.stdin); sys.exit(0 if s and all(x["ready"]==x["replicas"] for x in s) else 1)' \
    && break
  sleep 0.5
done
for ((i = 1; i <= size; i++)); do
  answers=$(for _ in 1 2 3; do curl -s -m 3 "http://198.18.0.1$i:8080/cgi-bin/hostname" || echo "-"; done | tr '\n' ' ')
  echo "  h$i:8080 -> $answers"
done
echo
echo "try: $shoal --host http://198.18.0.12:7947 scale web=6; $shoal --host http://198.18.0.11:7947 ps web"
echo "     eval \"\$($shoal lab env h2)\"; podman --remote kill <a container>; $shoal ps web   (restarted)"
echo "     $shoal --host http://198.18.0.11:7947 node drain h2; $shoal --host http://198.18.0.11:7947 node ls"
echo "     $shoal lab stop h3; $shoal --host http://198.18.0.11:7947 ps web   (h3's replicas start elsewhere)"
echo "     $shoal lab start h3; $shoal lab down"
