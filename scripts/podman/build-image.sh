#!/usr/bin/env bash
# build-image.sh — build the local Elasticsearch image(s) that testcontainers-rs
# starts through Podman on machines without a container registry.
#
# Why: readers with Docker use docker.elastic.co/elasticsearch/elasticsearch:9.5.4,
# but this project's machines can pull no image. This script assembles an
# image that behaves like the official one from what *is* reachable:
#   - a Debian bookworm minbase rootfs made by debootstrap from the mirror the
#     machine's own apt sources name,
#   - Elasticsearch from Maven Central (integ-test-zip: server + x-pack
#     security, no lang-painless, no reindex),
#   - a Java 21+ runtime copied from the host (ES 9 needs Java 21+; bookworm
#     only packages 17), placed at $ES_HOME/jdk like the official bundled JDK,
#   - a non-root user `elasticsearch` (uid 1000, gid 0 like the official image),
#   - an entrypoint that, like the official one, turns every lowercase dotted
#     environment variable (discovery.type=single-node, http.port=9234, ...)
#     into `-E name=value`, honours ES_JAVA_OPTS and logs JSON to stdout.
#
# Usage: build-image.sh [9.5.4 | 7.10.2-painless | all]   (default: 9.5.4)
#   9.5.4           -> localhost/occ-elasticsearch:9.5.4
#   7.10.2-painless -> localhost/occ-elasticsearch:7.10.2-painless (scripting)
# Idempotent: an image that exists with the current recipe label is kept;
# the rootfs tarball and downloads are cached under $OCC_PODMAN_DIR/cache,
# so a rebuild after `podman rmi` takes well under a minute.
#
# Env: OCC_PODMAN_DIR (default /var/tmp/occ-podman), CONTAINERS_CONF (default
# $OCC_PODMAN_DIR/containers.conf, written by install.sh), OCC_DEBIAN_MIRROR
# (override the mirror), OCC_JAVA_HOME (override the Java 21+ runtime),
# OCC_REBUILD=1 (rebuild even if the image exists).
set -euo pipefail

OCC_PODMAN_DIR="${OCC_PODMAN_DIR:-/var/tmp/occ-podman}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$OCC_PODMAN_DIR/containers.conf}"
CACHE="$OCC_PODMAN_DIR/cache"

log() { printf '[build-image %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[build-image] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot and rootful podman)"
[ -f "$CONTAINERS_CONF" ] || die "$CONTAINERS_CONF missing: run scripts/podman/install.sh first"
for c in podman debootstrap unzip mvn; do
  command -v "$c" >/dev/null || die "$c not found: run scripts/podman/install.sh first"
done

mkdir -p "$CACHE/downloads" "$CACHE/rootfs" "$OCC_PODMAN_DIR/work"
# One build at a time (two sessions sharing the machine, CI + developer).
exec 9>"$OCC_PODMAN_DIR/build.lock"
flock 9

# ---------------------------------------------------------------- helpers ---

# The Debian mirror the machine's own apt sources use for bookworm.
debian_mirror() {
  if [ -n "${OCC_DEBIAN_MIRROR:-}" ]; then echo "$OCC_DEBIAN_MIRROR"; return; fi
  local f m=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    m="$(awk 'BEGIN { RS = ""; FS = "\n" }
      { uri = ""; suites = ""; types = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/)   { s = $i; sub(/^URIs:[ \t]*/, "", s); split(s, a, /[ \t]+/); uri = a[1] }
          if ($i ~ /^Suites:/) suites = $i " "
          if ($i ~ /^Types:/)  types = $i " "
        }
        if (types ~ /[ \t]deb[ \t]/ && suites ~ /[ \t]bookworm[ \t]/ && uri != "") { print uri; exit }
      }' "$f")"
    [ -n "$m" ] && { echo "$m"; return; }
  done
  m="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | awk '$1 == "deb" && / bookworm / && !/security/ {
               for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) { print $i; exit } }')"
  [ -n "$m" ] || die "no bookworm mirror found in /etc/apt/sources*; set OCC_DEBIAN_MIRROR"
  echo "$m"
}

