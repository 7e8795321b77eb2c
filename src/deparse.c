/*-------------------------------------------------------------------------
 *
 * deparse.c
 *	  All SQL text of a run, and nothing else: no execution here.
 *
 *	  Identifiers go through quote_identifier(); values are never written
 *	  into the text, they are the positional arguments of EtlRunParam.  The
 *	  statements run under the pinned search_path (pg_catalog, pg_temp), so
 *	  operators and built-in functions resolve to pg_catalog only; etl_ext's
 *	  own functions are written schema-qualified anyway.
 *
 *	  Every load statement reads the source through one CTE:
 *
 *		WITH etl_delta AS (SELECT * FROM <source> WHERE <range>)
 *
 *	  and the transform (validated as exactly one SELECT) as a subquery
 *	  wrapped on lines of its own, so that a trailing comment in it cannot
 *	  swallow the closing parenthesis.  Transform and load are one statement:
 *	  rows stream from the source into the target without being written in
 *	  between.
 *
 * IDENTIFICATION
 *	  src/deparse.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "parser/parse_oper.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "deparse.h"

#define HASH_ALIAS "etl_row_hash__"

/*
 * etl_relation_sql returns the quoted, schema-qualified name of a relation.
 */
char *
etl_relation_sql(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/*
 * etl_deparse_range_where returns the WHERE clause that selects the rows of
 * this run from the source ("" when the whole source is read).
 */
char *
etl_deparse_range_where(EtlRun *run)
{
	StringInfoData buf;
	const char *col;
	const char *sep = " WHERE ";

	initStringInfo(&buf);
	if (run->p->watermark_column == NULL)
		return buf.data;
	col = quote_identifier(run->p->watermark_column);
	if (run->has_from)
	{
		appendStringInfo(&buf, "%s%s > $%d", sep, col, ETL_PARAM_FROM);
		sep = " AND ";
	}
	if (run->has_hi)
	{
		appendStringInfo(&buf, "%s%s %s $%d", sep, col,
						 run->hi_inclusive ? "<=" : "<", ETL_PARAM_HI);
		sep = " AND ";
	}
	if (run->has_cutoff)
		appendStringInfo(&buf, "%s%s <= $%d", sep, col, ETL_PARAM_CUTOFF);
	return buf.data;
}

/*
 * etl_deparse_stats returns the statement that counts the rows of the run's
 * range and finds the new watermark: greatest of the stored one and the
 * range's maximum.
 */
char *
etl_deparse_stats(EtlRun *run)
{
	if (run->p->watermark_column == NULL)
		return psprintf("SELECT pg_catalog.count(*), NULL, NULL FROM %s",
						run->source_sql);
	return psprintf("SELECT pg_catalog.count(*), pg_catalog.max(%s),"
					" pg_catalog.max(%s) > $%d FROM %s%s",
					quote_identifier(run->p->watermark_column),
					quote_identifier(run->p->watermark_column), ETL_PARAM_LO,
					run->source_sql, etl_deparse_range_where(run));
}

/*
 * etl_deparse_cutoff returns the statement that finds the batch_size-th
 * watermark value past the stored watermark (ties beyond it are included in
 * the batch by the "<= cutoff" bound, so none is skipped).
 */
char *
etl_deparse_cutoff(EtlRun *run)
{
	const char *col = quote_identifier(run->p->watermark_column);
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "SELECT %s FROM %s WHERE %s IS NOT NULL", col,
					 run->source_sql, col);
	if (run->has_lo)
		appendStringInfo(&buf, " AND %s > $%d", col, ETL_PARAM_LO);
	if (run->has_hi)
		appendStringInfo(&buf, " AND %s %s $%d", col,
						 run->hi_inclusive ? "<=" : "<", ETL_PARAM_HI);
	appendStringInfo(&buf, " ORDER BY %s OFFSET $%d LIMIT 1", col,
					 ETL_PARAM_OFFSET);
	return buf.data;
}

