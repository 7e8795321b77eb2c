# etl_ext — incremental ETL inside PostgreSQL
#
# make               build the extension (PGXS)
# make install       install it into the PostgreSQL found by PG_CONFIG
# make test          install missing packages, build, install, run every suite
#                    (pg_regress, pgTAP, isolation, TAP) on throwaway clusters
# make demo          the main job end to end on a throwaway cluster
# make bench         the benchmark suite (writes BENCHMARKS.md)

EXTENSION = etl_ext
MODULE_big = etl_ext
# the objects, layer by layer from the bottom (scripts/check_layers)
OBJS = \
	src/base/aggregates.o \
	src/base/entry.o \
	src/base/errors.o \
	src/base/fence.o \
	src/base/rowhash.o \
	src/base/security.o \
	src/base/settings.o \
	src/base/spi_util.o \
	src/base/standby.o \
	src/catalog/autonomous.o \
	src/catalog/batches.o \
	src/catalog/pipelines.o \
	src/catalog/run_lock.o \
	src/catalog/runlog.o \
	src/catalog/runs.o \
	src/catalog/unrecorded.o \
	src/sql/columns.o \
	src/sql/deparse_batch.o \
	src/sql/deparse_checks.o \
	src/sql/deparse_load.o \
	src/sql/deparse_snapshot.o \
	src/sql/deparse_source.o \
	src/sql/deparse_stage.o \
	src/sql/deparse_stage_table.o \
	src/sql/deparse_swap.o \
	src/sql/names.o \
	src/sql/reserved.o \
	src/sql/run_state.o \
	src/sql/transform.o \
	src/modes/drift.o \
	src/modes/extract.o \
	src/modes/fdw.o \
	src/modes/mode.o \
	src/modes/mode_cdc.o \
	src/modes/mode_full.o \
	src/modes/mode_serial.o \
	src/modes/mode_snapshot.o \
	src/modes/mode_timestamp.o \
	src/modes/mode_xid.o \
	src/modes/safe_bounds.o \
	src/modes/sequences.o \
	src/modes/track.o \
	src/modes/watermark.o \
	src/loads/load.o \
	src/loads/load_append.o \
	src/loads/load_delete_insert.o \
	src/loads/load_merge.o \
	src/loads/load_ops.o \
	src/loads/load_partition_swap.o \
	src/loads/swap.o \
	src/loads/swap_build.o \
	src/loads/swap_guard.o \
	src/loads/swap_key.o \
	src/checks/check_define.o \
	src/checks/check_eval.o \
	src/checks/check_judge.o \
	src/checks/check_kinds.o \
	src/checks/check_params.o \
	src/checks/check_results.o \
	src/transform/deadletter.o \
	src/transform/isolate.o \
	src/transform/stage.o \
	src/run/replay.o \
	src/run/run.o \
	src/run/stages.o \
	src/run/steps.o \
	src/api/checks.o \
	src/api/dead_letters.o \
	src/api/explain.o \
	src/api/lineage.o \
	src/api/metrics.o \
	src/api/module.o \
	src/api/observe.o \
	src/api/pipeline.o \
	src/api/pipeline_validate.o \
	src/api/rebase.o \
	src/api/run.o \
	src/api/schedule.o \
	src/api/table_arg.o \
	src/api/track.o

# the install script, built from its parts in src/install/ (concatenated in
# the order of their numbers; see the rule after the PGXS include)
DATA_built = etl_ext--1.0.sql
INSTALL_PARTS = $(sort $(wildcard $(srcdir)/src/install/*.sql))
PGFILEDESC = "etl_ext - incremental ETL inside PostgreSQL"

# pg_regress suites, in order (sql/*.sql, expected/*.out), one a line
REGRESS = \
	install \
	row_hash \
	row_hash_settings \
	pipeline_api \
	run_timestamp \
	run_serial \
	serial_sources \
	loads \
	security \
	failures \
	replay \
	replay_snapshot \
	checks \
	observe \
	run_xid \
	xid_arrivals \
	run_full \
	run_cdc \
	run_snapshot \
	snapshot_rejects \
	snapshot_key_spelling \
	key_equality \
	delete_insert_whole \
	schema_drift \
	reserved_columns \
	schedule \
	fdw \
	steps \
	backfill_types \
	load_swap \
	hostile_path \
	catalog_privileges \
	load_swap_attached \
	load_swap_refused \
	load_swap_published \
	steps_exact \
	dead_letters_exact \
	dead_letters_failed_runs \
	positions_exact \
	fence \
	watermark_domain \
	bad_input \
	monitor \
	isolation_memory \
	dead_letters_spill \
	isolation_locks \
	isolation_work \
	catch_up_checks \
	counts \
	replica_totals \
	keyless_append \
	lineage_broken \
	no_equality \
	entry_settings \
	run_reentrance \
	run_failed_event
REGRESS_OPTS = --inputdir=. --load-extension=plpgsql
# the REGRESS files that only a superuser can run (they create roles or
# databases and switch between them); make test runs the others once more as
# a pipeline owner without any attribute (docs/testing.md says why each)
REGRESS_SUPERUSER = \
	install \
	security \
	fdw \
	hostile_path \
	catalog_privileges \
	load_swap_published \
	fence \
	watermark_domain \
	monitor \
	isolation_memory \
	dead_letters_spill \
	replica_totals \
	lineage_broken \
	run_failed_event

# isolation specs (test/isolation/specs/*.spec), one a line
ISOLATION = \
	concurrent_runs \
	late_writer_timestamp \
	late_writer_serial \
	late_writer_xid \
	full_refresh \
	safe_bounds \
	owner_before_lock \
	partition_swap \
	serial_drawn_early \
	partition_swap_readers \
	partition_swap_dimension \
	drop_race \
	ddl_during_run \
	lag_long_writer \
	lag_lock \
	isolation_deadlock \
	delete_deadlock \
	delete_deadlock_rejects \
	resolve_owner_first \
	open_locked \
	reopen_during_run

PG_CPPFLAGS = -I$(srcdir)/src -Wall -Wextra -Wno-unused-parameter \
	-Wno-missing-field-initializers -Wno-sign-compare
SHLIB_LINK =

PG_CONFIG ?= $(shell test -x /usr/lib/postgresql/15/bin/pg_config && \
	echo /usr/lib/postgresql/15/bin/pg_config || echo pg_config)
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

# On a fresh machine PGXS is not there yet: `make test` and `make demo`
# install it first (scripts/deps.sh), so only include it when present.
ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
else
all:
	@echo "PostgreSQL server development files are missing: run 'make test' or 'scripts/deps.sh' first" >&2
	@exit 1
endif

# the install script is exactly its parts, in order (make clean removes it:
# PGXS cleans DATA_built); written whole or not at all
etl_ext--1.0.sql: $(INSTALL_PARTS)
	cat $(INSTALL_PARTS) >$@.tmp && mv $@.tmp $@

# every object depends on every header (PGXS tracks no header dependencies)
$(OBJS): $(wildcard src/*/*.h)

.PHONY: test demo bench deps format

deps:
	scripts/deps.sh

test:
	REGRESS="$(REGRESS)" REGRESS_SUPERUSER="$(REGRESS_SUPERUSER)" ISOLATION="$(ISOLATION)" \
		scripts/test.sh

demo:
	scripts/demo.sh

bench:
	scripts/bench.sh

format:
	clang-format -i src/*/*.c src/*/*.h
