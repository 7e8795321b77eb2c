/*-------------------------------------------------------------------------
 *
 * extract.c
 *	  One strategy per mode for the range of source rows a run takes, and
 *	  the safe upper bound that keeps late commits from being lost.
 *
 *	  A row written by a transaction still open when a run extracts is
 *	  invisible to it; if the watermark moved past that row it would be lost.
 *	  The upper bound therefore stops below every write still in flight
 *	  (RELIABILITY.md, "Safe watermarks"):
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
 *				 transaction holding a write lock on the source
 *				 (WaitForLockers, ShareLock): ids are drawn under that lock,
 *				 so every id <= hi is then committed or gone.  Only sound for
 *				 sequences with CACHE 1 (checked at definition time).
 *
 *	  The snapshot for the range statistics and the load is taken after the
 *	  bound (and the wait), and shared by those statements, so the count, the
 *	  new watermark and the rows loaded all describe the same data.
 *
 * IDENTIFICATION
 *	  src/extract.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "deparse.h"
#include "etl_ext.h"
#include "extract.h"

/*
 * etl_watermark_type_ok tells whether a watermark column of this type suits
 * the mode: exactly one of the built-in types, never a domain over one (whose
 * checks could run the code of the column's owner wherever a watermark is
 * read).
 */
bool
etl_watermark_type_ok(EtlMode mode, Oid type)
{
	switch (mode)
	{
		case ETL_MODE_TIMESTAMP:
			return type == TIMESTAMPTZOID || type == TIMESTAMPOID;
		case ETL_MODE_SERIAL:
			return type == INT2OID || type == INT4OID || type == INT8OID;
		default:
			return false;
	}
}

/*
 * etl_check_watermark_type raises 42804 when the watermark column's type
 * does not suit the pipeline's mode.
 */
void
etl_check_watermark_type(EtlPipeline *p, Oid type)
{
	switch (p->mode)
	{
		case ETL_MODE_TIMESTAMP:
			if (etl_watermark_type_ok(p->mode, type))
				return;
			ereport(
				ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("watermark column \"%s\" of %s is of type %s, which "
						"mode timestamp cannot use",
						p->watermark_column, p->source, format_type_be(type)),
				 errhint("Use a timestamptz or timestamp column, or mode => "
						 "'serial' for an increasing integer.")));
			break;
		case ETL_MODE_SERIAL:
			if (etl_watermark_type_ok(p->mode, type))
				return;
			ereport(
				ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("watermark column \"%s\" of %s is of type %s, which "
						"mode serial cannot use",
						p->watermark_column, p->source, format_type_be(type)),
				 errhint("Use an integer column filled from a sequence, or "
						 "mode => 'timestamp' for a timestamp.")));
			break;
		default:
			break;
	}
}

typedef struct WatermarkErrorArg
{
	const char *pipeline;
	const char *text;
} WatermarkErrorArg;

static void
watermark_error_callback(void *arg)
{
	WatermarkErrorArg *a = arg;

	errcontext("watermark \"%s\" of pipeline \"%s\"", a->text, a->pipeline);
}

/*
 * etl_watermark_datum converts watermark text to a value of the watermark
 * column's type (the type's input function, under the pinned DateStyle).
 * An unreadable value is reported with the pipeline's name.
 */
Datum
etl_watermark_datum(EtlPipeline *p, const char *text, Oid type, int32 typmod)
{
	ErrorContextCallback errcb;
	WatermarkErrorArg arg = { p->name, text };
	Oid typinput;
	Oid typioparam;
	Datum result;

	errcb.callback = watermark_error_callback;
	errcb.arg = &arg;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	getTypeInputInfo(type, &typinput, &typioparam);
	result = OidInputFunctionCall(typinput, (char *) text, typioparam, typmod);
	error_context_stack = errcb.previous;
	return result;
}

/*
 * oldest_open_xact_start returns least(clock, start of the oldest open
 * transaction of another client backend or background worker connected to
 * this database).  The clock is read first: a transaction that starts
 * afterwards cannot write below it.
 */