/*
 * etl_deparse_target_probe returns a statement that finds whether the target
 * has any row.
 */
char *
etl_deparse_target_probe(EtlRun *run)
{
	return psprintf("SELECT 1 FROM %s LIMIT 1", run->target_sql);
}

/*
 * append_delta_cte writes the CTE through which every statement reads the
 * source.
 */
static void
append_delta_cte(StringInfo buf, EtlRun *run)
{
	appendStringInfo(buf, "WITH etl_delta AS (SELECT * FROM %s%s)\n",
					 run->source_sql, etl_deparse_range_where(run));
}

/*
 * append_transform writes the transform as a subquery aliased etl_t.
 */
static void
append_transform(StringInfo buf, EtlRun *run)
{
	appendStringInfo(buf, "(\n%s\n) AS etl_t", run->map->transform_sql);
}

/*
 * append_row_hash writes the row hash over the non-key columns of alias.
 */
static void
append_row_hash(StringInfo buf, EtlRun *run, const char *alias)
{
	ListCell   *lc;
	bool		first = true;

	appendStringInfoString(buf, "pg_catalog.etl_row_hash(");
	foreach(lc, run->map->columns)
	{
		EtlColumn  *col = lfirst(lc);

		if (col->is_key)
			continue;
		appendStringInfo(buf, "%s%s.%s", first ? "" : ", ", alias,
						 quote_identifier(col->name));
		first = false;
	}
	if (first)
		appendStringInfoString(buf, "VARIADIC '{}'::pg_catalog.text[]");
	appendStringInfoChar(buf, ')');
}

/*
 * append_insert_columns writes the column list of an INSERT into the
 * target: the batch columns, then the audit columns it has.
 */
static void
append_insert_columns(StringInfo buf, EtlRun *run)
{
	ListCell   *lc;

	appendStringInfoChar(buf, '(');
	foreach(lc, run->map->columns)
		appendStringInfo(buf, "%s%s", foreach_current_index(lc) ? ", " : "",
						 quote_identifier(((EtlColumn *) lfirst(lc))->name));
	if (run->map->has_row_hash)
		appendStringInfoString(buf, ", " ETL_COL_ROW_HASH);
	if (run->map->has_run_id)
		appendStringInfoString(buf, ", " ETL_COL_RUN_ID);
	if (run->map->has_loaded_at)
		appendStringInfoString(buf, ", " ETL_COL_LOADED_AT);
	appendStringInfoChar(buf, ')');
}

/*
 * append_audit_values writes the values of the audit columns (row hash
 * computed from alias, or taken from alias's HASH_ALIAS column when
 * hash_from_alias).
 */
static void
append_audit_values(StringInfo buf, EtlRun *run, const char *alias,
					bool hash_from_alias)
{
	if (run->map->has_row_hash)
	{
		appendStringInfoString(buf, ", ");
		if (hash_from_alias)
			appendStringInfo(buf, "%s." HASH_ALIAS, alias);
		else
			append_row_hash(buf, run, alias);
	}
	if (run->map->has_run_id)
		appendStringInfo(buf, ", $%d", ETL_PARAM_RUN_ID);
	if (run->map->has_loaded_at)
		appendStringInfo(buf, ", $%d", ETL_PARAM_LOADED_AT);
}

/*
 * append_key_match writes "a.k1 = b.k1 AND ..." over the key columns.
 */
static void
append_key_match(StringInfo buf, EtlRun *run, const char *a, const char *b)
{
	ListCell   *lc;
	bool		first = true;

	foreach(lc, run->map->columns)
	{
		EtlColumn  *col = lfirst(lc);
		const char *q;

		if (!col->is_key)
			continue;
		q = quote_identifier(col->name);
		appendStringInfo(buf, "%s%s.%s = %s.%s", first ? "" : " AND ",
						 a, q, b, q);
		first = false;
	}
}

