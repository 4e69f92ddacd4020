#!/usr/bin/env bash
# Installs what a fresh machine lacks for the test suite: PostgreSQL server
# binaries (initdb, pg_ctl), Chromium for the Dagster UI browser test, and a Java
# runtime for the Spark target (pyspark starts a JVM).
set -euo pipefail

need=()
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
  need+=(postgresql)
fi
command -v chromium >/dev/null || need+=(chromium)
command -v java >/dev/null || need+=(default-jre-headless)

if [ ${#need[@]} -eq 0 ]; then
  echo "system-deps: PostgreSQL, Chromium and Java are present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "system-deps: missing ${need[*]}; install them with: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
