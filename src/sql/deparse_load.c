/*-------------------------------------------------------------------------
 *
 * deparse_load.c
 *	  The statements of the loads merge, append and delete_insert, and the
 *	  deletes of modes full and cdc.
 *
 *	  Load merge is a classification (one read-only join of batch and
 *	  target, parallel where possible), then an UPDATE of the changed rows
 *	  and an INSERT of the new keys, each only when there is something for
 *	  it; not a MERGE: PostgreSQL 15's MERGE re-fetches every matched target
 *	  row to evaluate its WHEN condition, which made a re-run over unchanged
 *	  rows cost as much as loading them.
 *
 * IDENTIFICATION
 *	  src/sql/deparse_load.c
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

#include "sql/deparse_batch.h"
#include "sql/deparse_load.h"

/*
 * append_insert_columns writes the column list of an INSERT into the
 * target: the batch columns, then the audit columns it has.
 */
static void
append_insert_columns(StringInfo buf, const EtlBatchSql *b)
{
	ListCell *lc;

	appendStringInfoChar(buf, '(');
	foreach (lc, b->map->columns)
		appendStringInfo(buf, "%s%s", foreach_current_index(lc) ? ", " : "",
						 quote_identifier(((EtlColumn *) lfirst(lc))->name));
	if (b->map->has_row_hash)
		appendStringInfoString(buf, ", " ETL_COL_ROW_HASH);
	if (b->map->has_run_id)
		appendStringInfoString(buf, ", " ETL_COL_RUN_ID);
	if (b->map->has_loaded_at)
		appendStringInfoString(buf, ", " ETL_COL_LOADED_AT);
	appendStringInfoChar(buf, ')');
}

/*
 * etl_deparse_insert returns the INSERT of the batch into the target; with
 * skip_existing, rows whose key is already there are skipped (an anti-join:
 * load append, second half of load merge).  Without it every row is
 * inserted, and the transform is fenced (OFFSET 0) so that its expressions
 * are computed once, not again as arguments of the row hash.
 */
