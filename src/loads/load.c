/*-------------------------------------------------------------------------
 *
 * load.c
 *	  Loading a run's batch: etl_load() looks the pipeline's load up in the
 *	  table of the loads (load_ops.c; one file per load, load_<name>.c) and
 *	  runs it; what the loads share -- whether the target is empty, the
 *	  duplicate keys of a batch and loading one row per key, the NULL key of
 *	  a batch row.
 *	  Every load is one or a few set-based statements that read the batch
 *	  through the transform and write the target, under the run's snapshot,
 *	  as the pipeline owner.
 *
 *	  Keys.  A key that appears more than once in one batch (several
 *	  versions of a row in one increment) is loaded once: the latest
 *	  version, the last in the order of the watermark column (and the rows'
 *	  physical order), or the first for a load that keeps the first
 *	  (EtlLoadOps.keeps_first_version: append, whose later versions are
 *	  skipped as they would be in a later run).  When duplicates are noticed
 *	  the batch is staged and each statement keeps one row per key
 *	  (run->dedupe), which needs a row-local transform.
 *
 * IDENTIFICATION
 *	  src/loads/load.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "loads/load.h"
#include "loads/load_ops.h"
#include "sql/deparse_batch.h"
#include "sql/deparse_load.h"
#include "sql/deparse_snapshot.h"
#include "sql/deparse_source.h"
#include "sql/deparse_stage.h"
#include "sql/run_state.h"
#include "transform/stage.h"

PG_FUNCTION_INFO_V1(etl_null_key);

/*
 * etl_load_exec runs one load statement with the run's arguments and
 * snapshot and returns the rows it processed.
 */
uint64
etl_load_exec(EtlRun *run, const char *sql, int expected)
{
	EtlArgs args;

	etl_run_args(run, &args);
	return etl_spi_exec(sql, &args, expected, run->snapshot);
}

/*
 * target_is_empty tells whether the target has no row (in the run's
 * snapshot, with what this transaction wrote).  The answer is kept in
 * run->target_empty until the caller resets it to -1: an isolated batch
 * asks again before each statement, since earlier parts may have filled it,
 * unless it knows that no two of its rows share a key.
 */
bool
etl_target_is_empty(EtlRun *run)
{
	if (run->target_empty < 0)
		run->target_empty =
			etl_spi_exec(etl_deparse_target_probe(etl_batch_sql(run)), NULL,
						 SPI_OK_SELECT, run->snapshot) == 0;
	return run->target_empty == 1;
}

/*
 * etl_in_catch_up tells whether the run is a step of etl_catch_up().
 */
bool
etl_in_catch_up(EtlRun *run)
{
	return run->req != NULL && run->req->triggered_by != NULL &&
		   strcmp(run->req->triggered_by, "catch_up") == 0;
}

/*
 * etl_analyze_target refreshes the statistics of the run's target, which a
 * catch-up grows step by step without looking at it.
 */
void
etl_analyze_target(EtlRun *run)
{
	StringInfoData sql;

	initStringInfo(&sql);
	etl_deparse_analyze(&sql, run->target_sql);
	etl_spi_exec(sql.data, NULL, SPI_OK_UTILITY, InvalidSnapshot);
}

/*
 * etl_has_duplicate_keys tells whether two rows of the batch (the source
 * range, or staged rows rn_lo .. rn_hi) share a key, exactly; a key with a
 * NULL part does not count (such rows are rejected anyway).
 */
bool
etl_has_duplicate_keys(EtlRun *run)
{
	EtlArgs args;

	if (run->p->key == NIL)
		return false;
	etl_run_args(run, &args);
	return etl_spi_exec(etl_deparse_dup_keys(etl_batch_sql(run)), &args,
						SPI_OK_SELECT, run->snapshot) > 0;
}

/*
 * etl_start_dedupe makes the run load one row per key from now on (see the
 * header): stages the batch, and fails with 21000 when that cannot work --
 * a transform that is not row-local (which row is the latest cannot be
 * told), or one that makes one source row yield a key twice.  Keeps rn_lo
 * .. rn_hi when staged already.
 */
void
etl_start_dedupe(EtlRun *run)
{
	EtlArgs args;
	int64 lo = run->rn_lo;
	int64 hi = run->rn_hi;
	bool staged = run->stage_table != NULL;

	if (run->dedupe)
		return;
	if (!run->map->row_local)
		ereport(ERROR,
				(errcode(ERRCODE_CARDINALITY_VIOLATION),
				 errmsg("the batch of pipeline \"%s\" holds a key more than "
						"once",
						run->p->name),
				 errdetail("Its transform is not row-local, so which of the "
						   "rows of a key is the latest cannot be told."),
				 errhint("Make the transform produce one row per key, e.g. "
						 "GROUP BY the key, or SELECT DISTINCT ON (key) ... "
						 "ORDER BY key, updated_at DESC.")));
	etl_stage_batch(run);
	if (staged)
	{
		run->rn_lo = lo;
		run->rn_hi = hi;
	}
	etl_run_args(run, &args);
	if (etl_spi_exec(etl_deparse_dup_per_row(etl_batch_sql(run)), &args,
					 SPI_OK_SELECT, run->snapshot) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_CARDINALITY_VIOLATION),
				 errmsg("the transform of pipeline \"%s\" yields a key more "
						"than once from one source row",
						run->p->name),
				 errdetail("A later version of a key replaces an earlier "
						   "one, but two rows of one source row cannot be "
						   "told apart."),
				 errhint("Make each source row yield each key once (a join "
						 "that matches several rows multiplies them).")));
	run->dedupe = true;
}

/*
 * etl_null_key(key text) RETURNS boolean
 *
 * Raises 23502 for a batch row whose key has a NULL part: the generated load
 * statements call it for such rows only, so they become dead letters.
 * Never returns.
 */
Datum
etl_null_key(PG_FUNCTION_ARGS)
{
	char *key = PG_ARGISNULL(0) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(0));

	ereport(ERROR,
			(errcode(ERRCODE_NOT_NULL_VIOLATION),
			 errmsg("key (%s) of the batch row is NULL", key),
			 errdetail("A row whose key is NULL or has a NULL part matches "
					   "no target row: every run that read it would insert "
					   "it again."),
			 errhint("Give every row a key in the transform (e.g. with "
					 "COALESCE), or leave such rows out.")));
	PG_RETURN_BOOL(false); /* keep compiler quiet */
}

/*
 * etl_load writes the run's batch (or, when staged, rows rn_lo .. rn_hi of
 * it) into the target with the pipeline's load and returns what it did in
 * *c.  Runs as the pipeline owner; errors propagate (nothing is written
 * then: the caller's transaction or subtransaction rolls back).
 */
void
etl_load(EtlRun *run, EtlLoadCounts *c)
{
	memset(c, 0, sizeof(*c));
	etl_load_ops(run->p->load)->load(run, c);
}

/*
 * etl_load_finish completes a load after its last etl_load() call (load
 * partition_swap, whose staged chunks only gather rows, swaps the
 * partitions they touch); the other loads have nothing left to do.  Call
 * it once the batch is loaded, outside the chunks' subtransactions.
 */
void
etl_load_finish(EtlRun *run)
{
	const EtlLoadOps *ops = etl_load_ops(run->p->load);

	if (ops->finish != NULL)
		ops->finish(run);
}
