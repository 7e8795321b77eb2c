/*-------------------------------------------------------------------------
 *
 * mode.c
 *	  The table of the modes: one EtlModeOps per EtlMode, each defined in its
 *	  own file (mode_timestamp.c, mode_serial.c, mode_xid.c, mode_cdc.c,
 *	  mode_snapshot.c, mode_full.c); and the column map of a pipeline with
 *	  what its mode and its load tell the SQL builders.
 *
 * IDENTIFICATION
 *	  src/modes/mode.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "loads/load_ops.h"
#include "modes/mode.h"
#include "sql/reserved.h"

/* in the order of EtlMode */
static const EtlModeOps *const mode_table[] = {
	&etl_mode_timestamp, &etl_mode_serial,	 &etl_mode_xid,
	&etl_mode_cdc,		 &etl_mode_snapshot, &etl_mode_full,
};

StaticAssertDecl(lengthof(mode_table) == ETL_MODE_COUNT, "mode table");

/*
 * etl_mode_ops returns the ops of a mode.
 */
const EtlModeOps *
etl_mode_ops(EtlMode mode)
{
	Assert(mode >= 0 && mode < ETL_MODE_COUNT);
	Assert(strcmp(mode_table[mode]->name, etl_mode_names[mode]) == 0);
	return mode_table[mode];
}

/*
 * etl_describe_batch fills *descr with what the pipeline's mode and load
 * tell the SQL builders about its batch.
 */
void
etl_describe_batch(EtlPipeline *p, EtlBatchSource *descr)
{
	const EtlModeOps *mode = etl_mode_ops(p->mode);

	memset(descr, 0, sizeof(*descr));
	descr->keep_first = etl_load_ops(p->load)->keeps_first_version;
	if (mode->describe != NULL)
		mode->describe(p, descr);
}

/*
 * etl_resolve_columns works out the column map of a pipeline
 * (etl_map_columns(), the owner's privileges on what the transform reads
 * checked) with the descriptor of its batch that its mode and its load
 * fill, and refuses a source or transform with a column of a name the
 * generated SQL reserves (etl_refuse_reserved_columns()).  Runs under the
 * pinned settings.
 */
EtlColumnMap *
etl_resolve_columns(EtlPipeline *p, Oid source_relid, Oid target_relid)
{
	EtlColumnMap *map =
		etl_resolve_columns_ext(p, source_relid, target_relid, true);

	etl_refuse_reserved_columns(p, source_relid, map);
	return map;
}

/*
 * etl_resolve_columns_ext is etl_resolve_columns(); without check_perms the
 * owner's privileges on what the transform reads are not checked (lineage
 * reads the definition only).
 */
EtlColumnMap *
etl_resolve_columns_ext(EtlPipeline *p, Oid source_relid, Oid target_relid,
						bool check_perms)
{
	EtlBatchSource descr;

	etl_describe_batch(p, &descr);
	return etl_map_columns(p, source_relid, target_relid, check_perms, &descr);
}

/*
 * etl_mode_load_range is the load of the modes that take a range: the batch
 * is loaded when the range holds rows (or may: -1).
 */
void
etl_mode_load_range(EtlRun *run, EtlLoadBatchFn load_batch)
{
	if (run->rec.rows_extracted != 0)
		load_batch(run);
}
