/*-------------------------------------------------------------------------
 *
 * deparse_checks.c
 *	  The SQL text of the quality checks: per kind, the condition under
 *	  which a batch row fails (not_null, unique, accepted_values, positive,
 *	  range, foreign_key, z_score, expression) or the aggregate it adds to
 *	  the one pass (unique, z_score); and the statements that use them: the
 *	  one aggregate pass over the batch, the count and the sample keys of a
 *	  failing check, a unique check's exact recount, clashes with the target
 *	  and sample values, the read of a foreign key's referenced values, the
 *	  newest watermark value a freshness check judges, the statement that
 *	  finds the staged rows to set aside, and the row of typed NULLs an
 *	  expression check is analysed against.
 *
 *	  Pure builders: they take descriptors (EtlCheckBatch, EtlCheckSql) and
 *	  append to the caller's StringInfo; they never execute and read no run
 *	  state.  The checks (checks/check_kinds.c) point to them per kind.
 *	  Identifiers go through quote_identifier(); the checks' params are
 *	  positional arguments ($param_no ...), except a z-score's mean, stddev
 *	  and threshold, which are doubles written with all their digits.
 *
 * IDENTIFICATION
 *	  src/sql/deparse_checks.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "sql/deparse_batch.h"
#include "sql/deparse_checks.h"

/* the values a z-score leaves out: they have no distance from a mean */
#define Z_NONFINITE "'{NaN,Infinity,-Infinity}'::pg_catalog.float8[]"

/*
 * column_sql returns the quoted name of the check's column.
 */
static const char *
column_sql(const EtlCheckSql *d)
{
	return quote_identifier(d->col->name);
}

/*
 * type_sql returns the schema-qualified name of the check column's type.
 */
static char *
type_sql(const EtlCheckSql *d)
{
	return format_type_extended(d->coltype, -1, FORMAT_TYPE_FORCE_QUALIFY);
}

/*
 * etl_deparse_not_null_fails: the column is NULL.
 */
void
etl_deparse_not_null_fails(StringInfo buf, const EtlCheckSql *d)
{
	appendStringInfo(buf, "etl_b.%s IS NULL", column_sql(d));
}

/*
 * append_clash appends the condition under which batch row etl_b has the
 * value of unique check d that a target row of another key holds (false
 * without a key): the batch values converted as the load stores them.
 */
static void
append_clash(StringInfo buf, const EtlCheckSql *d)
{
	StringInfoData bkeys;
	StringInfoData xkeys;
	ListCell *lc;

	initStringInfo(&bkeys);
	initStringInfo(&xkeys);
	foreach (lc, d->batch->columns)
	{
		EtlColumn *kc = lfirst(lc);

		if (!kc->is_key)
			continue;
		if (bkeys.len > 0)
			appendStringInfoString(&bkeys, ", ");
		etl_deparse_as_target(&bkeys, kc, "etl_b");
		appendStringInfo(&xkeys, "%setl_x.%s", xkeys.len ? ", " : "",
						 quote_identifier(kc->name));
	}
	if (bkeys.len == 0)
	{
		appendStringInfoString(buf, "false");
		return;
	}
	appendStringInfo(buf, "EXISTS (SELECT FROM %s AS etl_x WHERE etl_x.%s = ",
					 d->batch->target, column_sql(d));
	etl_deparse_as_target(buf, d->col, "etl_b");
	appendStringInfo(buf, " AND ROW(%s) IS DISTINCT FROM ROW(%s))", xkeys.data,
					 bkeys.data);
}

/*
 * etl_deparse_unique_fails: the value repeats in the batch, or a target
 * row of another key has it.  A condition over the whole batch, for the
 * rows a unique check sets aside; the pass counts with
 * etl_deparse_unique_pass() instead.
 */
void
etl_deparse_unique_fails(StringInfo buf, const EtlCheckSql *d)
{
	const char *col = column_sql(d);

	appendStringInfo(buf,
					 "etl_b.%s IN (SELECT etl_d.%s FROM (\n%s\n) AS etl_d"
					 " GROUP BY 1 HAVING pg_catalog.count(*) > 1) OR ",
					 col, col, d->batch->transform);
	append_clash(buf, d);
}

/*
 * etl_deparse_accepted_values_fails: the value is not in the text[] of
 * $param_no, converted to the column's type.
 */
void
etl_deparse_accepted_values_fails(StringInfo buf, const EtlCheckSql *d)
{
	appendStringInfo(buf, "etl_b.%s <> ALL (CAST($%d AS %s[]))", column_sql(d),
					 d->param_no, type_sql(d));
}