# base_rootfs PACKAGES... -> prints the path of a cached minbase rootfs tarball
base_rootfs() {
  local include; include="$(printf '%s,' "$@")"; include="${include%,}"
  local key; key="$(printf '%s' "bookworm-minbase-$include" | sha256sum | cut -c1-12)"
  local tarball="$CACHE/rootfs/bookworm-minbase-$key.tar"
  if [ -f "$tarball" ]; then
    log "base rootfs cached: $tarball" >&2
  else
    local mirror; mirror="$(debian_mirror)"
    local dir="$OCC_PODMAN_DIR/work/rootfs-$key"
    rm -rf "$dir"
    log "debootstrap bookworm minbase (+$include) from $mirror (takes ~40-60 s)" >&2
    debootstrap --variant=minbase --include="$include" bookworm "$dir" "$mirror" \
      > "$OCC_PODMAN_DIR/work/debootstrap-$key.log" 2>&1 \
      || { tail -20 "$OCC_PODMAN_DIR/work/debootstrap-$key.log" >&2; die "debootstrap failed"; }
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    log "packing base rootfs tarball" >&2
    tar --numeric-owner -C "$dir" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$dir"
    log "base rootfs cached: $tarball ($(du -h "$tarball" | cut -f1))" >&2
  fi
  echo "$tarball"
}

# maven_zip GROUP ARTIFACT VERSION -> prints the path of the cached zip
maven_zip() {
  local group="$1" artifact="$2" version="$3"
  local out="$CACHE/downloads/$group"
  local zip="$out/$artifact-$version.zip"
  if [ ! -f "$zip" ]; then
    log "downloading $group:$artifact:$version:zip from Maven Central" >&2
    mkdir -p "$out"
    mvn -B -q dependency:copy -Dartifact="$group:$artifact:$version:zip" \
        -DoutputDirectory="$out" >"$out/mvn.log" 2>&1 \
      || { tail -20 "$out/mvn.log" >&2; die "mvn dependency:copy $group:$artifact:$version failed"; }
  fi
  echo "$zip"
}

java_major() { # JAVA_HOME -> major version from its release file
  sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release" 2>/dev/null
}

