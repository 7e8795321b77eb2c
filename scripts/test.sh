#!/usr/bin/env bash
# scripts/test.sh — `make test`: install what is missing, build, install,
# then run every suite against throwaway clusters and stop them, also on
# failure:
#   -. layers      (scripts/check_layers, scripts/check_sizes,
#                  scripts/check_tables, scripts/check_strategies: the
#                  layers of src/ and their includes, the sizes of files and
#                  functions, the kinds named only in their tables, no
#                  dispatch on the mode or the load outside src/modes/ and
#                  src/loads/)
#   0. unit        (test/unit/*.c: C code without PostgreSQL dependencies)
#   1. pg_regress  (sql/, expected/), then again with search_path = '' and
#                  as a pipeline owner without any attribute
#   2. pgTAP       (test/pgtap/*.sql, with pg_prove), the same three ways
#   3. isolation   (test/isolation/specs/*.spec)
#   4. TAP         (test/t/*.pl, PostgreSQL::Test::Cluster: crashes, restarts)
# Finally the server logs are searched for internal errors (XX000), failed
# assertions and crashes.
#
# Environment: REGRESS, REGRESS_SUPERUSER (the files the owner pass leaves
# out) and ISOLATION are set by the Makefile; ONLY=regress|pgtap|... runs one
# suite, ONLY=regress,regress_as_owner some; TAP_TESTS=t/005_steps_crash.pl
# (paths under test/) runs only those TAP files.
source "$(dirname "$0")/lib.sh"

ONLY=${ONLY:-}
REGRESS=${REGRESS:?REGRESS is set by the Makefile: run make test}
ISOLATION=${ISOLATION:?ISOLATION is set by the Makefile: run make test}
REGRESS_SUPERUSER=${REGRESS_SUPERUSER?REGRESS_SUPERUSER is set by the Makefile: run make test}

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
    if [ -n "$ONLY" ] && [[ " ${ONLY//,/ } " != *" $name "* ]]; then return 0; fi
    say "suite: $name"
    if "$@"; then
        echo "--- $name: passed"
    else
        echo "--- $name: FAILED"
        failed+=("$name")
    fi
}

suite_layers() {
    # no include goes up a layer or closes a cycle, no header shadows one
    # of PostgreSQL's, no file or function is too long, no kind of a table
    # is named outside it, no switch on the mode or the load outside their
    # directories
    local ok=0
    "$TOP/scripts/check_layers" \
        --pg-includedir "$("$PG_CONFIG" --includedir-server)" || ok=1
    "$TOP/scripts/check_sizes" || ok=1
    "$TOP/scripts/check_tables" || ok=1
    "$TOP/scripts/check_strategies" || ok=1
    layers_refuses_run_state || ok=1
    return $ok
}

layers_refuses_run_state() {
    # check_layers refuses a pure SQL builder that reaches sql/run_state.h:
    # planted in a copy of src/, it must name the file and the line
    local copy="$WORK/layers_src" out
    rm -rf "$copy" && cp -r "$TOP/src" "$copy" &&
        printf '#include "sql/run_state.h"\n' >>"$copy/sql/deparse_batch.h" ||
        return 1
    if out=$("$TOP/scripts/check_layers" "$copy"); then
        echo "check_layers passed a pure builder that reaches run_state.h"
        return 1
    fi
    grep -q 'sql/deparse_batch.h:[0-9]*: #include "sql/run_state.h" reaches sql/run_state.h' <<<"$out" || {
        echo "check_layers did not name the include: $out"
        return 1
    }
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

suite_regress_empty_path() {
    # the same files with search_path = '' in every session, as pg_partman
    # runs its code: nothing of etl_ext may depend on the caller's path
    as_pg env PGOPTIONS="-c search_path=" "$PGXS_DIR/src/test/regress/pg_regress" \
        --bindir="$PG_BIN" --host="$WORK" --port="$PORT" \
        --inputdir="$WORK/src" --outputdir="$WORK/regress_empty_path" \
        --dbname=contrib_regression_empty_path $REGRESS || {
        cat "$WORK/regress_empty_path/regression.diffs" 2>/dev/null | head -300
        return 1
    }
}

# make_owner: the role the owner passes run as, a login without any
# attribute.  It may set the two parameters of superusers that some files
# set (temp_file_limit as a guard, the OpenLineage namespace for a stable
# output): grants a DBA can give.
OWNER=etl_regress_owner
make_owner() {
    as_pg "$PG_BIN/psql" -X -q -h "$WORK" -p "$PORT" -d postgres -v ON_ERROR_STOP=1 \
        -c "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$OWNER') THEN
                CREATE ROLE $OWNER LOGIN; END IF; END\$\$" \
        -c "GRANT SET ON PARAMETER temp_file_limit, etl.lineage_namespace TO $OWNER"
}

# owner_files: REGRESS without REGRESS_SUPERUSER, in order (fails on a name
# of REGRESS_SUPERUSER that is not in REGRESS)
owner_files() {
    local f
    for f in $REGRESS_SUPERUSER; do
        case " $REGRESS " in *" $f "*) ;; *)
            echo "REGRESS_SUPERUSER names $f, which is not in REGRESS" >&2
            return 1 ;;
        esac
    done
    for f in $REGRESS; do
        case " $REGRESS_SUPERUSER " in *" $f "*) ;; *) echo "$f" ;; esac
    done
}

