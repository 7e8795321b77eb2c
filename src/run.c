/*-------------------------------------------------------------------------
 *
 * run.c
 *	  etl_run: one increment of a pipeline, atomically, in the caller's
 *	  transaction.
 *
 *	  Glossary
 *	  - pipeline: a named definition (source, target, key, mode, transform,
 *		load ...) in etl.pipelines, owned by the role that created it.
 *	  - run: one call of etl_run; a row of etl.runs.
 *	  - batch: the rows one run extracts (its range); a row of etl.batches.
 *	  - watermark: the largest watermark-column value loaded so far, stored
 *		as text in etl.pipelines; the next run extracts what lies past it.
 *	  - safe upper bound: the value below which no write can still be in
 *		flight (extract.c); a run never extracts past it, so no late commit
 *		is lost.
 *
 *	  Stages: lock -> range -> extract -> transform + load -> advance ->
 *	  record.  The load, the new watermark and the records are written in
 *	  the caller's transaction: a crash or an error anywhere rolls all of
 *	  them back together, which is where the exactly-once effect comes from.
 *
 *	  Locking: a run takes its pipeline's run lock (an advisory-class lock,
 *	  catalog.c) without waiting; when another backend holds it the run
 *	  returns 'skipped' at once.  alter, drop and reset wait for it.
 *
 * IDENTIFICATION
 *	  src/run.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "columns.h"
#include "deparse.h"
#include "etl_ext.h"
#include "extract.h"
#include "load.h"
#include "run.h"
#include "security.h"

PG_FUNCTION_INFO_V1(etl_run);

/*
 * etl_run_args fills the positional arguments every statement of a run may
 * reference (EtlRunParam); absent values are NULL.
 */
void
etl_run_args(EtlRun *run, EtlArgs *args)
{
	Oid wmtype = OidIsValid(run->wm_type) ? run->wm_type : TEXTOID;

	etl_args_init(args);
	etl_args_add(args, wmtype, run->from, !run->has_from);
	etl_args_add(args, OidIsValid(run->hi_type) ? run->hi_type : wmtype,
				 run->hi, !run->has_hi);
	etl_args_add(args, wmtype, run->cutoff, !run->has_cutoff);
	etl_args_add_int8(args, run->rec.run_id);
	etl_args_add(args, TIMESTAMPTZOID,
				 TimestampTzGetDatum(run->rec.started_at), false);
	etl_args_add(args, wmtype, run->lo, !run->has_lo);
	etl_args_add_int8(args, Max(run->p->batch_size - 1, 0));
	Assert(args->n == ETL_NPARAMS);
}

/*
 * elapsed_ms returns the milliseconds since start.
 */
static double
elapsed_ms(instr_time start)
{
	instr_time now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, start);
	return INSTR_TIME_GET_MILLISEC(now);
}

/*
 * make_result builds the etl.run_result row of a run in the caller's memory
 * context.
 */
static Datum
make_result(FunctionCallInfo fcinfo, EtlRunRecord *r, MemoryContext cxt)
{
	TupleDesc tupdesc;
	Datum values[14];
	bool nulls[14] = { 0 };
	MemoryContext old = MemoryContextSwitchTo(cxt);
	Datum result;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "etl_run must return a composite type");
	tupdesc = BlessTupleDesc(tupdesc);

	values[0] = Int64GetDatum(r->run_id);
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
	result = HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
	MemoryContextSwitchTo(old);
	return result;
}

/*
 * resolve_relations finds the source and target of a run as they are now.
 */
static void
resolve_relations(EtlRun *run)
{
	EtlPipeline *p = run->p;

	run->source_relid = etl_resolve_relation(p->source, "source", true);
	if (!OidIsValid(run->source_relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("source relation %s of pipeline \"%s\" does not exist",
						p->source, p->name),
				 errhint("Recreate it, or point the pipeline elsewhere with "
						 "etl_alter_pipeline(%s, source => ...).",
						 quote_literal_cstr(p->name))));
	run->target_relid = etl_resolve_relation(p->target, "target", true);
	if (!OidIsValid(run->target_relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("target relation %s of pipeline \"%s\" does not exist",
						p->target, p->name),
				 errhint("Recreate it, or point the pipeline elsewhere with "
						 "etl_alter_pipeline(%s, target => ...).",
						 quote_literal_cstr(p->name))));
	run->source_sql = etl_relation_sql(run->source_relid);
	run->target_sql = etl_relation_sql(run->target_relid);
	run->source_relkind = get_rel_relkind(run->source_relid);
}

/*
 * run_stages runs extract, transform and load as the pipeline owner and
 * fills the run's counts and watermarks.
 */
