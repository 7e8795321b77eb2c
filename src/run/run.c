/*-------------------------------------------------------------------------
 *
 * run.c
 *	  etl_run: one increment of a pipeline, atomically, in the caller's
 *	  transaction; retries, bad-row isolation and durable failure records.
 *
 *	  Glossary
 *	  - pipeline: a named definition (source, target, key, mode, transform,
 *		load ...) in etl.pipelines, owned by the role that created it.
 *	  - run: one call of etl_run; a row of etl.runs.
 *	  - attempt: one try of a run; a transient error (a lost connection, a
 *		deadlock, a lock timeout ...) ends an attempt and, within
 *		max_attempts, starts the next after the pipeline's backoff.
 *	  - batch: the rows one run extracts (its range); a row of etl.batches.
 *	  - watermark: the largest watermark-column value loaded so far, stored
 *		as text in etl.pipelines; the next run extracts what lies past it.
 *	  - safe upper bound: the value below which no write can still be in
 *		flight (extract.c); a run never extracts past it, so no late commit
 *		is lost.
 *	  - dead letter: a source row that failed the transform or the load
 *		with a data error, isolated from its batch (isolate.c), or whose
 *		output failed a quarantine check (quality.c).
 *
 *	  Stages: lock -> range -> extract -> transform + load (isolating bad
 *	  rows) -> advance -> record.  Each attempt runs in a subtransaction; the
 *	  load, the new watermark and the records are written in it, so they
 *	  stay in the caller's transaction when it succeeds and vanish together
 *	  when it fails: exactly-once effect comes from the transaction.  A run
 *	  that fails (retries exhausted, a fatal error, rejected rows above the
 *	  error threshold) has its record and dead letters committed by the
 *	  autonomous writer (autonomous.c) before the ERROR is raised.
 *
 *	  Locking: a run takes its pipeline's run lock (an advisory-class lock,
 *	  catalog.c) without waiting; when another backend holds it the run
 *	  returns 'skipped' at once.  alter, drop, reset and dead-letter replay
 *	  wait for it.  Each checks ownership before it takes the lock (and
 *	  again after), so a role that may not act on a pipeline never holds or
 *	  queues for its lock.
 *
 * IDENTIFICATION
 *	  src/run/run.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "base/errors.h"
#include "base/security.h"
#include "base/settings.h"
#include "catalog/batches.h"
#include "catalog/pipelines.h"
#include "catalog/run_lock.h"
#include "catalog/runlog.h"
#include "catalog/runs.h"
#include "catalog/unrecorded.h"
#include "checks/quality.h"
#include "loads/load.h"
#include "modes/drift.h"
#include "modes/extract.h"
#include "run/run.h"
#include "sql/columns.h"
#include "sql/run_state.h"
#include "transform/deadletter.h"
#include "transform/isolate.h"
#include "transform/stage.h"

PG_FUNCTION_INFO_V1(etl_run);
PG_FUNCTION_INFO_V1(etl_run_step);
PG_FUNCTION_INFO_V1(etl_retry_delay);

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
	result = HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
	MemoryContextSwitchTo(old);
	return result;
}

/*
 * stage_begin logs the start of a stage of the run and notes it as the
 * run's current stage; start receives the time.
 */
static void
stage_begin(EtlRun *run, const char *stage, instr_time *start)
{
	run->stage = stage;
	etl_log_stage_begin(&run->rec, stage, start);
}

/*
 * stage_end logs the completion of the run's current stage (rows < 0: not
 * known) and returns its milliseconds.
 */
static double
stage_end(EtlRun *run, instr_time start, int64 rows)
{
	return etl_log_stage_end(&run->rec, run->stage, start, rows);
}

/*
 * notify_failed_checks announces, at the commit of a successful run, the
 * checks of the run that failed (warning or quarantine), if any.
 */
static void
notify_failed_checks(EtlRun *run)
{
	StringInfoData checks;

	initStringInfo(&checks);
	if (etl_checks_failed_json(&checks, run, ETL_EVENT_CHECKS_MAX) > 0)
		etl_notify_failed_checks(run->p, &run->rec, checks.data);
}

/*
 * load_whole loads the whole batch in one go (the body of a subtransaction).
 */
static void
load_whole(EtlRun *run, void *arg)
{
	etl_load(run, (EtlLoadCounts *) arg);
}

