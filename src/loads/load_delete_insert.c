/*-------------------------------------------------------------------------
 *
 * load_delete_insert.c
 *	  Load delete_insert: a DELETE of the target rows with the batch's keys,
 *	  then an INSERT of the batch.  A delete_insert that replaces a key the
 *	  target had counts an updated row (not a deleted and an inserted one),
 *	  so that every extracted row is counted once.  Of the rows of one key in
 *	  a batch the last (the latest version) is loaded.
 *
 *	  In modes snapshot and full, whose batch is the whole source
 *	  (EtlBatchSource.whole_source), it
 *	  classifies the batch as merge does (load_merge.c) and replaces only the
 *	  rows that differ (etl_deparse_delete_changed(), then the INSERT of
 *	  those and of the new keys): an unchanged row is not rewritten, and
 *	  counts as unchanged.
 *
 * IDENTIFICATION
 *	  src/loads/load_delete_insert.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/acl.h"

#include "loads/load.h"
#include "loads/load_ops.h"
#include "sql/deparse_load.h"

/*
 * delete_insert_load writes the batch with load delete_insert.
 */
static void
delete_insert_load(EtlRun *run, EtlLoadCounts *c)
{
	int64 replaced;

	/* a whole source: only the rows that differ are replaced */
	if (run->map->source.whole_source)
	{
		etl_load_classified(run, c, etl_deparse_delete_changed, true);
		return;
	}

	/* a key the target had is replaced: an updated row */
	replaced = etl_load_exec(run, etl_deparse_delete(etl_batch_sql(run)),
							 SPI_OK_DELETE);
	c->batch = etl_load_exec(
		run, etl_deparse_insert(etl_batch_sql(run), false), SPI_OK_INSERT);
	c->updated = Min(replaced, c->batch);
	c->inserted = c->batch - c->updated;
}

const EtlLoadOps etl_load_delete_insert = {
	.name = "delete_insert",
	.target_privileges = ACL_SELECT | ACL_INSERT | ACL_DELETE,
	.needs_key = true,
	.key_needs_unique_index = true,
	.keeps_first_version = false,
	.classifies = false,
	.classifies_whole_source = true,
	.recheck_empty = true,
	.check_definition = NULL,
	.load = delete_insert_load,
	.finish = NULL,
};
