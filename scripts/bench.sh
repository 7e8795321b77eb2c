#!/usr/bin/env bash
# scripts/bench.sh — `make bench`: etl_ext against what users would do
# instead, and its performance targets.
#
# Installs what is missing (Debian's python3-psycopg2 for the client-side
# baseline), builds and installs etl_ext, starts a throwaway cluster with the
# server's default settings (durability included: no fsync = off here), runs
# bench/bench.py against it, which prints each case's table and rewrites the
# results of the cases it ran in BENCHMARKS.md (the others stay), and stops
# the cluster, also on failure.
#
# Environment:
#   BENCH_ROWS         source rows (default 1000000); the increment, xid and
#                      catch-up cases also use 5 x BENCH_ROWS (catch-up in
#                      batches of BENCH_ROWS / 2)
#   BENCH_REPEAT       runs per variant, the median is reported (default 3, the least)
#   BENCH_CLIENT_RUNS  runs of the client-side Python pipeline (default 3)
#   BENCH_ROW_RUNS     runs of the row-by-row load of the dead-letter case
#                      (default 3)
#   BENCH_OUTPUT       the file whose results are rewritten (default
#                      BENCHMARKS.md at the top of the repository; empty:
#                      print only)
#   BENCH_CASES        only these cases, comma-separated (development: e.g.
#                      snapshot,metrics; see bench.py --cases)
#   KEEP_WORK=1        keep the cluster's directory (server log) afterwards
#   ETL_PGROOT=DIR     build, install and run against a private copy of
#                      PostgreSQL under DIR (scripts/lib.sh), not the system's
source "$(dirname "$0")/lib.sh"

BENCH_STARTED=$(date +%s)
BENCH_ROWS=${BENCH_ROWS:-1000000}
BENCH_REPEAT=${BENCH_REPEAT:-3}
BENCH_CLIENT_RUNS=${BENCH_CLIENT_RUNS:-3}
BENCH_ROW_RUNS=${BENCH_ROW_RUNS:-3}
BENCH_OUTPUT=${BENCH_OUTPUT-$TOP/BENCHMARKS.md}
# Debian's interpreter, which has python3-psycopg2 (not whatever python3
# comes first in PATH)
PYTHON=/usr/bin/python3

ensure_deps bench
build_install

# a prefix of its own: the bench's cluster lives for minutes, and cleaners
# of leftover test directories (/tmp/etl_ext.*) must not take it away
WORK=$(make_workdir etl_bench)
PORT=$(free_port)
PG_PID=
status=1
cleanup() {
    stop_cluster "$WORK"
    # stop_cluster needs postmaster.pid; should it be gone, stop the
    # postmaster this script started by its process id
    if [ -n "$PG_PID" ] && kill -0 "$PG_PID" 2>/dev/null; then
        kill -INT "$PG_PID" 2>/dev/null || true
        for _ in $(seq 1 60); do
            kill -0 "$PG_PID" 2>/dev/null || break
            sleep 0.5
        done
    fi
    if [ "$status" -eq 0 ] && [ -z "${KEEP_WORK:-}" ]; then
        rm -rf "$WORK"
    else
        echo "cluster directory kept: $WORK (server log: $WORK/server.log)" >&2
    fi
}
trap cleanup EXIT

say "starting a throwaway cluster on port $PORT with default settings (data in $WORK)"
CLUSTER_DEFAULTS=1 start_cluster "$WORK" "$PORT"
PG_PID=$(head -1 "$WORK/data/postmaster.pid")

say "running the benchmark: $BENCH_ROWS rows, $BENCH_REPEAT runs per variant"
"$PYTHON" -B "$TOP/bench/bench.py" \
    --dsn "host=$WORK port=$PORT dbname=postgres user=postgres" \
    --rows "$BENCH_ROWS" --repeat "$BENCH_REPEAT" \
    --client-runs "$BENCH_CLIENT_RUNS" --row-runs "$BENCH_ROW_RUNS" \
    ${BENCH_OUTPUT:+--output "$BENCH_OUTPUT"} \
    ${BENCH_CASES:+--cases "$BENCH_CASES"} \
    --server-log "$WORK/server.log" \
    --date "$(date -u)" --started "$BENCH_STARTED"
status=0

elapsed=$(( $(date +%s) - BENCH_STARTED ))
say "make bench done in $(( elapsed / 60 )) min $(( elapsed % 60 )) s"
