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
 *					plain INSERT does the same work without any join; so does
 *					a catch-up step, whose keys are new unless the key's
 *					unique index says otherwise (then it classifies).
 *	  append		the same without the UPDATE: known keys are skipped.
 *	  delete_insert DELETE of the target rows with the batch's keys, then
 *					INSERT of the batch.  In modes snapshot and full, whose
 *					batch is the whole source, it classifies as merge and
 *					replaces only the rows that differ (and inserts the new
 *					keys): an unchanged row is not rewritten.
 *	  partition_swap the partitions the batch touches rebuilt in staging
 *					tables and swapped in with DROP / ATTACH
 *					(swap.c); merge's semantics and counts.  Staged chunks
 *					gather their rows, etl_load_finish() swaps.
 *
 *	  Counts: inserted and updated are what the statements processed;
 *	  unchanged is the batch (from the classification) minus both.  A
 *	  delete_insert that replaces a key the target had counts an updated
 *	  row (not a deleted and an inserted one), so that every extracted row
 *	  is counted once.
 *
 *	  Keys.  A keyed load needs a key that is unique in the target
 *	  (etl_require_unique_key()).  A batch row whose key has a NULL part
 *	  matches no target row and would be inserted again by every run that
 *	  reads it: the load statements raise 23502 for it (etl_null_key()), so
 *	  it becomes a dead letter like any bad row.  A key that appears more
 *	  than once in one batch (several versions of a row in one increment)
 *	  is loaded once: the latest version, the last in the order of the
 *	  watermark column (and the rows' physical order), for merge and
 *	  delete_insert; the first for append, whose later versions are skipped
 *	  as they would be in a later run.  Duplicates are noticed by the
 *	  classification (etl_dup_count) or by the target's unique index (23505);
 *	  the batch is then staged and each statement keeps one row per key
 *	  (run->dedupe), which needs a row-local transform.
 *
 * IDENTIFICATION
 *	  src/loads/load.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "access/table.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "loads/load.h"
#include "loads/swap.h"
#include "loads/swap_build.h"
#include "sql/deparse_batch.h"
#include "sql/deparse_load.h"
#include "sql/deparse_snapshot.h"
#include "sql/deparse_stage.h"
#include "sql/run_state.h"
#include "transform/stage.h"

PG_FUNCTION_INFO_V1(etl_null_key);

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
 * prefer_index_joins: when the batch is known to be small against the
 * target (under 1/20 of its rows), the load's joins with the target find
 * each row by the key's unique index instead of hashing the whole target:
 * hash and merge joins are turned off for its statements.  Returns the GUC
 * nest level to pop (0: nothing changed).  The key's unique index is
 * guaranteed (etl_require_unique_key).
 */
static int
prefer_index_joins(EtlRun *run)
{
	Relation rel;
	double reltuples;
	int nestlevel;

	if (run->rec.rows_extracted < 0 || run->stage_table != NULL)
		return 0;
	rel = table_open(run->target_relid, AccessShareLock);
	reltuples = rel->rd_rel->reltuples;
	table_close(rel, AccessShareLock);
	if (reltuples <= 0 || (double) run->rec.rows_extracted * 20 >= reltuples)
		return 0;
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("enable_hashjoin", "off", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_mergejoin", "off", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
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
 * The pipeline whose last catch-up step in this session met keys the target
 * had (0: none): its next steps classify straight away, without trying the
 * insert first, until a classification finds every key of a step new.
 */
static int64 classify_catch_up_of = 0;

/*
 * insert_batch inserts the whole batch as new rows (also the body of a
 * subtransaction).
 */
static void
insert_batch(EtlRun *run, void *arg)
{
	EtlLoadCounts *c = arg;

	c->inserted =
		exec_load(run, etl_deparse_insert(run, false), SPI_OK_INSERT);
	c->batch = c->inserted;
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
 * insert_if_all_new loads a batch that is expected to hold new keys only
 * (a catch-up step after the first: the source ranges of the steps are
 * disjoint, so each key comes once) with a plain INSERT, in a
 * subtransaction, without classifying it against the target.  The key's
 * unique index, immediate (etl_require_unique_key), raises 23505 for a key
 * the target has, or one the batch holds twice: the subtransaction then
 * rolls back and false tells the caller to classify after all.  Other
 * errors propagate.
 */
static bool
insert_if_all_new(EtlRun *run, EtlLoadCounts *c)
{
	ErrorData *edata;

	if (!etl_in_catch_up(run) || run->stage_table != NULL || run->dedupe ||
		run->p->id == classify_catch_up_of)
		return false;
	edata = etl_in_subxact(insert_batch, run, c, false);
	if (edata == NULL)
		return true;
	if (edata->sqlerrcode != ERRCODE_UNIQUE_VIOLATION)
		ReThrowError(edata);
	FreeErrorData(edata);
	c->inserted = c->batch = 0;
	classify_catch_up_of = run->p->id;
	return false;
}

/*
 * classify sorts the batch against the target (etl_deparse_classify()):
 * rows in the batch, rows with a new key, rows that differ from their
 * target row, and (when not deduplicated) rows whose key an earlier row had
 * (etl_dup_count: never too few, -1 when it cannot tell).
 */
static void
classify(EtlRun *run, int64 *batch, int64 *new_keys, int64 *changed,
		 int64 *dups)
{
	EtlArgs args;

	etl_run_args(run, &args);
	etl_spi_query_parallel(etl_deparse_classify(run), &args, run->snapshot);
	*batch = etl_spi_int64(0, 0, 0);
	*new_keys = etl_spi_int64(0, 1, 0);
	*changed = etl_spi_int64(0, 2, 0);
	*dups = run->dedupe || run->map->key_unique ? 0 : etl_spi_int64(0, 3, -1);
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
 * replaces_changed_only tells whether the run's load is a delete_insert
 * that replaces only the batch rows that differ from their target row: in
 * modes snapshot and full, whose batch is the whole source, so that the
 * rows that did not change are not rewritten at every run (they count as
 * unchanged).  Such a load classifies the batch as merge does.
 */
static bool
replaces_changed_only(EtlRun *run)
{
	return run->p->load == ETL_LOAD_DELETE_INSERT &&
		   (run->p->mode == ETL_MODE_SNAPSHOT ||
			run->p->mode == ETL_MODE_FULL);
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
	int64 dups;
	int64 replaced;
	char *update_sql;
	int nestlevel = 0;

	memset(c, 0, sizeof(*c));
	switch (replaces_changed_only(run) ? ETL_LOAD_MERGE : run->p->load)
	{
		case ETL_LOAD_MERGE:
		case ETL_LOAD_APPEND:
			if (run->p->key == NIL || etl_target_is_empty(run))
			{
				/* a first load: every row is new */
				insert_batch(run, c);
				break;
			}
			if (insert_if_all_new(run, c))
				break;

			/*
			 * A catch-up grows its target step by step: fresh statistics
			 * keep the classification's joins sized right (a stale row
			 * count plans a hash of the whole target that spills); once per
			 * step, not per isolated chunk.
			 */
			if (etl_in_catch_up(run) && run->stage_table == NULL)
				etl_analyze_target(run);
			nestlevel = prefer_index_joins(run);
			classify(run, &c->batch, &new_keys, &changed, &dups);
			if (etl_in_catch_up(run) && run->stage_table == NULL)
				classify_catch_up_of =
					new_keys == c->batch && dups == 0 ? 0 : run->p->id;
			if (dups != 0 && etl_has_duplicate_keys(run))
			{
				if (nestlevel > 0)
					AtEOXact_GUC(true, nestlevel);
				/* nothing written yet: load one row per key instead */
				if (run->stage_table == NULL)
				{
					c->duplicates = true;
					return;
				}
				etl_start_dedupe(run);
				etl_load(run, c);
				return;
			}
			update_sql = run->p->load == ETL_LOAD_MERGE
							 ? etl_deparse_update(run)
						 : run->p->load == ETL_LOAD_APPEND
							 ? etl_deparse_revive(run)
							 : etl_deparse_delete_changed(run);
			if (changed > 0 && update_sql != NULL)
				c->updated = exec_load(run, update_sql,
									   run->p->load == ETL_LOAD_DELETE_INSERT
										   ? SPI_OK_DELETE
										   : SPI_OK_UPDATE);
			/* delete_insert inserts the rows it deleted again */
			replaced = run->p->load == ETL_LOAD_DELETE_INSERT ? c->updated : 0;
			/* every key new (a catch-up step, say): no anti-join needed */
			if (new_keys + replaced > 0)
				c->inserted =
					exec_load(run,
							  etl_deparse_insert(run, new_keys + replaced <
														  c->batch),
							  SPI_OK_INSERT) -
					replaced;
			if (nestlevel > 0)
				AtEOXact_GUC(true, nestlevel);
			c->unchanged = c->batch - c->inserted - c->updated;
			break;
		case ETL_LOAD_DELETE_INSERT:
		{
			/* a key the target had is replaced: an updated row */
			int64 replaced =
				exec_load(run, etl_deparse_delete(run), SPI_OK_DELETE);

			c->batch =
				exec_load(run, etl_deparse_insert(run, false), SPI_OK_INSERT);
			c->updated = Min(replaced, c->batch);
			c->inserted = c->batch - c->updated;
			break;
		}
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
		deleted = exec_load(run, etl_deparse_snapshot_delete(run, soft),
							soft ? SPI_OK_UPDATE : SPI_OK_DELETE);
	if (soft && d->new_keys > 0)
		(void) exec_load(run, etl_deparse_snapshot_revive(run, soft),
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
