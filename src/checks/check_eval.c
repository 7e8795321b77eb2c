/*-------------------------------------------------------------------------
 *
 * check_eval.c
 *	  Quality checks evaluated on every batch before it loads.
 *
 *	  One pass: all checks of a pipeline compile into a single aggregate
 *	  query over the batch (the transform over etl_delta) -- count(*) FILTER
 *	  (WHERE <the row fails>) per row-level check, with foreign keys as
 *	  hashed IN (SELECT ...) probes, etl_dup_count for uniqueness within
 *	  the batch, etl_zstats (count, mean, stddev, min and max in one
 *	  aggregate, the value converted once) for z-scores -- which may run in
 *	  parallel.  Only a unique check against the target adds one join per
 *	  check, freshness one look at the source's newest value, and only a
 *	  failing check pays for its sample keys (and a z-score for its count).
 *	  What a kind contributes and how its result is read and judged is its
 *	  entry of the kind table (check_kinds.c); the SQL text comes from
 *	  sql/deparse_checks.c.
 *
 *	  Quarantine: the batch is staged (isolate.c) and the transform run once
 *	  per staged row, carrying its row number (etl_deparse_rn_batch()); the
 *	  rows whose output fails a quarantine check are set aside by that
 *	  number -- dead letters holding the source row, deleted from the stage
 *	  the load then reads -- never by a key matched again (a transform may
 *	  change keys, keys may be NULL or absent).  This needs a row-local
 *	  transform, which is checked when the check is added.  Replayed dead
 *	  letters go through the same (etl_checks_replay()).
 *
 *	  The evaluation only reads (etl_run_checks(), in a subtransaction of
 *	  the run, so that a data error of the transform can be isolated);
 *	  etl_checks_judge() then fails the run or quarantines.
 *
 * IDENTIFICATION
 *	  src/checks/check_eval.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "base/spi_util.h"
#include "checks/check.h"
#include "checks/check_judge.h"
#include "checks/quality.h"
#include "sql/columns.h"
#include "sql/deparse_batch.h"
#include "sql/deparse_checks.h"
#include "sql/run_state.h"
#include "transform/stage.h"

/*
 * check_batch returns the batch of the run as the checks' SQL reads it, in
 * the run's present state (staged or not).
 */
static EtlCheckBatch *
check_batch(EtlRun *run)
{
	EtlCheckBatch *b = palloc0(sizeof(EtlCheckBatch));
	StringInfoData cte;

	initStringInfo(&cte);
	etl_deparse_delta_cte(&cte, etl_batch_sql(run));
	b->delta_cte = cte.data;
	b->transform = run->map->transform_sql;
	b->target = run->target_sql;
	b->columns = run->map->columns;
	return b;
}

/*
 * add_check_args appends the positional arguments of a check's params and
 * remembers where they start.
 */
static void
add_check_args(EtlArgs *args, EtlCheck *c)
{
	c->param_no = args->n + 1;
	if (c->kind->add_args != NULL)
		c->kind->add_args(args, c);
}

/* a staged row that failed a check */
typedef struct FailedRow
{
	int64 rn;
	ErrorData *edata;
	char *record;
} FailedRow;

/*
 * reject_failing_rows takes the staged rows whose batch rows fail one of
 * the given checks (EtlCheckResult *, their params in args) out of the
 * batch: each goes to hooks->rejected, stage "check", with the first check
 * it fails, and leaves the stage.  Rows are known by their row number in
 * the stage, which the transform carries (etl_deparse_rn_batch()), never
 * by a key matched again: a transform may change keys, keys may be NULL or
 * absent.  A unique check fails the rows whose value repeats in the batch
 * or belongs to a target row of another key.  Returns how many were taken.
 */
