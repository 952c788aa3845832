#!/usr/bin/env bash
# Normalises one example's recorded stdout for the book: what changes from run to run and
# says nothing (index UUIDs, ports, elapsed times) is replaced by a placeholder. What the
# run found (counters, conflicts, versions) is kept as it came.
#   usage: scripts/normalise-output.sh "cargo run --example NAME" <raw >normalised
set -euo pipefail
echo "\$ $1"
sed -E \
  -e 's/("index_uuid": ?)"[^"]+"/\1"<uuid>"/g' \
  -e 's#127\.0\.0\.1:[0-9]+#127.0.0.1:<port>#g' \
  -e 's/"elapsed_ms":[0-9]+/"elapsed_ms":"<ms>"/g' \
  -e 's/ in [0-9]+\.[0-9]+s$/ in <time>/'
