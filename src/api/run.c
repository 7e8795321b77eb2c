/*-------------------------------------------------------------------------
 *
 * run.c
 *	  The SQL-callable entry points of a run: etl_run, etl_run_step (a step of
 *	  etl_catch_up or etl_backfill) and etl_retry_delay.  The run itself is
 *	  run/run.c's.
 *
 * IDENTIFICATION
 *	  src/api/run.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "base/entry.h"
#include "base/settings.h"
#include "catalog/pipelines.h"
#include "run/run.h"

PG_FUNCTION_INFO_V1(etl_run);
PG_FUNCTION_INFO_V1(etl_run_step);
PG_FUNCTION_INFO_V1(etl_retry_delay);

/*
 * make_result builds the etl.run_result row of a run in the caller's memory
 * context.
 */
static Datum
make_result(FunctionCallInfo fcinfo, EtlRunRecord *r, EtlEntry *e)
{
	TupleDesc tupdesc;
	Datum values[14];
	bool nulls[14] = { 0 };

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "etl_run must return a composite type");

	values[0] = Int64GetDatum(r->run_id);
	nulls[0] = r->run_id == 0; /* not recorded */
	values[1] = CStringGetTextDatum(r->pipeline);
	values[2] = CStringGetTextDatum(r->status);
	values[3] = Int64GetDatum(r->rows_extracted);
	values[4] = Int64GetDatum(r->rows_inserted);
	values[5] = Int64GetDatum(r->rows_updated);
	values[6] = Int64GetDatum(r->rows_deleted);
	values[7] = Int64GetDatum(r->rows_unchanged);
	values[8] = Int64GetDatum(r->rows_rejected);
	if (r->watermark_from)
		values[9] = CStringGetTextDatum(r->watermark_from);
	else
		nulls[9] = true;
	if (r->watermark_to)
		values[10] = CStringGetTextDatum(r->watermark_to);
	else
		nulls[10] = true;
	values[11] = Int32GetDatum(r->attempts);
	values[12] = TimestampTzGetDatum(r->started_at);
	values[13] =
		DirectFunctionCall2(timestamp_mi, TimestampTzGetDatum(r->finished_at),
							TimestampTzGetDatum(r->started_at));
	return etl_entry_tuple(e, tupdesc, values, nulls);
}

/*
 * run_entry runs one increment (or backfill step) of the pipeline name for
 * a SQL-callable function and returns its etl.run_result: refused during
 * recovery and in REPEATABLE READ or SERIALIZABLE transactions, run under
 * the pinned settings and etl.work_mem (run/run.c).
 */
static Datum
run_entry(FunctionCallInfo fcinfo, char *name, EtlRunRequest *req)
{
	EtlEntry e;
	EtlRunRecord rec;
	Datum result;

	if (RecoveryInProgress())
		ereport(
			ERROR,
			(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
			 errmsg("cannot run pipeline \"%s\" during recovery", name),
			 errhint("Run pipelines on the primary; after a promotion the "
					 "next run continues from the replicated watermark.")));
	etl_require_read_committed("etl_run");

	etl_entry_begin(&e, ETL_ENTRY_PINNED);
	if (etl_work_mem > 0)
		(void) set_config_option("work_mem", psprintf("%d", etl_work_mem),
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
								 true, 0, false);
	etl_run_pipeline(name, req, &rec);
	result = make_result(fcinfo, &rec, &e);
	etl_entry_end(&e);
	PG_RETURN_DATUM(result);
}

/*
 * etl_run(pipeline text) RETURNS etl.run_result
 *
 * Runs one increment of a pipeline in the caller's transaction and returns
 * what it did.  Another backend running the same pipeline makes it return
 * 'skipped' at once.  Transient errors are retried per the pipeline's
 * policy; rows failing with data errors become dead letters.  A failed run
 * raises an ERROR after its record is committed on its own.
 */
Datum
etl_run(PG_FUNCTION_ARGS)
{
	EtlRunRequest req = { 0 };

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("pipeline name must not be NULL")));
	return run_entry(fcinfo, text_to_cstring(PG_GETARG_TEXT_PP(0)), &req);
}

/*
 * etl_run_step(pipeline text, kind text, range_from text, range_to text,
 *				batch_id bigint) RETURNS etl.run_result
 *
 * One step of etl_catch_up or etl_backfill: a run triggered by kind
 * ('catch_up' or 'backfill') that completes the batch row batch_id (written
 * and committed by etl_batch_start) with it; with a range, the run takes
 * [range_from, range_to) and leaves the watermark alone.
 */
Datum
etl_run_step(PG_FUNCTION_ARGS)
{
	EtlRunRequest req = { 0 };
	char *kind;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("pipeline and kind must not be NULL")));
	kind = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (strcmp(kind, "catch_up") != 0 && strcmp(kind, "backfill") != 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid step kind \"%s\"", kind),
						errhint("Valid values are: catch_up, backfill.")));
	req.triggered_by = kind;
	if (!PG_ARGISNULL(2) && !PG_ARGISNULL(3))
	{
		req.range_from = text_to_cstring(PG_GETARG_TEXT_PP(2));
		req.range_to = text_to_cstring(PG_GETARG_TEXT_PP(3));
	}
	else if (strcmp(kind, "backfill") == 0)
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("a backfill step needs its range")));
	req.batch_id = PG_ARGISNULL(4) ? 0 : PG_GETARG_INT64(4);
	return run_entry(fcinfo, text_to_cstring(PG_GETARG_TEXT_PP(0)), &req);
}

/*
 * etl_retry_delay(pipeline text, failed_attempts integer) RETURNS interval
 *
 * The pause a run of the pipeline takes after that many failed attempts
 * (with exponential_jitter, one draw of it).
 */
Datum
etl_retry_delay(PG_FUNCTION_ARGS)
{
	EtlPipeline *p;
	int32 failed;
	double ms;
	EtlEntry e;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	failed = PG_GETARG_INT32(1);
	if (failed < 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("failed_attempts must be at least 1")));
	etl_entry_begin(&e, ETL_ENTRY_PINNED);
	p = etl_catalog_load(text_to_cstring(PG_GETARG_TEXT_PP(0)), false,
						 InvalidSnapshot);
	ms = etl_retry_delay_ms(p, failed);
	etl_entry_end(&e);
	PG_RETURN_DATUM(
		DirectFunctionCall2(interval_mul,
							DirectFunctionCall7(make_interval, 0, 0, 0, 0, 0,
												0, Float8GetDatum(0.001)),
							Float8GetDatum(ms)));
}
