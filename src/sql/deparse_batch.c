/*-------------------------------------------------------------------------
 *
 * deparse_batch.c
 *	  The SQL text of the batch as every statement of a run reads it: the
 *	  range of the source, the etl_delta CTE, the transform, the keys and
 *	  audit columns; the pieces the other builders (sql/deparse_*.c) are made
 *	  of.  No execution here, nor in any builder.
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
 *	  src/sql/deparse_batch.c
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
#include "catalog/pg_namespace.h"
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

#include "sql/deparse_batch.h"

/*
 * etl_deparse_range_where returns the WHERE clause that selects the rows of
 * this run from the source ("" when the whole source is read).
 */
char *
etl_deparse_range_where(const EtlBatchSql *b)
{
	StringInfoData buf;
	const char *col;
	const char *sep = " WHERE ";

	initStringInfo(&buf);
	if (b->p->watermark_column == NULL)
		return buf.data;
	col = quote_identifier(b->p->watermark_column);
	if (b->map->source.by_snapshot)
	{
		/* visible now (the scan's snapshot), not in the previous one */
		if (b->has_from)
			appendStringInfo(&buf,
							 " WHERE %s >= $%d AND NOT "
							 "pg_catalog.pg_visible_in_snapshot(%s, "
							 "$%d::pg_catalog.pg_snapshot)",
							 col, ETL_PARAM_FROM, col,
							 ETL_PARAM_PREV_SNAPSHOT);
		return buf.data;
	}
	if (b->has_from)
	{
		appendStringInfo(&buf, "%s%s %s $%d", sep, col,
						 b->from_inclusive ? ">=" : ">", ETL_PARAM_FROM);
		sep = " AND ";
	}
	if (b->has_hi)
	{
		appendStringInfo(&buf, "%s%s %s $%d", sep, col,
						 b->hi_inclusive ? "<=" : "<", ETL_PARAM_HI);
		sep = " AND ";
	}
	if (b->has_cutoff)
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
etl_deparse_stats(const EtlBatchSql *b)
{
	const char *col;

	if (b->p->watermark_column == NULL)
		return psprintf("SELECT pg_catalog.count(*) FROM %s", b->source_sql);
	col = quote_identifier(b->p->watermark_column);
	/*
	 * A one-to-one transform into an empty target (a first load): the load
	 * counts the rows, sparing a scan.  Otherwise they are counted here (an
	 * increment's range is small, and its size chooses the load's joins; in
	 * mode cdc the load sees only each key's last change).
	 */
	return psprintf(
		"SELECT %s, pg_catalog.max(%s), pg_catalog.max(%s) > $%d%s FROM %s%s",
		b->map->one_to_one && !b->map->source.last_changes &&
				b->target_empty == 1 && !b->rereads
			? "-1::pg_catalog.int8"
			: "pg_catalog.count(*)",
		col, col, ETL_PARAM_LO,
		b->rereads ? psprintf(", pg_catalog.count(*) FILTER (WHERE %s > $%d)",
							  col, ETL_PARAM_LO)
				   : "",
		b->source_sql, etl_deparse_range_where(b));
}

/*
 * etl_deparse_cutoff returns the statement that finds the batch_size-th
 * watermark value past the stored watermark (ties beyond it are included in
 * the batch by the "<= cutoff" bound, so none is skipped).  Rows at
 * -infinity are not counted: a first run takes them all, with batch_size
 * rows past them.
 */
char *
etl_deparse_cutoff(const EtlBatchSql *b)
{
	const char *col = quote_identifier(b->p->watermark_column);
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "SELECT %s FROM %s WHERE %s IS NOT NULL", col,
					 b->source_sql, col);
	if (b->has_lo)
		appendStringInfo(&buf, " AND %s > $%d", col, ETL_PARAM_LO);
	else if (b->wm_type == TIMESTAMPTZOID || b->wm_type == TIMESTAMPOID)
		appendStringInfo(&buf, " AND %s > '-infinity'", col); /* a position */
	if (b->has_hi)
		appendStringInfo(&buf, " AND %s %s $%d", col,
						 b->hi_inclusive ? "<=" : "<", ETL_PARAM_HI);
	appendStringInfo(&buf, " ORDER BY %s OFFSET $%d LIMIT 1", col,
					 ETL_PARAM_OFFSET);
	return buf.data;
}

/*
 * etl_deparse_target_probe returns a statement that finds whether the target
 * has any row.
 */
char *
etl_deparse_target_probe(const EtlBatchSql *b)
{
	return psprintf("SELECT 1 FROM %s LIMIT 1", b->target_sql);
}

/*
 * etl_append_cdc_last_changes writes the subquery of mode cdc that keeps, of
 * the change rows of the range, the last one of each key (by watermark
 * column).
 */
