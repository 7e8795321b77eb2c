/*-------------------------------------------------------------------------
 *
 * stages.c
 *	  The stages of one attempt of a run, as the pipeline owner: schema drift,
 *	  the extraction of the range, the quality checks, the transform and load
 *	  of the batch (set-based, then with its bad rows isolated when that fails
 *	  with a data error), and the counts of what it did.
 *
 * IDENTIFICATION
 *	  src/run/stages.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "portability/instr_time.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/numeric.h"

#include "base/security.h"
#include "base/settings.h"
#include "catalog/batches.h"
#include "catalog/runlog.h"
#include "checks/quality.h"
#include "loads/load.h"
#include "loads/load_ops.h"
#include "modes/drift.h"
#include "modes/extract.h"
#include "modes/mode.h"
#include "run/run.h"
#include "sql/reserved.h"
#include "transform/deadletter.h"
#include "transform/isolate.h"
#include "transform/stage.h"

/*
 * etl_run_stage_begin logs the start of a stage of the run and notes it as the
 * run's current stage; start receives the time.
 */
void
etl_run_stage_begin(EtlRun *run, const char *stage, instr_time *start)
{
	run->stage = stage;
	etl_log_stage_begin(&run->rec, stage, start);
}

/*
 * etl_run_stage_end logs the completion of the run's current stage (rows < 0:
 * not known) and returns its milliseconds.
 */
double
etl_run_stage_end(EtlRun *run, instr_time start, int64 rows)
{
	return etl_log_stage_end(&run->rec, run->stage, start, rows);
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
	etl_dead_letter_add(run, stage, record, edata);
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
	etl_dead_letter_add(run, stage, record, edata);
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

	rejected = etl_dead_letters_count(run);
	threshold = DatumGetFloat8(DirectFunctionCall1(
		numeric_float8, NumericGetDatum(run->p->error_threshold)));
	if ((double) rejected * 100.0 > threshold * (double) nrows)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("more than %g%% of the batch was rejected", threshold),
				 errdetail_plural(
					 "At least " INT64_FORMAT " of " INT64_FORMAT
					 " rows was rejected (%.2f%%), above the error "
					 "threshold of %g%%%s%s",
					 "At least " INT64_FORMAT " of " INT64_FORMAT
					 " rows were rejected (%.2f%%), above the error "
					 "threshold of %g%%%s%s",
					 rejected, rejected, nrows,
					 100.0 * rejected / Max(nrows, 1), threshold,
					 last ? "; the last one: " : "", last ? last : "")));
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
		before = etl_dead_letters_count(run) + run->known_rejects;
		if (!run->map->row_local)
			etl_not_row_local_error(run, edata);
		etl_stage_batch(run);
		etl_isolate_transform(run, run->stage_rows, &hooks);
		if (etl_dead_letters_count(run) + run->known_rejects == before)
			ReThrowError(edata); /* not a row's transform: a check's own */
		FreeErrorData(edata);
		etl_stage_batch(run);
		etl_run_checks(run, checks);
	}
	before = etl_dead_letters_count(run);
	etl_checks_judge(run, checks, &quarantine);
	if (etl_dead_letters_count(run) > before)
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
	if (etl_mode_ops(run->p->mode)->reject_left_out != NULL)
	{
		/* the rows of the batch the load left out (repeated keys) */
		EtlIsolateHooks hooks = { NULL, run_rejected, &run->stage_rows };
		int64 before = etl_dead_letters_count(run) + run->known_rejects;

		(void) etl_mode_ops(run->p->mode)->reject_left_out(run, &hooks);
		run->repeat_rejects =
			etl_dead_letters_count(run) + run->known_rejects - before;
	}
	etl_load_finish(run);
	if (!etl_mode_ops(run->p->mode)->keeps_stage)
		etl_stage_drop(run);
	r->rows_inserted = c.inserted;
	r->rows_updated = c.updated;
	r->rows_deleted = c.deleted;
	/* a version pending already as a dead letter is unchanged since */
	r->rows_unchanged = c.unchanged + run->known_rejects;
	r->rows_rejected = etl_dead_letters_count(run);
	if (r->rows_extracted < 0)
		r->rows_extracted = c.batch;

	/* a version superseded within the batch counts as unchanged */
	if (run->dedupe && run->map->one_to_one &&
		r->rows_extracted - r->rows_rejected - run->known_rejects > c.batch)
		r->rows_unchanged += r->rows_extracted - r->rows_rejected -
							 run->known_rejects - c.batch;
}

/*
 * etl_run_stages runs extract, transform and load as the pipeline owner and
 * fills the run's counts and watermarks.
 */
void
etl_run_stages(EtlRun *run)
{
	EtlUserSwitch sw = { 0 };
	instr_time start;
	List *checks;

	etl_become_owner(&sw, run->p->owner);

	/* a reserved name is its own error, before the drift that adds it */
	etl_refuse_reserved_source(run->p, run->source_relid);
	etl_schema_drift(run);
	run->map =
		etl_resolve_columns(run->p, run->source_relid, run->target_relid);
	etl_load_require_unique_key(run->p, run->target_relid);

	etl_run_stage_begin(run, "extract", &start);
	etl_extract_begin(run);
	etl_extract_stats(run);
	run->rec.extract_ms =
		etl_run_stage_end(run, start, run->rec.rows_extracted);
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
		etl_run_stage_begin(run, "check", &start);
		run_checks(run, checks);
		run->rec.check_ms =
			etl_run_stage_end(run, start, run->rec.rows_extracted);
	}

	/* transform and load are one statement: transform_ms is not separate */
	etl_run_stage_begin(run, "load", &start);
	/* the mode's steps around the load of the batch */
	etl_mode_ops(run->p->mode)->load(run, load_batch);
	etl_stage_drop(run); /* when the mode kept it for its steps after load */
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
		etl_run_stage_end(run, start,
						  run->rec.rows_inserted + run->rec.rows_updated +
							  run->rec.rows_deleted);
	etl_maybe_pause("after_load");

	etl_extract_end(run);
	etl_restore_user(&sw);
}