static void check_threshold(EtlRun *run, int64 nrows, const char *last);

/*
 * run_rejected makes a rejected row a dead letter of the run, and fails the
 * attempt as soon as the rejected rows exceed the error threshold (no need
 * to look further: the run fails anyway).  A row version pending already
 * as a dead letter (an overlap or a reset read it again) is left out, as
 * before, but neither becomes a dead letter again nor counts towards the
 * threshold.
 */
static void
run_rejected(EtlRun *run, int64 rn, const char *stage, ErrorData *edata,
			 char *record, void *arg)
{
	if (etl_dead_letter_known(run, stage, record))
	{
		run->known_rejects++;
		return;
	}
	run->dead_letters =
		lappend(run->dead_letters, etl_dead_letter_make(stage, record, edata));
	check_threshold(run, *(int64 *) arg, edata->message);
}

/*
 * run_set_aside makes a row that failed a quarantine check a dead letter of
 * the run; run_checks() checks the error threshold once all are found (a
 * failed run records every one of them).  A row version set aside already
 * (run_rejected) is left out again without a new dead letter.
 */
static void
run_set_aside(EtlRun *run, int64 rn, const char *stage, ErrorData *edata,
			  char *record, void *arg)
{
	if (etl_dead_letter_known(run, stage, record))
	{
		run->known_rejects++;
		return;
	}
	run->dead_letters =
		lappend(run->dead_letters, etl_dead_letter_make(stage, record, edata));
}

/*
 * check_threshold fails the attempt when the run's dead letters exceed the
 * error threshold of nrows (the batch): no need to look further, the run
 * fails anyway.  last: the last rejection's message, for the detail.
 */
static void
check_threshold(EtlRun *run, int64 nrows, const char *last)
{
	int64 rejected;
	double threshold;

	rejected = list_length(run->dead_letters);
	threshold = DatumGetFloat8(DirectFunctionCall1(
		numeric_float8, NumericGetDatum(run->p->error_threshold)));
	if ((double) rejected * 100.0 > threshold * (double) nrows)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("more than %g%% of the batch was rejected", threshold),
				 errdetail("At least " INT64_FORMAT " of " INT64_FORMAT
						   " rows were rejected (%.2f%%), above the error "
						   "threshold of %g%%%s%s",
						   rejected, nrows, 100.0 * rejected / Max(nrows, 1),
						   threshold, last ? "; the last one: " : "",
						   last ? last : "")));
}

/*
 * etl_not_row_local_error raises the data error edata of a batch whose
 * transform is not row-local: its bad rows cannot be isolated, since the
 * transform computes output rows from several source rows (run in parts,
 * its aggregates, DISTINCT and window functions would see only a part, and
 * the parts would overwrite each other).  The run fails with the error's
 * SQLSTATE; nothing of the batch is loaded.
 */
void
etl_not_row_local_error(EtlRun *run, ErrorData *edata)
{
	ereport(ERROR,
			(errcode(edata->sqlerrcode), errmsg("%s", edata->message),
			 errdetail("The transform of pipeline \"%s\" is not row-local "
					   "(it combines several source rows into an output "
					   "row: aggregates, DISTINCT, window functions, LIMIT, "
					   "set operations or a second read of etl_delta), so "
					   "the rows that fail cannot be isolated and nothing "
					   "of the batch was loaded.%s%s",
					   run->p->name, edata->detail ? "\n" : "",
					   edata->detail ? edata->detail : ""),
			 errhint("Make the transform tolerate the bad values (e.g. "
					 "CASE WHEN amount ~ '^-?[0-9.]+$' THEN amount::numeric "
					 "END, or a WHERE that leaves such rows out), or fix "
					 "them in the source.")));
}

/*
 * check_pass evaluates the checks (the body of a subtransaction).
 */
static void
check_pass(EtlRun *run, void *arg)
{
	etl_run_checks(run, (List *) arg);
}

/*
 * run_checks evaluates the quality checks on the batch and acts on them.
 * The evaluation runs the transform over the batch: when that fails with a
 * data error, the rows whose transform fails are isolated first (dead
 * letters, stage "transform"), as a load would, and the checks then look
 * at the rows left.
 */