void
etl_append_cdc_last_changes(StringInfo buf, const EtlBatchSql *b)
{
	ListCell *lc;

	appendStringInfoString(buf, "(SELECT DISTINCT ON (");
	foreach (lc, b->p->key)
		appendStringInfo(buf, "%s%s", foreach_current_index(lc) ? ", " : "",
						 quote_identifier(lfirst(lc)));
	appendStringInfo(buf, ") * FROM %s%s ORDER BY ", b->source_sql,
					 etl_deparse_range_where(b));
	foreach (lc, b->p->key)
		appendStringInfo(buf, "%s, ", quote_identifier(lfirst(lc)));
	appendStringInfo(buf, "%s DESC)",
					 quote_identifier(b->p->watermark_column));
}

/*
 * etl_deparse_cdc_op_test returns the condition that a change row of alias is
 * a delete (deletes) or an insert or update (!deletes).
 */
char *
etl_deparse_cdc_op_test(const EtlBatchSql *b, const char *alias, bool deletes)
{
	char *op = etl_option_text(b->p, "op_column", ETL_CDC_DEFAULT_OP);

	return psprintf("pg_catalog.lower(%s.%s::pg_catalog.text) %s 'd'", alias,
					quote_identifier(op), deletes ? "=" : "<>");
}

/*
 * append_delta_cte writes the CTE through which every statement reads the
 * source.
 */
static void
append_delta_cte(StringInfo buf, const EtlBatchSql *b)
{
	if (b->stage_table != NULL)
		appendStringInfo(buf,
						 "WITH etl_delta AS (SELECT %s FROM pg_temp.%s"
						 " WHERE etl_rn BETWEEN $%d AND $%d AND %s)\n",
						 b->stage_columns, b->stage_table, ETL_PARAM_RN_LO,
						 ETL_PARAM_RN_HI, etl_stage_filter(b, NULL));
	else if (b->map->source.last_changes)
	{
		appendStringInfoString(buf, "WITH etl_delta AS (SELECT * FROM ");
		etl_append_cdc_last_changes(buf, b);
		appendStringInfo(buf, " AS etl_last WHERE %s)\n",
						 etl_deparse_cdc_op_test(b, "etl_last", false));
	}
	else
		appendStringInfo(buf, "WITH etl_delta AS (SELECT * FROM %s%s)\n",
						 b->source_sql, etl_deparse_range_where(b));
}

/*
 * etl_deparse_delta_cte writes the CTE etl_delta (for the checks).
 */
void
etl_deparse_delta_cte(StringInfo buf, const EtlBatchSql *b)
{
	append_delta_cte(buf, b);
}

/*
 * etl_append_transform writes the transform as a subquery aliased etl_t.
 */
void
etl_append_transform(StringInfo buf, const EtlBatchSql *b)
{
	appendStringInfo(buf, "(\n%s\n) AS etl_t", b->map->transform_sql);
}

/*
 * etl_deparse_rn_batch returns the batch of staged rows rn_lo .. rn_hi with
 * the row number of the source row each batch row came from: the columns
 * etl_rn, then the transform's.  The transform (row-local, transform.c) runs
 * once per staged row, laterally: its one read of etl_delta is replaced by
 * that row, (SELECT etl_s.col, ...), so it computes that row's output rows
 * only.  A transform without a WITH of its own is flattened into one join
 * by the planner.  The etl_delta CTE of the statement (which this query
 * does not need) comes from the caller.
 */
char *
etl_deparse_rn_batch(const EtlBatchSql *b)
{
	EtlColumnMap *map = b->map;
	StringInfoData buf;

	Assert(map->row_local && b->stage_table != NULL);
	initStringInfo(&buf);
	appendStringInfo(
		&buf,
		"SELECT etl_s.etl_rn, etl_x.* FROM pg_temp.%s AS etl_s"
		" CROSS JOIN LATERAL (\n%.*s(SELECT %s)%s%s\n) AS etl_x"
		"\nWHERE etl_s.etl_rn BETWEEN $%d AND $%d AND %s",
		b->stage_table, map->delta_loc, map->transform_sql, b->stage_columns_s,
		map->delta_aliased ? "" : " AS etl_delta",
		map->transform_sql + map->delta_loc + map->delta_len, ETL_PARAM_RN_LO,
		ETL_PARAM_RN_HI, etl_stage_filter(b, "etl_s"));
	return buf.data;
}

/*
 * append_key_guard writes the condition that lets a batch row (alias) pass
 * when its key has no NULL part, and raises 23502 for it otherwise
 * (etl_null_key(): the row becomes a dead letter).  "true" when the
 * target's key columns are NOT NULL (their constraint raises 23502 then),
 * or without a key.
 */
