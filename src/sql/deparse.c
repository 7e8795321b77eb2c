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
 *	  src/sql/deparse.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/reloptions.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/tablespace.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_coerce.h"
#include "parser/parse_oper.h"
#include "partitioning/partbounds.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "sql/deparse.h"
#include "transform/isolate.h"

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
	if (run->p->mode == ETL_MODE_XID)
	{
		/* visible now (the scan's snapshot), not in the previous one */
		if (run->has_from)
			appendStringInfo(&buf,
							 " WHERE %s >= $%d AND NOT "
							 "pg_catalog.pg_visible_in_snapshot(%s, "
							 "$%d::pg_catalog.pg_snapshot)",
							 col, ETL_PARAM_FROM, col,
							 ETL_PARAM_PREV_SNAPSHOT);
		return buf.data;
	}
	if (run->has_from)
	{
		appendStringInfo(&buf, "%s%s %s $%d", sep, col,
						 run->from_inclusive ? ">=" : ">", ETL_PARAM_FROM);
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
 * range (-1 when the transform is one-to-one: the load counts them then),
 * finds the range's newest watermark value and whether it is past the
 * stored one, and, when an overlap re-reads rows before the stored
 * watermark, counts the rows past it (a fourth column).
 */
char *
etl_deparse_stats(EtlRun *run)
{
	const char *col;

	if (run->p->watermark_column == NULL)
		return psprintf("SELECT pg_catalog.count(*) FROM %s", run->source_sql);
	col = quote_identifier(run->p->watermark_column);
	/*
	 * A one-to-one transform into an empty target (a first load): the load
	 * counts the rows, sparing a scan.  Otherwise they are counted here (an
	 * increment's range is small, and its size chooses the load's joins; in
	 * mode cdc the load sees only each key's last change).
	 */
	return psprintf(
		"SELECT %s, pg_catalog.max(%s), pg_catalog.max(%s) > $%d%s FROM %s%s",
		run->map->one_to_one && run->p->mode != ETL_MODE_CDC &&
				run->target_empty == 1 && !run->rereads
			? "-1::pg_catalog.int8"
			: "pg_catalog.count(*)",
		col, col, ETL_PARAM_LO,
		run->rereads
			? psprintf(", pg_catalog.count(*) FILTER (WHERE %s > $%d)", col,
					   ETL_PARAM_LO)
			: "",
		run->source_sql, etl_deparse_range_where(run));
}

/*
 * etl_deparse_cutoff returns the statement that finds the batch_size-th
 * watermark value past the stored watermark (ties beyond it are included in
 * the batch by the "<= cutoff" bound, so none is skipped).  Rows at
 * -infinity are not counted: a first run takes them all, with batch_size
 * rows past them.
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
	else if (run->wm_type == TIMESTAMPTZOID || run->wm_type == TIMESTAMPOID)
		appendStringInfo(&buf, " AND %s > '-infinity'", col); /* a position */
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
 * append_cdc_last_changes writes the subquery of mode cdc that keeps, of
 * the change rows of the range, the last one of each key (by watermark
 * column).
 */
static void
append_cdc_last_changes(StringInfo buf, EtlRun *run)
{
	ListCell *lc;

	appendStringInfoString(buf, "(SELECT DISTINCT ON (");
	foreach (lc, run->p->key)
		appendStringInfo(buf, "%s%s", foreach_current_index(lc) ? ", " : "",
						 quote_identifier(lfirst(lc)));
	appendStringInfo(buf, ") * FROM %s%s ORDER BY ", run->source_sql,
					 etl_deparse_range_where(run));
	foreach (lc, run->p->key)
		appendStringInfo(buf, "%s, ", quote_identifier(lfirst(lc)));
	appendStringInfo(buf, "%s DESC)",
					 quote_identifier(run->p->watermark_column));
}

/*
 * cdc_op_test returns the condition that a change row of alias is a delete
 * (deletes) or an insert or update (!deletes).
 */
static char *
cdc_op_test(EtlRun *run, const char *alias, bool deletes)
{
	char *op = etl_option_text(run->p, "op_column", ETL_CDC_DEFAULT_OP);

	return psprintf("pg_catalog.lower(%s.%s::pg_catalog.text) %s 'd'", alias,
					quote_identifier(op), deletes ? "=" : "<>");
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
	else if (run->p->mode == ETL_MODE_CDC)
	{
		appendStringInfoString(buf, "WITH etl_delta AS (SELECT * FROM ");
		append_cdc_last_changes(buf, run);
		appendStringInfo(buf, " AS etl_last WHERE %s)\n",
						 cdc_op_test(run, "etl_last", false));
	}
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
	appendStringInfo(buf, " THEN etl_internal.etl_null_key(%s) ELSE true END",
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
 * etl_has_equality tells whether "=" between two types resolves to a boolean
 * operator under the current (pinned) search_path.
 */
bool
etl_has_equality(Oid ltype, Oid rtype)
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
 * soft_delete_column returns the quoted column in which mode snapshot with
 * options.delete_mode 'soft' stamps the target rows whose key left the
 * source, or NULL.
 */
static const char *
soft_delete_column(EtlRun *run)
{
	if (run->p->mode != ETL_MODE_SNAPSHOT ||
		strcmp(etl_option_text(run->p, "delete_mode", "hard"), "soft") != 0)
		return NULL;
	return quote_identifier(
		etl_option_text(run->p, "soft_delete_column", "_deleted_at"));
}

/*
 * compares_by_equality tells whether a non-key column of type is compared
 * with "=": the type (a domain's base type) has the equality of a default
 * btree or hash operator class, which arrays, ranges and composites have
 * only when their elements do.  The others (point, box, circle, polygon,
 * json, xml, arrays of them ...) have none, or one that is not exact (box
 * and circle compare areas), and are compared by their row hash.
 */
static bool
compares_by_equality(Oid type)
{
	TypeCacheEntry *tc =
		lookup_type_cache(getBaseType(type), TYPECACHE_EQ_OPR);

	return OidIsValid(tc->eq_opr);
}

/*
 * append_changed writes the condition under which a matched target row
 * differs from its batch row: the stored row hash differs, or (without a
 * _etl_row_hash column) some non-key column is distinct from the batch value
 * converted as the load would store it (etl_deparse_as_target: a raw
 * numeric compares rounded to a numeric(12,2) target's scale), compared by
 * etl_row_hash where the type has no equality (compares_by_equality): the
 * hash is exact and depends on no session setting, where their text would
 * follow extra_float_digits.  With soft deletes, a row stamped deleted whose
 * key is back in the batch differs too: the load revives it (an updated
 * row).
 */
static void
append_changed(StringInfo buf, EtlRun *run, const char *alias)
{
	ListCell *lc;
	bool first = true;
	const char *soft = soft_delete_column(run);

	if (soft != NULL)
		appendStringInfo(buf, "etl_target.%s IS NOT NULL OR ", soft);
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
		if (compares_by_equality(col->tgt_type))
		{
			appendStringInfo(buf, "etl_target.%s IS DISTINCT FROM ", q);
			etl_deparse_as_target(buf, col, alias);
		}
		else
		{
			appendStringInfo(buf,
							 "pg_catalog.etl_row_hash(etl_target.%s) IS "
							 "DISTINCT FROM pg_catalog.etl_row_hash(",
							 q);
			etl_deparse_as_target(buf, col, alias);
			appendStringInfoChar(buf, ')');
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
		appendStringInfoString(&buf, ", etl_internal.etl_dup_count(");
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
 * touched at all.  With soft deletes it also revives the rows stamped
 * deleted whose key is back.  NULL when nothing can change (the batch has
 * only key columns, and no soft deletes).
 */
char *
etl_deparse_update(EtlRun *run)
{
	StringInfoData buf;
	ListCell *lc;
	bool first = true;
	const char *soft = soft_delete_column(run);

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
	if (soft != NULL)
	{
		appendStringInfo(&buf, "%s%s = NULL", first ? "" : ", ", soft);
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
 * etl_deparse_revive returns, for load append with soft deletes, the UPDATE
 * that revives the target rows stamped deleted whose key is back in the
 * batch (append writes nothing else into a row it has); NULL without soft
 * deletes.
 */
char *
etl_deparse_revive(EtlRun *run)
{
	StringInfoData buf;
	const char *soft = soft_delete_column(run);

	if (soft == NULL)
		return NULL;
	initStringInfo(&buf);
	append_delta_cte(&buf, run);
	appendStringInfo(&buf, "UPDATE %s AS etl_target SET %s = NULL\nFROM ",
					 run->target_sql, soft);
	append_batch(&buf, run);
	appendStringInfoString(&buf, "\nWHERE ");
	append_key_match(&buf, run, "etl_target", "etl_t");
	appendStringInfo(&buf, " AND etl_target.%s IS NOT NULL", soft);
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
 * row number, the source row.  Rows are numbered in a
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
	if (run->p->mode == ETL_MODE_CDC)
	{
		/* mode cdc stages each key's last change, deletes left out */
		StringInfoData buf;

		initStringInfo(&buf);
		appendStringInfo(&buf,
						 "SELECT pg_catalog.row_number() OVER (ORDER BY "
						 "etl_s.%s), etl_s.* FROM ",
						 quote_identifier(run->p->watermark_column));
		append_cdc_last_changes(&buf, run);
		appendStringInfo(&buf, " AS etl_s WHERE %s",
						 cdc_op_test(run, "etl_s", false));
		return buf.data;
	}
	return psprintf(
		"SELECT pg_catalog.row_number() OVER (ORDER BY %s%s%s),"
		" etl_s.* FROM %s AS etl_s%s",
		run->p->watermark_column
			? psprintf("etl_s.%s", quote_identifier(run->p->watermark_column))
			: "",
		run->p->watermark_column ? ", " : "", tiebreak, run->source_sql,
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
	appendStringInfoString(&buf, "SELECT etl_internal.etl_dup_count(");
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
	appendStringInfoString(
		&buf, " HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 1 LIMIT 1");
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
	appendStringInfoString(
		&buf, " HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 1 LIMIT 1");
	return buf.data;
}

/*
 * etl_deparse_repeated_versions returns the query of the staged rows
 * (rn_lo .. rn_hi) that a dedupe load leaves out: those whose key (NULL
 * parts excepted) another staged row has that the load keeps -- a later one
 * for merge and delete_insert, an earlier one for append (append_batch()).
 * Columns: the row number and the key as a row's text, in row order.
 */
char *
etl_deparse_repeated_versions(EtlRun *run)
{
	StringInfoData buf;
	ListCell *lc;

	initStringInfo(&buf);
	appendStringInfoString(
		&buf, "SELECT etl_w.etl_rn, etl_w.etl_key FROM (SELECT etl_k.etl_rn,"
			  " ROW(");
	append_key_exprs(&buf, run, "etl_k");
	appendStringInfoString(
		&buf, ")::pg_catalog.text AS etl_key, pg_catalog.row_number() OVER"
			  " (PARTITION BY ");
	append_key_exprs(&buf, run, "etl_k");
	appendStringInfo(&buf,
					 " ORDER BY etl_k.etl_rn %s) AS etl_pos FROM (\n%s\n) AS"
					 " etl_k WHERE true",
					 run->p->load == ETL_LOAD_APPEND ? "ASC" : "DESC",
					 etl_deparse_rn_batch(run));
	foreach (lc, run->map->columns)
	{
		EtlColumn *col = lfirst(lc);

		if (col->is_key)
			appendStringInfo(&buf, " AND etl_k.%s IS NOT NULL",
							 quote_identifier(col->name));
	}
	appendStringInfoString(&buf, ") AS etl_w WHERE etl_w.etl_pos > 1"
								 " ORDER BY etl_w.etl_rn");
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

/*
 * etl_deparse_delete_vanished returns the DELETE of the target rows whose
 * key is no longer in the whole source (mode full): an anti-join of the
 * target with the transform over the source, quarantined rows included (a
 * row with a bad new version keeps its old one).
 */
char *
etl_deparse_delete_vanished(EtlRun *run)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf,
					 "WITH etl_delta AS (SELECT * FROM %s)\n"
					 "DELETE FROM %s AS etl_target WHERE NOT EXISTS "
					 "(SELECT FROM (\n%s\n) AS etl_t WHERE ",
					 run->source_sql, run->target_sql,
					 run->map->transform_sql);
	append_key_match(&buf, run, "etl_target", "etl_t");
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

/*
 * etl_deparse_delete_all returns the DELETE of every target row (mode full
 * without a key: the target is replaced, MVCC-safe, in the run's
 * transaction).
 */
char *
etl_deparse_delete_all(EtlRun *run)
{
	return psprintf("DELETE FROM %s", run->target_sql);
}

/*
 * etl_deparse_cdc_delete returns the DELETE of the target rows whose key's
 * last change in the range is a delete (mode cdc).  Key columns have the
 * same names in the change rows and the target.
 */
char *
etl_deparse_cdc_delete(EtlRun *run)
{
	StringInfoData buf;
	ListCell *lc;

	initStringInfo(&buf);
	appendStringInfo(&buf, "DELETE FROM %s AS etl_target USING ",
					 run->target_sql);
	append_cdc_last_changes(&buf, run);
	appendStringInfo(&buf, " AS etl_d WHERE %s",
					 cdc_op_test(run, "etl_d", true));
	foreach (lc, run->p->key)
	{
		const char *q = quote_identifier(lfirst(lc));

		appendStringInfo(&buf, " AND etl_target.%s = etl_d.%s", q, q);
	}
	return buf.data;
}

/*
 * etl_deparse_cdc_bad_operations returns the query of the first change
 * row of the range whose operation is unknown, with how many there are.
 */
char *
etl_deparse_cdc_bad_operations(EtlRun *run, const char *op)
{
	const char *q = quote_identifier(op);

	return psprintf(
		"SELECT %s::pg_catalog.text, pg_catalog.count(*) OVER ()::pg_catalog.text"
		" FROM %s%s%s (%s IS NULL OR pg_catalog.lower(%s::pg_catalog.text)"
		" <> ALL ('{c,r,i,u,d}')) LIMIT 1",
		q, run->source_sql, etl_deparse_range_where(run),
		run->has_from || run->has_hi || run->has_cutoff ? " AND" : " WHERE", q,
		q);
}

/* ------------------------------------------------------------------------
 * Mode snapshot: the transformed source against the stored signatures
 * ------------------------------------------------------------------------
 */

/*
 * append_key_hash writes the hash of the key columns of alias.
 */
static void
append_key_hash(StringInfo buf, EtlRun *run, const char *alias)
{
	ListCell *lc;
	bool first = true;

	appendStringInfoString(buf, "pg_catalog.etl_row_hash(");
	foreach (lc, run->map->columns)
	{
		EtlColumn *col = lfirst(lc);

		if (!col->is_key)
			continue;
		appendStringInfo(buf, "%s%s.%s", first ? "" : ", ", alias,
						 quote_identifier(col->name));
		first = false;
	}
	appendStringInfoChar(buf, ')');
}

/*
 * append_signed_source writes the source CTE and the transformed source
 * with its key and row hashes, aliased etl_c (etl_kh, etl_rh, columns).
 */
static void
append_signed_source(StringInfo buf, EtlRun *run)
{
	appendStringInfoString(buf, "(SELECT ");
	append_key_hash(buf, run, "etl_t");
	appendStringInfoString(buf, " AS etl_kh, ");
	append_row_hash(buf, run, "etl_t");
	appendStringInfo(buf,
					 " AS etl_rh, etl_t.* FROM (\n%s\n) AS etl_t) AS etl_c",
					 run->map->transform_sql);
}

static void
append_source_cte(StringInfo buf, EtlRun *run)
{
	appendStringInfo(buf, "WITH etl_delta AS (SELECT * FROM %s)\n",
					 run->source_sql);
}

/*
 * append_vanished writes the subquery of the stored keys that are no
 * longer in the source, as rows of the target's type (etl_v).
 */
static void
append_vanished(StringInfo buf, EtlRun *run)
{
	appendStringInfo(buf,
					 "(SELECT (pg_catalog.jsonb_populate_record(NULL::%s, "
					 "etl_s.key)).* FROM etl.snapshot_signatures AS etl_s "
					 "WHERE etl_s.pipeline_id OPERATOR(pg_catalog.=) $%d AND "
					 "NOT EXISTS (SELECT FROM ",
					 run->target_sql, ETL_PARAM_PIPELINE_ID);
	append_signed_source(buf, run);
	appendStringInfoString(buf, " WHERE etl_c.etl_kh OPERATOR(pg_catalog.=) "
								"etl_s.key_hash)) AS etl_v");
}

/*
 * etl_deparse_snapshot_classify returns the one read of mode snapshot: the
 * transformed source fully joined with the stored signatures, counting
 * source rows, new keys, changed rows and vanished keys.
 */
char *
etl_deparse_snapshot_classify(EtlRun *run)
{
	StringInfoData buf;

	initStringInfo(&buf);
	append_source_cte(&buf, run);
	appendStringInfoString(
		&buf,
		"SELECT pg_catalog.count(etl_c.etl_kh),"
		" pg_catalog.count(*) FILTER (WHERE etl_s.key_hash IS NULL),"
		" pg_catalog.count(*) FILTER (WHERE etl_c.etl_kh IS NOT NULL AND"
		" etl_s.key_hash IS NOT NULL AND"
		" etl_s.row_hash OPERATOR(pg_catalog.<>) etl_c.etl_rh),"
		" pg_catalog.count(*) FILTER (WHERE etl_c.etl_kh IS NULL)\nFROM ");
	append_signed_source(&buf, run);
	appendStringInfo(&buf,
					 "\nFULL JOIN (SELECT key_hash, row_hash FROM "
					 "etl.snapshot_signatures WHERE pipeline_id "
					 "OPERATOR(pg_catalog.=) $%d) AS etl_s ON etl_s.key_hash "
					 "OPERATOR(pg_catalog.=) etl_c.etl_kh",
					 ETL_PARAM_PIPELINE_ID);
	return buf.data;
}

/*
 * etl_deparse_snapshot_delete returns the statement that removes the
 * target rows of the vanished keys: a DELETE, or with soft set, an UPDATE
 * that stamps soft_column with the run's start.
 */
char *
etl_deparse_snapshot_delete(EtlRun *run, const char *soft_column)
{
	StringInfoData buf;

	initStringInfo(&buf);
	append_source_cte(&buf, run);
	if (soft_column)
		appendStringInfo(&buf, "UPDATE %s AS etl_target SET %s = $%d FROM ",
						 run->target_sql, quote_identifier(soft_column),
						 ETL_PARAM_LOADED_AT);
	else
		appendStringInfo(&buf, "DELETE FROM %s AS etl_target USING ",
						 run->target_sql);
	append_vanished(&buf, run);
	appendStringInfoString(&buf, " WHERE ");
	append_key_match(&buf, run, "etl_target", "etl_v");
	if (soft_column)
		appendStringInfo(&buf, " AND etl_target.%s IS NULL",
						 quote_identifier(soft_column));
	return buf.data;
}

/*
 * etl_deparse_snapshot_revive returns the UPDATE that clears soft_column
 * of the target rows whose key is back in the source.
 */
char *
etl_deparse_snapshot_revive(EtlRun *run, const char *soft_column)
{
	StringInfoData buf;
	const char *q = quote_identifier(soft_column);

	initStringInfo(&buf);
	append_source_cte(&buf, run);
	appendStringInfo(&buf, "UPDATE %s AS etl_target SET %s = NULL FROM ",
					 run->target_sql, q);
	append_signed_source(&buf, run);
	appendStringInfo(
		&buf,
		" WHERE etl_target.%s IS NOT NULL AND NOT EXISTS (SELECT "
		"FROM etl.snapshot_signatures AS etl_s WHERE "
		"etl_s.pipeline_id OPERATOR(pg_catalog.=) $%d AND "
		"etl_s.key_hash OPERATOR(pg_catalog.=) etl_c.etl_kh) AND ",
		q, ETL_PARAM_PIPELINE_ID);
	append_key_match(&buf, run, "etl_target", "etl_c");
	return buf.data;
}

/*
 * etl_deparse_snapshot_vanished_keys returns the query of the key hashes of
 * the stored signatures whose key is no longer in the source (run as the
 * pipeline owner; etl_catalog_forget_signatures() deletes them).
 */
char *
etl_deparse_snapshot_vanished_keys(EtlRun *run)
{
	StringInfoData buf;

	initStringInfo(&buf);
	append_source_cte(&buf, run);
	appendStringInfo(&buf,
					 "SELECT etl_s.key_hash FROM etl.snapshot_signatures AS "
					 "etl_s WHERE etl_s.pipeline_id OPERATOR(pg_catalog.=) "
					 "$%d AND NOT EXISTS (SELECT FROM ",
					 ETL_PARAM_PIPELINE_ID);
	append_signed_source(&buf, run);
	appendStringInfoString(&buf, " WHERE etl_c.etl_kh OPERATOR(pg_catalog.=) "
								 "etl_s.key_hash)");
	return buf.data;
}

/*
 * etl_deparse_snapshot_signatures returns the query of the signatures to
 * store, as key hash, row hash and key (jsonb): those of the new and
 * changed keys; with none_yet (the pipeline has no signature), all of them.
 * With repeats, keys that more than one source row has get none (one
 * signature per key).  It runs as the pipeline owner;
 * etl_catalog_remember_signatures() writes what it returns.
 */
char *
etl_deparse_snapshot_signatures(EtlRun *run, bool none_yet, bool repeats)
{
	StringInfoData buf;
	ListCell *lc;
	bool first = true;

	initStringInfo(&buf);
	append_source_cte(&buf, run);
	appendStringInfoString(&buf, "SELECT etl_c.etl_kh, etl_c.etl_rh,"
								 " pg_catalog.jsonb_build_object(");
	foreach (lc, run->map->columns)
	{
		EtlColumn *col = lfirst(lc);

		if (!col->is_key)
			continue;
		appendStringInfo(&buf, "%s%s::pg_catalog.text, etl_c.%s",
						 first ? "" : ", ", quote_literal_cstr(col->name),
						 quote_identifier(col->name));
		first = false;
	}
	appendStringInfoString(&buf, ") FROM ");
	if (repeats)
	{
		appendStringInfoString(
			&buf, "(SELECT etl_u.* FROM (SELECT etl_c.*, pg_catalog.count(*)"
				  " OVER (PARTITION BY etl_c.etl_kh) AS etl_n FROM ");
		append_signed_source(&buf, run);
		appendStringInfoString(
			&buf, ") AS etl_u WHERE etl_u.etl_n OPERATOR(pg_catalog.=) 1)"
				  " AS etl_c");
	}
	else
		append_signed_source(&buf, run);
	if (none_yet)
		return buf.data; /* a first run: every signature is new */
	appendStringInfo(&buf,
					 " WHERE NOT EXISTS (SELECT FROM etl.snapshot_signatures"
					 " AS etl_o WHERE etl_o.pipeline_id OPERATOR(pg_catalog.=)"
					 " $%d AND etl_o.key_hash OPERATOR(pg_catalog.=)"
					 " etl_c.etl_kh AND etl_o.row_hash OPERATOR(pg_catalog.=)"
					 " etl_c.etl_rh)",
					 ETL_PARAM_PIPELINE_ID);
	return buf.data;
}

/*
 * etl_deparse_superseded returns the query that finds which of the dead
 * letters $1 (int8[]) of pipeline $2 are superseded: the source holds the
 * row their record is a version of (the same values of the columns keys)
 * with a watermark value past the record's.  Ids come out in order.  NULL
 * when the pipeline has no watermark column (modes snapshot and full: no
 * version to compare), or a key column has no equality operator under the
 * pinned search_path.
 */
char *
etl_deparse_superseded(EtlRun *run, List *keys)
{
	StringInfoData buf;
	const char *wm;
	ListCell *lc;

	if (run->p->watermark_column == NULL)
		return NULL;
	wm = quote_identifier(run->p->watermark_column);
	initStringInfo(&buf);
	appendStringInfo(
		&buf,
		"SELECT etl_d.id FROM etl.dead_letters AS etl_d,"
		" LATERAL pg_catalog.jsonb_populate_record(NULL::%s, etl_d.record)"
		" AS etl_r"
		" WHERE etl_d.id OPERATOR(pg_catalog.=) ANY ($1)"
		" AND etl_d.pipeline_id OPERATOR(pg_catalog.=) $2"
		" AND EXISTS (SELECT FROM %s AS etl_s WHERE ",
		run->source_sql, run->source_sql);
	foreach (lc, keys)
	{
		const char *k = lfirst(lc);
		AttrNumber attnum = get_attnum(run->source_relid, k);
		Oid type;

		if (attnum == InvalidAttrNumber)
			return NULL;
		type = get_atttype(run->source_relid, attnum);
		if (!etl_has_equality(type, type))
			return NULL;
		appendStringInfo(&buf, "etl_s.%s = etl_r.%s AND ", quote_identifier(k),
						 quote_identifier(k));
	}
	appendStringInfo(&buf, "etl_s.%s > etl_r.%s) ORDER BY etl_d.id", wm, wm);
	return buf.data;
}

/* ------------------------------------------------------------------------
 * Load partition_swap (swap.c): the batch table, routing, the staging
 * tables and the swap.
 *
 * DDL takes no parameters: partition bounds and constraints, index and
 * constraint definitions are spliced as PostgreSQL itself deparses them
 * from the catalogs (pg_get_expr, pg_get_partition_constraintdef,
 * pg_get_indexdef, pg_get_constraintdef), names through quote_identifier.
 * The batch's values stay parameters, as everywhere else.
 * ------------------------------------------------------------------------
 */

/*
 * column_is_loaded tells whether the pipeline writes a target column: a
 * column of the batch, or an audit column it fills.
 */
static bool
column_is_loaded(EtlRun *run, const char *name)
{
	ListCell *lc;

	foreach (lc, run->map->columns)
		if (strcmp(((EtlColumn *) lfirst(lc))->name, name) == 0)
			return true;
	if (strcmp(name, ETL_COL_ROW_HASH) == 0)
		return run->map->has_row_hash;
	if (strcmp(name, ETL_COL_RUN_ID) == 0)
		return run->map->has_run_id;
	if (strcmp(name, ETL_COL_LOADED_AT) == 0)
		return run->map->has_loaded_at;
	return false;
}

/*
 * target_columns lists the names of the target's columns: with loaded
 * false, only those the pipeline does not write; with insertable, without
 * generated columns.
 */
static List *
target_columns(EtlRun *run, bool loaded, bool insertable)
{
	Relation rel = table_open(run->target_relid, AccessShareLock);
	TupleDesc desc = RelationGetDescr(rel);
	List *result = NIL;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (a->attisdropped || (insertable && a->attgenerated))
			continue;
		if (!loaded && column_is_loaded(run, NameStr(a->attname)))
			continue;
		result = lappend(result, pstrdup(NameStr(a->attname)));
	}
	table_close(rel, AccessShareLock);
	return result;
}

/*
 * identity_columns lists the identity columns of the target that the
 * pipeline does not write, with in *seqs the OID of each one's sequence:
 * a staging table has no identity (partitions of a partitioned table draw
 * from the target's sequence), so a new row gets its value from there.
 */
static List *
identity_columns(EtlRun *run, List **seqs)
{
	Relation rel = table_open(run->target_relid, AccessShareLock);
	TupleDesc desc = RelationGetDescr(rel);
	List *result = NIL;

	*seqs = NIL;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (a->attisdropped || !a->attidentity ||
			column_is_loaded(run, NameStr(a->attname)))
			continue;
		result = lappend(result, pstrdup(NameStr(a->attname)));
		*seqs = lappend_oid(
			*seqs, getIdentitySequence(run->target_relid, a->attnum, false));
	}
	table_close(rel, AccessShareLock);
	return result;
}

/*
 * append_names writes "alias.a, alias.b" (alias NULL: "a, b") for a list of
 * column names, each preceded by ", " unless first.
 */
static void
append_names(StringInfo buf, List *names, const char *alias, bool first)
{
	ListCell *lc;

	foreach (lc, names)
	{
		appendStringInfo(buf, "%s%s%s%s", first ? "" : ", ",
						 alias ? alias : "", alias ? "." : "",
						 quote_identifier(lfirst(lc)));
		first = false;
	}
}

/*
 * append_batch_columns writes the columns of the batch table that the
 * target receives: the batch columns, then the audit columns it has.
 */
static void
append_batch_columns(StringInfo buf, EtlRun *run, const char *alias)
{
	const char *a = alias ? alias : "";
	const char *dot = alias ? "." : "";
	ListCell *lc;

	foreach (lc, run->map->columns)
		appendStringInfo(buf, "%s%s%s%s",
						 foreach_current_index(lc) ? ", " : "", a, dot,
						 quote_identifier(((EtlColumn *) lfirst(lc))->name));
	if (run->map->has_row_hash)
		appendStringInfo(buf, ", %s%s" ETL_COL_ROW_HASH, a, dot);
	if (run->map->has_run_id)
		appendStringInfo(buf, ", %s%s" ETL_COL_RUN_ID, a, dot);
	if (run->map->has_loaded_at)
		appendStringInfo(buf, ", %s%s" ETL_COL_LOADED_AT, a, dot);
}

/*
 * etl_deparse_swap_batch_create returns the CREATE of a run's batch table
 * (partition_swap): a temporary table like the target, with its NOT NULL
 * and CHECK constraints and, when the target is itself a partition, its
 * partition constraint as the CHECK constraint ETL_SWAP_PARENT, so that a
 * row the target would refuse fails as it enters the batch, where bad-row
 * isolation finds it.
 */
char *
etl_deparse_swap_batch_create(EtlRun *run, const char *batch)
{
	char *parent = "";

	if (get_rel_relispartition(run->target_relid))
		parent = psprintf(", CONSTRAINT " ETL_SWAP_PARENT " CHECK (%s)",
						  TextDatumGetCString(DirectFunctionCall1(
							  pg_get_partition_constraintdef,
							  ObjectIdGetDatum(run->target_relid))));
	return psprintf("CREATE TEMP TABLE %s (LIKE %s INCLUDING CONSTRAINTS%s)"
					" ON COMMIT DROP",
					quote_identifier(batch), run->target_sql, parent);
}

/*
 * etl_deparse_swap_batch_shape returns the ALTER TABLE that leaves in the
 * batch table the columns the pipeline writes (constraints on the others
 * go with them) and adds the routing columns: the partition a changed row
 * is in now, the partition it goes to, and the gap of the target's bounds
 * a row without a partition falls in, with its period of
 * options.partition_interval.
 */
char *
etl_deparse_swap_batch_shape(EtlRun *run, const char *batch)
{
	StringInfoData buf;
	ListCell *lc;

	initStringInfo(&buf);
	appendStringInfo(&buf, "ALTER TABLE pg_temp.%s", quote_identifier(batch));
	foreach (lc, target_columns(run, false, false))
		appendStringInfo(&buf, " DROP COLUMN %s,",
						 quote_identifier(lfirst(lc)));
	appendStringInfoString(&buf,
						   " ADD COLUMN " ETL_SWAP_CUR " pg_catalog.oid,"
						   " ADD COLUMN " ETL_SWAP_DEST " pg_catalog.oid,"
						   " ADD COLUMN " ETL_SWAP_GAP " pg_catalog.int4,"
						   " ADD COLUMN " ETL_SWAP_PERIOD " pg_catalog.int8");
	return buf.data;
}

/*
 * etl_deparse_swap_batch_key returns the unique index of the batch table on
 * the key (when the target enforces the key's uniqueness): a key twice in
 * the batch fails as it enters the batch, as the merge's INSERT would.
 */
char *
etl_deparse_swap_batch_key(EtlRun *run, const char *batch)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "CREATE UNIQUE INDEX ON pg_temp.%s (",
					 quote_identifier(batch));
	append_names(&buf, run->p->key, NULL, true);
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

/*
 * append_route writes the partition a row goes to, by its key value
 * etl_p.etl_pv and bucket etl_w.etl_wb (NULL: none, before the DEFAULT
 * partition is considered).  Parameters from $param: the bounds (range) or
 * values (list) in order, the partition per bucket or value, the DEFAULT
 * partition, the partition that takes NULL (list).
 */
static void
append_route(StringInfo buf, EtlSwapKey *k, int param)
{
	if (k->strategy == PARTITION_STRATEGY_RANGE)
		appendStringInfo(buf, "($%d)[etl_w.etl_wb + 1]", param + 1);
	else
		appendStringInfo(buf,
						 "CASE WHEN etl_p.etl_pv IS NULL THEN $%d"
						 " WHEN etl_w.etl_wb > 0 AND ($%d)[etl_w.etl_wb] %s"
						 " (etl_p.etl_pv%s) THEN ($%d)[etl_w.etl_wb] END",
						 param + 3, param, k->eq_sql, k->collate_sql,
						 param + 1);
}

/*
 * etl_deparse_swap_fill returns the INSERT of the batch's new and changed
 * rows (with join_target; without it, the target is empty and every row is
 * new) into the batch table, with their routing: the partition the row is
 * in now (tableoid), the partition it goes to (its key value placed among
 * the target's bounds with width_bucket(), a binary search; else the
 * DEFAULT partition), and for a row without one, its gap (range) or 0
 * (list) and its period of options.partition_interval (range).  The
 * route's parameters start at $param (append_route(); $param + 4: the
 * width of a period).  The statement returns how many rows it inserted,
 * whether one of them has no partition (and none can be created for it
 * unless creatable), and the partition key value of one such row as text.
 */
char *
etl_deparse_swap_fill(EtlRun *run, const char *batch, EtlSwapKey *k,
					  bool join_target, bool creatable, int param)
{
	StringInfoData buf;
	StringInfoData route;
	const char *firstkey = NULL;
	char *gap;
	char *lost;
	ListCell *lc;

	initStringInfo(&route);
	append_route(&route, k, param);

	initStringInfo(&buf);
	append_delta_cte(&buf, run);
	appendStringInfo(&buf, ", etl_ins AS (INSERT INTO pg_temp.%s (",
					 quote_identifier(batch));
	append_batch_columns(&buf, run, NULL);
	appendStringInfoString(&buf, ", " ETL_SWAP_CUR ", " ETL_SWAP_DEST
								 ", " ETL_SWAP_GAP ", " ETL_SWAP_PERIOD
								 ")\nSELECT ");
	foreach (lc, run->map->columns)
	{
		EtlColumn *col = lfirst(lc);

		appendStringInfo(&buf, "%setl_t.%s",
						 foreach_current_index(lc) ? ", " : "",
						 quote_identifier(col->name));
		if (col->is_key && firstkey == NULL)
			firstkey = quote_identifier(col->name);
	}
	append_audit_values(&buf, run, "etl_t");
	gap = psprintf("$%d IS NULL AND etl_p.etl_pv IS NOT NULL AND (%s) IS NULL",
				   param + 2, route.data);
	appendStringInfo(
		&buf, ", %s, COALESCE(%s, $%d), CASE WHEN %s THEN %s END, %s\nFROM ",
		join_target ? "etl_target.tableoid" : "NULL", route.data, param + 2,
		gap, k->strategy == PARTITION_STRATEGY_RANGE ? "etl_w.etl_wb" : "0",
		k->period == ETL_PERIOD_NONE
			? "NULL"
			: psprintf("CASE WHEN %s THEN %s END", gap,
					   etl_deparse_swap_period("etl_p.etl_pv", k, param + 4)));
	/* as the other loads read it: one row per key under run->dedupe */
	append_batch(&buf, run);
	if (join_target)
	{
		appendStringInfo(&buf, "\nLEFT JOIN %s AS etl_target ON ",
						 run->target_sql);
		append_key_match(&buf, run, "etl_target", "etl_t");
	}
	appendStringInfo(&buf,
					 "\nCROSS JOIN LATERAL (SELECT CAST(etl_t.%s AS %s)"
					 " AS etl_pv) AS etl_p"
					 "\nCROSS JOIN LATERAL (SELECT pg_catalog.width_bucket("
					 "etl_p.etl_pv%s, $%d) AS etl_wb) AS etl_w",
					 k->column, k->type_sql, k->collate_sql, param);
	if (join_target)
	{
		Assert(firstkey != NULL);
		appendStringInfo(&buf, "\nWHERE etl_target.%s IS NULL OR (", firstkey);
		append_changed(&buf, run, "etl_t");
		appendStringInfoChar(&buf, ')');
	}
	lost = psprintf("etl_i." ETL_SWAP_DEST " IS NULL%s",
					creatable ? " AND etl_i." ETL_SWAP_GAP " IS NULL" : "");
	appendStringInfo(&buf,
					 "\nRETURNING %s, " ETL_SWAP_DEST ", " ETL_SWAP_GAP ")\n"
					 "SELECT (SELECT pg_catalog.count(*) FROM etl_ins),"
					 " EXISTS (SELECT FROM etl_ins AS etl_i WHERE %s),"
					 " (SELECT etl_i.%s::pg_catalog.text FROM etl_ins AS etl_i"
					 " WHERE %s LIMIT 1)",
					 k->column, lost, k->column, lost);
	return buf.data;
}

/*
 * etl_deparse_swap_period returns the number of the period of
 * options.partition_interval that the value of expr lies in, counting from
 * 1970-01-01 00:00 (UTC for timestamptz): the value as a whole number of
 * the period's unit (integer, days, microseconds or months since then),
 * divided by the width $param rounding down.
 */
char *
etl_deparse_swap_period(const char *expr, EtlSwapKey *k, int param)
{
	char *x;
	char *v;

	switch (k->period)
	{
		case ETL_PERIOD_INTEGER:
			x = psprintf("%s::pg_catalog.int8", expr);
			break;
		case ETL_PERIOD_DAYS:
			x = psprintf("(%s - '1970-01-01'::pg_catalog.date)"
						 "::pg_catalog.int8",
						 expr);
			break;
		case ETL_PERIOD_MICROSECONDS:
			x = psprintf("(pg_catalog.extract('epoch', %s) * 1000000)"
						 "::pg_catalog.int8",
						 expr);
			break;
		case ETL_PERIOD_MONTHS:
			v = k->type == TIMESTAMPTZOID
					? psprintf("pg_catalog.timezone('UTC', %s)", expr)
					: psprintf("%s::pg_catalog.timestamp", expr);
			x = psprintf("((pg_catalog.date_part('year', %s)::pg_catalog.int8"
						 " - 1970) * 12 + pg_catalog.date_part('month', %s)"
						 "::pg_catalog.int8 - 1)",
						 v, v);
			break;
		default:
			elog(ERROR, "etl_ext: no partition interval");
	}
	return psprintf("((%s - ((%s %% $%d) + $%d) %% $%d) / $%d)", x, x, param,
					param, param, param);
}

/*
 * etl_deparse_swap_groups returns the query of the partitions the batch
 * table's rows go to, with how many: an existing partition, or for rows
 * that get a new one, their gap and their period (range) or their value
 * (list).
 */
char *
etl_deparse_swap_groups(const char *batch, EtlSwapKey *k)
{
	char *newkey = k->strategy == PARTITION_STRATEGY_LIST
					   ? psprintf("etl_b.%s", k->column)
					   : "etl_b." ETL_SWAP_PERIOD;

	return psprintf("SELECT etl_b." ETL_SWAP_DEST ", etl_b." ETL_SWAP_GAP
					", CASE WHEN etl_b." ETL_SWAP_DEST " IS NULL THEN %s END,"
					" pg_catalog.count(*) FROM pg_temp.%s AS etl_b"
					" GROUP BY 1, 2, 3",
					newkey, quote_identifier(batch));
}

/*
 * etl_deparse_swap_movers returns the query of the partitions that hold
 * rows which the batch moves to another partition (their partition key
 * value changed).
 */
char *
etl_deparse_swap_movers(const char *batch)
{
	return psprintf("SELECT DISTINCT etl_b." ETL_SWAP_CUR
					" FROM pg_temp.%s AS etl_b WHERE etl_b." ETL_SWAP_CUR
					" IS NOT NULL AND etl_b." ETL_SWAP_CUR
					" IS DISTINCT FROM etl_b." ETL_SWAP_DEST,
					quote_identifier(batch));
}

/*
 * etl_deparse_swap_filter returns the condition on the batch table (alias
 * etl_b) that selects the rows of one partition: of an existing one ($param
 * its oid), of a new range partition ($param the gap, $param + 1 the
 * period), of a new list partition ($param the value).
 */
char *
etl_deparse_swap_filter(EtlSwapKey *k, bool is_new, int param)
{
	if (!is_new)
		return psprintf("etl_b." ETL_SWAP_DEST " = $%d", param);
	if (k->strategy == PARTITION_STRATEGY_LIST)
		return psprintf("etl_b." ETL_SWAP_DEST " IS NULL AND (etl_b.%s%s) %s"
						" $%d",
						k->column, k->collate_sql, k->eq_sql, param);
	return psprintf("etl_b." ETL_SWAP_DEST " IS NULL AND etl_b." ETL_SWAP_GAP
					" = $%d AND etl_b." ETL_SWAP_PERIOD " = $%d",
					param, param + 1);
}

/*
 * etl_deparse_swap_batch_index returns the index of the batch table that
 * etl_deparse_swap_filter() uses: when the batch touches many partitions,
 * each reads its rows without scanning the whole batch table.
 */
char *
etl_deparse_swap_batch_index(const char *batch, EtlSwapKey *k)
{
	return psprintf("CREATE INDEX ON pg_temp.%s (" ETL_SWAP_DEST ", %s)",
					quote_identifier(batch),
					k->strategy == PARTITION_STRATEGY_LIST ? k->column
														   : ETL_SWAP_GAP
						", " ETL_SWAP_PERIOD);
}

/*
 * etl_deparse_swap_keep returns the INSERT into a staging table of the rows
 * of the partition it replaces whose key the batch table does not hold:
 * the rows the batch leaves as they are.
 */
char *
etl_deparse_swap_keep(EtlRun *run, const char *staging, const char *old,
					  const char *batch)
{
	StringInfoData buf;
	List *cols = target_columns(run, true, true);

	initStringInfo(&buf);
	appendStringInfo(&buf, "INSERT INTO %s (", staging);
	append_names(&buf, cols, NULL, true);
	appendStringInfoString(&buf, ") SELECT ");
	append_names(&buf, cols, "etl_o", true);
	appendStringInfo(&buf,
					 " FROM %s AS etl_o WHERE NOT EXISTS (SELECT FROM "
					 "pg_temp.%s AS etl_b WHERE ",
					 old, quote_identifier(batch));
	append_key_match(&buf, run, "etl_b", "etl_o");
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

/*
 * etl_deparse_swap_add returns the INSERT into a staging table of the rows
 * of the batch table that filter selects: all of them (which 0: the
 * pipeline writes every column of the target), the new keys (1: the
 * target's defaults fill the columns the pipeline does not write, and its
 * identity columns get the next values of their sequences), or the
 * changed rows (2: those columns keep the values of the row's current
 * version, as load merge's UPDATE keeps them; NULL when the pipeline writes
 * every column: use 0).
 */
char *
etl_deparse_swap_add(EtlRun *run, const char *staging, const char *batch,
					 const char *filter, int which)
{
	StringInfoData buf;
	List *others = which == 2 ? target_columns(run, false, true) : NIL;
	List *seqs = NIL;
	List *identities = which == 1 ? identity_columns(run, &seqs) : NIL;
	ListCell *lc;

	if (which == 2 && others == NIL)
		return NULL;
	initStringInfo(&buf);
	appendStringInfo(&buf, "INSERT INTO %s (", staging);
	append_batch_columns(&buf, run, NULL);
	append_names(&buf, others, NULL, false);
	append_names(&buf, identities, NULL, false);
	appendStringInfoString(&buf, ") SELECT ");
	append_batch_columns(&buf, run, "etl_b");
	append_names(&buf, others, "etl_o", false);
	foreach (lc, seqs)
		appendStringInfo(&buf,
						 ", pg_catalog.nextval(%u::pg_catalog.oid::pg_catalog."
						 "regclass)",
						 lfirst_oid(lc));
	appendStringInfo(&buf, " FROM pg_temp.%s AS etl_b",
					 quote_identifier(batch));
	if (which == 2)
	{
		appendStringInfo(&buf, " JOIN %s AS etl_o ON ", run->target_sql);
		append_key_match(&buf, run, "etl_o", "etl_b");
		appendStringInfoString(&buf,
							   " AND etl_o.tableoid = etl_b." ETL_SWAP_CUR);
	}
	appendStringInfo(&buf, " WHERE %s", filter);
	if (which == 1)
		appendStringInfoString(&buf, " AND etl_b." ETL_SWAP_CUR " IS NULL");
	else if (which == 2)
		appendStringInfoString(&buf,
							   " AND etl_b." ETL_SWAP_CUR " IS NOT NULL");
	return buf.data;
}

/*
 * etl_deparse_partition_bound returns the bound clause of a partition of
 * parent ("FOR VALUES ...") and in *qual its partition constraint (its
 * bound's and, when parent is a partition itself, parent's), both as
 * PostgreSQL deparses them (pg_get_expr, pg_get_partition_constraintdef):
 * a CHECK constraint of that text on a table lets ATTACH PARTITION skip
 * its validation scan.
 */
char *
etl_deparse_partition_bound(Relation parent, PartitionBoundSpec *spec,
							char **qual)
{
	List *quals = list_concat(get_qual_from_partbound(parent, spec),
							  RelationGetPartitionQual(parent));

	*qual =
		deparse_expression((Node *) make_ands_explicit(quals),
						   deparse_context_for(RelationGetRelationName(parent),
											   RelationGetRelid(parent)),
						   false, false);
	return TextDatumGetCString(DirectFunctionCall2(
		pg_get_expr, CStringGetTextDatum(nodeToString(spec)),
		ObjectIdGetDatum(RelationGetRelid(parent))));
}

/*
 * etl_deparse_swap_staging returns the CREATE of a staging table: like
 * template (the partition it replaces, or the target for a new partition)
 * with its columns, defaults, CHECK and NOT NULL constraints, generated
 * columns, storage, compression, comments and statistics, but no indexes
 * (built once the rows are in: faster than maintaining them row by row)
 * and no identity; the CHECK constraint ETL_SWAP_BOUND holds its partition
 * constraint qual, so that ATTACH PARTITION does not scan it.  Persistence,
 * access method, storage parameters and tablespace are the template's.
 */
char *
etl_deparse_swap_staging(const char *staging, Oid template, const char *qual)
{
	HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(template));
	Form_pg_class c;
	StringInfoData buf;
	Datum options;
	bool isnull;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", template);
	c = (Form_pg_class) GETSTRUCT(tup);
	initStringInfo(&buf);
	appendStringInfo(&buf,
					 "CREATE %sTABLE %s (LIKE %s INCLUDING ALL EXCLUDING "
					 "INDEXES EXCLUDING IDENTITY, CONSTRAINT " ETL_SWAP_BOUND
					 " CHECK (%s))",
					 c->relpersistence == RELPERSISTENCE_UNLOGGED ? "UNLOGGED "
																  : "",
					 staging, etl_relation_sql(template), qual);
	if (OidIsValid(c->relam) && c->relam != HEAP_TABLE_AM_OID)
		appendStringInfo(&buf, " USING %s",
						 quote_identifier(get_am_name(c->relam)));
	options = SysCacheGetAttr(RELOID, tup, Anum_pg_class_reloptions, &isnull);
	if (!isnull)
	{
		ListCell *lc;

		appendStringInfoString(&buf, " WITH (");
		foreach (lc, untransformRelOptions(options))
		{
			DefElem *def = lfirst(lc);

			appendStringInfo(&buf, "%s%s = %s",
							 foreach_current_index(lc) ? ", " : "",
							 quote_identifier(def->defname),
							 quote_literal_cstr(defGetString(def)));
		}
		appendStringInfoChar(&buf, ')');
	}
	if (OidIsValid(c->reltablespace))
		appendStringInfo(
			&buf, " TABLESPACE %s",
			quote_identifier(get_tablespace_name(c->reltablespace)));
	ReleaseSysCache(tup);
	return buf.data;
}

/*
 * etl_deparse_swap_index returns the CREATE of an index like index on a
 * staging table, named name (NULL: PostgreSQL chooses), from the index's
 * own definition.
 */
char *
etl_deparse_swap_index(Oid index, const char *staging, const char *name)
{
	char *def = pg_get_indexdef_string(index);
	HeapTuple tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(index));
	Form_pg_index x;
	char *prefix;
	char *rest = NULL;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for index %u", index);
	x = (Form_pg_index) GETSTRUCT(tup);
	/* "CREATE [UNIQUE ]INDEX <name> ON [ONLY ]<table> USING ..." */
	for (int only = 0; only <= 1 && rest == NULL; only++)
	{
		prefix = psprintf("CREATE %sINDEX %s ON %s%s ",
						  x->indisunique ? "UNIQUE " : "",
						  quote_identifier(get_rel_name(index)),
						  only ? "ONLY " : "", etl_relation_sql(x->indrelid));
		if (strncmp(def, prefix, strlen(prefix)) == 0)
			rest = def + strlen(prefix);
	}
	if (rest == NULL || strncmp(rest, "USING ", 6) != 0)
		elog(ERROR, "etl_ext: unexpected definition of index %u: %s", index,
			 def);
	rest = psprintf(
		"CREATE %sINDEX %s%sON %s %s", x->indisunique ? "UNIQUE " : "",
		name ? quote_identifier(name) : "", name ? " " : "", staging, rest);
	ReleaseSysCache(tup);
	return rest;
}

/*
 * etl_deparse_swap_constraint returns the ALTER TABLE that adds to a
 * staging table a constraint like constraint (a primary key, unique or
 * exclusion constraint: its index is built then), named name (NULL:
 * PostgreSQL chooses).
 */
char *
etl_deparse_swap_constraint(Oid constraint, const char *staging,
							const char *name)
{
	char *def = TextDatumGetCString(DirectFunctionCall1(
		pg_get_constraintdef, ObjectIdGetDatum(constraint)));

	return psprintf("ALTER TABLE %s ADD %s%s%s%s", staging,
					name ? "CONSTRAINT " : "",
					name ? quote_identifier(name) : "", name ? " " : "", def);
}

/*
 * role_sql returns a role as GRANT names it (0: PUBLIC).
 */
static const char *
role_sql(Oid role)
{
	if (role == ACL_ID_PUBLIC)
		return "PUBLIC";
	return quote_identifier(GetUserNameFromId(role, false));
}

/*
 * etl_deparse_grant returns the GRANT of privs on a table to a role (0:
 * PUBLIC), with grant option or not.
 */
char *
etl_deparse_grant(const char *rel, AclMode privs, Oid grantee,
				  bool grant_option)
{
	static const struct
	{
		AclMode bit;
		const char *name;
	} names[] = {
		{ ACL_SELECT, "SELECT" },	  { ACL_INSERT, "INSERT" },
		{ ACL_UPDATE, "UPDATE" },	  { ACL_DELETE, "DELETE" },
		{ ACL_TRUNCATE, "TRUNCATE" }, { ACL_REFERENCES, "REFERENCES" },
		{ ACL_TRIGGER, "TRIGGER" }
	};
	StringInfoData buf;
	bool first = true;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "GRANT ");
	for (int i = 0; i < lengthof(names); i++)
		if (privs & names[i].bit)
		{
			appendStringInfo(&buf, "%s%s", first ? "" : ", ", names[i].name);
			first = false;
		}
	appendStringInfo(&buf, " ON TABLE %s TO %s%s", rel, role_sql(grantee),
					 grant_option ? " WITH GRANT OPTION" : "");
	return buf.data;
}

/*
 * etl_deparse_revoke_all returns the REVOKE of every privilege on a table
 * from a role (0: PUBLIC).
 */
char *
etl_deparse_revoke_all(const char *rel, Oid grantee)
{
	return psprintf("REVOKE ALL ON TABLE %s FROM %s", rel, role_sql(grantee));
}

/*
 * etl_deparse_set_owner returns the ALTER TABLE that gives a table to role.
 */
char *
etl_deparse_set_owner(const char *rel, Oid role)
{
	return psprintf("ALTER TABLE %s OWNER TO %s", rel, role_sql(role));
}

/*
 * etl_deparse_comment returns the COMMENT ON TABLE of a table.
 */
char *
etl_deparse_comment(const char *rel, const char *comment)
{
	return psprintf("COMMENT ON TABLE %s IS %s", rel,
					quote_literal_cstr(comment));
}

/*
 * etl_deparse_lock returns the LOCK TABLE ONLY of rels (a comma list of
 * qualified names) in mode.
 */
char *
etl_deparse_lock(const char *rels, const char *mode)
{
	return psprintf("LOCK TABLE ONLY %s IN %s MODE", rels, mode);
}

/*
 * etl_deparse_swap_step returns one statement of the swap: ATTACH (rel the
 * staging table, arg its bound clause), DROP (rel the partition replaced,
 * or the batch table), RENAME and RENAME INDEX (arg the new name),
 * UNBOUND (dropping the ETL_SWAP_BOUND constraint of rel) or ANALYZE.
 */
char *
etl_deparse_swap_step(EtlSwapStep step, const char *target, const char *rel,
					  const char *arg)
{
	switch (step)
	{
		case ETL_SWAP_ATTACH:
			return psprintf("ALTER TABLE %s ATTACH PARTITION %s %s", target,
							rel, arg);
		case ETL_SWAP_DROP:
			return psprintf("DROP TABLE %s", rel);
		case ETL_SWAP_RENAME:
			return psprintf("ALTER TABLE %s RENAME TO %s", rel,
							quote_identifier(arg));
		case ETL_SWAP_RENAME_INDEX:
			return psprintf("ALTER INDEX %s RENAME TO %s", rel,
							quote_identifier(arg));
		case ETL_SWAP_UNBOUND:
			return psprintf("ALTER TABLE %s DROP CONSTRAINT " ETL_SWAP_BOUND,
							rel);
		case ETL_SWAP_ANALYZE:
			return psprintf("ANALYZE %s", rel);
	}
	return NULL; /* keep compiler quiet */
}
