/*-------------------------------------------------------------------------
 *
 * explain.c
 *	  etl_explain(): the plans of the statements the next run of a pipeline
 *	  would execute, with the range the run would take.
 *
 *	  It prepares a run as etl_run does (the owner check, the columns, the
 *	  range and its snapshot, as the pipeline owner in a security-restricted
 *	  operation) and EXPLAINs, without executing them, the statement that
 *	  reads the range's statistics and the statement that loads the batch.
 *	  For a source behind postgres_fdw, the Remote SQL shows the watermark
 *	  predicate pushed to the remote server.  Nothing is written and no
 *	  lock of the pipeline is taken; in mode serial the range waits for the
 *	  source's writers, as a run would.
 *
 * IDENTIFICATION
 *	  src/api/explain.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "base/entry.h"
#include "base/security.h"
#include "base/spi_util.h"
#include "catalog/pipelines.h"
#include "loads/load_ops.h"
#include "modes/extract.h"
#include "modes/mode.h"
#include "sql/columns.h"
#include "sql/deparse_batch.h"
#include "sql/deparse_load.h"
#include "sql/run_state.h"

PG_FUNCTION_INFO_V1(etl_explain);

/*
 * explain_into appends the plan lines of a statement, after a heading.
 */
static void
explain_into(EtlRun *run, const char *heading, const char *sql, List **lines)
{
	EtlArgs args;
	uint64 n;

	*lines = lappend(*lines, pstrdup(heading));
	etl_run_args(run, &args);
	n = etl_spi_exec(psprintf("EXPLAIN (VERBOSE, COSTS OFF) %s", sql), &args,
					 SPI_OK_UTILITY, run->snapshot);
	for (uint64 i = 0; i < n; i++)
		*lines = lappend(*lines, etl_spi_text(i, 0));
}

/*
 * etl_explain(pipeline text) RETURNS SETOF text
 *
 * The plans of the next run's statistics query and load statement.
 */
Datum
etl_explain(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	EtlEntry e;
	EtlRun run = { 0 };
	EtlUserSwitch sw = { 0 };
	List *lines = NIL;
	ListCell *lc;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("pipeline name must not be NULL")));
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	etl_entry_begin(&e, ETL_ENTRY_PINNED);

	run.p = etl_catalog_load(text_to_cstring(PG_GETARG_TEXT_PP(0)), false,
							 InvalidSnapshot);
	etl_check_pipeline_owner(run.p->name, run.p->owner, "explain");
	run.rec.pipeline_id = run.p->id;
	run.rec.pipeline = run.p->name;
	run.rec.started_at = GetCurrentTimestamp();
	run.target_empty = -1;
	etl_run_resolve_relations(&run);

	etl_become_owner(&sw, run.p->owner);
	run.map = etl_resolve_columns(run.p, run.source_relid, run.target_relid);
	etl_extract_begin(&run);
	if (run.p->watermark_column != NULL)
		explain_into(&run, "-- extract: the range's count and newest value",
					 etl_deparse_stats(etl_batch_sql(&run)), &lines);
	if (!etl_load_classifies(&run))
		explain_into(&run, "-- load: the batch into the target",
					 etl_deparse_insert(etl_batch_sql(&run), false), &lines);
	else
		explain_into(&run,
					 "-- load: the batch against the target (merge and "
					 "append classify it first, delete_insert over a "
					 "whole source too)",
					 etl_deparse_classify(etl_batch_sql(&run)), &lines);
	etl_extract_end(&run);
	etl_restore_user(&sw);

	foreach (lc, lines)
	{
		Datum value;
		bool isnull = false;
		MemoryContext old = etl_entry_to_caller(&e);

		value = CStringGetTextDatum((char *) lfirst(lc));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value,
							 &isnull);
		MemoryContextSwitchTo(old);
	}
	etl_entry_end(&e);
	return (Datum) 0;
}