/*
 * etl_deparse_positive_fails: the value is at most 0.
 */
void
etl_deparse_positive_fails(StringInfo buf, const EtlCheckSql *d)
{
	appendStringInfo(buf, "etl_b.%s <= 0", column_sql(d));
}

/*
 * etl_deparse_range_fails: the value is below min ($param_no) or above max
 * ($param_no + 1), each when the check has it.
 */
void
etl_deparse_range_fails(StringInfo buf, const EtlCheckSql *d)
{
	const char *col = column_sql(d);
	char *type = type_sql(d);

	appendStringInfoChar(buf, '(');
	if (d->has_min)
		appendStringInfo(buf, "etl_b.%s < CAST($%d AS %s)", col, d->param_no,
						 type);
	if (d->has_min && d->has_max)
		appendStringInfoString(buf, " OR ");
	if (d->has_max)
		appendStringInfo(buf, "etl_b.%s > CAST($%d AS %s)", col,
						 d->param_no + 1, type);
	appendStringInfoChar(buf, ')');
}

/*
 * etl_deparse_foreign_key_fails: a non-NULL value is not among the
 * referenced column's non-NULL values, probed as d->fk says (FK_ARRAY: the
 * array of $param_no).
 */
void
etl_deparse_foreign_key_fails(StringInfo buf, const EtlCheckSql *d)
{
	const char *col = column_sql(d);

	if (d->fk == FK_INT_SET)
	{
		appendStringInfo(buf,
						 "etl_b.%s IS NOT NULL AND etl_internal.etl_not_in("
						 "etl_b.%s::pg_catalog.int8, "
						 "%s::pg_catalog.regclass, %s)",
						 col, col, quote_literal_cstr(d->ref_table),
						 quote_literal_cstr(d->ref_column));
		return;
	}
	if (d->fk == FK_ARRAY)
	{
		appendStringInfo(buf,
						 "etl_b.%s IS NOT NULL AND NOT (etl_b.%s = ANY "
						 "($%d::%s))",
						 col, col, d->param_no,
						 format_type_extended(get_array_type(d->coltype), -1,
											  FORMAT_TYPE_FORCE_QUALIFY));
		return;
	}
	appendStringInfo(buf,
					 "etl_b.%s IS NOT NULL AND NOT (etl_b.%s IN "
					 "(SELECT etl_r.%s FROM %s AS etl_r WHERE etl_r.%s "
					 "IS NOT NULL))",
					 col, col, quote_identifier(d->ref_column), d->ref_table,
					 quote_identifier(d->ref_column));
}

/*
 * etl_deparse_z_score_fails: a finite value lies more than threshold
 * standard deviations from the mean (both known, the deviation positive);
 * non-finite values (NaN, +-Infinity) neither count nor fail.
 */
void
etl_deparse_z_score_fails(StringInfo buf, const EtlCheckSql *d)
{
	const char *col = column_sql(d);

	Assert(isfinite(d->mean) && isfinite(d->stddev) && d->stddev > 0);
	appendStringInfo(buf,
					 "etl_b.%s::pg_catalog.float8 <> ALL (" Z_NONFINITE
					 ") AND pg_catalog.abs(etl_b.%s::pg_catalog.float8 - "
					 "%.17g) / %.17g > %.17g",
					 col, col, d->mean, d->stddev, d->threshold);
}

/*
 * etl_deparse_expression_fails: the expression is not true for the row
 * (on lines of its own: a trailing comment in it ends with its line).
 */
void
etl_deparse_expression_fails(StringInfo buf, const EtlCheckSql *d)
{
	appendStringInfo(buf, "(\n%s\n) IS NOT TRUE", d->expr);
}

/*
 * etl_deparse_unique_pass appends a unique check's column of the pass: the
 * parallel-safe duplicate counter over the column.  Returns 1.
 */
int
etl_deparse_unique_pass(StringInfo buf, const EtlCheckSql *d)
{
	appendStringInfo(buf, ",\n  etl_internal.etl_dup_count(etl_b.%s)",
					 column_sql(d));
	return 1;
}

/*
 * etl_deparse_z_score_pass appends a z-score check's columns of the pass:
 * mean, stddev, min and max of the finite values, from one aggregate that
 * the planner computes once for the four columns, converting the value
 * once.  Returns 4.
 */
int
etl_deparse_z_score_pass(StringInfo buf, const EtlCheckSql *d)
{
	char *z =
		psprintf("(etl_internal.etl_zstats(etl_b.%s::pg_catalog.float8))",
				 column_sql(d));

	appendStringInfo(buf, ",\n  %s[2],\n  %s[3],\n  %s[4],\n  %s[5]", z, z, z,
					 z);
	return 4;
}

