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
 *	  partition_swap the partitions the batch touches rebuilt in staging
 *					tables and swapped in with DETACH / ATTACH / DROP
 *					(swap.c); merge's semantics and counts.  Staged chunks
 *					gather their rows, etl_load_finish() swaps.
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
#include "swap.h"

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
 * target_is_empty tells whether the target had no row when this attempt's
 * load began (in the run's snapshot).  Asked once per attempt, so that the
 * chunks of an isolated batch all load the way the whole batch would have.
 */
static bool
target_is_empty(EtlRun *run)
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
			if (run->p->key == NIL || target_is_empty(run))
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
		case ETL_LOAD_PARTITION_SWAP:
			etl_swap_load(run, c);
			break;
		default:
			ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							errmsg("load %s is not supported yet",
								   etl_load_names[run->p->load])));
	}
}

/*
 * etl_load_finish completes a load after its last etl_load() call: load
 * partition_swap, whose staged chunks (bad-row isolation, dead-letter
 * replay) only gather rows, rebuilds and swaps the partitions they touch
 * (swap.c).  The other loads have nothing left to do.  Call it once the
 * batch is loaded, outside the chunks' subtransactions.
 */
void
etl_load_finish(EtlRun *run)
{
	if (run->p->load == ETL_LOAD_PARTITION_SWAP)
		etl_swap_finish(run);
}

/*
 * etl_load_full_before prepares the load of a mode full run and returns the
 * rows it deleted: without a key, the target's rows (the batch then
 * replaces them all).  The statements of the run's transaction see the
 * deletion; other transactions see the old content until it commits.
 */
int64
etl_load_full_before(EtlRun *run)
{
	if (run->p->key != NIL)
		return 0;
	run->target_empty = 1;
	return exec_load(run, etl_deparse_delete_all(run), SPI_OK_DELETE);
}

/*
 * etl_load_full_after finishes the load of a mode full run and returns the
 * rows it deleted: with a key, the target rows whose key has left the
 * source.
 */
int64
etl_load_full_after(EtlRun *run)
{
	if (run->p->key == NIL)
		return 0;
	return exec_load(run, etl_deparse_delete_vanished(run), SPI_OK_DELETE);
}

/*
 * etl_load_cdc_deletes applies the deletes of a mode cdc run (keys whose
 * last change is a delete) and returns the rows it deleted.
 */
int64
etl_load_cdc_deletes(EtlRun *run)
{
	return exec_load(run, etl_deparse_cdc_delete(run), SPI_OK_DELETE);
}

/*
 * etl_snapshot_classify compares the transformed source with the stored
 * signatures in one read (mode snapshot).
 */
void
etl_snapshot_classify(EtlRun *run, EtlSnapshotDiff *d)
{
	EtlArgs args;

	etl_run_args(run, &args);
	etl_spi_query_parallel(etl_deparse_snapshot_classify(run), &args,
						   run->snapshot);
	d->batch = etl_spi_int64(0, 0, 0);
	d->new_keys = etl_spi_int64(0, 1, 0);
	d->changed = etl_spi_int64(0, 2, 0);
	d->vanished = etl_spi_int64(0, 3, 0);
}

/*
 * etl_snapshot_finish applies what the comparison found besides the load
 * of new and changed rows: the vanished keys are deleted from the target
 * (or, with options.delete_mode 'soft', stamped), keys back in the source
 * revived, and the signatures brought up to date.  When rows of the run
 * were rejected or quarantined, the signatures of new and changed keys are
 * left as they were, so that the next run compares them again (the load is
 * idempotent).  Returns the target rows deleted or stamped.
 */
int64
etl_snapshot_finish(EtlRun *run, EtlSnapshotDiff *d)
{
	char *soft = NULL;
	int64 deleted = 0;

	if (strcmp(etl_option_text(run->p, "delete_mode", "hard"), "soft") == 0)
		soft = etl_option_text(run->p, "soft_delete_column", "_deleted_at");

	if (d->vanished > 0)
		deleted = exec_load(run, etl_deparse_snapshot_delete(run, soft),
							soft ? SPI_OK_UPDATE : SPI_OK_DELETE);
	if (soft && d->new_keys > 0)
		(void) exec_load(run, etl_deparse_snapshot_revive(run, soft),
						 SPI_OK_UPDATE);
	if (d->vanished > 0)
		(void) exec_load(run, etl_deparse_snapshot_forget(run), SPI_OK_DELETE);
	if (d->new_keys + d->changed > 0 && run->dead_letters == NIL &&
		run->quarantined == 0)
		(void) exec_load(run, etl_deparse_snapshot_remember(run),
						 SPI_OK_INSERT);
	return deleted;
}
