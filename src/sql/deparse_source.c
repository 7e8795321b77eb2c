/*-------------------------------------------------------------------------
 *
 * deparse_source.c
 *	  The statements a mode runs on a run's source and target outside the
 *	  batch: the largest value of the watermark column (modes serial and
 *	  cdc), the first row whose watermark column holds no position, the count
 *	  of the rows past a watermark, the ANALYZE of a target, and the
 *	  ALTER TABLE that adds a source's new columns to the target (schema
 *	  drift).  Each builder takes relations and columns as quoted SQL names
 *	  and appends to the caller's StringInfo; none reads the state of a run
 *	  or executes.
 *
 * IDENTIFICATION
 *	  src/sql/deparse_source.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"

#include "sql/deparse_source.h"

/*
 * etl_deparse_source_max appends the SELECT of the largest value of column
 * (quoted) in source_sql (a qualified, quoted relation).
 */
void
etl_deparse_source_max(StringInfo buf, const char *source_sql,
					   const char *column)
{
	appendStringInfo(buf, "SELECT pg_catalog.max(%s) FROM %s", column,
					 source_sql);
}

/*
 * not_finite_sql returns the condition that column, a watermark column of
 * type, holds a value that is no position (NaN, infinity, -infinity), or
 * NULL when its type has none.
 */
static const char *
not_finite_sql(const char *column, Oid type)
{
	switch (type)
	{
		case NUMERICOID:
			return psprintf("%s = ANY ('{NaN,Infinity,-Infinity}')", column);
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return psprintf("%s = ANY ('{infinity,-infinity}')", column);
		default:
			return NULL;
	}
}

/*
 * etl_deparse_unpositioned_row appends the SELECT of one row of source_sql
 * (as JSON text, the whole row etl_s.* whatever its columns are named; then
 * its value of column as text) whose column (quoted, of type; notnull when
 * it is declared NOT NULL) is NULL or not finite, and returns true; returns
 * false and appends nothing when the column can hold neither (an integer or
 * pg_lsn column without NULLs).
 */
bool
etl_deparse_unpositioned_row(StringInfo buf, const char *source_sql,
							 const char *column, Oid type, bool notnull)
{
	const char *odd = not_finite_sql(column, type);

	if (notnull && odd == NULL)
		return false;
	appendStringInfo(buf,
					 "SELECT pg_catalog.to_jsonb(etl_s.*)::pg_catalog.text,"
					 " etl_s.%s::pg_catalog.text FROM %s AS etl_s WHERE ",
					 column, source_sql);
	if (!notnull)
		appendStringInfo(buf, "etl_s.%s IS NULL", column);
	if (!notnull && odd != NULL)
		appendStringInfoString(buf, " OR ");
	if (odd != NULL)
		appendStringInfo(buf, "etl_s.%s", odd);
	appendStringInfoString(buf, " LIMIT 1");
	return true;
}

/*
 * etl_deparse_source_count appends the SELECT of the count of the rows of
 * source_sql, or, with column (quoted, not NULL), of those whose column is
 * greater than $1.
 */
void
etl_deparse_source_count(StringInfo buf, const char *source_sql,
						 const char *column)
{
	appendStringInfo(buf, "SELECT pg_catalog.count(*) FROM %s", source_sql);
	if (column != NULL)
		appendStringInfo(buf, " WHERE %s OPERATOR(pg_catalog.>) $1", column);
}

/*
 * etl_deparse_analyze appends the ANALYZE of relation_sql (a qualified,
 * quoted relation).
 */
void
etl_deparse_analyze(StringInfo buf, const char *relation_sql)
{
	appendStringInfo(buf, "ANALYZE %s", relation_sql);
}

/*
 * etl_deparse_add_columns appends the ALTER TABLE of target_sql that adds
 * each of definitions (a non-empty list of "name type" texts, the name
 * quoted) as a column.
 */
void
etl_deparse_add_columns(StringInfo buf, const char *target_sql,
						List *definitions)
{
	ListCell *lc;

	appendStringInfo(buf, "ALTER TABLE %s", target_sql);
	foreach (lc, definitions)
		appendStringInfo(buf, "%s ADD COLUMN %s",
						 foreach_current_index(lc) > 0 ? "," : "",
						 (char *) lfirst(lc));
}
