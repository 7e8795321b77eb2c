/*-------------------------------------------------------------------------
 *
 * extract.c
 *	  One strategy per mode for the range of source rows a run takes, and
 *	  the safe upper bound that keeps late commits from being lost.
 *
 *	  A row written by a transaction still open when a run extracts is
 *	  invisible to it; if the watermark moved past that row it would be lost.
 *	  The upper bound therefore stops below every write still in flight
 *	  (safe_bounds.c):
 *
 *	  timestamp	 hi = least(clock, start of the oldest transaction open in
 *				 this database), read from the backend status array; rows
 *				 with watermark < hi are extracted.  A writer's now() is its
 *				 start time, so a writer still open cannot have written below
 *				 hi, and every writer that started before hi has finished.
 *				 Waiting for the table's current lockers would not do: a
 *				 transaction that began before the run and writes after it
 *				 would be lost.
 *	  serial	 hi = the largest committed value; then wait for every
 *				 transaction holding a write lock on the source or on the
 *				 sequences its column draws from (nextval() keeps
 *				 RowExclusiveLock on the sequence until the drawing
 *				 transaction ends), so every id <= hi is then committed or
 *				 gone, also one drawn before its INSERT.  Only sound for
 *				 sequences with CACHE 1 (checked at definition time).
 *	  xid		 no bound and no wait: the watermark is the previous run's
 *				 snapshot, and a run takes the rows its own snapshot sees
 *				 whose _etl_xid (the writer's top-level transaction id) that
 *				 snapshot did not see committed (PgQ's batch algorithm).  A
 *				 transaction open at one run's snapshot is taken by the
 *				 first run after it commits; nothing else waits for it.
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
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "loads/load.h"
#include "modes/extract.h"
#include "modes/safe_bounds.h"
#include "modes/sequences.h"
#include "modes/track.h"
#include "modes/watermark.h"
#include "sql/deparse_batch.h"
#include "sql/deparse_load.h"
#include "sql/run_state.h"

/*
 * watermark_as_timestamptz converts a timestamp-mode watermark to
 * timestamptz for comparisons with the clock.
 */
static TimestampTz
watermark_as_timestamptz(EtlRun *run, Datum value)
{
	if (run->wm_type == TIMESTAMPTZOID)
		return DatumGetTimestampTz(value);
	return DatumGetTimestampTz(
		DirectFunctionCall1(timestamp_timestamptz, value));
}

/*
 * begin_timestamp sets the range of a timestamp-mode run.
 */
static void
begin_timestamp(EtlRun *run)
{
	TimestampTz hi = etl_oldest_open_xact_start();

	if (run->has_lo &&
		watermark_as_timestamptz(run, run->lo) > GetCurrentTimestamp())
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("watermark of pipeline \"%s\" is in the future",
						run->p->name),
				 errdetail("The watermark is %s; no run can have produced it.",
						   run->p->watermark),
				 errhint("Reset it: SELECT etl_reset_watermark(%s, <last "
						 "loaded value>), or NULL to reload everything.",
						 quote_literal_cstr(run->p->name))));

	run->has_hi = true;
	run->hi = TimestampTzGetDatum(hi);
	run->hi_type = TIMESTAMPTZOID;
	run->hi_inclusive = false;

	/*
	 * A prepared transaction that wrote the source has no backend to
	 * publish its start: its rows may carry any time before its PREPARE.
	 * Nothing new is taken until it is committed or rolled back.
	 */
	{
		char *gid = etl_prepared_writer(run->source_relid);

		if (gid != NULL)
		{
			ereport(NOTICE,
					(errmsg("pipeline \"%s\" waits for prepared transaction "
							"%s, which wrote %s",
							run->p->name, quote_literal_cstr(gid),
							run->source_sql),
					 errdetail("Its rows may be older than any bound; "
							   "nothing new is taken until it commits or "
							   "rolls back.")));
			run->nothing = true;
		}
	}

	if (run->has_lo)
	{
		Interval *ov = run->p->overlap;
		bool zero = ov->time == 0 && ov->day == 0 && ov->month == 0;

		run->has_from = true;
		run->rereads = !zero;
		if (zero)
			run->from = run->lo;
		else if (run->wm_type == TIMESTAMPTZOID)
			run->from = DirectFunctionCall2(timestamptz_mi_interval, run->lo,
											IntervalPGetDatum(ov));
		else
			run->from = DirectFunctionCall2(timestamp_mi_interval, run->lo,
											IntervalPGetDatum(ov));
	}
}