/*
 * etl_deparse_insert returns the INSERT of the batch into the target; with
 * skip_existing (load append), rows whose key is already there are skipped
 * and ETL_TALLY_BATCH counts the batch.
 */
char *
etl_deparse_insert(EtlRun *run, bool skip_existing)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	append_delta_cte(&buf, run);
	appendStringInfo(&buf, "INSERT INTO %s AS etl_target ", run->target_sql);
	append_insert_columns(&buf, run);
	appendStringInfoString(&buf, "\nSELECT ");
	foreach(lc, run->map->columns)
		appendStringInfo(&buf, "%setl_t.%s", foreach_current_index(lc) ? ", " : "",
						 quote_identifier(((EtlColumn *) lfirst(lc))->name));
	append_audit_values(&buf, run, "etl_t", false);
	appendStringInfoString(&buf, "\nFROM ");
	append_transform(&buf, run);
	if (skip_existing)
	{
		appendStringInfo(&buf, "\nWHERE pg_catalog.etl_tally(true, %d)",
						 ETL_TALLY_BATCH);
		if (run->p->key != NIL)
		{
			appendStringInfo(&buf, " AND NOT EXISTS (SELECT FROM %s AS etl_existing WHERE ",
							 run->target_sql);
			append_key_match(&buf, run, "etl_existing", "etl_t");
			appendStringInfoChar(&buf, ')');
		}
	}
	return buf.data;
}

/*
 * has_equality tells whether "=" between two types resolves to a boolean
 * operator under the current (pinned) search_path.
 */
static bool
has_equality(Oid ltype, Oid rtype)
{
	Operator	op = oper(NULL, list_make1(makeString("=")), ltype, rtype,
						  true, -1);
	bool		ok;

	if (op == NULL)
		return false;
	ok = ((Form_pg_operator) GETSTRUCT(op))->oprresult == BOOLOID;
	ReleaseSysCache(op);
	return ok;
}

/*
 * append_changed writes the condition under which a matched target row
 * differs from its batch row: the stored row hash differs, or (without a
 * _etl_row_hash column) some non-key column is distinct, compared as text
 * where the two types have no equality operator.
 */
static void
append_changed(StringInfo buf, EtlRun *run)
{
	ListCell   *lc;
	bool		first = true;

	if (run->map->has_row_hash)
	{
		appendStringInfoString(buf, "etl_target." ETL_COL_ROW_HASH
							   " IS DISTINCT FROM etl_source." HASH_ALIAS);
		return;
	}
	foreach(lc, run->map->columns)
	{
		EtlColumn  *col = lfirst(lc);
		const char *q = quote_identifier(col->name);

		if (col->is_key)
			continue;
		if (!first)
			appendStringInfoString(buf, " OR ");
		if (has_equality(col->tgt_type, col->src_type))
			appendStringInfo(buf, "etl_target.%s IS DISTINCT FROM etl_source.%s", q, q);
		else
			appendStringInfo(buf, "etl_target.%s::pg_catalog.text IS DISTINCT FROM etl_source.%s::pg_catalog.text",
							 q, q);
		first = false;
	}
	if (first)
		appendStringInfoString(buf, "false");
}

/*
 * etl_deparse_merge returns the MERGE of the batch into the target: new keys
 * inserted, changed rows updated, unchanged rows (same row hash) not touched
 * at all.  ETL_TALLY_INSERTED, _MATCHED and _UPDATED count what it does.
 */