/*
 * etl_deparse_check_query appends "SELECT select_list FROM <transform> AS
 * etl_b tail" (tail may be NULL), after the delta CTE.
 */
void
etl_deparse_check_query(StringInfo buf, const EtlCheckBatch *b,
						const char *select_list, const char *tail)
{
	appendStringInfoString(buf, b->delta_cte);
	appendStringInfo(buf, "SELECT %s FROM (\n%s\n) AS etl_b%s", select_list,
					 b->transform, tail ? tail : "");
}

/*
 * etl_deparse_checks_pass appends the one aggregate query that evaluates
 * the checks over the batch: count(*) first, then per check its own
 * aggregate columns, or the count of its failing rows (count(*) FILTER
 * (WHERE predicate)), or nothing (neither: row_count, freshness).  Sets
 * each part's first_col, the 0-based column of its first value.
 */
void
etl_deparse_checks_pass(StringInfo buf, const EtlCheckBatch *b,
						EtlCheckPart *parts, int nparts)
{
	StringInfoData sel;
	int ncol = 1;

	initStringInfo(&sel);
	appendStringInfoString(&sel, "pg_catalog.count(*)");
	for (int i = 0; i < nparts; i++)
	{
		EtlCheckPart *part = &parts[i];

		part->first_col = ncol;
		if (part->aggregate != NULL)
			ncol += part->aggregate(&sel, &part->sql);
		else if (part->predicate != NULL)
		{
			appendStringInfoString(&sel,
								   ",\n  pg_catalog.count(*) FILTER (WHERE ");
			part->predicate(&sel, &part->sql);
			appendStringInfoChar(&sel, ')');
			ncol++;
		}
	}
	etl_deparse_check_query(buf, b, sel.data, NULL);
}

/*
 * etl_deparse_check_count appends the query that counts the batch rows
 * meeting pred.
 */
void
etl_deparse_check_count(StringInfo buf, const EtlCheckBatch *b,
						const char *pred)
{
	etl_deparse_check_query(buf, b, "pg_catalog.count(*)",
							psprintf(" WHERE %s", pred));
}

/*
 * key_object returns jsonb_build_object('k1', etl_b.k1, ...) of the key
 * columns, or of the whole row without a key.
 */
static char *
key_object(const EtlCheckBatch *b)
{
	StringInfoData buf;
	ListCell *lc;
	bool first = true;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "pg_catalog.jsonb_build_object(");
	foreach (lc, b->columns)
	{
		EtlColumn *col = lfirst(lc);

		if (!col->is_key)
			continue;
		appendStringInfo(&buf, "%s%s, etl_b.%s", first ? "" : ", ",
						 quote_literal_cstr(col->name),
						 quote_identifier(col->name));
		first = false;
	}
	if (first)
		appendStringInfoString(&buf, "'row', etl_b.*");
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

/*
 * etl_deparse_check_sample_keys appends the query whose one text value is
 * a JSON array of up to 10 keys of batch rows meeting pred.
 */
void
etl_deparse_check_sample_keys(StringInfo buf, const EtlCheckBatch *b,
							  const char *pred)
{
	StringInfoData q;

	initStringInfo(&q);
	etl_deparse_check_query(&q, b, psprintf("%s AS k", key_object(b)),
							psprintf(" WHERE %s LIMIT 10", pred));
	appendStringInfo(buf,
					 "SELECT COALESCE(pg_catalog.jsonb_agg(s.k), "
					 "'[]')::pg_catalog.text FROM (%s) s",
					 q.data);
}

/*
 * etl_deparse_unique_recount appends the query that counts exactly the
 * batch rows whose (non-NULL) value an earlier row had.
 */
void
etl_deparse_unique_recount(StringInfo buf, const EtlCheckSql *d)
{
	const char *col = column_sql(d);

	etl_deparse_check_query(buf, d->batch,
							psprintf("pg_catalog.count(etl_b.%s) - "
									 "pg_catalog.count(DISTINCT etl_b.%s)",
									 col, col),
							NULL);
}

/*
 * etl_deparse_unique_clashes appends the query that counts the batch rows
 * whose value a target row of another key already has.
 */
void
etl_deparse_unique_clashes(StringInfo buf, const EtlCheckSql *d)
{
	StringInfoData tail;

	initStringInfo(&tail);
	appendStringInfoString(&tail, " WHERE ");
	append_clash(&tail, d);
	etl_deparse_check_query(buf, d->batch, "pg_catalog.count(*)", tail.data);
}

/*
 * etl_deparse_unique_samples appends the query whose one text value is a
 * JSON array of up to 10 values that repeat in the batch.
 */
