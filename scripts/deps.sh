#!/usr/bin/env bash
# scripts/deps.sh — install what etl_ext needs from Debian's archive, only
# what is missing.  Runs apt-get as root (CI runs as root).
#   scripts/deps.sh            build and test packages
#   scripts/deps.sh bench      also what make bench needs
set -euo pipefail

packages=(
    make gcc
    postgresql-15 postgresql-client-15 postgresql-server-dev-15
    postgresql-15-cron postgresql-15-pgtap
    libtap-parser-sourcehandler-pgtap-perl libipc-run-perl
    prometheus-postgres-exporter python3 python3-jsonschema graphviz
)
if [ "${1:-}" = bench ]; then
    packages+=(python3 python3-psycopg2)
fi

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "==> installing: ${missing[*]}"
SUDO=
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
