#!/usr/bin/env bash
# remove-leftovers.sh — remove test containers that a killed or crashed test
# run left behind.
#
# Why: testcontainers removes its container when the handle is dropped, but a
# test process killed by SIGKILL / a timeout never runs that drop. With host
# networking such a leftover still holds its HTTP/transport ports. The book's
# tests label their containers `occ-book=true`; this removes exactly those
# (never other containers on the machine).
#
# Idempotent: with no leftovers it does nothing.
# Env: OCC_PODMAN_DIR (default /var/tmp/occ-podman), CONTAINERS_CONF.
set -euo pipefail

OCC_PODMAN_DIR="${OCC_PODMAN_DIR:-/var/tmp/occ-podman}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$OCC_PODMAN_DIR/containers.conf}"

ids="$(podman ps -aq --filter label=occ-book)"
if [ -z "$ids" ]; then
  echo "[remove-leftovers] no containers labelled occ-book" >&2
  exit 0
fi
echo "[remove-leftovers] removing: $(podman ps -a --filter label=occ-book --format '{{.ID}} {{.Image}} {{.Labels}}' | tr '\n' ';')" >&2
# shellcheck disable=SC2086
podman rm -f -t 2 $ids >/dev/null
