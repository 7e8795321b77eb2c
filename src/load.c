/*-------------------------------------------------------------------------
 *
 * load.c
 *	  The loads: merge, append, delete_insert.  Each is one or two set-based
 *	  statements that read the source range through the transform and write
 *	  the target, under the run's snapshot, as the pipeline owner.
 *
 *	  merge			one read-only join sorts the batch into new keys, changed
 *					rows and unchanged rows; then an UPDATE of the changed
 *					rows (their row hash differs) and an INSERT of the new
 *					keys, each only when there is something for it.  An
 *					unchanged row is never touched, so a re-run writes
 *					nothing.  When the target is empty (a first load) a
 *					plain INSERT does the same work without any join.
 *	  append		the same without the UPDATE: known keys are skipped.
 *	  delete_insert DELETE of the target rows with the batch's keys, then
 *					INSERT of the batch.
 *
 *	  Counts: inserted and updated are what the statements processed;
 *	  unchanged is the batch (from the classification) minus both.
 *
 * IDENTIFICATION
 *	  src/load.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "deparse.h"
#include "load.h"

/*
 * exec_load runs one load statement with the run's arguments and snapshot
 * and returns the rows it processed.
 */
static uint64
exec_load(EtlRun *run, const char *sql, int expected)
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
		run->target_empty = etl_spi_exec(etl_deparse_target_probe(run), NULL,
										 SPI_OK_SELECT, run->snapshot) == 0;
	return run->target_empty == 1;
}

/*
 * classify sorts the batch against the target (etl_deparse_classify()):
 * rows in the batch, rows with a new key, rows that differ from their
 * target row.
 */
static void
classify(EtlRun *run, int64 *batch, int64 *new_keys, int64 *changed)
{
	EtlArgs args;

	etl_run_args(run, &args);
	etl_spi_query_parallel(etl_deparse_classify(run), &args, run->snapshot);
	*batch = etl_spi_int64(0, 0, 0);
	*new_keys = etl_spi_int64(0, 1, 0);
	*changed = etl_spi_int64(0, 2, 0);
}

/*
 * etl_load writes the run's batch (or, when staged, rows rn_lo .. rn_hi of
 * it) into the target and returns what it did in *c.  Runs as the pipeline
 * owner; errors propagate (nothing is written then: the caller's
 * transaction or subtransaction rolls back).
 */
void
etl_load(EtlRun *run, EtlLoadCounts *c)
{
	int64 new_keys;
	int64 changed;
	char *update_sql;

	memset(c, 0, sizeof(*c));
	switch (run->p->load)
	{
		case ETL_LOAD_MERGE:
		case ETL_LOAD_APPEND:
			if (run->p->key == NIL || etl_target_is_empty(run))
			{
				/* a first load: every row is new */
				c->inserted = exec_load(run, etl_deparse_insert(run, false),
										SPI_OK_INSERT);
				c->batch = c->inserted;
				break;
			}
			classify(run, &c->batch, &new_keys, &changed);
			update_sql = run->p->load == ETL_LOAD_MERGE
							 ? etl_deparse_update(run)
							 : NULL;
			if (changed > 0 && update_sql != NULL)
				c->updated = exec_load(run, update_sql, SPI_OK_UPDATE);
			if (new_keys > 0)
				c->inserted = exec_load(run, etl_deparse_insert(run, true),
										SPI_OK_INSERT);
			c->unchanged = c->batch - c->inserted - c->updated;
			break;
		case ETL_LOAD_DELETE_INSERT:
			c->deleted =
				exec_load(run, etl_deparse_delete(run), SPI_OK_DELETE);
			c->inserted =
				exec_load(run, etl_deparse_insert(run, false), SPI_OK_INSERT);
			c->batch = c->inserted;
			break;
		default:
			ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							errmsg("load %s is not supported yet",
								   etl_load_names[run->p->load])));
	}
}