# java_home MIN_MAJOR -> the newest host JDK/JRE with major >= MIN_MAJOR
java_home() {
  local min="$1" best="" best_major=0 d m
  if [ -n "${OCC_JAVA_HOME:-}" ]; then echo "$OCC_JAVA_HOME"; return; fi
  for d in /usr/lib/jvm/*/; do
    d="${d%/}"; [ -L "$d" ] && continue
    m="$(java_major "$d")"; [ -n "$m" ] || continue
    [ -x "$d/bin/java" ] || continue
    if [ "$m" -ge "$min" ] && [ "$m" -gt "$best_major" ]; then best="$d"; best_major="$m"; fi
  done
  [ -n "$best" ] || die "no Java $min+ runtime under /usr/lib/jvm; set OCC_JAVA_HOME"
  echo "$best"
}

# copy_java SRC DEST: a runtime without sources, headers, man pages, ct.sym
copy_java() {
  mkdir -p "$2"
  tar -C "$1" --exclude=./lib/src.zip --exclude=./lib/ct.sym --exclude=./include \
      --exclude=./man --exclude=./jmods --exclude=./demo --exclude=./sample -cf - . \
    | tar -C "$2" -xf -
}

# image_current IMAGE RECIPE -> true when IMAGE exists with label occ.recipe=RECIPE
image_current() {
  podman image exists "$1" || return 1
  [ "${OCC_REBUILD:-0}" = 1 ] && return 1
  local have; have="$(podman image inspect --format '{{ index .Labels "occ.recipe" }}' "$1" 2>/dev/null || true)"
  [ "$have" = "$2" ]
}

# Docker-style logging: the zip's log4j2.properties with its file appenders
# turned into console appenders (what Elastic's docker build does), so the
# JSON (ECS) log lines go to stdout, where `podman logs` and testcontainers'
# WaitFor::message_on_stdout see them.
docker_log4j2() { # IN OUT
  awk '
    # join continuation lines ("...\" newline "  rest")
    { line = $0
      while (line ~ /\\$/ && (getline nxt) > 0) { sub(/\\$/, "", line); sub(/^[ \t]+/, "", nxt); line = line nxt }
      if (line ~ /^[ \t]*appender\.(console|rolling_old)\./) next
      if (line ~ /^[ \t]*rootLogger\.appenderRef\.(console|rolling_old)\./) next
      if (line ~ /^[ \t]*appender\.[a-z_]+\.(fileName|filePattern)[ \t]*=/) next
      if (line ~ /^[ \t]*appender\.[a-z_]+\.(policies|strategy)\./) next
      sub(/=[ \t]*RollingFile[ \t]*$/, "= Console", line)
      print line }' "$1" > "$2"
}

# shellcheck disable=SC2016  # expanded inside the container, not here
ENTRYPOINT_SCRIPT='#!/bin/bash
# docker-entrypoint.sh of localhost/occ-elasticsearch (scripts/podman/build-image.sh).
# Behaves like the official image entrypoint: every environment variable whose
# name is lowercase and dotted (cluster.name, discovery.type, http.port, ...)
# and whose value is not empty becomes "-E name=value"; ES_JAVA_OPTS is read by
# bin/elasticsearch itself; a command other than "eswrapper"/"elasticsearch"
# is run as given (e.g. "bash").
set -euo pipefail
if [[ $# -eq 0 || "$1" == "eswrapper" || "$(basename -- "$1")" == "elasticsearch" ]]; then
  [[ $# -gt 0 ]] && shift
else
  exec "$@"
fi
if [[ "$(id -u)" == 0 ]]; then
  echo "occ-elasticsearch: refusing to run Elasticsearch as root; run with --user 1000:0" >&2
  exit 1
fi
es_opts=()
# /proc/self/environ keeps names with dots, which bash cannot hold as variables.
while IFS= read -r -d "" kv; do
  key="${kv%%=*}"; value="${kv#*=}"
  if [[ -n "$value" && "$key" =~ ^[-a-z0-9_]+(\.[-a-z0-9_]+)+$ ]]; then
    es_opts+=("-E${key}=${value}")
  fi
done < /proc/self/environ
case "${ES_LOG_STYLE:-console}" in
  console) ;;
  file) cp -f "$ES_HOME/config/log4j2.file.properties" "$ES_HOME/config/log4j2.properties" ;;
  *) echo "ERROR: ES_LOG_STYLE set to [$ES_LOG_STYLE]. Expected [console] or [file]" >&2; exit 1 ;;
esac
exec "$ES_HOME/bin/elasticsearch" "${es_opts[@]}" "$@"
'

# add_es_user ROOTFS: uid 1000 "elasticsearch", primary group 0 like the
# official image (plus its own group 1000).
add_es_user() {
  chroot "$1" groupadd -g 1000 elasticsearch
  chroot "$1" useradd -u 1000 -g 1000 -G 0 -d /usr/share/elasticsearch -M -s /bin/bash elasticsearch
}

# import ROOTFS IMAGE RECIPE CHANGES...
import_rootfs() {
  local rootfs="$1" image="$2" recipe="$3"; shift 3
  local args=() c
  for c in "$@"; do args+=(--change "$c"); done
  args+=(--change "LABEL occ.recipe=$recipe")
  local old_id; old_id="$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
  log "podman import -> $image ($(du -sh "$rootfs" | cut -f1) rootfs; takes ~10-30 s)"
  tar --numeric-owner -C "$rootfs" -cf - . | podman import --quiet "${args[@]}" - "$image" >/dev/null
  # The image this one replaces (older recipe, OCC_REBUILD=1) is now untagged: drop it.
  if [ -n "$old_id" ] && [ "$old_id" != "$(podman image inspect --format '{{.Id}}' "$image")" ]; then
    podman rmi "$old_id" >/dev/null 2>&1 || log "old image $old_id still in use; left in place"
  fi
}

# ---------------------------------------------------------- 9.5.4 recipe ---

ES9_VERSION=9.5.4
ES9_IMAGE="localhost/occ-elasticsearch:$ES9_VERSION"
ES9_RECIPE="es$ES9_VERSION-r1"

build_es9() {
  if image_current "$ES9_IMAGE" "$ES9_RECIPE"; then
    log "$ES9_IMAGE present (recipe $ES9_RECIPE): nothing to do"; return
  fi
  local t0=$SECONDS
  local base zip jhome
  base="$(base_rootfs tini)"
  zip="$(maven_zip org.elasticsearch.distribution.integ-test-zip elasticsearch "$ES9_VERSION")"
  jhome="$(java_home 21)"
  log "Java runtime for the image: $jhome (Java $(java_major "$jhome"))"

  local work="$OCC_PODMAN_DIR/work/es$ES9_VERSION"
  rm -rf "$work"; mkdir -p "$work/rootfs"
  trap 'rm -rf "$work"' EXIT
  log "assembling rootfs"
  tar --numeric-owner -C "$work/rootfs" -xf "$base"
  local es_home="$work/rootfs/usr/share/elasticsearch"
  unzip -q "$zip" -d "$work/unzip"
  mv "$work/unzip/elasticsearch-$ES9_VERSION" "$es_home"
  copy_java "$jhome" "$es_home/jdk"     # the bundled-JDK location: no ES_JAVA_HOME needed

  # Same distribution type as the official image: ES then also reads
  # dotted / ES_SETTING_* env vars itself and adds -Des.cgroups.hierarchy.override=/.
  sed -i 's/^ES_DISTRIBUTION_TYPE=zip$/ES_DISTRIBUTION_TYPE=docker/' "$es_home/bin/elasticsearch-env"
  grep -q '^ES_DISTRIBUTION_TYPE=docker$' "$es_home/bin/elasticsearch-env" \
    || die "could not set ES_DISTRIBUTION_TYPE=docker in bin/elasticsearch-env"

  # The official image's elasticsearch.yml is cluster.name + network.host 0.0.0.0.
  # Here containers run with HOST networking, so the default is loopback;
  # network.host=... in the environment overrides it as usual.
  cat > "$es_home/config/elasticsearch.yml" <<'YML'
cluster.name: "docker-cluster"
network.host: 127.0.0.1
YML
  cp "$es_home/config/log4j2.properties" "$es_home/config/log4j2.file.properties"
  docker_log4j2 "$es_home/config/log4j2.file.properties" "$es_home/config/log4j2.properties"

  printf '%s' "$ENTRYPOINT_SCRIPT" > "$work/rootfs/usr/local/bin/docker-entrypoint.sh"
  chmod 0755 "$work/rootfs/usr/local/bin/docker-entrypoint.sh"

  add_es_user "$work/rootfs"
  mkdir -p "$es_home/data" "$es_home/logs" "$es_home/plugins"
  chown -R 0:0 "$es_home"
  chown -R 1000:0 "$es_home/config" "$es_home/data" "$es_home/logs" "$es_home/plugins"
  chmod -R g=u "$es_home/config" "$es_home/data" "$es_home/logs"

  import_rootfs "$work/rootfs" "$ES9_IMAGE" "$ES9_RECIPE" \
    "ENV ELASTIC_CONTAINER=true" \
    "ENV ES_HOME=/usr/share/elasticsearch" \
    "ENV PATH=/usr/share/elasticsearch/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    "WORKDIR /usr/share/elasticsearch" \
    "USER 1000:0" \
    "EXPOSE 9200" "EXPOSE 9300" \
    'ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/docker-entrypoint.sh"]' \
    'CMD ["eswrapper"]' \
    "LABEL org.opencontainers.image.version=$ES9_VERSION" \
    "LABEL org.opencontainers.image.title=occ-elasticsearch"
  rm -rf "$work"; trap - EXIT
  log "built $ES9_IMAGE in $((SECONDS - t0)) s"
}

# ------------------------------------------------- 7.10.2-painless recipe ---
# Elasticsearch 7.10.2 with lang-painless (+ reindex etc.), for the chapters
# that need scripting: Maven Central has no newer engine with those modules.
# It runs through org.codelibs:elasticsearch-cluster-runner:7.10.2.0 (all the
# module jars on one classpath, one JVM, Debian's OpenJDK 17), wrapped by a
# tiny Java main (OccRunner) so the container is configured like the official
# 7.10.2 image: lowercase dotted env vars become settings, ES_JAVA_OPTS is
# honoured, JSON logs on stdout including {"message": "started"}.

ES7_VERSION=7.10.2
RUNNER_VERSION=7.10.2.0
ES7_IMAGE="localhost/occ-elasticsearch:$ES7_VERSION-painless"
ES7_RECIPE="es$ES7_VERSION-painless-r2"

OCC_RUNNER_JAVA='import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;

import org.codelibs.elasticsearch.runner.ElasticsearchClusterRunner;
import org.elasticsearch.common.logging.LogConfigurator;

/** Entry point of localhost/occ-elasticsearch:7.10.2-painless (scripts/podman/build-image.sh). */
public final class OccRunner {
    // The official image: a setting is an env var with lowercase, dotted name.
    private static final Pattern SETTING = Pattern.compile("[-a-z0-9_]+(\\.[-a-z0-9_]+)+");

    public static void main(String[] args) throws Exception {
        Map<String, String> settings = new TreeMap<>();
        System.getenv().forEach((k, v) -> {
            if (SETTING.matcher(k).matches() && !v.isEmpty()) settings.put(k, v);
        });
        String base = null;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("-E") && i + 1 < args.length) put(settings, args[++i]);
            else if (a.startsWith("-E")) put(settings, a.substring(2));
            else if (a.equals("-basePath") && i + 1 < args.length) base = args[++i];
            else throw new IllegalArgumentException("unknown argument: " + a);
        }
        // The official 7.10.2 image has x-pack; this build has none, so settings
        // such as xpack.security.enabled=false are dropped instead of failing.
        settings.keySet().removeIf(k -> {
            if (!k.startsWith("xpack.")) return false;
            System.err.println("occ-runner: ignoring setting [" + k + "]: no x-pack in this build");
            return true;
        });
        settings.putIfAbsent("cluster.name", "docker-cluster");
        settings.putIfAbsent("network.host", "127.0.0.1");
        settings.putIfAbsent("http.port", "9200");
        // Node name as in the official image (the container hostname); the
        // runner does not hand it to the log layout, so set it here.
        settings.putIfAbsent("node.name", System.getenv().getOrDefault("HOSTNAME", "Node 1"));
        LogConfigurator.setNodeName(settings.get("node.name"));
        ElasticsearchClusterRunner runner = new ElasticsearchClusterRunner();
        runner.setMaxHttpPort(-1); // take http.port as given: no probing, no 9299 cap
        runner.onBuild((index, builder) -> settings.forEach(builder::put));
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try { runner.close(); } catch (Exception e) { System.err.println("occ-runner: close: " + e); }
        }));
        runner.build(ElasticsearchClusterRunner.newConfigs()
                .basePath(base).numOfNode(1).clusterName(settings.get("cluster.name")).useLogger());
        while (!runner.isClosed()) Thread.sleep(1000);
    }

    private static void put(Map<String, String> settings, String kv) {
        int eq = kv.indexOf("=");
        if (eq <= 0) throw new IllegalArgumentException("expected -Ename=value, got -E" + kv);
        settings.put(kv.substring(0, eq), kv.substring(eq + 1));
    }
}
'

