/*-------------------------------------------------------------------------
 *
 * load_ops.c
 *	  The table of the loads: one EtlLoadOps per EtlLoad, each defined in
 *	  its own file (load_merge.c, load_append.c, load_delete_insert.c,
 *	  load_partition_swap.c).
 *
 * IDENTIFICATION
 *	  src/loads/load_ops.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "loads/load_ops.h"
#include "sql/columns.h"

/* in the order of EtlLoad */
static const EtlLoadOps *const load_table[] = {
	&etl_load_merge,
	&etl_load_append,
	&etl_load_delete_insert,
	&etl_load_partition_swap,
};

StaticAssertDecl(lengthof(load_table) == ETL_LOAD_COUNT, "load table");

/*
 * etl_load_ops returns the ops of a load.
 */
const EtlLoadOps *
etl_load_ops(EtlLoad load)
{
	Assert(load >= 0 && load < ETL_LOAD_COUNT);
	Assert(strcmp(load_table[load]->name, etl_load_names[load]) == 0);
	return load_table[load];
}

/*
 * etl_load_classifies tells whether the run's load classifies its batch
 * against the target (its key and its column map resolved) before writing
 * it, as etl_explain shows: a keyless load never does.
 */
bool
etl_load_classifies(const EtlRun *run)
{
	const EtlLoadOps *ops = etl_load_ops(run->p->load);

	if (run->p->key == NIL)
		return false;
	return ops->classifies ||
		   (ops->classifies_whole_source && run->map->source.whole_source);
}

/*
 * etl_load_require_unique_key raises 42P10 when the pipeline's load matches
 * batch rows with target rows by a unique index of the target and the key
 * (if any) has none (etl_require_unique_key()); a load that keeps keys
 * unique itself passes.
 */
void
etl_load_require_unique_key(EtlPipeline *p, Oid target)
{
	if (etl_load_ops(p->load)->key_needs_unique_index)
		etl_require_unique_key(p, target);
}
