#!/usr/bin/env bash
# Runs every chapter's example, in book order, against a real Elasticsearch; stops at the first
# whose claim fails. `--record` also saves what each one prints, as the book shows it.
# The work is done by `cargo xtask` (xtask/src/book.rs), which reads the order from the book.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  "") exec cargo xtask examples ;;
  --record) exec cargo xtask record ;;
  *) echo "usage: scripts/run-examples.sh [--record]" >&2; exit 2 ;;
esac