static void
run_checks(EtlRun *run, List *checks)
{
	EtlIsolateHooks hooks = { NULL, run_rejected, &run->stage_rows };
	EtlIsolateHooks quarantine = { NULL, run_set_aside, NULL };
	ErrorData *edata;
	int before;

	if (run->stage_table != NULL)
	{
		run->rn_lo = 1;
		run->rn_hi = run->stage_rows;
	}

	edata = etl_in_subxact(check_pass, run, checks, true);
	if (edata != NULL)
	{
		before = list_length(run->dead_letters) + run->known_rejects;
		if (!run->map->row_local)
			etl_not_row_local_error(run, edata);
		etl_stage_batch(run);
		etl_isolate_transform(run, run->stage_rows, &hooks);
		if (list_length(run->dead_letters) + run->known_rejects == before)
			ReThrowError(edata); /* not a row's transform: a check's own */
		FreeErrorData(edata);
		etl_stage_batch(run);
		etl_run_checks(run, checks);
	}
	before = list_length(run->dead_letters);
	etl_checks_judge(run, checks, &quarantine);
	if (list_length(run->dead_letters) > before)
		check_threshold(run, run->rec.rows_extracted, NULL);
}

/*
 * load_batch loads the batch: set-based in one go, and only when that fails
 * with a data error, again from a stage with the bad rows isolated; then
 * etl_load_finish() completes it (load partition_swap swaps the partitions
 * the isolated chunks gathered rows for).
 */
static void
load_batch(EtlRun *run)
{
	EtlLoadCounts c = { 0 };
	EtlRunRecord *r = &run->rec;
	ErrorData *edata;

	for (;;)
	{
		if (run->stage_table != NULL)
			etl_stage_batch(run); /* the rows the checks left */
		edata = etl_in_subxact(load_whole, run, &c, true);

		/*
		 * Keys twice in the batch (seen by the classification, or by the
		 * target's unique index): load one row per key, from the stage.
		 */
		if (!run->dedupe &&
			(c.duplicates ||
			 (edata != NULL && edata->sqlerrcode == ERRCODE_UNIQUE_VIOLATION &&
			  etl_has_duplicate_keys(run))))
		{
			if (edata != NULL)
				FreeErrorData(edata);
			etl_start_dedupe(run);
			memset(&c, 0, sizeof(c));
			continue;
		}
		break;
	}
	if (edata != NULL)
	{
		EtlIsolateHooks hooks = { NULL, run_rejected, &run->stage_rows };

		if (!run->map->row_local)
			etl_not_row_local_error(run, edata);
		ereport(DEBUG1, (errmsg_internal(
							"pipeline \"%s\": isolating bad rows after: %s",
							run->p->name, edata->message)));
		FreeErrorData(edata);
		memset(&c, 0, sizeof(c));
		etl_stage_batch(run);
		etl_load_isolated(run, run->stage_rows, &hooks, &c);
	}
	if (run->p->mode == ETL_MODE_SNAPSHOT)
	{
		/* the versions of a repeated key that were not loaded */
		EtlIsolateHooks hooks = { NULL, run_rejected, &run->stage_rows };
		int64 before = list_length(run->dead_letters) + run->known_rejects;

		(void) etl_snapshot_reject_repeats(run, &hooks);
		run->repeat_rejects =
			list_length(run->dead_letters) + run->known_rejects - before;
	}
	etl_load_finish(run);
	etl_stage_drop(run);
	r->rows_inserted = c.inserted;
	r->rows_updated = c.updated;
	r->rows_deleted = c.deleted;
	/* a version pending already as a dead letter is unchanged since */
	r->rows_unchanged = c.unchanged + run->known_rejects;
	r->rows_rejected = list_length(run->dead_letters);
	if (r->rows_extracted < 0)
		r->rows_extracted = c.batch;

	/* a version superseded within the batch counts as unchanged */
	if (run->dedupe && run->map->one_to_one &&
		r->rows_extracted - r->rows_rejected - run->known_rejects > c.batch)
		r->rows_unchanged += r->rows_extracted - r->rows_rejected -
							 run->known_rejects - c.batch;
}

