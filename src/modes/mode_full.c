/*-------------------------------------------------------------------------
 *
 * mode_full.c
 *	  Mode full: every run reads the whole source, and the target becomes
 *	  it: without a key the target's rows are deleted and the batch
 *	  inserted; with a key the batch is loaded and the target rows whose key
 *	  left the source are deleted.
 *
 * IDENTIFICATION
 *	  src/modes/mode_full.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "loads/load.h"
#include "modes/mode.h"
#include "sql/deparse_batch.h"
#include "sql/deparse_load.h"

/*
 * full_describe tells the builders and the loads that the batch is the
 * whole source.
 */
static void
full_describe(EtlPipeline *p, EtlBatchSource *descr)
{
	descr->whole_source = true;
}

/*
 * full_stats counts the source, unless the load counts it (a one-to-one
 * transform).
 */
static void
full_stats(EtlRun *run)
{
	EtlArgs args;

	if (run->map->one_to_one)
	{
		run->rec.rows_extracted = -1; /* the load counts them */
		return;
	}
	etl_run_args(run, &args);
	etl_spi_exec(etl_deparse_stats(etl_batch_sql(run)), &args, SPI_OK_SELECT,
				 run->snapshot);
	run->rec.rows_extracted = etl_spi_int64(0, 0, 0);
}

/*
 * full_before prepares the load of a mode full run and returns the
 * rows it deleted: without a key, the target's rows (the batch then
 * replaces them all).  The statements of the run's transaction see the
 * deletion; other transactions see the old content until it commits.
 */
static int64
full_before(EtlRun *run)
{
	if (run->p->key != NIL)
		return 0;
	run->target_empty = 1;
	return etl_load_exec(run, etl_deparse_delete_all(etl_batch_sql(run)),
						 SPI_OK_DELETE);
}

/*
 * full_after finishes the load of a mode full run and returns the
 * rows it deleted: with a key, the target rows whose key has left the
 * source.
 */
static int64
full_after(EtlRun *run)
{
	if (run->p->key == NIL)
		return 0;
	return etl_load_exec(run, etl_deparse_delete_vanished(etl_batch_sql(run)),
						 SPI_OK_DELETE);
}

/*
 * full_load replaces the target with the source: also when it is empty.
 */
static void
full_load(EtlRun *run, EtlLoadBatchFn load_batch)
{
	int64 deleted = full_before(run);

	load_batch(run);
	run->rec.rows_deleted += deleted + full_after(run);
}

const EtlModeOps etl_mode_full = {
	.name = "full",
	.has_watermark_column = false,
	.watermark_is_snapshot = false,
	.watermark_is_clock = false,
	.takes_overlap = false,
	.backfills = false,
	.replaces_target = true,
	.row_noun = "source",
	.watermark_type_ok = NULL,
	.watermark_type_hint = NULL,
	.watermark_type_error = NULL,
	.check_source = NULL,
	.check_watermark_column = NULL,
	.check_definition = NULL,
	.notice_definition = NULL,
	.describe = full_describe,
	.begin = NULL,
	.snapshot_taken = NULL,
	.stats = full_stats,
	.load = full_load,
	.reject_left_out = NULL,
	.keeps_stage = false,
};