char *
etl_deparse_insert(const EtlBatchSql *b, bool skip_existing)
{
	StringInfoData buf;
	ListCell *lc;

	initStringInfo(&buf);
	etl_deparse_delta_cte(&buf, b);
	appendStringInfo(&buf, "INSERT INTO %s AS etl_target ", b->target_sql);
	append_insert_columns(&buf, b);
	appendStringInfoString(&buf, "\nSELECT ");
	foreach (lc, b->map->columns)
		appendStringInfo(&buf, "%setl_t.%s",
						 foreach_current_index(lc) ? ", " : "",
						 quote_identifier(((EtlColumn *) lfirst(lc))->name));
	etl_append_audit_values(&buf, b, "etl_t");
	appendStringInfoString(&buf, "\nFROM ");
	if (!skip_existing || b->p->key == NIL)
	{
		appendStringInfoString(&buf, "(SELECT * FROM ");
		etl_append_batch(&buf, b);
		appendStringInfoString(&buf, " OFFSET 0) AS etl_t");
		return buf.data;
	}
	etl_append_batch(&buf, b);
	appendStringInfo(
		&buf, "\nWHERE NOT EXISTS (SELECT FROM %s AS etl_existing WHERE ",
		b->target_sql);
	etl_append_key_match(&buf, b, "etl_existing", "etl_t");
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

/*
 * soft_delete_column returns the quoted column in which vanished keys are
 * stamped instead of deleted (mode snapshot with options.delete_mode
 * 'soft'), or NULL.
 */
static const char *
soft_delete_column(const EtlBatchSql *b)
{
	return b->map->source.soft_delete_column;
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
 * etl_append_changed writes the condition under which a matched target row
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
void
etl_append_changed(StringInfo buf, const EtlBatchSql *b, const char *alias)
{
	ListCell *lc;
	bool first = true;
	const char *soft = soft_delete_column(b);

	if (soft != NULL)
		appendStringInfo(buf, "etl_target.%s IS NOT NULL OR ", soft);
	if (b->map->has_row_hash)
	{
		appendStringInfoString(buf, "etl_target." ETL_COL_ROW_HASH
									" IS DISTINCT FROM ");
		etl_append_row_hash(buf, b, alias);
		return;
	}
	foreach (lc, b->map->columns)
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
etl_deparse_classify(const EtlBatchSql *b)
{
	StringInfoData buf;
	const char *firstkey = NULL;
	ListCell *lc;

	foreach (lc, b->map->columns)
	{
		EtlColumn *col = lfirst(lc);

		if (col->is_key && firstkey == NULL)
			firstkey = quote_identifier(col->name);
	}
	Assert(firstkey != NULL);

	initStringInfo(&buf);
	etl_deparse_delta_cte(&buf, b);
	appendStringInfo(
		&buf,
		"SELECT pg_catalog.count(*),"
		" pg_catalog.count(*) FILTER (WHERE etl_target.%s IS NULL),",
		firstkey);
	appendStringInfo(
		&buf,
		" pg_catalog.count(*) FILTER (WHERE etl_target.%s IS NOT NULL AND (",
		firstkey);
	etl_append_changed(&buf, b, "etl_t");
	appendStringInfoString(&buf, "))");
	if (!b->dedupe && !b->map->key_unique)
	{
		/* rows whose key an earlier row had (load.c) */
		appendStringInfoString(&buf, ", etl_internal.etl_dup_count(");
		etl_append_key_row(&buf, b, "etl_t");
		appendStringInfoChar(&buf, ')');
	}
	appendStringInfoString(&buf, "\nFROM ");
	etl_append_batch(&buf, b);
	appendStringInfo(&buf, "\nLEFT JOIN %s AS etl_target ON ", b->target_sql);
	etl_append_key_match(&buf, b, "etl_target", "etl_t");
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
etl_deparse_update(const EtlBatchSql *b)
{
	StringInfoData buf;
	ListCell *lc;
	bool first = true;
	const char *soft = soft_delete_column(b);

	initStringInfo(&buf);
	etl_deparse_delta_cte(&buf, b);
	appendStringInfo(&buf, "UPDATE %s AS etl_target SET ", b->target_sql);
	foreach (lc, b->map->columns)
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
	if (b->map->has_row_hash)
	{
		appendStringInfoString(&buf, ", " ETL_COL_ROW_HASH " = ");
		etl_append_row_hash(&buf, b, "etl_t");
	}
	if (b->map->has_run_id)
		appendStringInfo(&buf, ", " ETL_COL_RUN_ID " = $%d", ETL_PARAM_RUN_ID);
	if (b->map->has_loaded_at)
		appendStringInfo(&buf, ", " ETL_COL_LOADED_AT " = $%d",
						 ETL_PARAM_LOADED_AT);

	appendStringInfoString(&buf, "\nFROM ");
	etl_append_batch(&buf, b);
	appendStringInfoString(&buf, "\nWHERE ");
	etl_append_key_match(&buf, b, "etl_target", "etl_t");
	appendStringInfoString(&buf, " AND (");
	etl_append_changed(&buf, b, "etl_t");
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
etl_deparse_revive(const EtlBatchSql *b)
{
	StringInfoData buf;
	const char *soft = soft_delete_column(b);

	if (soft == NULL)
		return NULL;
	initStringInfo(&buf);
	etl_deparse_delta_cte(&buf, b);
	appendStringInfo(&buf, "UPDATE %s AS etl_target SET %s = NULL\nFROM ",
					 b->target_sql, soft);
	etl_append_batch(&buf, b);
	appendStringInfoString(&buf, "\nWHERE ");
	etl_append_key_match(&buf, b, "etl_target", "etl_t");
	appendStringInfo(&buf, " AND etl_target.%s IS NOT NULL", soft);
	return buf.data;
}

/*
 * append_key_source_match writes the key match of DELETE ... USING: the
 * keys of etl_source are of the target's types already, compared with
 * their equality (etl_append_equality).
 */
static void
append_key_source_match(StringInfo buf, const EtlBatchSql *b)
{
	ListCell *lc;
	bool first = true;

	foreach (lc, b->map->columns)
	{
		EtlColumn *col = lfirst(lc);
		const char *q;

		if (!col->is_key)
			continue;
		q = quote_identifier(col->name);
		if (!first)
			appendStringInfoString(buf, " AND ");
		etl_append_equality(buf, col->tgt_type, psprintf("etl_target.%s", q),
							psprintf("etl_source.%s", q));
		first = false;
	}
}

/*
 * etl_deparse_delete returns the DELETE of the target rows whose key is in
 * the batch (first half of load delete_insert).
 */
char *
etl_deparse_delete(const EtlBatchSql *b)
{
	StringInfoData buf;
	ListCell *lc;
	bool first = true;

	initStringInfo(&buf);
	etl_deparse_delta_cte(&buf, b);
	appendStringInfo(&buf,
					 "DELETE FROM %s AS etl_target USING (SELECT DISTINCT ",
					 b->target_sql);
	foreach (lc, b->map->columns)
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
	etl_append_batch(&buf, b);
	appendStringInfoString(&buf, ") AS etl_source\nWHERE ");
	append_key_source_match(&buf, b);
	return buf.data;
}

/*
 * etl_deparse_delete_changed returns the DELETE of the target rows whose key
 * is in the batch and whose content differs from their batch row (load
 * delete_insert in modes snapshot and full, whose batch is the whole
 * source: an unchanged row is not touched).  The INSERT that follows puts
 * the batch rows of the keys it deleted back.
 */
char *
etl_deparse_delete_changed(const EtlBatchSql *b)
{
	StringInfoData buf;

	initStringInfo(&buf);
	etl_deparse_delta_cte(&buf, b);
	appendStringInfo(&buf, "DELETE FROM %s AS etl_target USING ",
					 b->target_sql);
	etl_append_batch(&buf, b);
	appendStringInfoString(&buf, "\nWHERE ");
	etl_append_key_match(&buf, b, "etl_target", "etl_t");
	appendStringInfoString(&buf, " AND (");
	etl_append_changed(&buf, b, "etl_t");
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

/*
 * etl_deparse_delete_vanished returns the DELETE of the target rows whose
 * key is no longer in the whole source (mode full): an anti-join of the
 * target with the transform over the source, quarantined rows included (a
 * row with a bad new version keeps its old one).
 */
char *
etl_deparse_delete_vanished(const EtlBatchSql *b)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf,
					 "WITH etl_delta AS (SELECT * FROM %s)\n"
					 "DELETE FROM %s AS etl_target WHERE NOT EXISTS "
					 "(SELECT FROM (\n%s\n) AS etl_t WHERE ",
					 b->source_sql, b->target_sql, b->map->transform_sql);
	etl_append_key_match(&buf, b, "etl_target", "etl_t");
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

/*
 * etl_deparse_delete_all returns the DELETE of every target row (mode full
 * without a key: the target is replaced, MVCC-safe, in the run's
 * transaction).
 */
char *
etl_deparse_delete_all(const EtlBatchSql *b)
{
	return psprintf("DELETE FROM %s", b->target_sql);
}

/*
 * etl_deparse_cdc_delete returns the DELETE of the target rows whose key's
 * last change in the range is a delete (mode cdc).  Key columns have the
 * same names in the change rows and the target; of the same type there,
 * they compare with its equality (etl_append_equality).
 */
char *
etl_deparse_cdc_delete(const EtlBatchSql *b)
{
	StringInfoData buf;
	ListCell *lc;

	initStringInfo(&buf);
	appendStringInfo(&buf, "DELETE FROM %s AS etl_target USING ",
					 b->target_sql);
	etl_append_cdc_last_changes(&buf, b);
	appendStringInfo(&buf, " AS etl_d WHERE %s",
					 etl_deparse_cdc_op_test(b, "etl_d", true));
	foreach (lc, b->p->key)
	{
		const char *k = lfirst(lc);
		const char *q = quote_identifier(k);
		AttrNumber tatt = get_attnum(b->target_relid, k);
		AttrNumber satt = get_attnum(b->source_relid, k);
		Oid type = InvalidOid;

		/* the target key type's equality when the change row has its type */
		if (tatt != InvalidAttrNumber && satt != InvalidAttrNumber &&
			get_atttype(b->target_relid, tatt) ==
				get_atttype(b->source_relid, satt))
			type = get_atttype(b->target_relid, tatt);
		appendStringInfoString(&buf, " AND ");
		etl_append_equality(&buf, type, psprintf("etl_target.%s", q),
							psprintf("etl_d.%s", q));
	}
	return buf.data;
}

/*
 * etl_deparse_cdc_bad_operations returns the query of the first change
 * row of the range whose operation is unknown, with how many there are.
 */
char *
etl_deparse_cdc_bad_operations(const EtlBatchSql *b, const char *op)
{
	const char *q = quote_identifier(op);

	return psprintf(
		"SELECT %s::pg_catalog.text, pg_catalog.count(*) OVER ()::pg_catalog.text"
		" FROM %s%s%s (%s IS NULL OR pg_catalog.lower(%s::pg_catalog.text)"
		" <> ALL ('{c,r,i,u,d}')) LIMIT 1",
		q, b->source_sql, etl_deparse_range_where(b),
		b->has_from || b->has_hi || b->has_cutoff ? " AND" : " WHERE", q, q);
}