static int64
reject_failing_rows(EtlRun *run, List *failed, EtlArgs *args,
					EtlIsolateHooks *hooks)
{
	StringInfoData sql;
	EtlCheckBatch *b;
	EtlCheckPart *parts;
	ListCell *lc;
	uint64 n;
	FailedRow *rows;
	int64 *rns;

	etl_stage_batch(run);
	b = check_batch(run);
	parts = palloc0(sizeof(EtlCheckPart) * list_length(failed));
	foreach (lc, failed)
	{
		EtlCheckResult *r = lfirst(lc);
		EtlCheckPart *part = &parts[foreach_current_index(lc)];

		part->predicate = r->check->kind->predicate;
		etl_check_sql_fill(&part->sql, r->check, r, b);
	}
	initStringInfo(&sql);
	etl_deparse_checks_reject(
		&sql, b, etl_deparse_rn_batch(etl_batch_sql(run)), parts,
		list_length(failed), run->stage_columns_s, run->stage_table);
	n = etl_spi_exec(sql.data, args, SPI_OK_SELECT, run->snapshot);

	/* the result set goes with the next statement: copy it out first */
	rows = palloc0(sizeof(FailedRow) * Max(n, 1));
	for (uint64 j = 0; j < n; j++)
	{
		EtlCheckResult *r = list_nth(failed, (int) etl_spi_int64(j, 1, 0));

		rows[j].rn = etl_spi_int64(j, 0, 0);
		rows[j].record = etl_spi_text(j, 2);
		rows[j].edata = palloc0(sizeof(ErrorData));
		rows[j].edata->sqlerrcode = ERRCODE_CHECK_VIOLATION;
		rows[j].edata->message = psprintf(r->check->severity == SEV_QUARANTINE
											  ? "quarantined by check \"%s\""
											  : "failed check \"%s\"",
										  r->check->name);
	}
	rns = palloc(sizeof(int64) * Max(n, 1));
	for (uint64 j = 0; j < n; j++)
	{
		hooks->rejected(run, rows[j].rn, "check", rows[j].edata,
						rows[j].record, hooks->arg);
		rns[j] = rows[j].rn;
	}
	etl_stage_forget(run, rns, (int64) n);
	return (int64) n;
}

/*
 * etl_checks_pass_sql returns the one aggregate query that evaluates the
 * checks over the batch: count(*) first, then per check its column(s);
 * first_col gets each check's first column.  Appends the checks' params to
 * args.
 */
char *
etl_checks_pass_sql(EtlRun *run, List *checks, EtlArgs *args, int *first_col)
{
	EtlCheckBatch *b = check_batch(run);
	EtlCheckPart *parts = palloc0(sizeof(EtlCheckPart) * list_length(checks));
	StringInfoData sql;
	ListCell *lc;

	foreach (lc, checks)
	{
		EtlCheck *c = lfirst(lc);
		EtlCheckPart *part = &parts[foreach_current_index(lc)];

		add_check_args(args, c);
		part->aggregate = c->kind->aggregate;
		part->predicate = c->kind->predicate;
		etl_check_sql_fill(&part->sql, c, NULL, b);
	}
	initStringInfo(&sql);
	etl_deparse_checks_pass(&sql, b, parts, list_length(checks));
	foreach (lc, checks)
		first_col[foreach_current_index(lc)] =
			parts[foreach_current_index(lc)].first_col;
	return sql.data;
}

/*
 * etl_run_checks evaluates the pipeline's checks (from etl_checks_load) on
 * the run's batch, before it loads, and keeps their results in
 * run->check_results (and the rows it counted in run->check_rows); it only
 * reads, so that a data error of the transform can be caught around it.
 * etl_checks_judge() acts on the results.  Runs as the pipeline owner.
 */
void
etl_run_checks(EtlRun *run, List *checks)
{
	EtlArgs args;
	ListCell *lc;
	char *pass_sql;
	int nchecks;
	int *first_col;
	int64 nrows;
	List *results = NIL;
	EtlCheckBatch *b;

	run->check_results = NIL;
	if (checks == NIL)
		return;
	nchecks = list_length(checks);
	first_col = palloc0(sizeof(int) * nchecks);

	foreach (lc, checks)
	{
		EtlCheck *c = lfirst(lc);

		etl_check_resolve(c, run->p, run->map, run->source_relid);
		if (c->kind->prepare != NULL)
			c->kind->prepare(c, run);
	}

	/* the one aggregate pass */
	etl_run_args(run, &args);
	pass_sql = etl_checks_pass_sql(run, checks, &args, first_col);
	etl_spi_query_parallel(pass_sql, &args, run->snapshot);
	nrows = etl_spi_int64(0, 0, 0);
	if (run->rec.rows_extracted < 0 && run->map->one_to_one)
		run->rec.rows_extracted = nrows;

	/* judge each check; the result set of the pass is read first */
	foreach (lc, checks)
	{
		EtlCheckResult *r = etl_check_result_new(lfirst(lc));

		if (r->check->kind->read != NULL)
			r->check->kind->read(r, first_col[foreach_current_index(lc)],
								 nrows);
		results = lappend(results, r);
	}

	/* what needs its own query: freshness, uniqueness against the target,
	 * counts and samples of what failed */
	b = check_batch(run);
	foreach (lc, results)
	{
		EtlCheckResult *r = lfirst(lc);
		const EtlCheckKindDef *kind = r->check->kind;

		if (kind->judge != NULL)
			kind->judge(run, r, &args, b);
		if (!r->passed && kind->row_level)
			kind->samples(run, r, &args, b);
		appendStringInfoChar(r->observed, '}');
	}
	run->check_results = results;
	run->check_rows = nrows;
}

