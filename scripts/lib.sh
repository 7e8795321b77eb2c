#!/usr/bin/env bash
# scripts/lib.sh — shared helpers of make test, make demo and make bench:
# packages, build, throwaway clusters run as the postgres user.
set -euo pipefail

PG_MAJOR=15
# ETL_PGROOT=/some/dir: build, install and test against a private copy of
# the PostgreSQL installation under that directory (created on first use)
# instead of the system's, so that several checkouts can test at once
ETL_PGROOT=${ETL_PGROOT:-}
PG_BIN=$ETL_PGROOT/usr/lib/postgresql/$PG_MAJOR/bin
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
PGXS_DIR=$ETL_PGROOT/usr/lib/postgresql/$PG_MAJOR/lib/pgxs
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf '\n==> %s\n' "$*"; }

# as_pg CMD...: run a command as the postgres user (PostgreSQL refuses root)
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- env PATH="$PG_BIN:$PATH" "$@"
    else
        env PATH="$PG_BIN:$PATH" "$@"
    fi
}

# ensure_deps: install the Debian packages the project needs (idempotent)
ensure_deps() {
    "$TOP/scripts/deps.sh" "$@"
}

# private_pgroot: make the private copy of PostgreSQL under ETL_PGROOT
private_pgroot() {
    if [ -z "$ETL_PGROOT" ] || [ -x "$PG_BIN/postgres" ]; then return 0; fi
    say "copying PostgreSQL $PG_MAJOR to $ETL_PGROOT"
    mkdir -p "$ETL_PGROOT/usr/lib/postgresql" "$ETL_PGROOT/usr/share/postgresql"
    cp -a "/usr/lib/postgresql/$PG_MAJOR" "$ETL_PGROOT/usr/lib/postgresql/"
    cp -a "/usr/share/postgresql/$PG_MAJOR" "$ETL_PGROOT/usr/share/postgresql/"
    chmod 755 "$ETL_PGROOT"
}

# build_install: build the extension and install it into PostgreSQL 15
# (or into the private copy under ETL_PGROOT)
build_install() {
    private_pgroot
    say "building and installing etl_ext"
    make -C "$TOP" -s PG_CONFIG="$PG_CONFIG" all
    if [ "$(id -u)" = 0 ]; then
        make -C "$TOP" -s PG_CONFIG="$PG_CONFIG" DESTDIR="$ETL_PGROOT" install
    else
        sudo make -C "$TOP" -s PG_CONFIG="$PG_CONFIG" DESTDIR="$ETL_PGROOT" install
    fi
}

# make_workdir [PREFIX]: a fresh directory $TMPDIR/PREFIX.XXXXXX (TMPDIR
# defaults to /tmp, PREFIX to etl_ext) owned by postgres; prints its path
make_workdir() {
    local dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/${1:-etl_ext}.XXXXXX")
    chmod 755 "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    echo "$dir"
}

# free_port: prints a TCP port nobody listens on
free_port() {
    local port
    for _ in $(seq 1 200); do
        port=$(( 20000 + RANDOM % 30000 ))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    echo "no free port found" >&2
    return 1
}

# start_cluster DIR PORT [postgresql.conf lines...]: initdb and start a
# throwaway cluster in DIR/data, socket in DIR, listening on 127.0.0.1:PORT.
# Tests get fsync = off and room for many connections and workers.  With
# CLUSTER_DEFAULTS=1 in the environment (make bench) the server keeps its own
# defaults, durability included: only where to listen and how to log are set
# (plus the extra lines given).
start_cluster() {
    local dir=$1 port=$2
    shift 2
    as_pg "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync \
        -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log"; return 1; }
    {
        echo "port = $port"
        echo "listen_addresses = '127.0.0.1'"
        echo "unix_socket_directories = '$dir'"
        if [ "${CLUSTER_DEFAULTS:-0}" != 1 ]; then
            echo "fsync = off"
            echo "max_connections = 50"
            echo "max_worker_processes = 16"
        fi
        echo "log_line_prefix = '%m [%p] %e %q%a '"
        echo "lc_messages = 'C'"
        for line in "$@"; do echo "$line"; done
    } | as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
        || { cat "$dir/server.log"; return 1; }
}

# stop_cluster DIR: stop the cluster in DIR/data if it runs
stop_cluster() {
    local dir=$1
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
}
