#!/usr/bin/env bash
# Installs what the examples, the tests and the book build need, if it is missing: Maven and
# unzip (to fetch and unpack Elasticsearch), a JDK, rustfmt and clippy, the pinned mdBook and
# mdbook-i18n-helpers (the Hinglish edition);
# then builds the project and checks that a Java can run each Elasticsearch the book uses
# (`cargo es doctor`). Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

MDBOOK_VERSION=0.5.4
# The Hinglish edition's gettext tools (mdbook-xgettext, mdbook-gettext), built for mdBook 0.5.
I18N_HELPERS_VERSION=0.4.0

say() { echo "[setup] $*" >&2; }

missing=()
command -v mvn >/dev/null || missing+=(maven)
command -v unzip >/dev/null || missing+=(unzip)
command -v javac >/dev/null || missing+=(openjdk-17-jdk-headless)
# The contention benchmark (chapter 16) runs the notebook's Python in virtual environments.
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    say "error: missing ${missing[*]}; install them (as root: apt-get install ${missing[*]})"
    exit 1
  fi
  say "installing ${missing[*]} from Debian's packages"
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi

for component in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
done

if [ "$(mdbook --version 2>/dev/null)" != "mdbook v$MDBOOK_VERSION" ]; then
  say "installing mdbook $MDBOOK_VERSION (cargo install, about 2 minutes)"
  cargo install --quiet --locked mdbook --version "$MDBOOK_VERSION"
fi

if ! cargo install --list | grep -qx "mdbook-i18n-helpers v$I18N_HELPERS_VERSION:"; then
  say "installing mdbook-i18n-helpers $I18N_HELPERS_VERSION (cargo install, about 2 minutes)"
  cargo install --quiet --locked mdbook-i18n-helpers --version "$I18N_HELPERS_VERSION"
fi

say "building the project (the first time takes a few minutes)"
cargo build --quiet --workspace --all-targets
cargo es doctor
say "ready"