static void
run_stages(EtlRun *run)
{
	EtlUserSwitch sw = { 0 };
	instr_time start;

	etl_become_owner(&sw, run->p->owner);

	run->map =
		etl_resolve_columns(run->p, run->source_relid, run->target_relid);

	INSTR_TIME_SET_CURRENT(start);
	etl_extract_begin(run);
	etl_extract_stats(run);
	run->rec.extract_ms = elapsed_ms(start);
	etl_maybe_pause("after_extract");

	/* transform and load are one statement: transform_ms is not separate */
	run->rec.transform_ms = -1;
	run->rec.check_ms = -1;
	INSTR_TIME_SET_CURRENT(start);
	if (run->rec.rows_extracted != 0)
		etl_load(run);
	run->rec.load_ms = elapsed_ms(start);
	etl_maybe_pause("after_load");

	etl_extract_end(run);
	etl_restore_user(&sw);
}

/*
 * etl_run(pipeline text) RETURNS etl.run_result
 *
 * Runs one increment of a pipeline in the caller's transaction and returns
 * what it did.  Another backend running the same pipeline makes it return
 * 'skipped' at once.  Errors propagate: nothing of the run stays then.
 */
Datum
etl_run(PG_FUNCTION_ARGS)
{
	MemoryContext callercxt = CurrentMemoryContext;
	EtlRun run = { 0 };
	EtlRunRecord *r = &run.rec;
	char *name;
	int64 id;
	int nestlevel;
	Snapshot snap;
	Datum result;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("pipeline name must not be NULL")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (RecoveryInProgress())
		ereport(
			ERROR,
			(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
			 errmsg("cannot run pipeline \"%s\" during recovery", name),
			 errhint("Run pipelines on the primary; after a promotion the "
					 "next run continues from the replicated watermark.")));

	etl_spi_connect();
	nestlevel = etl_pin_settings();
	if (etl_work_mem > 0)
		(void) set_config_option("work_mem", psprintf("%d", etl_work_mem),
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
								 true, 0, false);

	r->started_at = GetCurrentTimestamp();
	r->attempts = 1;
	r->run_by = GetUserId();
	r->triggered_by = "manual";
	r->extract_ms = r->transform_ms = r->check_ms = r->load_ms = -1;

	id = etl_catalog_find_id(name);
	if (!etl_lock_pipeline(id, false))
	{
		/* running elsewhere: record the skip and return at once */
		int holder = etl_pipeline_lock_holder(id);

		run.p = etl_catalog_load(name, false, InvalidSnapshot);
		etl_check_pipeline_owner(run.p->name, run.p->owner, "run");
		ereport(
			NOTICE,
			(errmsg(
				"pipeline \"%s\" is already running in backend %d, skipped",
				name, holder)));
		r->run_id = etl_catalog_next_run_id();
		r->pipeline_id = run.p->id;
		r->pipeline = run.p->name;
		r->status = "skipped";
		r->watermark_from = r->watermark_to = run.p->watermark;
		r->finished_at = GetCurrentTimestamp();
		etl_catalog_record_run(r);
		result = make_result(fcinfo, r, callercxt);
		etl_unpin_settings(nestlevel);
		etl_spi_finish();
		PG_RETURN_DATUM(result);
	}

	/* read the definition as committed by whoever held the lock before */
	snap = RegisterSnapshot(GetLatestSnapshot());
	run.p = etl_catalog_load(name, false, snap);
	UnregisterSnapshot(snap);
	if (run.p->id != id)
		ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						errmsg("pipeline \"%s\" was dropped and created again "
							   "while its run started",
							   name),
						errhint("Run it again.")));
	etl_check_pipeline_owner(run.p->name, run.p->owner, "run");
	etl_check_role_exists(run.p->name, run.p->owner);

	r->pipeline_id = run.p->id;
	r->pipeline = run.p->name;
	r->run_id = etl_catalog_next_run_id();
	etl_maybe_pause("after_lock");

	resolve_relations(&run);
	run_stages(&run);

	if ((r->watermark_to == NULL) != (run.p->watermark == NULL) ||
		(r->watermark_to && strcmp(r->watermark_to, run.p->watermark) != 0))
		etl_catalog_set_watermark(run.p, r->watermark_to);
	etl_maybe_pause("before_record");

	r->status = "succeeded";
	r->finished_at = GetCurrentTimestamp();
	etl_catalog_record_run(r);
	if (r->rows_extracted > 0)
		etl_catalog_record_batch(r, "incremental", "completed");

	result = make_result(fcinfo, r, callercxt);
	etl_unpin_settings(nestlevel);
	etl_spi_finish();
	PG_RETURN_DATUM(result);
}
