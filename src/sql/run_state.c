/*-------------------------------------------------------------------------
 *
 * run_state.c
 *	  The positional arguments every statement of a run may reference
 *	  (EtlRunParam), and the relations of a run as they are now.
 *
 * IDENTIFICATION
 *	  src/sql/run_state.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "sql/columns.h"
#include "sql/names.h"
#include "sql/run_state.h"

/*
 * etl_run_args fills the positional arguments every statement of a run may
 * reference (EtlRunParam); absent values are NULL.
 */
void
etl_run_args(EtlRun *run, EtlArgs *args)
{
	Oid wmtype = OidIsValid(run->wm_type) ? run->wm_type : TEXTOID;

	etl_args_init(args);
	etl_args_add(args, wmtype, run->from, !run->has_from);
	etl_args_add(args, OidIsValid(run->hi_type) ? run->hi_type : wmtype,
				 run->hi, !run->has_hi);
	etl_args_add(args, wmtype, run->cutoff, !run->has_cutoff);
	etl_args_add_int8(args, run->rec.run_id);
	etl_args_add(args, TIMESTAMPTZOID,
				 TimestampTzGetDatum(run->rec.started_at), false);
	etl_args_add(args, wmtype, run->lo, !run->has_lo);
	etl_args_add_int8(args, Max(run->p->batch_size - 1, 0));
	etl_args_add_int8(args, run->rn_lo);
	etl_args_add_int8(args, run->rn_hi);
	etl_args_add_text(args, run->xid_prev);
	etl_args_add_int8(args, run->p->id);
	Assert(args->n == ETL_NPARAMS);
}

/*
 * etl_run_resolve_relations finds the source and target of a run as they
 * are now (42P01 naming the pipeline when one has gone).
 */
void
etl_run_resolve_relations(EtlRun *run)
{
	EtlPipeline *p = run->p;

	run->source_relid = etl_resolve_relation(p->source, "source", true);
	if (!OidIsValid(run->source_relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("source relation %s of pipeline \"%s\" does not exist",
						p->source, p->name),
				 errhint("Recreate it, or point the pipeline elsewhere with "
						 "etl_alter_pipeline(%s, source => ...).",
						 quote_literal_cstr(p->name))));
	run->target_relid = etl_resolve_relation(p->target, "target", true);
	if (!OidIsValid(run->target_relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("target relation %s of pipeline \"%s\" does not exist",
						p->target, p->name),
				 errhint("Recreate it, or point the pipeline elsewhere with "
						 "etl_alter_pipeline(%s, target => ...).",
						 quote_literal_cstr(p->name))));
	run->source_sql = etl_relation_sql(run->source_relid);
	run->target_sql = etl_relation_sql(run->target_relid);
	run->source_relkind = get_rel_relkind(run->source_relid);
}

/*
 * etl_batch_sql returns the descriptor of run's batch as it stands (a new
 * one each call, in the current memory context), which the SQL builders
 * read instead of the run.
 */
const EtlBatchSql *
etl_batch_sql(EtlRun *run)
{
	EtlBatchSql *b = palloc0(sizeof(EtlBatchSql));

	b->p = run->p;
	b->map = run->map;
	b->source_relid = run->source_relid;
	b->target_relid = run->target_relid;
	b->source_sql = run->source_sql;
	b->target_sql = run->target_sql;
	b->source_relkind = run->source_relkind;
	b->wm_type = run->wm_type;
	b->has_lo = run->has_lo;
	b->has_from = run->has_from;
	b->from_inclusive = run->from_inclusive;
	b->rereads = run->rereads;
	b->has_hi = run->has_hi;
	b->hi_inclusive = run->hi_inclusive;
	b->has_cutoff = run->has_cutoff;
	b->target_empty = run->target_empty;
	b->stage_table = run->stage_table;
	b->stage_columns = run->stage_columns;
	b->stage_columns_s = run->stage_columns_s;
	b->stage_held_only = run->stage_held_only;
	b->dedupe = run->dedupe;
	return b;
}
