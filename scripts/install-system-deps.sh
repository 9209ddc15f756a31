#!/usr/bin/env bash
# Installs the system programs the test suite and benchmarks drive for real, when missing:
# chromium (dashboard tests), redis-server (rate limiting, multi-node stream), wrk (ingest benchmark),
# goaccess (access-log import comparison), poppler-utils (PDF report checks) and
# postgresql (the metadata database's server alternative), and node/npm (`npm ci` installs the
# dashboard's charting library from its lockfile).
set -euo pipefail
declare -A wanted=(
  [chromium]=chromium
  [redis-server]=redis-server
  [wrk]=wrk
  [goaccess]=goaccess
  [pdftoppm]=poppler-utils
  [node]=nodejs
  [npm]=npm
)
missing=()
for cmd in "${!wanted[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${wanted[$cmd]}")
done
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
