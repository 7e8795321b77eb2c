/*-------------------------------------------------------------------------
 *
 * load.c
 *	  Loading a run's batch: etl_load() looks the pipeline's load up in the
 *	  table of the loads (load_ops.c; one file per load, load_<name>.c) and
 *	  runs it; what the loads share -- whether the target is empty, the
 *	  duplicate keys of a batch and loading one row per key, the NULL key of
 *	  a batch row -- and what modes full, cdc and snapshot do around it.
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
		run->target_empty = etl_spi_exec(etl_deparse_target_probe(run), NULL,
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
	etl_spi_exec(psprintf("ANALYZE %s", run->target_sql), NULL, SPI_OK_UTILITY,
				 InvalidSnapshot);
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
	return etl_spi_exec(etl_deparse_dup_keys(run), &args, SPI_OK_SELECT,
						run->snapshot) > 0;
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
	if (etl_spi_exec(etl_deparse_dup_per_row(run), &args, SPI_OK_SELECT,
					 run->snapshot) > 0)
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
	return etl_load_exec(run, etl_deparse_delete_all(run), SPI_OK_DELETE);
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
	return etl_load_exec(run, etl_deparse_delete_vanished(run), SPI_OK_DELETE);
}

/*
 * etl_load_cdc_deletes applies the deletes of a mode cdc run (keys whose
 * last change is a delete) and returns the rows it deleted.
 */
int64
etl_load_cdc_deletes(EtlRun *run)
{
	return etl_load_exec(run, etl_deparse_cdc_delete(run), SPI_OK_DELETE);
}

/* rows of signatures read and written at a time */
#define SIGNATURE_CHUNK 10000

/*
 * write_signatures brings the stored signatures up to date from a query
 * that runs as the pipeline owner (it reads the transformed source): with
 * remember, one that returns key hash, row hash and key of the signatures
 * to store (all_new: none is stored yet); otherwise one that returns the
 * key hashes of the signatures to delete.  Its rows are read in chunks and
 * written as the extension owner, the only role that writes
 * etl.snapshot_signatures, from arrays in memory: the writing statements
 * read nothing the pipeline owner can change.
 */