/*
 * count_cdc_unchanged counts as unchanged the change rows of a mode cdc run
 * that changed nothing: changes superseded by a later change of their key in
 * the range (the load sees each key's last change only) and deletes of keys
 * the target does not have.  They are the extracted rows (every change row
 * of the range) that were neither loaded, rejected nor deleted.  A transform
 * that is not one-to-one yields rows that are not change rows: its counts
 * are left as the load made them.
 */
static void
count_cdc_unchanged(EtlRun *run)
{
	EtlRunRecord *r = &run->rec;
	int64 rest;

	if (!run->map->one_to_one)
		return;
	rest = r->rows_extracted - r->rows_inserted - r->rows_updated -
		   r->rows_deleted - r->rows_unchanged - r->rows_rejected;
	if (rest > 0)
		r->rows_unchanged += rest;
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
	List *checks;

	etl_become_owner(&sw, run->p->owner);

	etl_schema_drift(run);
	run->map =
		etl_resolve_columns(run->p, run->source_relid, run->target_relid);
	etl_require_unique_key(run->p, run->target_relid);

	stage_begin(run, "extract", &start);
	etl_extract_begin(run);
	etl_extract_stats(run);
	run->rec.extract_ms = stage_end(run, start, run->rec.rows_extracted);
	etl_maybe_pause("after_extract");

	/*
	 * Quality checks look at the batch before it loads; the empty last step
	 * of a catch-up, there only to find that nothing is left, is no batch.
	 */
	run->check_results = NIL;
	checks = etl_checks_load(run->p->id);
	if (checks != NIL && run->rec.rows_extracted == 0 &&
		etl_catch_up_tail(run->p, run->req->batch_id, run->req->triggered_by))
		checks = NIL;
	if (checks != NIL)
	{
		stage_begin(run, "check", &start);
		run_checks(run, checks);
		run->rec.check_ms = stage_end(run, start, run->rec.rows_extracted);
	}

	/* transform and load are one statement: transform_ms is not separate */
	stage_begin(run, "load", &start);
	if (run->p->mode == ETL_MODE_SNAPSHOT)
	{
		EtlSnapshotDiff d;

		etl_snapshot_classify(run, &d);
		if (d.new_keys + d.changed > 0)
			load_batch(run);
		run->rec.rows_extracted = d.batch;
		if (d.new_keys + d.changed == 0)
		{
			/* nothing loaded; a quarantine check may have set rows aside */
			run->rec.rows_rejected = list_length(run->dead_letters);
			run->rec.rows_unchanged = d.batch - run->rec.rows_rejected;
		}
		run->rec.rows_deleted += etl_snapshot_finish(run, &d);
	}
	else if (run->p->mode == ETL_MODE_FULL)
	{
		/* the whole source replaces the target: also when it is empty */
		int64 deleted = etl_load_full_before(run);

		load_batch(run);
		run->rec.rows_deleted += deleted + etl_load_full_after(run);
	}
	else if (run->rec.rows_extracted != 0)
	{
		load_batch(run);
		if (run->p->mode == ETL_MODE_CDC)
		{
			run->rec.rows_deleted += etl_load_cdc_deletes(run);
			count_cdc_unchanged(run);
		}
	}
	if (run->rec.rows_new < 0)
		run->rec.rows_new = Max(run->rec.rows_extracted, 0);

	/*
	 * The last step of a catch-up (fewer rows past the watermark than
	 * batch_size) refreshes the target's statistics: its steps inserted
	 * without looking at the target, and the next runs size their joins by
	 * them.
	 */
	if (etl_in_catch_up(run) && run->rec.rows_new < run->p->batch_size)
		etl_analyze_target(run);
	run->rec.load_ms =
		stage_end(run, start,
				  run->rec.rows_inserted + run->rec.rows_updated +
					  run->rec.rows_deleted);
	etl_maybe_pause("after_load");

	etl_extract_end(run);
	etl_restore_user(&sw);
}

/*
 * attempt is one try of a run (the body of a subtransaction): stages,
 * watermark and records.
 */
