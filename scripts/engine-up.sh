#!/usr/bin/env bash
# Prepare this machine as a kolla-ts deploy host and build host:
# Debian's Docker engine, a local registry and debootstrap, each started
# with a pid file so that they can be stopped by PID later.
# Idempotent: what is already installed or running is left as it is.
set -euo pipefail

STATE_DIR=${KOLLA_TS_STATE_DIR:-/var/lib/kolla-ts-host}
REGISTRY_ADDR=${KOLLA_TS_REGISTRY_ADDR:-127.0.0.1:4000}
here=$(cd "$(dirname "$0")" && pwd)

log() { echo "engine-up: $*"; }

need_pkgs=()
command -v dockerd >/dev/null || need_pkgs+=(docker.io)
command -v docker-registry >/dev/null || need_pkgs+=(docker-registry)
command -v debootstrap >/dev/null || need_pkgs+=(debootstrap)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

mkdir -p "$STATE_DIR" /etc/docker

# libvirt and nova-compute mount /run with shared propagation.
mount --make-rshared / 2>/dev/null || log "could not make / rshared (continuing)"

# Where the capability bounding set is smaller than runc expects, privileged
# containers cannot start; register a runtime that trims the spec to it.
capbnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
if [ "$capbnd" != "000001ffffffffff" ] && [ "$capbnd" != "000003ffffffffff" ]; then
  install -m 0755 "$here/oci-runtime-cap-filter" /usr/local/sbin/oci-runtime-cap-filter
  runtime_json='"runtimes": {"cap-filter": {"path": "/usr/local/sbin/oci-runtime-cap-filter"}}, "default-runtime": "cap-filter",'
else
  runtime_json=''
fi
if [ ! -f /etc/docker/daemon.json ]; then
  cat > /etc/docker/daemon.json <<EOF
{ $runtime_json "storage-driver": "overlay2", "log-driver": "json-file", "log-opts": {"max-size": "20m", "max-file": "3"} }
EOF
fi

if ! docker version >/dev/null 2>&1; then
  log "starting dockerd (log: $STATE_DIR/dockerd.log)"
  nohup dockerd --pidfile "$STATE_DIR/dockerd.pid" >"$STATE_DIR/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do
    docker version >/dev/null 2>&1 && break
    sleep 1
  done
  docker version >/dev/null 2>&1 || { log "dockerd did not come up:"; tail -20 "$STATE_DIR/dockerd.log"; exit 1; }
fi
log "docker engine $(docker version --format '{{.Server.Version}}') is up"

if ! curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; then
  mkdir -p "$STATE_DIR/registry"
  cat > "$STATE_DIR/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE_DIR/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
EOF
  log "starting registry on $REGISTRY_ADDR"
  nohup docker-registry serve "$STATE_DIR/registry.yml" >"$STATE_DIR/registry.log" 2>&1 &
  echo $! > "$STATE_DIR/registry.pid"
  for _ in $(seq 1 30); do
    curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1 && break
    sleep 1
  done
  curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null || { log "registry did not come up"; tail -20 "$STATE_DIR/registry.log"; exit 1; }
fi
log "registry at $REGISTRY_ADDR is up"
