/*-------------------------------------------------------------------------
 *
 * load_append.c
 *	  Load append: merge (load_merge.c) without the UPDATE: new keys are
 *	  inserted, known keys skipped (a soft-deleted row of mode snapshot whose
 *	  key is back is revived).  Of the rows of one key in a batch the first
 *	  is kept, its later versions skipped as they would be in a later run.
 *	  Without a key, every row read is inserted.
 *
 * IDENTIFICATION
 *	  src/loads/load_append.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/acl.h"

#include "loads/load_ops.h"
#include "sql/deparse_load.h"

/*
 * append_load writes the batch with load append: new keys inserted, known
 * keys left as they are.
 */
static void
append_load(EtlRun *run, EtlLoadCounts *c)
{
	etl_load_classified(run, c, etl_deparse_revive, false);
}

const EtlLoadOps etl_load_append = {
	.name = "append",
	.target_privileges = ACL_SELECT | ACL_INSERT,
	.needs_key = false,
	.key_needs_unique_index = true,
	.keeps_first_version = true,
	.classifies = true,
	.recheck_empty = false,
	.check_definition = NULL,
	.load = append_load,
	.finish = NULL,
};
