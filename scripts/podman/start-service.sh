#!/usr/bin/env bash
# start-service.sh — serve Podman's Docker-compatible API on a unix socket so
# testcontainers-rs (via bollard) can use it as if it were a Docker engine.
#
# Why: there is no Docker engine on the project's machines. `podman system
# service` speaks the Docker API; testcontainers finds it through DOCKER_HOST.
# The service runs in the background with --time=0 (never exits on idle) until
# stop-service.sh (or `kill $(cat $OCC_PODMAN_DIR/podman-service.pid)`) ends it.
#
# Idempotent: if the socket already answers /_ping, nothing is started.
# Progress goes to stderr; stdout is only the `export DOCKER_HOST=unix://...` line:
#   eval "$(scripts/podman/start-service.sh)"
#
# Env: OCC_PODMAN_DIR (default /var/tmp/occ-podman), CONTAINERS_CONF (default
# $OCC_PODMAN_DIR/containers.conf), OCC_PODMAN_WAIT (max seconds, default 30).
set -euo pipefail

OCC_PODMAN_DIR="${OCC_PODMAN_DIR:-/var/tmp/occ-podman}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$OCC_PODMAN_DIR/containers.conf}"
SOCK="$OCC_PODMAN_DIR/podman.sock"
PIDFILE="$OCC_PODMAN_DIR/podman-service.pid"
LOGFILE="$OCC_PODMAN_DIR/podman-service.log"
WAIT="${OCC_PODMAN_WAIT:-30}"

log() { printf '[start-service %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[start-service] ERROR: %s\n' "$*" >&2; exit 1; }

command -v podman >/dev/null || die "podman not found: run scripts/podman/install.sh first"
command -v curl >/dev/null || die "curl not found: run scripts/podman/install.sh first"
[ -f "$CONTAINERS_CONF" ] || die "$CONTAINERS_CONF missing: run scripts/podman/install.sh first"
mkdir -p "$OCC_PODMAN_DIR"

answers() { # the Docker API's ping: "OK" from GET /_ping
  [ -S "$SOCK" ] && [ "$(curl -sS --max-time 2 --unix-socket "$SOCK" http://d/_ping 2>/dev/null)" = OK ]
}

if answers; then
  log "podman service already answering on $SOCK"
else
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    log "podman service pid $(cat "$PIDFILE") exists but does not answer yet; waiting"
  else
    rm -f "$SOCK"
    log "starting podman system service on unix://$SOCK (log: $LOGFILE)"
    # setsid + nohup: the service outlives this script and the calling shell.
    CONTAINERS_CONF="$CONTAINERS_CONF" setsid nohup podman system service --time=0 \
      "unix://$SOCK" >"$LOGFILE" 2>&1 < /dev/null &
    echo $! > "$PIDFILE"
  fi
  t0=$SECONDS
  until answers; do
    if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      tail -5 "$LOGFILE" >&2 || true
      die "podman service exited; see $LOGFILE"
    fi
    [ $((SECONDS - t0)) -lt "$WAIT" ] || die "podman service did not answer within ${WAIT}s; see $LOGFILE"
    sleep 0.2
  done
  log "podman service (pid $(cat "$PIDFILE")) answering after $((SECONDS - t0)) s"
fi
echo "export DOCKER_HOST=unix://$SOCK"