/*
 * etl_checks_judge acts on the results of etl_run_checks(): a failing
 * critical check fails the attempt (23514, the batch does not load); rows
 * failing quarantine checks become dead letters and leave the batch.  Runs
 * as the pipeline owner.
 */
void
etl_checks_judge(EtlRun *run, List *checks, EtlIsolateHooks *hooks)
{
	EtlCheckResult *critical = NULL;
	List *quarantining = NIL;
	EtlArgs args;
	ListCell *lc;

	foreach (lc, run->check_results)
	{
		EtlCheckResult *r = lfirst(lc);

		if (!r->passed && r->check->severity == SEV_CRITICAL &&
			critical == NULL)
			critical = r;
		if (!r->passed && r->check->severity == SEV_QUARANTINE)
			quarantining = lappend(quarantining, r);
	}

	if (critical != NULL)
	{
		EtlCheck *c = critical->check;

		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("check \"%s\" failed", c->name),
				 errdetail("%s check%s%s%s failed%s; observed %s",
						   c->kind->name, c->column ? " on column \"" : "",
						   c->column ? c->column : "", c->column ? "\"" : "",
						   c->kind->row_level
							   ? psprintf(" for " INT64_FORMAT
										  " of " INT64_FORMAT " rows",
										  critical->failing, run->check_rows)
							   : "",
						   critical->observed->data),
				 errhint("The batch was not loaded; SELECT * FROM "
						 "etl.check_results WHERE run_id = " INT64_FORMAT
						 " shows every check.",
						 run->rec.run_id)));
	}

	if (quarantining != NIL)
	{
		etl_stage_batch(run); /* the rows are known by their row numbers */
		etl_run_args(run, &args);
		foreach (lc, checks)
			add_check_args(&args, lfirst(lc));
		(void) reject_failing_rows(run, quarantining, &args, hooks);
	}
}

/*
 * etl_checks_replay applies a pipeline's checks to dead letters being
 * replayed (staged rows 1 .. nrows, etl_retry_dead_letters): a row that
 * fails a row-level check of severity critical or quarantine goes to
 * hooks->rejected (stage "check") and stays out of the load, as it would
 * have in a run.  Warnings do not keep a row out; the kinds that judge a
 * whole batch, which a replay is not (z_score, row_count, freshness: not
 * "replayed" in the kind table), are left out.
 * Returns how many rows were held back.  Runs as the pipeline owner.
 */
int64
etl_checks_replay(EtlRun *run, int64 nrows, EtlIsolateHooks *hooks)
{
	List *checks = etl_checks_load(run->p->id);
	List *applied = NIL;
	EtlArgs args;
	ListCell *lc;

	foreach (lc, checks)
	{
		EtlCheck *c = lfirst(lc);

		if (!c->kind->replayed || c->severity == SEV_WARNING)
			continue;
		etl_check_resolve(c, run->p, run->map, run->source_relid);
		applied = lappend(applied, etl_check_result_new(c));
	}
	if (applied == NIL || nrows == 0)
		return 0;
	run->rn_lo = 1;
	run->rn_hi = nrows;
	etl_run_args(run, &args);
	foreach (lc, applied)
		add_check_args(&args, ((EtlCheckResult *) lfirst(lc))->check);
	return reject_failing_rows(run, applied, &args, hooks);
}

/*
 * etl_checks_failed_critical tells whether the run's checks failed one
 * critical check.
 */
bool
etl_checks_failed_critical(EtlRun *run)
{
	ListCell *lc;

	foreach (lc, run->check_results)
	{
		EtlCheckResult *r = lfirst(lc);

		if (!r->passed && r->check->severity == SEV_CRITICAL)
			return true;
	}
	return false;
}