char *
etl_deparse_merge(EtlRun *run)
{
	StringInfoData buf;
	ListCell   *lc;
	bool		first;
	bool		tallied = false;

	initStringInfo(&buf);
	append_delta_cte(&buf, run);
	appendStringInfo(&buf, "MERGE INTO %s AS etl_target\nUSING (SELECT ",
					 run->target_sql);
	foreach(lc, run->map->columns)
		appendStringInfo(&buf, "etl_t.%s, ",
						 quote_identifier(((EtlColumn *) lfirst(lc))->name));
	append_row_hash(&buf, run, "etl_t");
	appendStringInfoString(&buf, " AS " HASH_ALIAS "\nFROM ");
	append_transform(&buf, run);
	appendStringInfoString(&buf, ") AS etl_source\nON ");
	append_key_match(&buf, run, "etl_target", "etl_source");

	/* matched: update when changed */
	appendStringInfoString(&buf, "\nWHEN MATCHED AND pg_catalog.etl_tally(");
	append_changed(&buf, run);
	appendStringInfo(&buf, ", %d) THEN ", ETL_TALLY_MATCHED);
	first = true;
	foreach(lc, run->map->columns)
	{
		EtlColumn  *col = lfirst(lc);
		const char *q = quote_identifier(col->name);

		if (col->is_key)
			continue;
		appendStringInfo(&buf, "%s%s = ", first ? "UPDATE SET " : ", ", q);
		if (!tallied)
			appendStringInfo(&buf, "pg_catalog.etl_tally(etl_source.%s, %d)",
							 q, ETL_TALLY_UPDATED);
		else
			appendStringInfo(&buf, "etl_source.%s", q);
		tallied = true;
		first = false;
	}
	if (run->map->has_row_hash)
	{
		appendStringInfoString(&buf, first ? "UPDATE SET " : ", ");
		if (!tallied)
			appendStringInfo(&buf, ETL_COL_ROW_HASH " = pg_catalog.etl_tally(etl_source." HASH_ALIAS ", %d)",
							 ETL_TALLY_UPDATED);
		else
			appendStringInfoString(&buf, ETL_COL_ROW_HASH " = etl_source." HASH_ALIAS);
		tallied = true;
		first = false;
	}
	if (first)
		appendStringInfoString(&buf, "DO NOTHING");
	else
	{
		if (run->map->has_run_id)
			appendStringInfo(&buf, ", " ETL_COL_RUN_ID " = $%d", ETL_PARAM_RUN_ID);
		if (run->map->has_loaded_at)
			appendStringInfo(&buf, ", " ETL_COL_LOADED_AT " = $%d",
							 ETL_PARAM_LOADED_AT);
	}

	/* not matched: insert */
	appendStringInfoString(&buf, "\nWHEN NOT MATCHED THEN INSERT ");
	append_insert_columns(&buf, run);
	appendStringInfoString(&buf, " VALUES (");
	foreach(lc, run->map->columns)
	{
		const char *q = quote_identifier(((EtlColumn *) lfirst(lc))->name);

		if (foreach_current_index(lc) == 0)
			appendStringInfo(&buf, "pg_catalog.etl_tally(etl_source.%s, %d)", q,
							 ETL_TALLY_INSERTED);
		else
			appendStringInfo(&buf, ", etl_source.%s", q);
	}
	append_audit_values(&buf, run, "etl_source", true);
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

/*
 * etl_deparse_delete returns the DELETE of the target rows whose key is in
 * the batch (first half of load delete_insert).
 */
char *
etl_deparse_delete(EtlRun *run)
{
	StringInfoData buf;
	ListCell   *lc;
	bool		first = true;

	initStringInfo(&buf);
	append_delta_cte(&buf, run);
	appendStringInfo(&buf, "DELETE FROM %s AS etl_target USING (SELECT DISTINCT ",
					 run->target_sql);
	foreach(lc, run->map->columns)
	{
		EtlColumn  *col = lfirst(lc);

		if (!col->is_key)
			continue;
		appendStringInfo(&buf, "%setl_t.%s", first ? "" : ", ",
						 quote_identifier(col->name));
		first = false;
	}
	appendStringInfoString(&buf, "\nFROM ");
	append_transform(&buf, run);
	appendStringInfoString(&buf, ") AS etl_source\nWHERE ");
	append_key_match(&buf, run, "etl_target", "etl_source");
	return buf.data;
}
