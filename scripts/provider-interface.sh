#!/usr/bin/env bash
# An address-less interface for neutron's provider network on a machine with
# no spare NIC: one end of a veth pair (this kernel has no dummy driver).
set -euo pipefail
name=${1:-kolla-ext0}
if ! ip link show "$name" >/dev/null 2>&1; then
  ip link add "$name" type veth peer name "${name}p"
fi
ip link set "$name" up
ip link set "${name}p" up