static void
attempt(EtlRun *run, void *arg)
{
	EtlRunRecord *r = &run->rec;

	etl_run_resolve_relations(run);
	run_stages(run);

	/* a backfill step never moves the watermark */
	if (run->req->range_from == NULL &&
		((r->watermark_to == NULL) != (run->p->watermark == NULL) ||
		 (r->watermark_to && strcmp(r->watermark_to, run->p->watermark) != 0)))
		etl_catalog_set_watermark(run->p, r->watermark_to);
	etl_maybe_pause("before_record");

	r->status = "succeeded";
	r->finished_at = GetCurrentTimestamp();
	etl_catalog_record_run(r);
	if (run->req->batch_id != 0)
		etl_catalog_complete_batch(run->req->batch_id, r);
	else if (r->rows_extracted > 0)
		etl_catalog_record_batch(r, "incremental", "completed");
	etl_dead_letters_store(run);
	etl_check_results_store(run);
}

/*
 * reset_attempt clears what one attempt leaves in the run's state, whose
 * memory (the attempt's context) has been freed.
 */
static void
reset_attempt(EtlRun *run)
{
	EtlRunRecord *r = &run->rec;

	run->snapshot = NULL; /* released with the subtransaction */
	run->map = NULL;
	run->source_sql = run->target_sql = NULL;
	run->stage_columns = run->stage_columns_s = NULL;
	run->xid_prev = run->xid_cur = NULL;
	run->target_empty = -1;
	run->target_empty_fixed = false;
	run->stage_table = NULL;
	run->stage_held_only = false;
	run->dedupe = false;
	run->stage_rows = 0;
	run->check_rows = 0;
	run->dead_letters = NIL;
	run->known_rejects = 0;
	run->repeat_rejects = 0;
	run->check_results = NIL;
	run->has_lo = run->has_from = run->has_hi = run->has_cutoff = false;
	run->from_inclusive = false;
	run->nothing = false;
	run->hi_type = InvalidOid;
	run->stage = "run";
	r->rows_extracted = r->rows_inserted = r->rows_updated = 0;
	r->rows_deleted = r->rows_unchanged = r->rows_rejected = 0;
	r->rows_new = -1;
	run->rereads = false;
	r->extract_ms = r->transform_ms = r->check_ms = r->load_ms = -1;
	r->watermark_from = r->watermark_to = run->p->watermark;
}

/*
 * note_attempt_error appends a failed attempt to the run's JSON list.
 */
static void
note_attempt_error(EtlRun *run, ErrorData *edata)
{
	StringInfo buf = run->attempt_errors;

	appendStringInfo(buf, "%s{\"attempt\": %d, \"sqlstate\": ",
					 buf->len > 0 ? ", " : "", run->rec.attempts);
	escape_json(buf, unpack_sql_state(edata->sqlerrcode));
	appendStringInfoString(buf, ", \"error_class\": ");
	escape_json(buf, etl_error_class_name(etl_error_class(edata->sqlerrcode)));
	appendStringInfoString(buf, ", \"message\": ");
	escape_json(buf, edata->message ? edata->message : "");
	appendStringInfoString(buf, ", \"at\": ");
	escape_json(buf, timestamptz_to_str(GetCurrentTimestamp()));
	appendStringInfoChar(buf, '}');
	run->rec.attempt_errors = psprintf("[%s]", buf->data);
}

/*
 * interval_ms converts an interval to milliseconds (months of 30 days).
 */
static double
interval_ms(Interval *iv)
{
	return iv->time / 1000.0 + (iv->day + iv->month * 30.0) * 86400000.0;
}

/*
 * retry_delay_ms returns the pause before the next attempt after
 * `failed` failed attempts: none 0, linear base * n, exponential
 * base * 2^(n-1), exponential_jitter 50-150% of that, at most the maximum.
 */
static double
retry_delay_ms(EtlPipeline *p, int failed)
{
	double base = interval_ms(p->retry_base_delay);
	double delay;

	switch (p->retry_policy)
	{
		case ETL_RETRY_NONE:
			return 0;
		case ETL_RETRY_LINEAR:
			delay = base * failed;
			break;
		case ETL_RETRY_EXPONENTIAL:
			delay = base * pow(2.0, failed - 1);
			break;
		default:
			delay = base * pow(2.0, failed - 1) *
					(0.5 + pg_prng_double(&pg_global_prng_state));
			break;
	}
	return Min(delay, interval_ms(p->retry_max_delay));
}

/*
 * retry_sleep waits on the latch, so that cancel, statement_timeout and
 * shutdown interrupt it.  Returns NULL after the full pause, or the error
 * of an interrupt (cancel, statement_timeout), caught so that the run is
 * recorded before it fails: nothing is acquired while sleeping, so nothing
 * needs releasing.  A termination exits the backend as usual.
 */
