#!/usr/bin/env bash
# Runs every chapter's example, in book order, against a real Elasticsearch.
#
#   scripts/run-examples.sh            run them all; stop at the first whose claim fails
#   scripts/run-examples.sh --record   also save each one's output, normalised, to
#                                      src/outputs/<example>.txt (what the book shows)
#
# Where the cluster comes from is decided by the support code (ELASTICSEARCH_URL, a container
# engine, or a local node from Maven Central); see README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

record=false
case "${1:-}" in
  "") ;;
  --record) record=true ;;
  *) echo "usage: scripts/run-examples.sh [--record]" >&2; exit 2 ;;
esac

# Book order: chapter 3, 4, 5, then the notebook's experiments (chapter 6).
runs=(
  "lost_update"
  "conditional_write"
  "how_occ_works"
  "stale_write"
  "counter_race"
  "counter_race --strategy server --retry-on-conflict 0 --max-attempts 1"
  "counter_race --strategy occ --clients 10 --per-client 25"
)

cargo build --quiet --examples
recorded=()
for run in "${runs[@]}"; do
  read -r example args <<<"$run"
  echo
  echo "################ cargo run --example $run"
  if $record; then
    name="$example${args:+_$(echo "$args" | tr -d '-' | tr ' ' '_')}"
    out="src/outputs/$name.txt"
    mkdir -p src/outputs
    # stdout is the example's story; progress goes to stderr and is not recorded.
    # shellcheck disable=SC2086
    "target/debug/examples/$example" $args | tee "$out.raw"
    scripts/normalise-output.sh "cargo run --example $example${args:+ -- $args}" <"$out.raw" >"$out"
    rm "$out.raw"
    recorded+=("$out")
  else
    # shellcheck disable=SC2086
    "target/debug/examples/$example" $args
  fi
done
if $record; then
  # Every result line of this run, in book order: what the introduction and conclusion show.
  { echo "\$ scripts/run-examples.sh | grep RESULT"; grep -h '^RESULT ' "${recorded[@]}"; } \
    >src/outputs/summary.txt
fi
echo
echo "All examples ran and every claim held."
