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
 *	  Load merge is a classification (one read-only join of batch and
 *	  target, parallel where possible), then an UPDATE of the changed rows
 *	  and an INSERT of the new keys, each only when there is something for
 *	  it; not a MERGE: PostgreSQL 15's MERGE re-fetches every matched target
 *	  row to evaluate its WHEN condition, which made a re-run over unchanged
 *	  rows cost as much as loading them.
 *
 * IDENTIFICATION
 *	  src/deparse.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "parser/parse_coerce.h"
#include "parser/parse_oper.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "deparse.h"
#include "isolate.h"

/*
 * etl_relation_sql returns the quoted, schema-qualified name of a relation.
 */
char *
etl_relation_sql(Oid relid)
{
	return quote_qualified_identifier(
		get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
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
 * range (-1 when the transform is one-to-one: the load counts them then)
 * and finds the range's newest watermark value and whether it is past the
 * stored one.
 */
char *
etl_deparse_stats(EtlRun *run)
{
	const char *col = quote_identifier(run->p->watermark_column);

	/* a one-to-one transform: the load counts the rows */
	return psprintf(
		"SELECT %s, pg_catalog.max(%s), pg_catalog.max(%s) > $%d FROM %s%s",
		run->map->one_to_one ? "-1::pg_catalog.int8" : "pg_catalog.count(*)",
		col, col, ETL_PARAM_LO, run->source_sql, etl_deparse_range_where(run));
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
	if (run->stage_table != NULL)
		appendStringInfo(buf,
						 "WITH etl_delta AS (SELECT %s FROM pg_temp.%s"
						 " WHERE etl_rn BETWEEN $%d AND $%d AND %s)\n",
						 run->stage_columns, run->stage_table, ETL_PARAM_RN_LO,
						 ETL_PARAM_RN_HI, etl_stage_filter(run, NULL));
	else
		appendStringInfo(buf, "WITH etl_delta AS (SELECT * FROM %s%s)\n",
						 run->source_sql, etl_deparse_range_where(run));
}

/*
 * etl_deparse_delta_cte writes the CTE etl_delta (for quality.c).
 */
void
etl_deparse_delta_cte(StringInfo buf, EtlRun *run)
{
	append_delta_cte(buf, run);
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
 * etl_deparse_rn_batch returns the batch of staged rows rn_lo .. rn_hi with
 * the row number of the source row each batch row came from: the columns
 * etl_rn, then the transform's.  The transform (row-local, columns.c) runs
 * once per staged row, laterally: its one read of etl_delta is replaced by
 * that row, (SELECT etl_s.col, ...), so it computes that row's output rows
 * only.  A transform without a WITH of its own is flattened into one join
 * by the planner.  The etl_delta CTE of the statement (which this query
 * does not need) comes from the caller.
 */
char *
etl_deparse_rn_batch(EtlRun *run)
{
	EtlColumnMap *map = run->map;
	StringInfoData buf;

	Assert(map->row_local && run->stage_table != NULL);
	initStringInfo(&buf);
	appendStringInfo(
		&buf,
		"SELECT etl_s.etl_rn, etl_x.* FROM pg_temp.%s AS etl_s"
		" CROSS JOIN LATERAL (\n%.*s(SELECT %s)%s%s\n) AS etl_x"
		"\nWHERE etl_s.etl_rn BETWEEN $%d AND $%d AND %s",
		run->stage_table, map->delta_loc, map->transform_sql,
		run->stage_columns_s, map->delta_aliased ? "" : " AS etl_delta",
		map->transform_sql + map->delta_loc + map->delta_len, ETL_PARAM_RN_LO,
		ETL_PARAM_RN_HI, etl_stage_filter(run, "etl_s"));
	return buf.data;
}

static void append_key_row(StringInfo buf, EtlRun *run, const char *alias);

/*
 * append_key_guard writes the condition that lets a batch row (alias) pass
 * when its key has no NULL part, and raises 23502 for it otherwise
 * (etl_null_key(): the row becomes a dead letter).  "true" when the
 * target's key columns are NOT NULL (their constraint raises 23502 then),
 * or without a key.
 */
static void
append_key_guard(StringInfo buf, EtlRun *run, const char *alias)
{
	StringInfoData names;
	ListCell *lc;
	bool first = true;

	if (run->p->key == NIL || !run->map->key_nullable)
	{
		appendStringInfoString(buf, "true");
		return;
	}
	initStringInfo(&names);
	appendStringInfoString(buf, "CASE WHEN ");
	foreach (lc, run->map->columns)
	{
		EtlColumn *col = lfirst(lc);

		if (!col->is_key)
			continue;
		appendStringInfo(buf, "%s%s.%s IS NULL", first ? "" : " OR ", alias,
						 quote_identifier(col->name));
		appendStringInfo(&names, "%s%s", first ? "" : ", ", col->name);
		first = false;
	}
	appendStringInfo(buf, " THEN pg_catalog.etl_null_key(%s) ELSE true END",
					 quote_literal_cstr(names.data));
}

/*
 * append_key_exprs writes the key columns of alias converted to the
 * target's types, comma-separated.
 */
static void
append_key_exprs(StringInfo buf, EtlRun *run, const char *alias)
{
	ListCell *lc;
	bool first = true;

	foreach (lc, run->map->columns)
	{
		EtlColumn *col = lfirst(lc);

		if (!col->is_key)
			continue;
		if (!first)
			appendStringInfoString(buf, ", ");
		etl_deparse_as_target(buf, col, alias);
		first = false;
	}
}

/*
 * append_batch writes the batch as the load statements read it, aliased
 * etl_t: the transform, with rows whose key has a NULL part refused
 * (append_key_guard()), and under run->dedupe one row per key -- the last
 * staged row of the key (the latest version) for merge and delete_insert,
 * the first for append (load.c).
 */
static void
append_batch(StringInfo buf, EtlRun *run)
{
	ListCell *lc;

	if (run->dedupe)
	{
		appendStringInfoString(buf, "(SELECT DISTINCT ON (");
		append_key_exprs(buf, run, "etl_k");
		appendStringInfoString(buf, ") ");
		foreach (lc, run->map->columns)
			appendStringInfo(
				buf, "%setl_k.%s", foreach_current_index(lc) ? ", " : "",
				quote_identifier(((EtlColumn *) lfirst(lc))->name));
		appendStringInfo(buf, " FROM (\n%s\n) AS etl_k WHERE ",
						 etl_deparse_rn_batch(run));
		append_key_guard(buf, run, "etl_k");
		appendStringInfoString(buf, " ORDER BY ");
		append_key_exprs(buf, run, "etl_k");
		appendStringInfo(buf, ", etl_k.etl_rn %s) AS etl_t",
						 run->p->load == ETL_LOAD_APPEND ? "ASC" : "DESC");
		return;
	}
	if (run->p->key == NIL || !run->map->key_nullable)
	{
		append_transform(buf, run);
		return;
	}
	appendStringInfo(buf, "(SELECT * FROM (\n%s\n) AS etl_k WHERE ",
					 run->map->transform_sql);
	append_key_guard(buf, run, "etl_k");
	appendStringInfoString(buf, ") AS etl_t");
}

/*
 * append_keys_present writes " WHERE" and the condition that no key column
 * of etl_t is NULL.
 */
static void
append_keys_present(StringInfo buf, EtlRun *run)
{
	ListCell *lc;
	bool first = true;

	foreach (lc, run->map->columns)
	{
		EtlColumn *col = lfirst(lc);

		if (!col->is_key)
			continue;
		appendStringInfo(buf, "%s etl_t.%s IS NOT NULL",
						 first ? "\nWHERE" : " AND",
						 quote_identifier(col->name));
		first = false;
	}
}

/*
 * append_row_hash writes the row hash over the non-key columns of alias.
 */
static void
append_row_hash(StringInfo buf, EtlRun *run, const char *alias)
{
	ListCell *lc;
	bool first = true;

	appendStringInfoString(buf, "pg_catalog.etl_row_hash(");
	foreach (lc, run->map->columns)
	{
		EtlColumn *col = lfirst(lc);

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
	ListCell *lc;

	appendStringInfoChar(buf, '(');
	foreach (lc, run->map->columns)
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
 * append_audit_values writes the values of the audit columns, the row hash
 * computed from alias's columns.
 */
static void
append_audit_values(StringInfo buf, EtlRun *run, const char *alias)
{
	if (run->map->has_row_hash)
	{
		appendStringInfoString(buf, ", ");
		append_row_hash(buf, run, alias);
	}
	if (run->map->has_run_id)
		appendStringInfo(buf, ", $%d", ETL_PARAM_RUN_ID);
	if (run->map->has_loaded_at)
		appendStringInfo(buf, ", $%d", ETL_PARAM_LOADED_AT);
}

/*
 * etl_deparse_as_target writes alias.column converted to the type of its
 * target column, as the load would store it: unchanged when the types
 * agree, otherwise CAST(... AS type(typmod)).  The typmod is left out where
 * an explicit cast to it would differ from the assignment of the load:
 * length coercions (varchar(n), char(n), bit(n)) truncate when explicit but
 * fail on assignment, so 'ABCD' must not compare equal to a stored 'ABC'.
 * Numeric scale, timestamp precision and the like round the same either
 * way, so a numeric(12,2) target compares with the value rounded as stored.
 */
void
etl_deparse_as_target(StringInfo buf, EtlColumn *col, const char *alias)
{
	int32 typmod = col->tgt_typmod;
	Oid funcid;

	if (col->src_type == col->tgt_type &&
		(typmod < 0 || col->src_typmod == typmod))
	{
		appendStringInfo(buf, "%s.%s", alias, quote_identifier(col->name));
		return;
	}
	if (typmod >= 0 &&
		find_typmod_coercion_function(col->tgt_type, &funcid) !=
			COERCION_PATH_NONE &&
		OidIsValid(funcid) && get_func_nargs(funcid) >= 3)
		typmod = -1; /* its third argument: isExplicit */
	if (col->src_type == col->tgt_type && typmod < 0)
	{
		appendStringInfo(buf, "%s.%s", alias, quote_identifier(col->name));
		return;
	}
	appendStringInfo(buf, "CAST(%s.%s AS %s)", alias,
					 quote_identifier(col->name),
					 format_type_extended(col->tgt_type, typmod,
										  FORMAT_TYPE_TYPEMOD_GIVEN |
											  FORMAT_TYPE_FORCE_QUALIFY));
}

/*
 * append_key_match writes "a.k1 = b.k1 AND ..." over the key columns; a is
 * the target (or a row of the target's types), b the batch, whose values are
 * converted to the target's types first (an int batch key matches a text
 * target key by the text it is stored as).
 */
static void
append_key_match(StringInfo buf, EtlRun *run, const char *a, const char *b)
{
	ListCell *lc;
	bool first = true;

	foreach (lc, run->map->columns)
	{
		EtlColumn *col = lfirst(lc);

		if (!col->is_key)
			continue;
		appendStringInfo(buf, "%s%s.%s = ", first ? "" : " AND ", a,
						 quote_identifier(col->name));
		etl_deparse_as_target(buf, col, b);
		first = false;
	}
}

/*
 * etl_deparse_insert returns the INSERT of the batch into the target; with
 * skip_existing, rows whose key is already there are skipped (an anti-join:
 * load append, second half of load merge).  Without it every row is
 * inserted, and the transform is fenced (OFFSET 0) so that its expressions
 * are computed once, not again as arguments of the row hash.
 */
char *
etl_deparse_insert(EtlRun *run, bool skip_existing)
{
	StringInfoData buf;
	ListCell *lc;

	initStringInfo(&buf);
	append_delta_cte(&buf, run);
	appendStringInfo(&buf, "INSERT INTO %s AS etl_target ", run->target_sql);
	append_insert_columns(&buf, run);
	appendStringInfoString(&buf, "\nSELECT ");
	foreach (lc, run->map->columns)
		appendStringInfo(&buf, "%setl_t.%s",
						 foreach_current_index(lc) ? ", " : "",
						 quote_identifier(((EtlColumn *) lfirst(lc))->name));
	append_audit_values(&buf, run, "etl_t");
	appendStringInfoString(&buf, "\nFROM ");
	if (!skip_existing || run->p->key == NIL)
	{
		appendStringInfoString(&buf, "(SELECT * FROM ");
		append_batch(&buf, run);
		appendStringInfoString(&buf, " OFFSET 0) AS etl_t");
		return buf.data;
	}
	append_batch(&buf, run);
	appendStringInfo(
		&buf, "\nWHERE NOT EXISTS (SELECT FROM %s AS etl_existing WHERE ",
		run->target_sql);
	append_key_match(&buf, run, "etl_existing", "etl_t");
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

/*
 * has_equality tells whether "=" between two types resolves to a boolean
 * operator under the current (pinned) search_path.
 */
static bool
has_equality(Oid ltype, Oid rtype)
{
	Operator op =
		oper(NULL, list_make1(makeString("=")), ltype, rtype, true, -1);
	bool ok;

	if (op == NULL)
		return false;
	ok = ((Form_pg_operator) GETSTRUCT(op))->oprresult == BOOLOID;
	ReleaseSysCache(op);
	return ok;
}

/*
 * append_changed writes the condition under which a matched target row
 * differs from its batch row: the stored row hash differs, or (without a
 * _etl_row_hash column) some non-key column is distinct from the batch value
 * converted as the load would store it (etl_deparse_as_target: a raw
 * numeric compares rounded to a numeric(12,2) target's scale), compared as
 * text where the target type has no equality operator.
 */
static void
append_changed(StringInfo buf, EtlRun *run, const char *alias)
{
	ListCell *lc;
	bool first = true;

	if (run->map->has_row_hash)
	{
		appendStringInfoString(buf, "etl_target." ETL_COL_ROW_HASH
									" IS DISTINCT FROM ");
		append_row_hash(buf, run, alias);
		return;
	}
	foreach (lc, run->map->columns)
	{
		EtlColumn *col = lfirst(lc);
		const char *q = quote_identifier(col->name);

		if (col->is_key)
			continue;
		if (!first)
			appendStringInfoString(buf, " OR ");
		if (has_equality(col->tgt_type, col->tgt_type))
		{
			appendStringInfo(buf, "etl_target.%s IS DISTINCT FROM ", q);
			etl_deparse_as_target(buf, col, alias);
		}
		else
		{
			appendStringInfo(
				buf, "etl_target.%s::pg_catalog.text IS DISTINCT FROM (", q);
			etl_deparse_as_target(buf, col, alias);
			appendStringInfoString(buf, ")::pg_catalog.text");
		}
		first = false;
	}
	if (first)
		appendStringInfoString(buf, "false");
}

/*
 * etl_deparse_classify returns the read-only query that sorts the batch
 * against the target in one join: how many rows the batch has, how many
 * keys are new, how many rows differ from their target row.  It may run in
 * parallel; the writes that follow are skipped when there is nothing for
 * them (a re-run over unchanged rows writes nothing and only reads).
 */
char *
etl_deparse_classify(EtlRun *run)
{
	StringInfoData buf;
	const char *firstkey = NULL;
	ListCell *lc;

	foreach (lc, run->map->columns)
	{
		EtlColumn *col = lfirst(lc);

		if (col->is_key && firstkey == NULL)
			firstkey = quote_identifier(col->name);
	}
	Assert(firstkey != NULL);

	initStringInfo(&buf);
	append_delta_cte(&buf, run);
	appendStringInfo(
		&buf,
		"SELECT pg_catalog.count(*),"
		" pg_catalog.count(*) FILTER (WHERE etl_target.%s IS NULL),",
		firstkey);
	appendStringInfo(
		&buf,
		" pg_catalog.count(*) FILTER (WHERE etl_target.%s IS NOT NULL AND (",
		firstkey);
	append_changed(&buf, run, "etl_t");
	appendStringInfoString(&buf, "))");
	if (!run->dedupe && !run->map->key_unique)
	{
		/* rows whose key an earlier row had (load.c) */
		appendStringInfoString(&buf, ", pg_catalog.etl_dup_count(");
		append_key_row(&buf, run, "etl_t");
		appendStringInfoChar(&buf, ')');
	}
	appendStringInfoString(&buf, "\nFROM ");
	append_batch(&buf, run);
	appendStringInfo(&buf, "\nLEFT JOIN %s AS etl_target ON ",
					 run->target_sql);
	append_key_match(&buf, run, "etl_target", "etl_t");
	return buf.data;
}

/*
 * etl_deparse_update returns the UPDATE of the target rows whose key is in
 * the batch and whose content differs (load merge): an unchanged row is not
 * touched at all.  NULL when the batch has only key columns (nothing can
 * change).
 */
char *
etl_deparse_update(EtlRun *run)
{
	StringInfoData buf;
	ListCell *lc;
	bool first = true;

	initStringInfo(&buf);
	append_delta_cte(&buf, run);
	appendStringInfo(&buf, "UPDATE %s AS etl_target SET ", run->target_sql);
	foreach (lc, run->map->columns)
	{
		EtlColumn *col = lfirst(lc);
		const char *q = quote_identifier(col->name);

		if (col->is_key)
			continue;
		appendStringInfo(&buf, "%s%s = etl_t.%s", first ? "" : ", ", q, q);
		first = false;
	}
	if (first)
		return NULL;
	if (run->map->has_row_hash)
	{
		appendStringInfoString(&buf, ", " ETL_COL_ROW_HASH " = ");
		append_row_hash(&buf, run, "etl_t");
	}
	if (run->map->has_run_id)
		appendStringInfo(&buf, ", " ETL_COL_RUN_ID " = $%d", ETL_PARAM_RUN_ID);
	if (run->map->has_loaded_at)
		appendStringInfo(&buf, ", " ETL_COL_LOADED_AT " = $%d",
						 ETL_PARAM_LOADED_AT);

	appendStringInfoString(&buf, "\nFROM ");
	append_batch(&buf, run);
	appendStringInfoString(&buf, "\nWHERE ");
	append_key_match(&buf, run, "etl_target", "etl_t");
	appendStringInfoString(&buf, " AND (");
	append_changed(&buf, run, "etl_t");
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

/*
 * append_key_source_match writes the key match of DELETE ... USING: the
 * keys of etl_source are of the target's types already.
 */
static void
append_key_source_match(StringInfo buf, EtlRun *run)
{
	ListCell *lc;
	bool first = true;

	foreach (lc, run->map->columns)
	{
		EtlColumn *col = lfirst(lc);
		const char *q;

		if (!col->is_key)
			continue;
		q = quote_identifier(col->name);
		appendStringInfo(buf, "%setl_target.%s = etl_source.%s",
						 first ? "" : " AND ", q, q);
		first = false;
	}
}

/*
 * etl_deparse_delete returns the DELETE of the target rows whose key is in
 * the batch (first half of load delete_insert).
 */
char *
etl_deparse_delete(EtlRun *run)
{
	StringInfoData buf;
	ListCell *lc;
	bool first = true;

	initStringInfo(&buf);
	append_delta_cte(&buf, run);
	appendStringInfo(&buf,
					 "DELETE FROM %s AS etl_target USING (SELECT DISTINCT ",
					 run->target_sql);
	foreach (lc, run->map->columns)
	{
		EtlColumn *col = lfirst(lc);

		if (!col->is_key)
			continue;
		if (!first)
			appendStringInfoString(&buf, ", ");
		etl_deparse_as_target(&buf, col, "etl_t");
		appendStringInfo(&buf, " AS %s", quote_identifier(col->name));
		first = false;
	}
	appendStringInfoString(&buf, "\nFROM ");
	append_batch(&buf, run);
	appendStringInfoString(&buf, ") AS etl_source\nWHERE ");
	append_key_source_match(&buf, run);
	return buf.data;
}

/*
 * etl_deparse_stage_select returns the SELECT that stages the run's range:
 * row number, no reference, the source row.  Rows are numbered in a
 * deterministic order, the order in which they were written as far as the
 * source tells: by the watermark column, then by physical position (ctid;
 * tableoid and ctid in a partitioned table; the row's text where the source
 * has no ctid, a view or a foreign table).  So parts of a batch load in the
 * same order on every attempt, and a later version of a key comes after an
 * earlier one.
 */
char *
etl_deparse_stage_select(EtlRun *run)
{
	const char *tiebreak;

	switch (run->source_relkind)
	{
		case RELKIND_RELATION:
		case RELKIND_MATVIEW:
			tiebreak = "etl_s.ctid";
			break;
		case RELKIND_PARTITIONED_TABLE:
			tiebreak = "etl_s.tableoid, etl_s.ctid";
			break;
		default:
			tiebreak = "etl_s::pg_catalog.text";
			break;
	}
	return psprintf(
		"SELECT pg_catalog.row_number() OVER (ORDER BY etl_s.%s, %s),"
		" NULL::pg_catalog.int8, etl_s.* FROM %s AS etl_s%s",
		quote_identifier(run->p->watermark_column), tiebreak, run->source_sql,
		etl_deparse_range_where(run));
}

/*
 * append_key_row writes the batch key of alias converted to the target's
 * types: the key column, or ROW(...) of several.
 */
static void
append_key_row(StringInfo buf, EtlRun *run, const char *alias)
{
	ListCell *lc;
	int nkeys = 0;

	foreach (lc, run->map->columns)
		nkeys += ((EtlColumn *) lfirst(lc))->is_key ? 1 : 0;
	if (nkeys > 1)
		appendStringInfoString(buf, "ROW(");
	nkeys = 0;
	foreach (lc, run->map->columns)
	{
		EtlColumn *col = lfirst(lc);

		if (!col->is_key)
			continue;
		if (nkeys++ > 0)
			appendStringInfoString(buf, ", ");
		etl_deparse_as_target(buf, col, alias);
	}
	if (nkeys > 1)
		appendStringInfoChar(buf, ')');
}

/*
 * etl_deparse_dup_count returns the query that counts, with etl_dup_count,
 * the batch rows (of staged rows rn_lo .. rn_hi) whose key an earlier row
 * had: never too few, NULL when it cannot tell.
 */
char *
etl_deparse_dup_count(EtlRun *run)
{
	StringInfoData buf;

	initStringInfo(&buf);
	append_delta_cte(&buf, run);
	appendStringInfoString(&buf, "SELECT pg_catalog.etl_dup_count(");
	append_key_row(&buf, run, "etl_t");
	appendStringInfoString(&buf, ") FROM ");
	append_transform(&buf, run);
	append_keys_present(&buf, run);
	return buf.data;
}

/*
 * etl_deparse_dup_keys returns a query that finds whether two batch rows
 * (of staged rows rn_lo .. rn_hi) share a key, as the target compares keys
 * (NULL keys count as equal here).  One row: they do; none: they do not.
 */
char *
etl_deparse_dup_keys(EtlRun *run)
{
	StringInfoData buf;
	ListCell *lc;
	bool first = true;

	initStringInfo(&buf);
	append_delta_cte(&buf, run);
	appendStringInfoString(&buf, "SELECT 1 FROM ");
	append_transform(&buf, run);
	append_keys_present(&buf, run);
	appendStringInfoString(&buf, "\nGROUP BY ");
	foreach (lc, run->map->columns)
	{
		EtlColumn *col = lfirst(lc);

		if (!col->is_key)
			continue;
		if (!first)
			appendStringInfoString(&buf, ", ");
		etl_deparse_as_target(&buf, col, "etl_t");
		first = false;
	}
	appendStringInfoString(&buf, " HAVING pg_catalog.count(*) > 1 LIMIT 1");
	return buf.data;
}

/*
 * etl_deparse_dup_per_row returns a query that finds whether one staged row
 * (of rn_lo .. rn_hi) yields two batch rows with the same key: one row if
 * it does.
 */
char *
etl_deparse_dup_per_row(EtlRun *run)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "SELECT 1 FROM (\n%s\n) AS etl_t",
					 etl_deparse_rn_batch(run));
	append_keys_present(&buf, run);
	appendStringInfoString(&buf, "\nGROUP BY etl_t.etl_rn, ");
	append_key_exprs(&buf, run, "etl_t");
	appendStringInfoString(&buf, " HAVING pg_catalog.count(*) > 1 LIMIT 1");
	return buf.data;
}

/*
 * etl_deparse_transform_probe returns a query that runs the transform over
 * the current rows and discards its output (which part of a failing row
 * fails: the transform, or the load).
 */
char *
etl_deparse_transform_probe(EtlRun *run)
{
	StringInfoData buf;

	initStringInfo(&buf);
	append_delta_cte(&buf, run);
	/* count the whole rows: every output column is computed */
	appendStringInfoString(&buf, "SELECT pg_catalog.count(etl_t.*) FROM ");
	append_transform(&buf, run);
	return buf.data;
}

/*
 * etl_deparse_stage_record returns the query of staged row rn_lo as JSON
 * text (the record of a dead letter).
 */
char *
etl_deparse_stage_record(EtlRun *run)
{
	return psprintf("SELECT pg_catalog.to_jsonb(etl_d)::pg_catalog.text FROM"
					" (SELECT %s FROM pg_temp.%s WHERE etl_rn = $%d) AS etl_d",
					run->stage_columns, run->stage_table, ETL_PARAM_RN_LO);
}
