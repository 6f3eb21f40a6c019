#!/usr/bin/env bash
# From a fresh Debian machine to a working all-in-one OpenStack on it:
# engine and registry, every image built and pushed, passwords, deploy,
# admin-openrc.sh, then init-cloud. Run as root. Safe to run again: every stage is incremental.
set -euo pipefail
cd "$(dirname "$0")/.."

CONFIG_DIR=${KOLLA_TS_CONFIG_DIR:-/etc/kolla}
REGISTRY=${KOLLA_TS_REGISTRY_ADDR:-127.0.0.1:4000}
kolla_ts() { node bin/kolla-ts.mjs "$@"; }

bash scripts/engine-up.sh
[ -d node_modules ] || npm ci --no-audit --no-fund

mkdir -p "$CONFIG_DIR"
chmod 0700 "$CONFIG_DIR"
[ -f "$CONFIG_DIR/globals.yml" ] || cp inventory/globals.all-in-one.yml "$CONFIG_DIR/globals.yml"
# The external network's gateway is this machine: floating IPs answer here.
bash scripts/provider-interface.sh kolla-ext0 198.18.64.1/24

kolla_ts build --profile default --registry "$REGISTRY" --push --logs-dir /var/log/kolla-ts/build
kolla_ts genpwd --configdir "$CONFIG_DIR"
kolla_ts deploy -i inventory/all-in-one.yml --configdir "$CONFIG_DIR"
kolla_ts post-deploy -i inventory/all-in-one.yml --configdir "$CONFIG_DIR"
# A guest that boots (a Debian kernel and a busybox initramfs), then the
# networks, router, keypair, flavors and image a new cloud needs.
GUEST_IMAGE_BUILDER="$REGISTRY/kolla/base:zed" bash scripts/guest-image.sh "$CONFIG_DIR/guest-image"
kolla_ts init-cloud --configdir "$CONFIG_DIR"
echo "Ready: . $CONFIG_DIR/admin-openrc.sh && openstack service list"
