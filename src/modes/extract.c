/*-------------------------------------------------------------------------
 *
 * extract.c
 *	  The range of source rows a run takes, the same for every mode: the
 *	  stored watermark, the mode's bound (EtlModeOps.begin, with the safe
 *	  upper bound that keeps late commits from being lost: see
 *	  mode_timestamp.c, mode_serial.c, mode_xid.c), a backfill step's range
 *	  in its place, the shared snapshot and the batch_size cut; then the
 *	  range's statistics and the next watermark (EtlModeOps.stats).
 *
 *	  The snapshot for the range statistics and the load is taken after the
 *	  bound (and the wait), and shared by those statements, so the count, the
 *	  new watermark and the rows loaded all describe the same data.
 *
 * IDENTIFICATION
 *	  src/modes/extract.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#include "loads/load.h"
#include "modes/extract.h"
#include "modes/mode.h"
#include "modes/watermark.h"
#include "sql/deparse_batch.h"
#include "sql/run_state.h"

/*
 * begin_range sets the range of a backfill step, [range_from, range_to)
 * as asked, in place of the watermark's.
 */
static void
begin_range(EtlRun *run)
{
	EtlPipeline *p = run->p;

	etl_check_backfill_mode(p);
	run->has_from = true;
	run->from_inclusive = true;
	run->rereads = false;
	run->from = etl_watermark_datum(p, run->req->range_from, run->wm_type,
									run->wm_typmod);
	run->has_hi = true;
	run->hi = etl_watermark_datum(p, run->req->range_to, run->wm_type,
								  run->wm_typmod);
	run->hi_type = run->wm_type;
	run->hi_inclusive = false;
	run->nothing = false;
}

/*
 * etl_extract_begin works out the range of a run: the stored watermark, the
 * safe upper bound (waiting where the mode needs it), the shared snapshot
 * and the batch_size cut.  Runs as the pipeline owner.
 */
void
etl_extract_begin(EtlRun *run)
{
	EtlPipeline *p = run->p;
	const EtlModeOps *mode = etl_mode_ops(p->mode);
	AttrNumber attnum;
	Oid collid;

	if (!mode->has_watermark_column)
	{
		/* the whole source, every time */
		run->snapshot = RegisterSnapshot(GetLatestSnapshot());
		return;
	}

	attnum = get_attnum(run->source_relid, p->watermark_column);
	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("watermark column \"%s\" of pipeline \"%s\" no longer "
						"exists in %s",
						p->watermark_column, p->name, run->source_sql),
				 errhint("Restore the column, or change the pipeline with "
						 "etl_alter_pipeline(%s, watermark_column => ...).",
						 quote_literal_cstr(p->name))));
	get_atttypetypmodcoll(run->source_relid, attnum, &run->wm_type,
						  &run->wm_typmod, &collid);
	etl_check_watermark_type(p, run->wm_type);

	run->has_lo = p->watermark != NULL;
	if (run->has_lo && !mode->watermark_is_snapshot)
	{
		run->lo =
			etl_watermark_datum(p, p->watermark, run->wm_type, run->wm_typmod);
		etl_check_watermark_finite(p, p->watermark, run->wm_type, run->lo,
								   true);
	}

	mode->begin(run);

	if (run->req != NULL && run->req->range_from != NULL)
		begin_range(run);

	run->snapshot = RegisterSnapshot(GetLatestSnapshot());
	if (mode->snapshot_taken != NULL)
		mode->snapshot_taken(run);

	if (p->batch_size > 0 && !run->nothing && !run->from_inclusive)
	{
		EtlArgs args;
		bool isnull;
		Datum cutoff;

		etl_run_args(run, &args);
		if (etl_spi_exec(etl_deparse_cutoff(etl_batch_sql(run)), &args,
						 SPI_OK_SELECT, run->snapshot) > 0)
		{
			cutoff = etl_spi_datum(0, 0, &isnull);
			run->has_cutoff = !isnull;
			run->cutoff = isnull
							  ? (Datum) 0
							  : datumCopy(cutoff, get_typbyval(run->wm_type),
										  get_typlen(run->wm_type));
		}
	}
}

/*
 * etl_extract_stats sets the run's watermarks (from: the stored one; to:
 * the stored one until the mode's stats move it, or a snapshot watermark's
 * new snapshot) and, unless the range is known to be empty, has the mode
 * count the rows of the range and find the next watermark.
 */
void
etl_extract_stats(EtlRun *run)
{
	const EtlModeOps *mode = etl_mode_ops(run->p->mode);

	run->rec.watermark_from = run->p->watermark;
	run->rec.watermark_to = run->p->watermark;
	if (mode->watermark_is_snapshot)
		run->rec.watermark_to = run->xid_cur; /* whatever the range holds */
	if (run->from_inclusive)
	{
		/* a backfill step: its range; the watermark is not its business */
		run->rec.watermark_from = pstrdup(run->req->range_from);
		run->rec.watermark_to = pstrdup(run->req->range_to);
	}
	if (run->nothing)
		return;
	mode->stats(run);
}

/*
 * etl_extract_range_stats is the stats of the modes that take a range of a
 * watermark column: counts the rows of the range (-1: counted by the load,
 * see etl_deparse_stats()) and moves watermark_to to the largest value
 * extracted when it is past the stored one.  Rows whose watermark column is
 * NULL are never in a range.  Returns whether the range holds rows.
 */
bool
etl_extract_range_stats(EtlRun *run)
{
	EtlArgs args;

	if (run->map->one_to_one)
		(void) etl_target_is_empty(run); /* whether to count (deparse) */
	etl_run_args(run, &args);
	etl_spi_exec(etl_deparse_stats(etl_batch_sql(run)), &args, SPI_OK_SELECT,
				 run->snapshot);
	if (etl_spi_isnull(0, 1))
		return false; /* nothing in the range */
	run->rec.rows_extracted = etl_spi_int64(0, 0, 0);
	if (run->rereads)
		run->rec.rows_new = etl_spi_int64(0, 3, -1);

	/*
	 * column 2 tells whether the newest value is past the stored watermark;
	 * a value that is no position (a first run over rows at -infinity) is
	 * never stored: the next run would take nothing past it
	 */
	if (!etl_mode_ops(run->p->mode)->watermark_is_snapshot &&
		!run->from_inclusive)
	{
		bool isnull;
		bool topnull;
		Datum newer = etl_spi_datum(0, 2, &isnull);
		Datum top = etl_spi_datum(0, 1, &topnull);

		if ((isnull || DatumGetBool(newer)) &&
			etl_watermark_is_finite(run->wm_type, top))
			run->rec.watermark_to = etl_spi_text(0, 1);
	}
	return true;
}

/*
 * etl_extract_range is etl_extract_range_stats() as the stats of a mode.
 */
void
etl_extract_range(EtlRun *run)
{
	(void) etl_extract_range_stats(run);
}

/*
 * etl_extract_end releases the run's snapshot.
 */
void
etl_extract_end(EtlRun *run)
{
	if (run->snapshot != NULL)
	{
		UnregisterSnapshot(run->snapshot);
		run->snapshot = NULL;
	}
}
