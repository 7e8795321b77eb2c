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
# on standard input rather than -f, so that psql prefixes no file name and
# line to the error of section 13
as_pg "$PG_BIN/psql" -X -h "$WORK" -p "$PORT" -d demo <"$WORK/demo.sql"

# the lineage of every pipeline as a picture: etl_lineage_dot() through Graphviz
OUT=${DEMO_OUT:-$TOP/demo-output}
mkdir -p "$OUT"
as_pg "$PG_BIN/psql" -X -At -h "$WORK" -p "$PORT" -d demo \
    -c "SELECT etl_lineage_dot()" >"$OUT/lineage.dot"
dot -Tpng -Gdpi=110 "$OUT/lineage.dot" -o "$OUT/lineage.png"
say "the lineage graph: $OUT/lineage.png (Graphviz, from SELECT etl_lineage_dot())"
cat "$OUT/lineage.dot"
say "demo finished; the cluster is stopped and removed"