static ErrorData *
retry_sleep(double ms)
{
	TimestampTz end =
		TimestampTzPlusMilliseconds(GetCurrentTimestamp(), (int64) ms);
	MemoryContext cxt = CurrentMemoryContext;
	ErrorData *volatile edata = NULL;

	PG_TRY();
	{
		for (;;)
		{
			long left;

			CHECK_FOR_INTERRUPTS();
			left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), end);
			if (left <= 0)
				break;
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 left, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
	}
	PG_END_TRY();
	return edata;
}

/*
 * fail_run records a failed run through the autonomous writer (its row of
 * etl.runs and its dead letters survive the rollback) and raises the
 * run's ERROR: the error's own SQLSTATE, a detail saying why, a hint
 * naming the run.  A run with etl.debug_pause_at = 'after_failure_record'
 * waits between the record's commit and the ERROR (crash tests).
 */
static void
fail_run(EtlRun *run, ErrorData *edata, const char *why)
{
	EtlRunRecord *r = &run->rec;
	StringInfoData payload;
	StringInfoData checks;
	char *what;

	r->status = "failed";
	r->finished_at = GetCurrentTimestamp();
	r->error = edata->message;
	r->sqlstate = unpack_sql_state(edata->sqlerrcode);
	r->error_class = etl_error_class_name(etl_error_class(edata->sqlerrcode));
	r->rows_inserted = r->rows_updated = r->rows_deleted = r->rows_unchanged =
		0;
	r->rows_rejected = list_length(run->dead_letters);
	r->watermark_to = r->watermark_from;

	initStringInfo(&payload);
	appendStringInfoString(&payload, "{\"run\": ");
	etl_run_record_json(&payload, r);
	appendStringInfoString(&payload, ", \"dead_letters\": ");
	etl_dead_letters_json(&payload, run);
	appendStringInfoString(&payload, ", \"check_results\": ");
	etl_check_results_json(&payload, run);
	if (run->req->batch_id != 0)
		appendStringInfo(&payload, ", \"failed_batch\": " INT64_FORMAT,
						 run->req->batch_id);
	initStringInfo(&checks);
	(void) etl_checks_failed_json(&checks, run, ETL_EVENT_CHECKS_MAX);
	etl_run_failed_event(&payload, run->p, r, checks.data);
	appendStringInfoChar(&payload, '}');

	what = psprintf("the failure record of run " INT64_FORMAT
					" of pipeline \"%s\"",
					r->run_id, r->pipeline);
	etl_failure_commit(r->pipeline_id, r->run_id, payload.data, what);
	etl_maybe_pause("after_failure_record");

	ereport(
		ERROR,
		(errcode(edata->sqlerrcode),
		 errmsg("run " INT64_FORMAT " of pipeline \"%s\" failed", r->run_id,
				r->pipeline),
		 errdetail("%s%s%s%s", why, edata->message, edata->detail ? "\n" : "",
				   edata->detail ? edata->detail : ""),
		 errhint(
			 "%s%sSELECT * FROM etl.runs WHERE run_id = " INT64_FORMAT
			 "; SELECT * FROM etl.dead_letters WHERE run_id = " INT64_FORMAT
			 ";",
			 edata->hint ? edata->hint : "", edata->hint ? "\n" : "",
			 r->run_id, r->run_id)));
}

/*
 * etl_require_read_committed refuses to run what (a function name) in a
 * REPEATABLE READ or SERIALIZABLE transaction (25000).
 *
 * A run reads the source and target with a snapshot taken after its safe
 * upper bound (extract.c), newer than the caller's transaction snapshot in
 * those levels: it would load rows the caller cannot see and judge the
 * target by rows the caller's snapshot does not hold, and its retries of a
 * serialization failure inside the caller's serializable transaction could
 * never succeed.  No sound way to run inside the caller's snapshot exists
 * (the upper bound must wait for writers that the snapshot predates), so the
 * caller is told to use READ COMMITTED.
 */