static void
append_key_guard(StringInfo buf, const EtlBatchSql *b, const char *alias)
{
	StringInfoData names;
	ListCell *lc;
	bool first = true;

	if (b->p->key == NIL || !b->map->key_nullable)
	{
		appendStringInfoString(buf, "true");
		return;
	}
	initStringInfo(&names);
	appendStringInfoString(buf, "CASE WHEN ");
	foreach (lc, b->map->columns)
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
 * etl_append_key_exprs writes the key columns of alias converted to the
 * target's types, comma-separated.
 */
void
etl_append_key_exprs(StringInfo buf, const EtlBatchSql *b, const char *alias)
{
	ListCell *lc;
	bool first = true;

	foreach (lc, b->map->columns)
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
 * etl_append_batch writes the batch as the load statements read it, aliased
 * etl_t: the transform, with rows whose key has a NULL part refused
 * (append_key_guard()), and under b->dedupe one row per key -- the last
 * staged row of the key (the latest version) for merge and delete_insert,
 * the first for append (source.keep_first, load.c).
 */
void
etl_append_batch(StringInfo buf, const EtlBatchSql *b)
{
	ListCell *lc;

	if (b->dedupe)
	{
		appendStringInfoString(buf, "(SELECT DISTINCT ON (");
		etl_append_key_exprs(buf, b, "etl_k");
		appendStringInfoString(buf, ") ");
		foreach (lc, b->map->columns)
			appendStringInfo(
				buf, "%setl_k.%s", foreach_current_index(lc) ? ", " : "",
				quote_identifier(((EtlColumn *) lfirst(lc))->name));
		appendStringInfo(buf, " FROM (\n%s\n) AS etl_k WHERE ",
						 etl_deparse_rn_batch(b));
		append_key_guard(buf, b, "etl_k");
		appendStringInfoString(buf, " ORDER BY ");
		etl_append_key_exprs(buf, b, "etl_k");
		appendStringInfo(buf, ", etl_k.etl_rn %s) AS etl_t",
						 b->map->source.keep_first ? "ASC" : "DESC");
		return;
	}
	if (b->p->key == NIL || !b->map->key_nullable)
	{
		etl_append_transform(buf, b);
		return;
	}
	appendStringInfo(buf, "(SELECT * FROM (\n%s\n) AS etl_k WHERE ",
					 b->map->transform_sql);
	append_key_guard(buf, b, "etl_k");
	appendStringInfoString(buf, ") AS etl_t");
}

/*
 * etl_append_keys_present writes " WHERE" and the condition that no key column
 * of etl_t is NULL.
 */
void
etl_append_keys_present(StringInfo buf, const EtlBatchSql *b)
{
	ListCell *lc;
	bool first = true;

	foreach (lc, b->map->columns)
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
 * etl_append_row_hash writes the row hash over the non-key columns of alias.
 */
void
etl_append_row_hash(StringInfo buf, const EtlBatchSql *b, const char *alias)
{
	ListCell *lc;
	bool first = true;

	appendStringInfoString(buf, "pg_catalog.etl_row_hash(");
	foreach (lc, b->map->columns)
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
 * etl_append_audit_values writes the values of the audit columns, the row hash
 * computed from alias's columns.
 */
void
etl_append_audit_values(StringInfo buf, const EtlBatchSql *b,
						const char *alias)
{
	if (b->map->has_row_hash)
	{
		appendStringInfoString(buf, ", ");
		etl_append_row_hash(buf, b, alias);
	}
	if (b->map->has_run_id)
		appendStringInfo(buf, ", $%d", ETL_PARAM_RUN_ID);
	if (b->map->has_loaded_at)
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
 * etl_key_equality returns the equality operator that key values of type
 * are compared with: the one of the type's (a domain's base type's)
 * default btree, else hash, operator class, which a unique index on the
 * type uses unless it names another class; InvalidOid when the type has
 * none, it does not return boolean, or type is InvalidOid.  Only a
 * superuser makes an operator class (the default of a type or not), so the
 * operator is code that a superuser bound to the type, and the target's
 * unique index calls it already.
 */
Oid
etl_key_equality(Oid type)
{
	TypeCacheEntry *tc;

	if (!OidIsValid(type))
		return InvalidOid;
	tc = lookup_type_cache(getBaseType(type), TYPECACHE_EQ_OPR);
	if (!OidIsValid(tc->eq_opr) || get_op_rettype(tc->eq_opr) != BOOLOID)
		return InvalidOid;
	return tc->eq_opr;
}

/*
 * etl_append_equality writes "lhs = rhs" for two values of type (the
 * SQL of each given): with the type's key equality (etl_key_equality),
 * as OPERATOR(schema.name) when it lives outside pg_catalog, so that it
 * resolves the same whatever the search_path -- under the pinned one a
 * citext's "=" would resolve to text's, through citext's implicit cast.
 * Operands are cast to the operator's own types when the type is not
 * them (a domain), so that it is found as an exact match in its schema
 * and no other operator of that schema can be chosen.  Operators of
 * pg_catalog, and types without an equality, keep "=" as the pinned
 * search_path resolves it.
 */
void
etl_append_equality(StringInfo buf, Oid type, const char *lhs, const char *rhs)
{
	Oid opr = etl_key_equality(type);
	HeapTuple tup;
	Form_pg_operator form;

	tup = OidIsValid(opr) ? SearchSysCache1(OPEROID, ObjectIdGetDatum(opr))
						  : NULL;
	if (!HeapTupleIsValid(tup))
	{
		appendStringInfo(buf, "%s = %s", lhs, rhs);
		return;
	}
	form = (Form_pg_operator) GETSTRUCT(tup);
	if (form->oprnamespace == PG_CATALOG_NAMESPACE)
	{
		ReleaseSysCache(tup);
		appendStringInfo(buf, "%s = %s", lhs, rhs);
		return;
	}
	if (form->oprleft == type && form->oprright == type)
		appendStringInfo(
			buf, "%s OPERATOR(%s.%s) %s", lhs,
			quote_identifier(get_namespace_name(form->oprnamespace)),
			NameStr(form->oprname), rhs);
	else
		appendStringInfo(
			buf, "CAST(%s AS %s) OPERATOR(%s.%s) CAST(%s AS %s)", lhs,
			format_type_be_qualified(form->oprleft),
			quote_identifier(get_namespace_name(form->oprnamespace)),
			NameStr(form->oprname), rhs,
			format_type_be_qualified(form->oprright));
	ReleaseSysCache(tup);
}

/*
 * etl_append_key_match writes "a.k1 = b.k1 AND ..." over the key columns; a is
 * the target (or a row of the target's types), b the batch, whose values are
 * converted to the target's types first (an int batch key matches a text
 * target key by the text it is stored as).  Each "=" is the target key
 * type's own equality (etl_append_equality), the one its unique index
 * compares with.
 */
void
etl_append_key_match(StringInfo buf, const EtlBatchSql *batch, const char *a,
					 const char *b)
{
	ListCell *lc;
	bool first = true;

	foreach (lc, batch->map->columns)
	{
		EtlColumn *col = lfirst(lc);
		StringInfoData rhs;

		if (!col->is_key)
			continue;
		initStringInfo(&rhs);
		etl_deparse_as_target(&rhs, col, b);
		if (!first)
			appendStringInfoString(buf, " AND ");
		etl_append_equality(buf, col->tgt_type,
							psprintf("%s.%s", a, quote_identifier(col->name)),
							rhs.data);
		pfree(rhs.data);
		first = false;
	}
}

/*
 * etl_append_key_row writes the batch key of alias converted to the target's
 * types: the key column, or ROW(...) of several.
 */
void
etl_append_key_row(StringInfo buf, const EtlBatchSql *b, const char *alias)
{
	ListCell *lc;
	int nkeys = 0;

	foreach (lc, b->map->columns)
		nkeys += ((EtlColumn *) lfirst(lc))->is_key ? 1 : 0;
	if (nkeys > 1)
		appendStringInfoString(buf, "ROW(");
	nkeys = 0;
	foreach (lc, b->map->columns)
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
 * etl_has_equality tells whether two values of ltype and rtype can be
 * compared for equality: the same type with a key equality
 * (etl_key_equality, as etl_append_equality writes it), or "=" between
 * them resolves to a boolean operator under the current (pinned)
 * search_path.
 */
bool
etl_has_equality(Oid ltype, Oid rtype)
{
	Operator op;
	bool ok;

	if (ltype == rtype && OidIsValid(etl_key_equality(ltype)))
		return true;
	op = oper(NULL, list_make1(makeString("=")), ltype, rtype, true, -1);
	if (op == NULL)
		return false;
	ok = ((Form_pg_operator) GETSTRUCT(op))->oprresult == BOOLOID;
	ReleaseSysCache(op);
	return ok;
}

/*
 * etl_stage_filter returns the condition on a staged row (alias: the
 * stage's alias, or NULL) that the loads read: the rows not held back, or
 * while held rows are tried again, the held rows only.
 */
char *
etl_stage_filter(const EtlBatchSql *b, const char *alias)
{
	return psprintf("%s%s%setl_held", b->stage_held_only ? "" : "NOT ",
					alias ? alias : "", alias ? "." : "");
}
