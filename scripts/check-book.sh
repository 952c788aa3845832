#!/usr/bin/env bash
# The rendered book in a real browser: builds both editions (cargo xtask book), serves it on 127.0.0.1 and opens
# every page in headless Chromium (tests/browser/check.mjs). Fails on an unresolved include, a
# broken link or image, an empty page or a console error. Then clicks the console blocks' Run and
# Copy as curl against the book's local nodes (tests/browser/run.mjs), which it starts if they
# are not running. Installs Debian's chromium (as root)
# and the pinned playwright-core (npm ci) when they are missing; downloads no browser.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "[check-book] $*" >&2; }

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" != 0 ]; then
    say "error: no /usr/bin/chromium; install it (as root: apt-get install chromium)"
    exit 1
  fi
  say "installing chromium from Debian's packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if ! command -v node >/dev/null; then
  say "error: no node; install Node.js (Debian: apt-get install nodejs npm)"
  exit 1
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  say "installing playwright-core (npm ci; it drives /usr/bin/chromium, no browser download)"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

cargo xtask book >/dev/null   # the English book in book/, the Hinglish one in book/hi-Latn/
# Pages that must show at least N images, in both editions: chapter 16 its charts, chapters 3,
# 4 and 6.2 their diagrams, chapter 18.1 its timeline.
images=(ch16-00-what-contention-costs.html=4 ch03-00-lost-update.html=1 ch04-00-conditional-writes.html=1 ch06-02-counter-race.html=2 ch18-01-paused-primary.html=1)
node tests/browser/check.mjs book "${images[@]}" "${images[@]/#/hi-Latn/}"

# Run it from the page (theme/console-run.js): the book served on 127.0.0.1:3939, Chromium
# clicking Run and Copy as curl against the book's local nodes, which allow that origin
# (provision/src/settings.rs). `cargo es start` reuses a running node (the examples start the
# same ones) or starts one, and prints its URL.
url_of() { grep -o 'http://127\.0\.0\.1:[0-9]*' | head -1; }
core=$(cargo es start | url_of)
scripting=$(cargo es start --scripting | url_of)
if [ -z "$core" ] || [ -z "$scripting" ]; then
  say "error: no URL from cargo es start (main: '${core}', scripting: '${scripting}')"
  exit 1
fi
say "Run from the page, against $core (and $scripting for the chapters that run scripts)"
node tests/browser/run.mjs book src "$core" "$scripting"