suite_regress_as_owner() {
    # a superuser installs etl_ext (sql/install.sql) into a database that the
    # owner role then owns; the owner runs the files that need no superuser
    local db=contrib_regression_owner ok=0 files
    files=$(owner_files) && make_owner || return 1
    as_pg "$PGXS_DIR/src/test/regress/pg_regress" \
        --bindir="$PG_BIN" --host="$WORK" --port="$PORT" \
        --inputdir="$WORK/src" --outputdir="$WORK/regress_as_owner_install" \
        --dbname=$db install || ok=1
    as_pg "$PG_BIN/psql" -X -q -h "$WORK" -p "$PORT" -d postgres -v ON_ERROR_STOP=1 \
        -c "ALTER DATABASE $db OWNER TO $OWNER" &&
    as_pg "$PGXS_DIR/src/test/regress/pg_regress" \
        --bindir="$PG_BIN" --host="$WORK" --port="$PORT" --use-existing \
        --user=$OWNER --inputdir="$WORK/src" --outputdir="$WORK/regress_as_owner" \
        --dbname=$db $files || ok=1
    if [ $ok -ne 0 ]; then
        cat "$WORK"/regress_as_owner_install/regression.diffs \
            "$WORK"/regress_as_owner/regression.diffs 2>/dev/null | head -300
    fi
    return $ok
}

# pgtap_db DB [SCHEMA]: a new database with pgTAP in SCHEMA (default public;
# in pg_catalog it needs allow_system_table_mods, for its types)
pgtap_db() {
    local schema=${2:-public} mods=off
    if [ "$schema" = pg_catalog ]; then mods=on; fi
    as_pg "$PG_BIN/psql" -X -q -h "$WORK" -p "$PORT" -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE $1" &&
    as_pg "$PG_BIN/psql" -X -q -h "$WORK" -p "$PORT" -d "$1" -v ON_ERROR_STOP=1 \
        -c "SET allow_system_table_mods = $mods" -c "CREATE EXTENSION pgtap SCHEMA $schema"
}

suite_pgtap() {
    pgtap_db etl_pgtap &&
    (cd "$WORK/src" && as_pg pg_prove -h "$WORK" -p "$PORT" -d etl_pgtap \
        --ext .sql -r test/pgtap)
}

suite_pgtap_empty_path() {
    # pgTAP in pg_catalog, where an empty search_path finds it
    pgtap_db etl_pgtap_empty_path pg_catalog &&
    (cd "$WORK/src" && as_pg env PGOPTIONS="-c search_path=" pg_prove -h "$WORK" \
        -p "$PORT" -d etl_pgtap_empty_path --ext .sql -r test/pgtap)
}

suite_pgtap_as_owner() {
    # etl_ext installed by a superuser, the files run by the owner role
    local db=etl_pgtap_owner
    make_owner && pgtap_db $db &&
    as_pg "$PG_BIN/psql" -X -q -h "$WORK" -p "$PORT" -d $db -v ON_ERROR_STOP=1 \
        -c "CREATE EXTENSION etl_ext" -c "ALTER DATABASE $db OWNER TO $OWNER" &&
    (cd "$WORK/src" && as_pg pg_prove -h "$WORK" -p "$PORT" -d $db -U $OWNER \
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
run_suite layers suite_layers
run_suite unit suite_unit
run_suite regress suite_regress
run_suite regress_empty_path suite_regress_empty_path
run_suite regress_as_owner suite_regress_as_owner
run_suite pgtap suite_pgtap
run_suite pgtap_empty_path suite_pgtap_empty_path
run_suite pgtap_as_owner suite_pgtap_as_owner
run_suite isolation suite_isolation
run_suite tap suite_tap
run_suite logs suite_logs

if [ ${#failed[@]} -ne 0 ]; then
    say "FAILED: ${failed[*]} (work directory kept: $WORK)"
    exit 1
fi
say "all suites passed"