/*
 * not_finite_sql returns the condition that col, a watermark column of
 * type, holds a value that is no position (NaN, infinity, -infinity), or
 * NULL when its type has none.
 */
static const char *
not_finite_sql(const char *col, Oid type)
{
	switch (type)
	{
		case NUMERICOID:
			return psprintf("%s = ANY ('{NaN,Infinity,-Infinity}')", col);
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return psprintf("%s = ANY ('{infinity,-infinity}')", col);
		default:
			return NULL;
	}
}

/*
 * check_positions refuses the rows of a serial- or cdc-mode source whose
 * watermark column is NULL or not finite: such a row would never be in a
 * range (NULL, -infinity), or would become the watermark and leave every
 * later row behind it for good (NaN, infinity).  The run fails before it
 * reads anything, naming the row, so the watermark stays where it was.
 */
static void
check_positions(EtlRun *run)
{
	const char *col = quote_identifier(run->p->watermark_column);
	const char *odd = not_finite_sql(col, run->wm_type);
	AttrNumber attnum =
		get_attnum(run->source_relid, run->p->watermark_column);
	HeapTuple tup;
	bool notnull;
	bool isnull;
	EtlArgs args;
	char *value;

	tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(run->source_relid),
						  Int16GetDatum(attnum));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for attribute %d of relation %u",
			 attnum, run->source_relid);
	notnull = ((Form_pg_attribute) GETSTRUCT(tup))->attnotnull;
	ReleaseSysCache(tup);
	if (notnull && odd == NULL)
		return; /* an integer or pg_lsn column without NULLs */

	etl_args_init(&args);
	if (etl_spi_exec(
			psprintf("SELECT pg_catalog.to_jsonb(etl_s)::pg_catalog.text,"
					 " etl_s.%s::pg_catalog.text FROM %s AS etl_s WHERE %s%s%s"
					 " LIMIT 1",
					 col, run->source_sql,
					 notnull ? "" : psprintf("etl_s.%s IS NULL", col),
					 notnull || odd == NULL ? "" : " OR ",
					 odd ? psprintf("etl_s.%s", odd) : ""),
			&args, SPI_OK_SELECT, InvalidSnapshot) == 0)
		return;
	(void) etl_spi_datum(0, 1, &isnull);
	value = isnull ? "NULL" : etl_spi_text(0, 1);
	ereport(ERROR,
			(errcode(isnull ? ERRCODE_NULL_VALUE_NOT_ALLOWED
							: ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("a %s row of pipeline \"%s\" has %s%s in its watermark "
					"column \"%s\"",
					run->p->mode == ETL_MODE_CDC ? "change" : "source",
					run->p->name, isnull ? "no value" : "the value ",
					isnull ? "" : value, run->p->watermark_column),
			 errdetail("The row: %s.  Mode %s takes rows in the order of that "
					   "column, so a row without a finite value in it would "
					   "be skipped for good or would leave every later row "
					   "behind the watermark; nothing was loaded and the "
					   "watermark stays.",
					   etl_spi_text(0, 0), etl_mode_names[run->p->mode]),
			 errhint("Give the row a position, or remove it, in %s.",
					 run->source_sql)));
}

/*
 * begin_serial sets the range of a serial-mode run: the largest committed
 * value, then a wait for the source's current writers and for the
 * transactions that drew from the column's sequences.  Ids of a CACHE 1
 * sequence are handed out in order, so every id up to that value was drawn
 * before it was read: a transaction still holding one holds the sequence's
 * lock, and once it is gone every such id is committed or never will be.
 */