static void
write_signatures(EtlRun *run, const char *query, bool remember, bool all_new)
{
	EtlArgs args;
	Portal portal;
	MemoryContext chunk_cxt = AllocSetContextCreate(
		CurrentMemoryContext, "etl_ext signatures", ALLOCSET_DEFAULT_SIZES);

	etl_run_args(run, &args);
	portal = etl_spi_cursor_open(query, &args, run->snapshot);
	while (etl_spi_cursor_fetch(portal, SIGNATURE_CHUNK) > 0)
	{
		MemoryContext old = MemoryContextSwitchTo(chunk_cxt);
		Datum key_hashes = etl_spi_column_array(0);

		if (remember)
		{
			Datum row_hashes = etl_spi_column_array(1);
			Datum keys = etl_spi_column_array(2);

			etl_catalog_remember_signatures(run->p->id, key_hashes, row_hashes,
											keys, all_new);
		}
		else
			etl_catalog_forget_signatures(run->p->id, key_hashes);
		MemoryContextSwitchTo(old);
		MemoryContextReset(chunk_cxt);
	}
	etl_spi_cursor_close(portal);
	MemoryContextDelete(chunk_cxt);
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
 * etl_snapshot_reject_repeats hands to hooks->rejected, as bad rows of the
 * stage "load", the source rows a snapshot run left out because their key
 * repeats in the source: the dedupe load kept one row per key (the one
 * stored last), and without a watermark column nothing tells whether
 * another one is newer, so each of the others is a dead letter whose
 * message names the key.  Call after the load, before the stage is
 * dropped; returns how many.
 */
int64
etl_snapshot_reject_repeats(EtlRun *run, EtlIsolateHooks *hooks)
{
	StringInfoData names;
	ListCell *lc;
	EtlArgs args;
	int64 n;
	int64 *rns;
	char **keys;

	if (!run->dedupe || run->stage_table == NULL)
		return 0;
	initStringInfo(&names);
	foreach (lc, run->map->columns)
		if (((EtlColumn *) lfirst(lc))->is_key)
			appendStringInfo(&names, "%s%s", names.len ? ", " : "",
							 ((EtlColumn *) lfirst(lc))->name);

	run->rn_lo = 1;
	run->rn_hi = run->stage_rows;
	etl_run_args(run, &args);
	n = (int64) etl_spi_exec(etl_deparse_repeated_versions(run), &args,
							 SPI_OK_SELECT, run->snapshot);
	rns = palloc(sizeof(int64) * Max(n, 1));
	keys = palloc(sizeof(char *) * Max(n, 1));
	for (int64 i = 0; i < n; i++)
	{
		rns[i] = etl_spi_int64(i, 0, 0);
		keys[i] = etl_spi_text(i, 1);
	}
	for (int64 i = 0; i < n; i++)
	{
		ErrorData *edata = palloc0(sizeof(ErrorData));
		char *record;

		run->rn_lo = run->rn_hi = rns[i];
		etl_run_args(run, &args);
		etl_spi_exec(etl_deparse_stage_record(run), &args, SPI_OK_SELECT,
					 run->snapshot);
		record = etl_spi_text(0, 0);
		edata->sqlerrcode = ERRCODE_UNIQUE_VIOLATION;
		edata->message = psprintf("key (%s)=%s repeats in the source of "
								  "snapshot pipeline \"%s\"",
								  names.data, keys[i], run->p->name);
		edata->detail = pstrdup(
			"A snapshot loads one row per key, and without a watermark "
			"column nothing tells which version is the latest: the row "
			"stored last was loaded, this one was not.");
		hooks->rejected(run, rns[i], "load", edata, record, hooks->arg);
	}
	run->rn_lo = 1;
	run->rn_hi = run->stage_rows;
	return n;
}

/*
 * etl_snapshot_finish applies what the comparison found besides the load
 * of new and changed rows: the vanished keys are deleted from the target
 * (or, with options.delete_mode 'soft', stamped), keys back in the source
 * revived, and the signatures brought up to date.  When rows of the run
 * were rejected or quarantined, the signatures of new and changed keys are
 * left as they were, so that the next run compares them again (the load is
 * idempotent); rows rejected again (pending already as dead letters) too.
 * Rows left out because their key repeats (etl_snapshot_reject_repeats())
 * do not hold the others back: the signatures of all other keys are
 * stored, none of a repeated key, which is compared again.  Returns the
 * target rows deleted or stamped.
 */
int64
etl_snapshot_finish(EtlRun *run, EtlSnapshotDiff *d)
{
	char *soft = NULL;
	int64 deleted = 0;

	if (strcmp(etl_option_text(run->p, "delete_mode", "hard"), "soft") == 0)
		soft = etl_option_text(run->p, "soft_delete_column", "_deleted_at");

	if (d->vanished > 0)
		deleted = etl_load_exec(run, etl_deparse_snapshot_delete(run, soft),
								soft ? SPI_OK_UPDATE : SPI_OK_DELETE);
	if (soft && d->new_keys > 0)
		(void) etl_load_exec(run, etl_deparse_snapshot_revive(run, soft),
							 SPI_OK_UPDATE);
	if (d->vanished > 0)
		write_signatures(run, etl_deparse_snapshot_vanished_keys(run), false,
						 false);
	if (d->new_keys + d->changed > 0 &&
		run->dead_letter_count + run->known_rejects == run->repeat_rejects)
	{
		bool none_yet =
			d->new_keys == d->batch && d->changed == 0 && d->vanished == 0;

		write_signatures(run,
						 etl_deparse_snapshot_signatures(
							 run, none_yet, run->repeat_rejects > 0),
						 true, none_yet);
	}
	return deleted;
}
