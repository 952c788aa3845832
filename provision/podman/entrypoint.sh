#!/bin/bash
# docker-entrypoint.sh of localhost/occ-elasticsearch (built by provision/src/podman.rs).
# Behaves like the official image's entrypoint: every environment variable whose name is
# lowercase and dotted (cluster.name, discovery.type, http.port, ...) and whose value is not
# empty becomes "-E name=value"; ES_JAVA_OPTS is read by bin/elasticsearch itself; a command
# other than "eswrapper"/"elasticsearch" is run as given (e.g. "bash").
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
exec "$ES_HOME/bin/elasticsearch" "${es_opts[@]}" "$@"