static void
begin_serial(EtlRun *run)
{
	EtlArgs args;
	bool isnull;
	Datum hi;

	check_positions(run);
	etl_args_init(&args);
	etl_spi_exec(psprintf("SELECT pg_catalog.max(%s) FROM %s",
						  quote_identifier(run->p->watermark_column),
						  run->source_sql),
				 &args, SPI_OK_SELECT, InvalidSnapshot);
	hi = etl_spi_datum(0, 0, &isnull);

	run->has_from = run->has_lo;
	run->from = run->lo;
	run->has_hi = !isnull;
	run->hi = isnull ? (Datum) 0
					 : datumCopy(hi, get_typbyval(run->wm_type),
								 get_typlen(run->wm_type));
	run->hi_type = run->wm_type;
	run->hi_inclusive = true;
	if (isnull)
	{
		/* nothing committed yet: nothing to extract this time */
		run->nothing = true;
		return;
	}

	{
		const char *unsafe;

		etl_wait_for_writers(run->source_relid,
							 etl_column_sequences(run->source_relid,
												  run->p->watermark_column,
												  &unsafe));
	}
}

/*
 * begin_xid sets the range of an xid-mode run: the rows whose _etl_xid is
 * at least the previous snapshot's xmin and not visible in it.  Every table
 * behind the source must track its changes (etl_track_check).
 */
static void
begin_xid(EtlRun *run)
{
	etl_track_check(run->p, run->source_relid);
	if (!run->has_lo)
		return; /* the first run: everything */
	run->xid_prev = etl_xid_watermark_parse(run->p, run->p->watermark);
	run->has_from = true;
	run->from = DirectFunctionCall1(
		pg_snapshot_xmin,
		DirectFunctionCall1(pg_snapshot_in, CStringGetDatum(run->xid_prev)));
	run->lo = run->from;
}

/*
 * xid_snapshot_watermark returns the watermark of an xid-mode run: the
 * system identifier and the run's snapshot, in which the run's own
 * transaction counts as in progress (rows it writes to the source after the
 * run, or wrote before it, are taken by the next run: the scan saw the
 * latter, but once more does no harm to an idempotent load).
 */
static char *
xid_snapshot_watermark(EtlRun *run)
{
	FullTransactionId own = GetTopFullTransactionIdIfAny();
	uint64 me = U64FromFullTransactionId(own);

	etl_spi_exec("SELECT pg_catalog.pg_current_snapshot()::pg_catalog.text",
				 NULL, SPI_OK_SELECT, run->snapshot);
	return etl_xid_watermark_with(etl_spi_text(0, 0), &me,
								  FullTransactionIdIsValid(own) ? 1 : 0);
}

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
	AttrNumber attnum;
	Oid collid;

	if (p->mode == ETL_MODE_FULL || p->mode == ETL_MODE_SNAPSHOT)
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
	if (run->has_lo && p->mode != ETL_MODE_XID)
	{
		run->lo =
			etl_watermark_datum(p, p->watermark, run->wm_type, run->wm_typmod);
		etl_check_watermark_finite(p, p->watermark, run->wm_type, run->lo,
								   true);
	}

	switch (p->mode)
	{
		case ETL_MODE_TIMESTAMP:
			begin_timestamp(run);
			break;
		case ETL_MODE_SERIAL:
		case ETL_MODE_CDC:
			/* change rows are ordered like ids: max, then the writers */
			begin_serial(run);
			break;
		case ETL_MODE_XID:
			begin_xid(run);
			break;
		default:
			ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							errmsg("mode %s is not supported yet",
								   etl_mode_names[p->mode])));
	}

	if (run->req != NULL && run->req->range_from != NULL)
		begin_range(run);

	run->snapshot = RegisterSnapshot(GetLatestSnapshot());
	if (p->mode == ETL_MODE_XID)
		run->xid_cur = xid_snapshot_watermark(run);

	if (p->batch_size > 0 && !run->nothing && !run->from_inclusive)
	{
		EtlArgs args;
		bool isnull;
		Datum cutoff;

		etl_run_args(run, &args);
		if (etl_spi_exec(etl_deparse_cutoff(run), &args, SPI_OK_SELECT,
						 run->snapshot) > 0)
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
 * check_cdc_operations refuses change rows whose operation is none of
 * c, r, i (insert), u (update), d (delete), in any case: the run fails
 * before it loads anything, and the watermark stays.
 */
static void
check_cdc_operations(EtlRun *run)
{
	EtlArgs args;
	char *op = etl_option_text(run->p, "op_column", ETL_CDC_DEFAULT_OP);

	etl_run_args(run, &args);
	if (etl_spi_exec(etl_deparse_cdc_bad_operations(run, op), &args,
					 SPI_OK_SELECT, run->snapshot) == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s change rows of pipeline \"%s\" have an unknown "
					"operation",
					etl_spi_text(0, 1), run->p->name),
			 errdetail("Column \"%s\" holds %s; the operations are c, r, i "
					   "(insert), u (update) and d (delete).",
					   op,
					   etl_spi_isnull(0, 0)
						   ? "NULL"
						   : quote_literal_cstr(etl_spi_text(0, 0))),
			 errhint("Correct or remove those change rows, or set "
					 "options => '{\"op_column\": ...}'.")));
}

