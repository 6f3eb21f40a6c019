#!/usr/bin/env bash
# An address-less interface for neutron's provider network on a machine with
# no spare NIC: one end of a veth pair (this kernel has no dummy driver).
#   provider-interface.sh [NAME] [GATEWAY/PREFIX]
# With GATEWAY/PREFIX, the pair's other end (NAME + "p") on this machine gets
# that address: it is the external network's gateway, so this machine reaches
# routers and floating IPs (init-cloud's default external network is
# 198.18.64.0/24 with gateway 198.18.64.1). The range must not hold an
# address this machine needs to reach elsewhere: its route wins.
set -euo pipefail
name=${1:-kolla-ext0}
gateway=${2:-}
if ! ip link show "$name" >/dev/null 2>&1; then
  ip link add "$name" type veth peer name "${name}p"
fi
ip link set "$name" up
ip link set "${name}p" up
if [ -n "$gateway" ]; then
  ip addr replace "$gateway" dev "${name}p"
fi
