#!/usr/bin/env bash
# scripts/test.sh — `make test`: install what is missing, build, install,
# then run every suite against throwaway clusters and stop them, also on
# failure:
#   0. unit        (test/unit/*.c: C code without PostgreSQL dependencies)
#   1. pg_regress  (sql/, expected/)
#   2. pgTAP       (test/pgtap/*.sql, with pg_prove)
#   3. isolation   (test/isolation/specs/*.spec)
#   4. TAP         (test/t/*.pl, PostgreSQL::Test::Cluster: crashes, restarts)
# Finally the server logs are searched for internal errors (XX000), failed
# assertions and crashes.
#
# Environment: REGRESS and ISOLATION (set by the Makefile) list the suites;
# ONLY=regress|pgtap|isolation|tap runs one suite; TAP_TESTS=t/005_steps_crash.pl
# (paths under test/) runs only those TAP files.
source "$(dirname "$0")/lib.sh"

ONLY=${ONLY:-}
REGRESS=${REGRESS:?REGRESS is set by the Makefile: run make test}
ISOLATION=${ISOLATION:?ISOLATION is set by the Makefile: run make test}

ensure_deps
build_install

WORK=$(make_workdir)
PORT=$(free_port)
failed=()
cleanup() {
    stop_cluster "$WORK"
    if [ ${#failed[@]} -eq 0 ] && [ -z "${KEEP_WORK:-}" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

# the suites read and write their files as postgres: give them a copy
mkdir -p "$WORK/src"
cp -r "$TOP/sql" "$TOP/expected" "$TOP/test" "$TOP/contrib" "$TOP/README.md" "$WORK/src/"
chown -R "$(stat -c %u "$WORK")" "$WORK/src"

say "starting a throwaway cluster on port $PORT (data in $WORK)"
start_cluster "$WORK" "$PORT" "max_prepared_transactions = 10"

run_suite() {
    local name=$1
    shift
    if [ -n "$ONLY" ] && [ "$ONLY" != "$name" ]; then return 0; fi
    say "suite: $name"
    if "$@"; then
        echo "--- $name: passed"
    else
        echo "--- $name: FAILED"
        failed+=("$name")
    fi
}

suite_unit() {
    # C unit tests of code without PostgreSQL dependencies
    local t ok=0
    for t in "$TOP"/test/unit/*.c; do
        cc -Wall -Wextra -Werror -I"$TOP/src" -o "$WORK/unit_test" "$t" &&
            "$WORK/unit_test" || ok=1
    done
    return $ok
}

suite_regress() {
    as_pg "$PGXS_DIR/src/test/regress/pg_regress" \
        --bindir="$PG_BIN" --host="$WORK" --port="$PORT" \
        --inputdir="$WORK/src" --outputdir="$WORK/regress" \
        --dbname=contrib_regression $REGRESS || {
        cat "$WORK/regress/regression.diffs" 2>/dev/null | head -300
        return 1
    }
}

suite_pgtap() {
    as_pg "$PG_BIN/psql" -X -q -h "$WORK" -p "$PORT" -d postgres \
        -c "CREATE DATABASE etl_pgtap" &&
    as_pg "$PG_BIN/psql" -X -q -h "$WORK" -p "$PORT" -d etl_pgtap \
        -c "CREATE EXTENSION pgtap" &&
    (cd "$WORK/src" && as_pg pg_prove -h "$WORK" -p "$PORT" -d etl_pgtap \
        --ext .sql -r test/pgtap)
}

suite_isolation() {
    as_pg "$PGXS_DIR/src/test/isolation/pg_isolation_regress" \
        --bindir="$PG_BIN" --host="$WORK" --port="$PORT" \
        --inputdir="$WORK/src/test/isolation" --outputdir="$WORK/isolation" \
        --dbname=isolation_regression $ISOLATION || {
        cat "$WORK/isolation/regression.diffs" 2>/dev/null | head -300
        return 1
    }
}

suite_tap() {
    # every TAP cluster logs the SQLSTATE of each line (%e), as this
    # script's own cluster does: PostgreSQL::Test::Cluster appends
    # TEMP_CONFIG to the postgresql.conf of each node it makes
    printf "log_line_prefix = '%%m [%%p] %%e %%q%%a '\n" >"$WORK/tap/temp.conf"
    (cd "$WORK/src/test" && as_pg env \
        TEMP_CONFIG="$WORK/tap/temp.conf" \
        PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress" \
        TESTDIR="$WORK/tap" PGPORT="$(free_port)" ETL_CONTRIB="$WORK/src/contrib" \
        ETL_README="$WORK/src/README.md" \
        prove -I "$PGXS_DIR/src/test/perl" -I "$WORK/src/test/t" ${TAP_TESTS:-t/*.pl})
}

suite_logs() {
    # no internal error, failed assertion or crash on any user-reachable
    # path: no line of SQLSTATE class XX (internal error, corrupted data),
    # failed assertion (TRAP) or PANIC, and no server process terminated by
    # a signal (any), but those a TAP test killed on purpose (listed in
    # <log>.killed, test/t/EtlLogs.pm).  Every log must show the SQLSTATE of
    # its lines (%e in log_line_prefix): without it an XX000 goes unseen.
    # The SQLSTATE is matched where %e puts it, not in logged statements.
    local f pids bad out=""
    for f in "$WORK/server.log" "$WORK"/tap/tmp_check/log/*.log; do
        [ -f "$f" ] || continue
        bad=$(grep -E '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+ [A-Z]+ \[[0-9]+\] ' "$f" |
            grep -vE '^[^[]*\[[0-9]+\] [0-9A-Z]{5} ' | head -3 || true)
        if [ -n "$bad" ]; then
            out+="$f: lines without their SQLSTATE (%e missing from log_line_prefix):"$'\n'"$bad"$'\n'
        fi
        pids=$(paste -sd'|' "$f.killed" 2>/dev/null || true)
        bad=$(grep -E '\] XX[0-9A-Z]{3} |^TRAP:|PANIC:  |LOG:  .*terminated by signal' "$f" |
            grep -vE "\(PID (${pids:-none})\) was terminated by signal 9:" || true)
        if [ -n "$bad" ]; then
            out+="$f:"$'\n'"$bad"$'\n'
        fi
    done
    if [ -n "$out" ]; then
        echo "$out" | head -50
        return 1
    fi
}

mkdir -p "$WORK/tap" && chown "$(stat -c %u "$WORK")" "$WORK/tap"
run_suite unit suite_unit
run_suite regress suite_regress
run_suite pgtap suite_pgtap
run_suite isolation suite_isolation
run_suite tap suite_tap
run_suite logs suite_logs

if [ ${#failed[@]} -ne 0 ]; then
    say "FAILED: ${failed[*]} (work directory kept: $WORK)"
    exit 1
fi
say "all suites passed"