/*
 * etl_extract_stats counts the rows of the range (-1: counted by the load,
 * see etl_deparse_stats()) and sets the run's watermarks (from: the stored
 * one; to: the largest value extracted, or the stored one when nothing
 * newer came).  Rows whose watermark column is NULL are never in a range.
 */
void
etl_extract_stats(EtlRun *run)
{
	EtlArgs args;

	run->rec.watermark_from = run->p->watermark;
	run->rec.watermark_to = run->p->watermark;
	if (run->p->mode == ETL_MODE_XID)
		run->rec.watermark_to = run->xid_cur; /* whatever the range holds */
	if (run->from_inclusive)
	{
		/* a backfill step: its range; the watermark is not its business */
		run->rec.watermark_from = pstrdup(run->req->range_from);
		run->rec.watermark_to = pstrdup(run->req->range_to);
	}
	if (run->nothing)
		return;

	if (run->p->mode == ETL_MODE_SNAPSHOT ||
		(run->p->mode == ETL_MODE_FULL && run->map->one_to_one))
	{
		run->rec.rows_extracted = -1; /* the load counts them */
		return;
	}
	if (run->map->one_to_one)
		(void) etl_target_is_empty(run); /* whether to count (deparse) */
	etl_run_args(run, &args);
	etl_spi_exec(etl_deparse_stats(run), &args, SPI_OK_SELECT, run->snapshot);
	if (run->p->mode == ETL_MODE_FULL)
	{
		run->rec.rows_extracted = etl_spi_int64(0, 0, 0);
		return;
	}
	if (etl_spi_isnull(0, 1))
		return; /* nothing in the range */
	run->rec.rows_extracted = etl_spi_int64(0, 0, 0);
	if (run->rereads)
		run->rec.rows_new = etl_spi_int64(0, 3, -1);

	/*
	 * column 2 tells whether the newest value is past the stored watermark;
	 * a value that is no position (a first run over rows at -infinity) is
	 * never stored: the next run would take nothing past it
	 */
	if (run->p->mode != ETL_MODE_XID && !run->from_inclusive)
	{
		bool isnull;
		bool topnull;
		Datum newer = etl_spi_datum(0, 2, &isnull);
		Datum top = etl_spi_datum(0, 1, &topnull);

		if ((isnull || DatumGetBool(newer)) &&
			etl_watermark_is_finite(run->wm_type, top))
			run->rec.watermark_to = etl_spi_text(0, 1);
	}

	if (run->p->mode == ETL_MODE_CDC)
		check_cdc_operations(run);
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