void
etl_require_read_committed(const char *what)
{
	if (!IsolationUsesXactSnapshot())
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
			 errmsg("%s cannot run in a %s transaction", what,
					IsolationIsSerializable() ? "SERIALIZABLE"
											  : "REPEATABLE READ"),
			 errdetail("A run reads the data as committed after its safe "
					   "upper bound, not as of the transaction's snapshot, "
					   "and retries serialization failures itself."),
			 errhint("Call it in a READ COMMITTED transaction: BEGIN "
					 "ISOLATION LEVEL READ COMMITTED, or SET "
					 "default_transaction_isolation = 'read committed' for "
					 "the session or the pg_cron job.")));
}

/*
 * skip_run records and returns a run skipped because another backend runs
 * the pipeline.  When that backend is dropping it, the skipped run is not
 * recorded (its row would have to wait for the drop, then refer to a
 * pipeline that is gone): it returns at once, without a run id.
 */
static Datum
skip_run(FunctionCallInfo fcinfo, EtlRun *run, const char *name, int64 id,
		 MemoryContext callercxt)
{
	EtlRunRecord *r = &run->rec;
	int holder = etl_pipeline_lock_holder(id);

	run->p = etl_catalog_load(name, false, InvalidSnapshot);
	etl_check_pipeline_owner(run->p->name, run->p->owner, "run");
	r->pipeline_id = run->p->id;
	r->pipeline = run->p->name;
	r->status = "skipped";
	r->watermark_from = r->watermark_to = run->p->watermark;
	if (!etl_catalog_try_lock_key(id))
	{
		ereport(NOTICE,
				(errmsg("pipeline \"%s\" is being dropped by backend %d, "
						"skipped",
						name, holder)));
		r->run_id = 0;
		r->finished_at = GetCurrentTimestamp();
		etl_log_skipped(&run->rec);
		return make_result(fcinfo, r, callercxt);
	}
	ereport(
		NOTICE,
		(errmsg("pipeline \"%s\" is already running in backend %d, skipped",
				name, holder)));
	r->run_id = etl_catalog_next_run_id();
	r->finished_at = GetCurrentTimestamp();
	etl_catalog_record_run(r);
	if (run->req->batch_id != 0)
		etl_catalog_finish_batch(
			run->req->batch_id, r, "abandoned",
			psprintf("another session (backend %d) was running the pipeline",
					 etl_pipeline_lock_holder(id)));
	etl_log_skipped(&run->rec);
	return make_result(fcinfo, r, callercxt);
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
static Datum run_pipeline(FunctionCallInfo fcinfo, char *name,
						  EtlRunRequest *req);

Datum
etl_run(PG_FUNCTION_ARGS)
{
	EtlRunRequest req = { 0 };

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("pipeline name must not be NULL")));
	return run_pipeline(fcinfo, text_to_cstring(PG_GETARG_TEXT_PP(0)), &req);
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
	return run_pipeline(fcinfo, text_to_cstring(PG_GETARG_TEXT_PP(0)), &req);
}

/*
 * run_pipeline runs one increment (or backfill step) of the pipeline name
 * and returns its etl.run_result.
 */
