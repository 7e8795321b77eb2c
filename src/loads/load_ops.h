/*-------------------------------------------------------------------------
 *
 * load_ops.h
 *	  The loads as a table: what each load (merge, append, delete_insert,
 *	  partition_swap) needs of a definition and how it writes a batch.  One
 *	  file per load (load_<name>.c) fills one EtlLoadOps; load_ops.c lists
 *	  them by EtlLoad.
 *
 * IDENTIFICATION
 *	  src/loads/load_ops.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_LOAD_OPS_H
#define ETL_LOAD_OPS_H

#include "postgres.h"

#include "nodes/parsenodes.h"

#include "catalog/pipelines.h"
#include "loads/counts.h"
#include "sql/run_state.h"

typedef struct EtlLoadOps
{
	const char *name; /* as in etl.pipelines.load */

	/* the privileges the owner needs on the target (ACL_SELECT etc.) */
	AclMode target_privileges;

	/*
	 * whether the load needs a key; one that does not inserts every row it
	 * reads when it has none
	 */
	bool needs_key;

	/* whether the key must be unique by a unique index of the target */
	bool key_needs_unique_index;

	/*
	 * of the rows of one key in a batch, the one kept (run->dedupe): false
	 * the last (the latest version), true the first (later versions are
	 * skipped, as a later run would)
	 */
	bool keeps_first_version;

	/*
	 * whether the batch is classified against the target: always, or only
	 * when the batch is the whole source (EtlBatchSource.whole_source); see
	 * etl_load_classifies()
	 */
	bool classifies;
	bool classifies_whole_source;

	/*
	 * whether an isolated load asks before each part whether the target is
	 * empty, also when an earlier part found it so (its DELETE may empty it)
	 */
	bool recheck_empty;

	/* further checks of a definition (NULL: none) */
	void (*check_definition)(EtlPipeline *p, Oid source, Oid target);

	/* writes the batch (or staged rows rn_lo .. rn_hi); see etl_load() */
	void (*load)(EtlRun *run, EtlLoadCounts *c);

	/* completes the load after its last load() call (NULL: nothing) */
	void (*finish)(EtlRun *run);
} EtlLoadOps;

extern const EtlLoadOps etl_load_merge;
extern const EtlLoadOps etl_load_append;
extern const EtlLoadOps etl_load_delete_insert;
extern const EtlLoadOps etl_load_partition_swap;

extern const EtlLoadOps *etl_load_ops(EtlLoad load);
extern void etl_load_require_unique_key(EtlPipeline *p, Oid target);
extern bool etl_load_classifies(const EtlRun *run);

/* load_merge.c: the classification and writes merge and append share (and
 * delete_insert over a whole source) */
extern void etl_load_classified(EtlRun *run, EtlLoadCounts *c,
								char *(*update_sql)(const EtlBatchSql *b),
								bool replace);

#endif /* ETL_LOAD_OPS_H */
