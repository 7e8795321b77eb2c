#!/usr/bin/env bash
# scripts/demo.sh — `make demo`: install what is missing, build, install,
# start a throwaway cluster, run demo/demo.sql (the main job of etl_ext end
# to end, printed for a person to read), stop the cluster.
source "$(dirname "$0")/lib.sh"

ensure_deps
build_install

WORK=$(make_workdir)
PORT=$(free_port)
trap 'stop_cluster "$WORK"; rm -rf "$WORK"' EXIT

say "starting a throwaway PostgreSQL 15 cluster on port $PORT"
start_cluster "$WORK" "$PORT"
as_pg "$PG_BIN/createdb" -h "$WORK" -p "$PORT" demo

say "running demo/demo.sql"
cp "$TOP/demo/demo.sql" "$WORK/demo.sql"
chmod 644 "$WORK/demo.sql"
as_pg "$PG_BIN/psql" -X -h "$WORK" -p "$PORT" -d demo -f "$WORK/demo.sql"
say "demo finished; the cluster is stopped and removed"