static TimestampTz
oldest_open_xact_start(void)
{
	TimestampTz result = GetCurrentTimestamp();
	int n;

	if (!pgstat_track_activities)
		ereport(
			ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("mode timestamp needs track_activities = on"),
			 errdetail(
				 "The safe upper bound of a run is the start of the oldest "
				 "open transaction, which only track_activities publishes."),
			 errhint("SET track_activities = on, or use mode => 'xid'.")));

	/* the backend status snapshot is per transaction: take a fresh one */
	pgstat_clear_backend_activity_snapshot();
	n = pgstat_fetch_stat_numbackends();
	for (int i = 1; i <= n; i++)
	{
		LocalPgBackendStatus *local = pgstat_fetch_stat_local_beentry(i);
		PgBackendStatus *be;

		if (local == NULL)
			continue;
		be = &local->backendStatus;
		if (be->st_procpid <= 0 || be->st_procpid == MyProcPid ||
			be->st_databaseid != MyDatabaseId)
			continue;
		if (be->st_backendType != B_BACKEND &&
			be->st_backendType != B_BG_WORKER)
			continue;
		if (be->st_xact_start_timestamp != 0 &&
			be->st_xact_start_timestamp < result)
			result = be->st_xact_start_timestamp;
	}
	pgstat_clear_backend_activity_snapshot();
	return result;
}

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
	TimestampTz hi = oldest_open_xact_start();

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

	if (run->has_lo)
	{
		Interval *ov = run->p->overlap;
		bool zero = ov->time == 0 && ov->day == 0 && ov->month == 0;

		run->has_from = true;
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
 * begin_serial sets the range of a serial-mode run: the largest committed
 * value, then a wait for the source's current writers.
 */
static void
begin_serial(EtlRun *run)
{
	EtlArgs args;
	bool isnull;
	Datum hi;

	etl_args_init(&args);
	etl_spi_exec(psprintf("SELECT pg_catalog.max(%s) FROM %s",
						  quote_identifier(run->p->watermark_column),
						  run->source_sql),
				 &args, SPI_OK_SELECT, InvalidSnapshot);
	hi = etl_spi_datum(0, 0, &isnull);

	run->has_from = run->has_lo;
	run->from = run->lo;
	run->has_hi = !isnull;
	run->hi = hi; /* integer types are passed by value */
	run->hi_type = run->wm_type;
	run->hi_inclusive = true;
	if (isnull)
	{
		/* nothing committed yet: nothing to extract this time */
		run->nothing = true;
		return;
	}

	if (run->source_relkind == RELKIND_RELATION ||
		run->source_relkind == RELKIND_PARTITIONED_TABLE)
	{
		LOCKTAG tag;

		SET_LOCKTAG_RELATION(tag, MyDatabaseId, run->source_relid);
		WaitForLockers(tag, ShareLock, false);
	}
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
	if (run->has_lo)
		run->lo =
			etl_watermark_datum(p, p->watermark, run->wm_type, run->wm_typmod);

	switch (p->mode)
	{
		case ETL_MODE_TIMESTAMP:
			begin_timestamp(run);
			break;
		case ETL_MODE_SERIAL:
			begin_serial(run);
			break;
		default:
			ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							errmsg("mode %s is not supported yet",
								   etl_mode_names[p->mode])));
	}

	run->snapshot = RegisterSnapshot(GetLatestSnapshot());

	if (p->batch_size > 0 && !run->nothing)
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
	if (run->nothing)
		return;

	etl_run_args(run, &args);
	etl_spi_exec(etl_deparse_stats(run), &args, SPI_OK_SELECT, run->snapshot);
	if (etl_spi_isnull(0, 1))
		return; /* nothing in the range */
	run->rec.rows_extracted = etl_spi_int64(0, 0, 0);

	/* column 2 tells whether the newest value is past the stored watermark */
	{
		bool isnull;
		Datum newer = etl_spi_datum(0, 2, &isnull);

		if (isnull || DatumGetBool(newer))
			run->rec.watermark_to = etl_spi_text(0, 1);
	}
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
