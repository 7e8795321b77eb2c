/*-------------------------------------------------------------------------
 *
 * load_merge.c
 *	  Load merge, where a merge happens: one read-only join sorts the batch
 *	  into new keys, changed rows and unchanged rows
 *	  (etl_deparse_classify()); then an UPDATE of the changed rows (their row
 *	  hash differs, etl_deparse_update()) and an INSERT of the new keys
 *	  (etl_deparse_insert()), each only when there is something for it.  An
 *	  unchanged row is never touched, so a re-run writes nothing.  When the
 *	  target is empty (a first load) a plain INSERT does the same work
 *	  without any join; so does a catch-up step, whose keys are new unless
 *	  the key's unique index says otherwise (then it classifies).
 *
 *	  Counts: inserted and updated are what the statements processed;
 *	  unchanged is the batch (from the classification) minus both.
 *
 *	  Keys.  The key must be unique in the target (etl_require_unique_key()).
 *	  A batch row whose key has a NULL part matches no target row and would
 *	  be inserted again by every run that reads it: the statements raise
 *	  23502 for it (etl_null_key()), so it becomes a dead letter like any bad
 *	  row.  A key that appears more than once in one batch (several versions
 *	  of a row in one increment) is loaded once: the latest version, the last
 *	  in the order of the watermark column (and the rows' physical order).
 *	  Duplicates are noticed by the classification (etl_dup_count) or by the
 *	  target's unique index (23505); the batch is then staged and each
 *	  statement keeps one row per key (run->dedupe, etl_start_dedupe()).
 *
 *	  Load append (load_append.c) shares all of this but the UPDATE.  The
 *	  statements are built in sql/deparse_load.c from the batch of
 *	  sql/deparse_batch.c.
 *
 * IDENTIFICATION
 *	  src/loads/load_merge.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/rel.h"

#include "loads/load.h"
#include "loads/load_ops.h"
#include "sql/deparse_load.h"
#include "sql/run_state.h"

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

	c->inserted = etl_load_exec(
		run, etl_deparse_insert(etl_batch_sql(run), false), SPI_OK_INSERT);
	c->batch = c->inserted;
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
	etl_spi_query_parallel(etl_deparse_classify(etl_batch_sql(run)), &args,
						   run->snapshot);
	*batch = etl_spi_int64(0, 0, 0);
	*new_keys = etl_spi_int64(0, 1, 0);
	*changed = etl_spi_int64(0, 2, 0);
	*dups = run->dedupe || run->map->key_unique ? 0 : etl_spi_int64(0, 3, -1);
}

/*
 * etl_load_classified loads the batch the way merge and append do (see the
 * header): a plain INSERT into an empty target or a catch-up step of new
 * keys; otherwise the classification, then update_sql (the statement for
 * the changed rows, NULL: none) and the INSERT of the new keys.  With
 * replace, update_sql DELETEs the changed rows and the INSERT puts their
 * batch rows back (load delete_insert over a whole source); they count as
 * updated.  Keys twice in an unstaged batch set c->duplicates and write
 * nothing.
 */
void
etl_load_classified(EtlRun *run, EtlLoadCounts *c,
					char *(*update_sql)(const EtlBatchSql *b), bool replace)
{
	int64 new_keys;
	int64 changed;
	int64 dups;
	int64 replaced;
	char *update;
	int nestlevel;

	if (run->p->key == NIL || etl_target_is_empty(run))
	{
		/* a first load: every row is new */
		insert_batch(run, c);
		return;
	}
	if (insert_if_all_new(run, c))
		return;

	/*
	 * A catch-up grows its target step by step: fresh statistics keep the
	 * classification's joins sized right (a stale row count plans a hash of
	 * the whole target that spills); once per step, not per isolated chunk.
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
	update = update_sql(etl_batch_sql(run));
	if (changed > 0 && update != NULL)
		c->updated = etl_load_exec(run, update,
								   replace ? SPI_OK_DELETE : SPI_OK_UPDATE);
	/* a load that replaces inserts the rows it deleted again */
	replaced = replace ? c->updated : 0;
	/* every key new (a catch-up step, say): no anti-join needed */
	if (new_keys + replaced > 0)
		c->inserted =
			etl_load_exec(run,
						  etl_deparse_insert(etl_batch_sql(run),
											 new_keys + replaced < c->batch),
						  SPI_OK_INSERT) -
			replaced;
	if (nestlevel > 0)
		AtEOXact_GUC(true, nestlevel);
	c->unchanged = c->batch - c->inserted - c->updated;
}

/*
 * merge_load writes the batch with load merge: new keys inserted, changed
 * rows updated.
 */
static void
merge_load(EtlRun *run, EtlLoadCounts *c)
{
	etl_load_classified(run, c, etl_deparse_update, false);
}

const EtlLoadOps etl_load_merge = {
	.name = "merge",
	.target_privileges = ACL_SELECT | ACL_INSERT | ACL_UPDATE,
	.needs_key = true,
	.key_needs_unique_index = true,
	.keeps_first_version = false,
	.classifies = true,
	.recheck_empty = false,
	.check_definition = NULL,
	.load = merge_load,
	.finish = NULL,
};
