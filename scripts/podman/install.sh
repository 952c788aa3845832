#!/usr/bin/env bash
# install.sh — make Podman usable as the container engine on this machine.
#
# Why: the project's machines have no Docker engine and no container registry,
# but Debian bookworm's Podman 4.3 can run locally built images and serve a
# Docker-compatible API that testcontainers-rs talks to. Its defaults fail here
# (crun: "setrlimit RLIMIT_NOFILE: Operation not permitted", then "cgroups in
# hybrid mode not supported"), so we write a containers.conf of our own that
# selects runc, the cgroupfs manager and no default ulimits, and every other
# script passes it via CONTAINERS_CONF.
#
# Idempotent: packages are installed only when missing; the config file is
# rewritten with the same content each time.
#
# Env: OCC_PODMAN_DIR (default /var/tmp/occ-podman) — where state lives.
set -euo pipefail

OCC_PODMAN_DIR="${OCC_PODMAN_DIR:-/var/tmp/occ-podman}"
CONF="$OCC_PODMAN_DIR/containers.conf"

log() { printf '[install %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# Debian packages: podman + runc (runtime), debootstrap (image rootfs),
# unzip (Elasticsearch zip), maven (artifact download), curl (health checks),
# javac (compiles the 7.10.2 image's small runner main),
# flock (build lock). --no-install-recommends: podman then brings conmon,
# containers-common and CNI plugins but not crun (which fails here anyway).
need=()
for pair in podman:podman runc:runc debootstrap:debootstrap unzip:unzip mvn:maven curl:curl \
            javac:openjdk-17-jdk-headless flock:util-linux; do
  cmd="${pair%%:*}"; pkg="${pair#*:}"
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  log "installing Debian packages: ${need[*]} (takes ~30-60 s)"
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
  log "packages installed"
else
  log "podman, runc, debootstrap, unzip, maven, curl, javac already present"
fi

mkdir -p "$OCC_PODMAN_DIR"
cat > "$CONF.tmp" <<'CONF'
# Written by scripts/podman/install.sh. Use with CONTAINERS_CONF=<this file>.
[containers]
# The default ulimits (nofile) cannot be set inside this sandbox.
default_ulimits = []

[engine]
# crun fails here (setrlimit / hybrid cgroups); runc + cgroupfs work.
cgroup_manager = "cgroupfs"
runtime = "runc"
CONF
mv "$CONF.tmp" "$CONF"
log "wrote $CONF"
log "podman: $(CONTAINERS_CONF="$CONF" podman --version)"
echo "export CONTAINERS_CONF=$CONF"