void
etl_deparse_unique_samples(StringInfo buf, const EtlCheckSql *d)
{
	StringInfoData q;

	initStringInfo(&q);
	etl_deparse_check_query(
		&q, d->batch, psprintf("etl_b.%s", column_sql(d)),
		" GROUP BY 1 HAVING pg_catalog.count(*) > 1 LIMIT 10");
	appendStringInfo(buf,
					 "SELECT COALESCE(pg_catalog.jsonb_agg(v), "
					 "'[]')::pg_catalog.text FROM"
					 " (%s) s(v)",
					 q.data);
}

/*
 * etl_deparse_fk_values appends the query that reads up to limit non-NULL
 * values of the referenced column: their array (as_array; NULL otherwise),
 * and how many there are.
 */
void
etl_deparse_fk_values(StringInfo buf, const char *ref_table,
					  const char *ref_column, bool as_array, int limit)
{
	appendStringInfo(buf,
					 "SELECT %s, "
					 "pg_catalog.count(*) FROM (SELECT %s AS v FROM %s "
					 "WHERE %s IS NOT NULL LIMIT %d) AS etl_r",
					 as_array ? "pg_catalog.array_agg(etl_r.v)" : "NULL",
					 quote_identifier(ref_column), ref_table,
					 quote_identifier(ref_column), limit);
}

/*
 * etl_deparse_freshness_newest appends the query that reads the newest
 * value of the watermark column of source, as a timestamptz.
 */
void
etl_deparse_freshness_newest(StringInfo buf, const char *watermark_column,
							 const char *source)
{
	appendStringInfo(buf,
					 "SELECT pg_catalog.max(%s)::pg_catalog.timestamptz "
					 "FROM %s",
					 quote_identifier(watermark_column), source);
}

/*
 * etl_deparse_typed_nulls appends "SELECT NULL::type AS column, ..." over
 * columns (EtlColumn *), each of the type and typmod the transform gives
 * it: a row the batch's columns can be analysed against.
 */
void
etl_deparse_typed_nulls(StringInfo buf, List *columns)
{
	ListCell *lc;

	appendStringInfoString(buf, "SELECT ");
	foreach (lc, columns)
	{
		EtlColumn *col = lfirst(lc);

		appendStringInfo(buf, "%sNULL::%s AS %s",
						 foreach_current_index(lc) > 0 ? ", " : "",
						 format_type_extended(col->src_type, col->src_typmod,
											  FORMAT_TYPE_TYPEMOD_GIVEN |
												  FORMAT_TYPE_FORCE_QUALIFY),
						 quote_identifier(col->name));
	}
}

/*
 * etl_deparse_checks_reject appends the statement that finds the staged
 * rows whose batch rows fail one of the parts' predicates, in rn_batch
 * (the transform over staged rows with their row numbers, from
 * etl_deparse_rn_batch()): per row its number, the index of the first part
 * it fails, and the staged source row (stage_columns_s of stage_table) as
 * JSON text (the whole row etl_d.*, whatever the source's columns are
 * named), in row order.
 */
void
etl_deparse_checks_reject(StringInfo buf, const EtlCheckBatch *b,
						  const char *rn_batch, const EtlCheckPart *parts,
						  int nparts, const char *stage_columns_s,
						  const char *stage_table)
{
	appendStringInfoString(buf, b->delta_cte);
	appendStringInfoString(
		buf,
		"SELECT etl_q.etl_rn, etl_q.etl_check,"
		" pg_catalog.to_jsonb(etl_d.*)::pg_catalog.text FROM"
		" (SELECT DISTINCT ON (etl_f.etl_rn) etl_f.etl_rn, etl_f.etl_check"
		" FROM (SELECT etl_b.etl_rn, CASE");
	for (int i = 0; i < nparts; i++)
	{
		appendStringInfoString(buf, " WHEN ");
		parts[i].predicate(buf, &parts[i].sql);
		appendStringInfo(buf, " THEN %d", i);
	}
	appendStringInfo(buf,
					 " END AS etl_check FROM (\n%s\n) AS etl_b) AS etl_f"
					 " WHERE etl_f.etl_check IS NOT NULL"
					 " ORDER BY etl_f.etl_rn, etl_f.etl_check) AS etl_q"
					 " CROSS JOIN LATERAL (SELECT %s FROM pg_temp.%s AS etl_s"
					 " WHERE etl_s.etl_rn = etl_q.etl_rn) AS etl_d"
					 " ORDER BY etl_q.etl_rn",
					 rn_batch, stage_columns_s, stage_table);
}