static Datum
run_pipeline(FunctionCallInfo fcinfo, char *name, EtlRunRequest *req)
{
	MemoryContext callercxt = CurrentMemoryContext;
	MemoryContext runcxt;
	MemoryContext attemptcxt;
	EtlRun run = { 0 };
	EtlRunRecord *r = &run.rec;
	int64 id;
	int nestlevel;
	Snapshot snap;
	Datum result;
	instr_time start;

	run.req = req;

	if (RecoveryInProgress())
		ereport(
			ERROR,
			(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
			 errmsg("cannot run pipeline \"%s\" during recovery", name),
			 errhint("Run pipelines on the primary; after a promotion the "
					 "next run continues from the replicated watermark.")));
	etl_require_read_committed("etl_run");

	etl_spi_connect();
	nestlevel = etl_pin_settings();
	if (etl_work_mem > 0)
		(void) set_config_option("work_mem", psprintf("%d", etl_work_mem),
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
								 true, 0, false);

	r->started_at = GetCurrentTimestamp();
	r->attempts = 1;
	r->run_by = GetUserId();
	r->triggered_by = req->triggered_by			 ? req->triggered_by
					  : etl_started_by_pg_cron() ? "schedule"
												 : "manual";
	r->extract_ms = r->transform_ms = r->check_ms = r->load_ms = -1;

	/*
	 * Ownership first, from the definition read without the lock: a role
	 * that may not run the pipeline never holds its run lock, not even for
	 * a moment (a run of the owner starting then would be skipped).
	 */
	run.p = etl_catalog_load(name, false, InvalidSnapshot);
	etl_check_pipeline_owner(run.p->name, run.p->owner, "run");
	id = run.p->id;
	if (!etl_lock_pipeline(id, false))
	{
		result = skip_run(fcinfo, &run, name, id, callercxt);
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
	/* and again as committed by whoever held the lock before */
	etl_check_pipeline_owner(run.p->name, run.p->owner, "run");
	etl_check_role_exists(run.p->name, run.p->owner);

	r->pipeline_id = run.p->id;
	r->pipeline = run.p->name;
	r->run_id = etl_catalog_next_run_id();
	/* steps a crash cut short are redone: they are not done */
	(void) etl_batch_recover_pipeline(run.p, req->batch_id);
	run.attempt_errors = makeStringInfo();
	etl_maybe_pause("after_lock");
	stage_begin(&run, "run", &start);

	/*
	 * Each attempt allocates in a context of its own, reset before the next:
	 * what a failed attempt allocated (its statements, its dead letters) is
	 * freed once its failure is noted.  What the last attempt leaves (the
	 * record, the dead letters, its error) lives until the run returns.
	 */
	runcxt = CurrentMemoryContext;
	attemptcxt = AllocSetContextCreate(runcxt, "etl_ext attempt",
									   ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		ErrorData *edata;
		EtlErrorClass cls;
		bool retry;

		MemoryContextReset(attemptcxt);
		reset_attempt(&run);
		MemoryContextSwitchTo(attemptcxt);
		edata = etl_in_subxact(attempt, &run, NULL, false);
		MemoryContextSwitchTo(runcxt);
		if (edata == NULL)
			break;

		note_attempt_error(&run, edata);
		cls = etl_error_class(edata->sqlerrcode);
		retry =
			cls == ETL_ERROR_TRANSIENT && r->attempts < run.p->max_attempts;
		etl_log_error(&run.rec, run.stage, edata, retry);
		if (retry)
		{
			double ms = retry_delay_ms(run.p, r->attempts);

			ereport(NOTICE,
					(errmsg("pipeline \"%s\": attempt %d of %d failed, "
							"retrying in %.0f ms",
							run.p->name, r->attempts, run.p->max_attempts, ms),
					 errdetail("%s", edata->message)));
			edata = retry_sleep(ms);
			if (edata != NULL)
				fail_run(&run, edata, "Interrupted while waiting to retry: ");
			etl_maybe_pause("before_retry");
			r->attempts++;
			continue;
		}

		if (cls == ETL_ERROR_TRANSIENT)
			fail_run(
				&run, edata,
				psprintf("All %d attempts failed; the last: ", r->attempts));
		else if (edata->sqlerrcode == ERRCODE_DATA_EXCEPTION &&
				 run.dead_letters != NIL)
			fail_run(&run, edata, "Too many rows were rejected: ");
		else if (etl_checks_failed_critical(&run))
			fail_run(&run, edata, "A critical quality check failed: ");
		else
			fail_run(&run, edata, "");
	}

	run.stage = "run";
	(void) stage_end(&run, start, r->rows_extracted);
	/* failures earlier runs could not record: recorded with this run */
	etl_unrecorded_record(run.p->id);
	notify_failed_checks(&run);
	result = make_result(fcinfo, r, callercxt);
	etl_unpin_settings(nestlevel);
	etl_spi_finish();
	PG_RETURN_DATUM(result);
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
	int nestlevel;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	failed = PG_GETARG_INT32(1);
	if (failed < 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("failed_attempts must be at least 1")));
	etl_spi_connect();
	nestlevel = etl_pin_settings();
	p = etl_catalog_load(text_to_cstring(PG_GETARG_TEXT_PP(0)), false,
						 InvalidSnapshot);
	ms = retry_delay_ms(p, failed);
	etl_unpin_settings(nestlevel);
	etl_spi_finish();
	PG_RETURN_DATUM(
		DirectFunctionCall2(interval_mul,
							DirectFunctionCall7(make_interval, 0, 0, 0, 0, 0,
												0, Float8GetDatum(0.001)),
							Float8GetDatum(ms)));
}
