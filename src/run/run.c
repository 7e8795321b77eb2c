/*-------------------------------------------------------------------------
 *
 * run.c
 *	  etl_run: one increment of a pipeline, atomically, in the caller's
 *	  transaction; retries, bad-row isolation and durable failure records.
 *	  The orchestration (etl_run_orchestrated) is shared by every kind of
 *	  run: an increment, a step of a catch-up or a backfill, and the replay
 *	  of dead letters (replay.c), a run whose batch is the pending dead
 *	  letters; an EtlRunKind (run.h) says what differs.
 *
 *	  Glossary
 *	  - pipeline: a named definition (source, target, key, mode, transform,
 *		load ...) in etl.pipelines, owned by the role that created it.
 *	  - run: one call of etl_run (or one replay); a row of etl.runs.
 *	  - attempt: one try of a run; a transient error (a lost connection, a
 *		deadlock, a lock timeout ...) ends an attempt and, within
 *		max_attempts, starts the next after the pipeline's backoff.
 *	  - batch: the rows one run extracts (its range); a row of etl.batches.
 *	  - watermark: the largest watermark-column value loaded so far, stored
 *		as text in etl.pipelines; the next run extracts what lies past it.
 *	  - safe upper bound: the value below which no write can still be in
 *		flight (the mode's, modes/mode_*.c); a run never extracts past it,
 *		so no late commit is lost.
 *	  - dead letter: a source row that failed the transform or the load
 *		with a data error, isolated from its batch (transform/isolate.c),
 *		or whose output failed a quarantine check (checks/).
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
 *	  catalog/run_lock.c) without waiting; when another backend holds it
 *	  the run returns 'skipped' at once.  alter, drop, reset and
 *	  dead-letter replay wait for it.  Each checks ownership before it takes
 *	  the lock (and again after), so a role that may not act on a pipeline
 *	  never holds or queues for its lock.
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
#include "run/run.h"
#include "sql/run_state.h"
#include "transform/deadletter.h"
#include "transform/isolate.h"
#include "transform/stage.h"

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
 * attempt is one try of a run (the body of a subtransaction): stages,
 * watermark and records.
 */
