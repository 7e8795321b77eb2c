/*-------------------------------------------------------------------------
 *
 * deparse_stage_table.c
 *	  The statements that make, fill, index, mark and drop a run's stage
 *	  table: pg_temp.<stage> (etl_rn bigint, etl_held boolean, the source's
 *	  columns).  Each builder takes what it names as arguments and appends to
 *	  the caller's StringInfo; none reads the state of a run or executes.
 *
 * IDENTIFICATION
 *	  src/sql/deparse_stage_table.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/tupdesc.h"
#include "catalog/pg_attribute.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "sql/deparse_stage_table.h"

/*
 * etl_deparse_stage_columns appends the columns of desc that are not
 * dropped, quoted and comma-separated, to cols, and the same, each
 * qualified by etl_s., to qcols.  Both must be initialised.
 */
void
etl_deparse_stage_columns(StringInfo cols, StringInfo qcols, TupleDesc desc)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (a->attisdropped)
			continue;
		appendStringInfo(cols, "%s%s", cols->len ? ", " : "",
						 quote_identifier(NameStr(a->attname)));
		appendStringInfo(qcols, "%setl_s.%s", qcols->len ? ", " : "",
						 quote_identifier(NameStr(a->attname)));
	}
}

/*
 * etl_deparse_stage_name appends the name of the stage of run run_id
 * (etl_stage_<run id>, unqualified: it lives in pg_temp).
 */
void
etl_deparse_stage_name(StringInfo buf, int64 run_id)
{
	appendStringInfo(buf, "etl_stage_" INT64_FORMAT, run_id);
}

/*
 * etl_deparse_stage_create appends the CREATE TEMP TABLE of stage_table,
 * with etl_rn, etl_held and the columns of source_sql (a qualified,
 * quoted relation name), dropped at commit.
 */
void
etl_deparse_stage_create(StringInfo buf, const char *stage_table,
						 const char *source_sql)
{
	appendStringInfo(buf,
					 "CREATE TEMP TABLE %s (etl_rn pg_catalog.int8 NOT NULL,"
					 " etl_held pg_catalog.bool NOT NULL DEFAULT false,"
					 " LIKE %s) ON COMMIT DROP",
					 stage_table, source_sql);
}

/*
 * etl_deparse_stage_insert appends the INSERT of the rows of select_sql
 * (etl_rn, then the columns stage_columns names) into stage_table.
 */
void
etl_deparse_stage_insert(StringInfo buf, const char *stage_table,
						 const char *stage_columns, const char *select_sql)
{
	appendStringInfo(buf, "INSERT INTO pg_temp.%s (etl_rn, %s) %s",
					 stage_table, stage_columns, select_sql);
}

/*
 * etl_deparse_stage_index appends the CREATE INDEX of stage_table on
 * etl_rn, by which parts of the batch are read.
 */
void
etl_deparse_stage_index(StringInfo buf, const char *stage_table)
{
	appendStringInfo(buf, "CREATE INDEX ON pg_temp.%s (etl_rn)", stage_table);
}

/*
 * etl_deparse_stage_analyze appends the ANALYZE of stage_table.
 */
void
etl_deparse_stage_analyze(StringInfo buf, const char *stage_table)
{
	appendStringInfo(buf, "ANALYZE pg_temp.%s", stage_table);
}

/*
 * etl_deparse_stage_drop appends the DROP TABLE of stage_table.
 */
void
etl_deparse_stage_drop(StringInfo buf, const char *stage_table)
{
	appendStringInfo(buf, "DROP TABLE pg_temp.%s", stage_table);
}

/*
 * append_rn_list appends a condition that staged row etl_rn is one of the
 * count row numbers rns (count > 0), as a constant array.
 */
static void
append_rn_list(StringInfo buf, const int64 *rns, int count)
{
	appendStringInfoString(buf,
						   " WHERE etl_rn OPERATOR(pg_catalog.=) ANY ('{");
	for (int i = 0; i < count; i++)
		appendStringInfo(buf, "%s" INT64_FORMAT, i > 0 ? "," : "", rns[i]);
	appendStringInfoString(buf, "}'::pg_catalog.int8[])");
}

/*
 * etl_deparse_stage_forget appends the DELETE of the count staged rows rns
 * (count > 0) from stage_table.
 */
void
etl_deparse_stage_forget(StringInfo buf, const char *stage_table,
						 const int64 *rns, int count)
{
	appendStringInfo(buf, "DELETE FROM pg_temp.%s", stage_table);
	append_rn_list(buf, rns, count);
}

/*
 * etl_deparse_stage_taken appends the SELECT of the distinct row numbers of
 * stage_table between $1 and $2 that satisfy filter (a condition on a
 * staged row, unqualified: etl_stage_filter()).
 */
void
etl_deparse_stage_taken(StringInfo buf, const char *stage_table,
						const char *filter)
{
	appendStringInfo(buf,
					 "SELECT DISTINCT etl_rn FROM pg_temp.%s"
					 " WHERE etl_rn BETWEEN $1 AND $2 AND %s",
					 stage_table, filter);
}

/*
 * etl_deparse_stage_dead_letters appends the SELECT that stages dead
 * letters: for each id of $1 (int8[]) that is a dead letter of pipeline $2,
 * its position in $1 as the row number, then its record as a row of
 * source_sql (a qualified, quoted relation).
 */
void
etl_deparse_stage_dead_letters(StringInfo buf, const char *source_sql)
{
	appendStringInfo(buf,
					 "SELECT u.rn, r.*"
					 " FROM pg_catalog.unnest($1::pg_catalog.int8[])"
					 " WITH ORDINALITY AS u(id, rn)"
					 " JOIN etl.dead_letters d"
					 " ON d.id OPERATOR(pg_catalog.=) u.id"
					 " AND d.pipeline_id OPERATOR(pg_catalog.=) $2,"
					 " LATERAL pg_catalog.jsonb_populate_record(NULL::%s,"
					 " d.record) r",
					 source_sql);
}

/*
 * etl_deparse_stage_hold appends the UPDATE that marks the count staged
 * rows rns of stage_table held back from the loads (count > 0).
 */
void
etl_deparse_stage_hold(StringInfo buf, const char *stage_table,
					   const int64 *rns, int count)
{
	appendStringInfo(buf, "UPDATE pg_temp.%s SET etl_held = true",
					 stage_table);
	append_rn_list(buf, rns, count);
}
