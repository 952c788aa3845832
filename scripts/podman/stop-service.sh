#!/usr/bin/env bash
# stop-service.sh — stop the podman API service that start-service.sh started,
# by the pid it recorded (never by name: other podman processes are left alone).
#
# Why: `podman system service --time=0` never exits by itself; CI and
# developers should not leave it running after the tests.
# Idempotent: does nothing when no recorded service is running.
#
# Env: OCC_PODMAN_DIR (default /var/tmp/occ-podman).
set -euo pipefail

OCC_PODMAN_DIR="${OCC_PODMAN_DIR:-/var/tmp/occ-podman}"
PIDFILE="$OCC_PODMAN_DIR/podman-service.pid"
SOCK="$OCC_PODMAN_DIR/podman.sock"

log() { printf '[stop-service %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [ -f "$PIDFILE" ] && pid="$(cat "$PIDFILE")" && kill -0 "$pid" 2>/dev/null \
   && grep -qa 'system.service' "/proc/$pid/cmdline" 2>/dev/null; then
  kill "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { log "pid $pid still alive after 5 s; sending SIGKILL"; kill -9 "$pid"; }
  log "stopped podman service pid $pid"
else
  log "no podman service recorded in $PIDFILE is running"
fi
rm -f "$PIDFILE" "$SOCK"