static void
attempt(EtlRun *run, void *arg)
{
	EtlRunRecord *r = &run->rec;

	etl_run_resolve_relations(run);
	etl_run_stages(run);

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
	run->held_xids = NIL; /* their locks released with the subtransaction */
	run->check_rows = 0;
	etl_dead_letters_begin(run);
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
 * etl_retry_delay_ms returns the pause before the next attempt after
 * `failed` failed attempts: none 0, linear base * n, exponential
 * base * 2^(n-1), exponential_jitter 50-150% of that, at most the maximum.
 */
double
etl_retry_delay_ms(EtlPipeline *p, int failed)
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
	/* a copy: unpack_sql_state's buffer is reused by the dead letters' JSON */
	r->sqlstate = pstrdup(unpack_sql_state(edata->sqlerrcode));
	r->error_class = etl_error_class_name(etl_error_class(edata->sqlerrcode));
	r->rows_inserted = r->rows_updated = r->rows_deleted = r->rows_unchanged =
		0;
	r->rows_rejected = etl_dead_letters_count(run);
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
 * upper bound (the mode's), newer than the caller's transaction snapshot in
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
 * skip_run records a run skipped because another backend runs the
 * pipeline.  When that backend is dropping it, the skipped run is not
 * recorded (its row would have to wait for the drop, then refer to a
 * pipeline that is gone): it returns at once, without a run id.
 */
static void
skip_run(EtlRun *run, const char *name, int64 id)
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
		return;
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
}

/*
 * attempt_failed decides what follows a failed attempt of a retried kind:
 * returns true after the pause when the attempt is to be tried again (a
 * transient error, attempts left); otherwise records the failed run and
 * raises its ERROR (fail_run), with a detail saying why it failed.
 */
static bool
attempt_failed(EtlRun *run, ErrorData *edata)
{
	EtlRunRecord *r = &run->rec;
	EtlErrorClass cls;
	bool retry;

	note_attempt_error(run, edata);
	cls = etl_error_class(edata->sqlerrcode);
	retry = cls == ETL_ERROR_TRANSIENT && r->attempts < run->p->max_attempts;
	etl_log_error(&run->rec, run->stage, edata, retry);
	if (retry)
	{
		double ms = etl_retry_delay_ms(run->p, r->attempts);

		ereport(NOTICE,
				(errmsg("pipeline \"%s\": attempt %d of %d failed, "
						"retrying in %.0f ms",
						run->p->name, r->attempts, run->p->max_attempts, ms),
				 errdetail("%s", edata->message)));
		edata = retry_sleep(ms);
		if (edata != NULL)
			fail_run(run, edata, "Interrupted while waiting to retry: ");
		etl_maybe_pause("before_retry");
		r->attempts++;
		return true;
	}

	if (cls == ETL_ERROR_TRANSIENT)
		fail_run(run, edata,
				 psprintf("All %d attempts failed; the last: ", r->attempts));
	else if (edata->sqlerrcode == ERRCODE_DATA_EXCEPTION &&
			 etl_dead_letters_count(run) > 0)
		fail_run(run, edata, "Too many rows were rejected: ");
	else if (etl_checks_failed_critical(run))
		fail_run(run, edata, "A critical quality check failed: ");
	else
		fail_run(run, edata, "");
	return false; /* not reached: fail_run raises */
}

static void run_attempts(EtlRun *run, const EtlRunKind *kind, void *arg);

/*
 * etl_run_orchestrated drives one run of the pipeline name of the given
 * kind, as req asks, and fills *result with its record: the ownership
 * check and the run lock (etl_pipeline_open_locked: a kind that does not
 * wait records a run skipped when another backend holds it), the kind's
 * begin, its attempts, each in a subtransaction and a memory context of
 * its own (for a retried kind, transient errors retried per the pipeline's
 * policy and a failure recorded on its own before the run's ERROR; for the
 * others an attempt's error raised as it came), then the kind's end.  Its
 * own code calling for the pipeline meanwhile is refused (55006,
 * etl_pipeline_enter_run).  The caller has entered through the entry
 * protocol (base/entry.h); what the record points to lives until its SPI
 * connection ends.
 */
void
etl_run_orchestrated(const char *name, EtlRunRequest *req,
					 const EtlRunKind *kind, void *arg, EtlRunRecord *result)
{
	EtlRun run = { 0 };
	EtlRunRecord *r = &run.rec;
	int64 id;
	int depth;

	run.req = req;
	r->started_at = GetCurrentTimestamp();
	r->attempts = 1;
	r->run_by = GetUserId();
	r->triggered_by = req->triggered_by			 ? req->triggered_by
					  : etl_started_by_pg_cron() ? "schedule"
												 : "manual";
	r->extract_ms = r->transform_ms = r->check_ms = r->load_ms = -1;

	/*
	 * A run that does not wait only tries the lock: a role that may not run
	 * the pipeline never holds it, not even for a moment (a run of the
	 * owner starting then would be skipped), and a run finding it held is
	 * skipped.
	 */
	run.p = etl_pipeline_open_locked(
		name, kind->action,
		(kind->wait ? ETL_OPEN_WAIT : 0) | ETL_OPEN_OWNER_EXISTS, &id);
	if (run.p == NULL)
	{
		skip_run(&run, name, id);
		*result = run.rec;
		return;
	}
	r->pipeline_id = run.p->id;
	r->pipeline = run.p->name;
	depth = etl_pipeline_enter_run(run.p->id);
	PG_TRY();
	{
		run_attempts(&run, kind, arg);
	}
	PG_FINALLY();
	{
		etl_pipeline_leave_run(depth);
	}
	PG_END_TRY();
	*result = run.rec;
}

/*
 * run_attempts is the part of etl_run_orchestrated() under the run lock:
 * the kind's begin, its attempts, its end.
 */
static void
run_attempts(EtlRun *run, const EtlRunKind *kind, void *arg)
{
	MemoryContext runcxt;
	MemoryContext attemptcxt;

	run->attempt_errors = makeStringInfo();
	if (kind->begin)
		kind->begin(run, arg);

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

		MemoryContextReset(attemptcxt);
		reset_attempt(run);
		MemoryContextSwitchTo(attemptcxt);
		edata = etl_in_subxact(kind->attempt, run, arg, false);
		MemoryContextSwitchTo(runcxt);
		if (edata == NULL)
		{
			etl_isolation_release(run);
			break;
		}
		if (!kind->retried)
			ReThrowError(edata);
		(void) attempt_failed(run, edata);
	}

	if (kind->end)
		kind->end(run, arg);
	etl_dead_letters_end(run);
}

/* the state of an increment between its begin and its end */
typedef struct Increment
{
	instr_time start;
} Increment;

/*
 * increment_begin starts an increment (or step) once its lock is held: its
 * run id, the batch rows a crash cut short redone (they are not done), the
 * log line of its start.
 */
static void
increment_begin(EtlRun *run, void *arg)
{
	Increment *inc = arg;

	run->rec.run_id = etl_catalog_next_run_id();
	(void) etl_batch_recover_pipeline(run->p, run->req->batch_id);
	etl_maybe_pause("after_lock");
	etl_run_stage_begin(run, "run", &inc->start);
}

/*
 * increment_end ends an increment that succeeded: the log line of its end,
 * the failures earlier runs could not record (recorded with this run), the
 * notification of its failed checks at commit.
 */
static void
increment_end(EtlRun *run, void *arg)
{
	Increment *inc = arg;

	run->stage = "run";
	(void) etl_run_stage_end(run, inc->start, run->rec.rows_extracted);
	etl_unrecorded_record(run->p->id);
	notify_failed_checks(run);
}

/*
 * etl_run_pipeline runs one increment (or backfill step) of the pipeline
 * name, as req asks, and fills *result with its record: a run skipped
 * because another backend runs the pipeline, or one that succeeded (a
 * failed run raises its ERROR, after its record is committed on its own).
 * The caller (api/run.c) has entered through the entry protocol.
 */
void
etl_run_pipeline(const char *name, EtlRunRequest *req, EtlRunRecord *result)
{
	static const EtlRunKind increment = {
		.action = "run",
		.wait = false,
		.retried = true,
		.begin = increment_begin,
		.attempt = attempt,
		.end = increment_end,
	};
	Increment inc;

	etl_run_orchestrated(name, req, &increment, &inc, result);
}