# Console JSON logging as in the official 7.10 docker image (ESJsonLayout).
ES7_LOG4J2='status = error
appender.rolling.type = Console
appender.rolling.name = rolling
appender.rolling.layout.type = ESJsonLayout
appender.rolling.layout.type_name = server
rootLogger.level = info
rootLogger.appenderRef.rolling.ref = rolling
appender.deprecation_rolling.type = Console
appender.deprecation_rolling.name = deprecation_rolling
appender.deprecation_rolling.layout.type = ESJsonLayout
appender.deprecation_rolling.layout.type_name = deprecation
appender.deprecation_rolling.layout.esmessagefields = x-opaque-id
appender.deprecation_rolling.filter.rate_limit.type = RateLimitingFilter
logger.deprecation.name = org.elasticsearch.deprecation
logger.deprecation.level = warn
logger.deprecation.appenderRef.deprecation_rolling.ref = deprecation_rolling
logger.deprecation.additivity = false
'

# shellcheck disable=SC2016  # expanded inside the container, not here
ES7_ENTRYPOINT='#!/bin/bash
# docker-entrypoint.sh of localhost/occ-elasticsearch:7.10.2-painless
# (scripts/podman/build-image.sh): one node of the codelibs cluster runner.
# Settings come from lowercase dotted env vars (read by OccRunner) and from
# -Ename=value arguments; ES_JAVA_OPTS is appended to the JVM options.
set -euo pipefail
if [[ $# -eq 0 || "$1" == "eswrapper" || "$(basename -- "$1")" == "elasticsearch" ]]; then
  [[ $# -gt 0 ]] && shift
else
  exec "$@"
fi
base="${OCC_RUNNER_BASE:-$ES_HOME/data/runner}"
mkdir -p "$base/node_1/config" "$base/tmp"
[[ -f "$base/node_1/config/log4j2.properties" ]] || cp "$ES_HOME/config/log4j2.properties" "$base/node_1/config/"
# Default heap of the official 7.10 image (1g), overridden by ES_JAVA_OPTS.
exec /usr/lib/jvm/java-17-openjdk-amd64/bin/java -Xms1g -Xmx1g -XX:+UseG1GC -XX:-UsePerfData \
  -Dlog4j2.formatMsgNoLookups=true -Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true \
  -Djava.io.tmpdir="$base/tmp" -Djna.tmpdir="$base/tmp" -Dio.netty.noUnsafe=true \
  ${ES_JAVA_OPTS:-} \
  -cp "$ES_HOME/lib/*:$ES_HOME/occ" OccRunner -basePath "$base" "$@"
'

# runner_jars -> prints the cached directory holding the runner's classpath
runner_jars() {
  local dir="$CACHE/downloads/cluster-runner-$RUNNER_VERSION"
  if [ ! -f "$dir/.complete" ]; then
    log "downloading org.codelibs:elasticsearch-cluster-runner:$RUNNER_VERSION and dependencies from Maven Central" >&2
    rm -rf "$dir"; mkdir -p "$dir/lib"
    cat > "$dir/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.occ</groupId><artifactId>es-runner</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies><dependency>
    <groupId>org.codelibs</groupId><artifactId>elasticsearch-cluster-runner</artifactId>
    <version>$RUNNER_VERSION</version>
  </dependency></dependencies>
</project>
POM
    (cd "$dir" && mvn -B -q dependency:copy-dependencies -DoutputDirectory=lib) >"$dir/mvn.log" 2>&1 \
      || { tail -20 "$dir/mvn.log" >&2; die "mvn dependency:copy-dependencies failed"; }
    compgen -G "$dir/lib/lang-painless-*.jar" >/dev/null || die "lang-painless jar missing from the runner's classpath"
    touch "$dir/.complete"
  fi
  echo "$dir/lib"
}

build_es7() {
  if image_current "$ES7_IMAGE" "$ES7_RECIPE"; then
    log "$ES7_IMAGE present (recipe $ES7_RECIPE): nothing to do"; return
  fi
  local t0=$SECONDS
  local base lib
  base="$(base_rootfs tini openjdk-17-jre-headless)"
  lib="$(runner_jars)"
  command -v javac >/dev/null || die "javac (JDK 17) needed to compile the small OccRunner main"

  local work="$OCC_PODMAN_DIR/work/es$ES7_VERSION"
  rm -rf "$work"; mkdir -p "$work/rootfs" "$work/src"
  trap 'rm -rf "$work"' EXIT
  log "assembling rootfs"
  tar --numeric-owner -C "$work/rootfs" -xf "$base"
  local es_home="$work/rootfs/usr/share/elasticsearch"
  mkdir -p "$es_home/lib" "$es_home/occ" "$es_home/config" "$es_home/data" "$es_home/logs"
  cp "$lib"/*.jar "$es_home/lib/"
  printf '%s' "$OCC_RUNNER_JAVA" > "$work/src/OccRunner.java"
  javac --release 17 -nowarn -cp "$lib/*" -d "$es_home/occ" "$work/src/OccRunner.java"
  cp "$work/src/OccRunner.java" "$es_home/occ/"
  printf '%s' "$ES7_LOG4J2" > "$es_home/config/log4j2.properties"
  printf '%s' "$ES7_ENTRYPOINT" > "$work/rootfs/usr/local/bin/docker-entrypoint.sh"
  chmod 0755 "$work/rootfs/usr/local/bin/docker-entrypoint.sh"

  add_es_user "$work/rootfs"
  chown -R 0:0 "$es_home"
  chown -R 1000:0 "$es_home/config" "$es_home/data" "$es_home/logs"
  chmod -R g=u "$es_home/config" "$es_home/data" "$es_home/logs"

  import_rootfs "$work/rootfs" "$ES7_IMAGE" "$ES7_RECIPE" \
    "ENV ES_HOME=/usr/share/elasticsearch" \
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    "WORKDIR /usr/share/elasticsearch" \
    "USER 1000:0" \
    "EXPOSE 9200" "EXPOSE 9300" \
    'ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/docker-entrypoint.sh"]' \
    'CMD ["eswrapper"]' \
    "LABEL org.opencontainers.image.version=$ES7_VERSION" \
    "LABEL org.opencontainers.image.title=occ-elasticsearch-painless"
  rm -rf "$work"; trap - EXIT
  log "built $ES7_IMAGE in $((SECONDS - t0)) s"
}

# ------------------------------------------------------------------ main ---

target="${1:-9.5.4}"
case "$target" in
  9.5.4) build_es9 ;;
  7.10.2-painless) build_es7 ;;
  all) build_es9; build_es7 ;;
  *) die "unknown target '$target' (expected 9.5.4, 7.10.2-painless or all)" ;;
esac
