/*-------------------------------------------------------------------------
 *
 * deparse_stage.c
 *	  The statements that read a run's batch from its stage (bad-row isolation,
 *	  dead-letter replay): the rows staged and in which order, duplicate keys,
 *	  the probes of a transform, a staged row as JSON, and the dead letters the
 *	  source supersedes.
 *
 * IDENTIFICATION
 *	  src/sql/deparse_stage.c
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
#include "sql/deparse_stage.h"

/*
 * etl_deparse_stage_select returns the SELECT that stages the run's range:
 * row number, the source row.  Rows are numbered in a
 * deterministic order, the order in which they were written as far as the
 * source tells: by the watermark column, then by physical position (ctid;
 * tableoid and ctid in a partitioned table; the row's text where the source
 * has no ctid, a view or a foreign table).  So parts of a batch load in the
 * same order on every attempt, and a later version of a key comes after an
 * earlier one.  The whole row is written etl_s.*, which a source column
 * named etl_s cannot stand for.
 */
char *
etl_deparse_stage_select(const EtlBatchSql *b)
{
	const char *tiebreak;

	switch (b->source_relkind)
	{
		case RELKIND_RELATION:
		case RELKIND_MATVIEW:
			tiebreak = "etl_s.ctid";
			break;
		case RELKIND_PARTITIONED_TABLE:
			tiebreak = "etl_s.tableoid, etl_s.ctid";
			break;
		default:
			tiebreak = "(etl_s.*)::pg_catalog.text";
			break;
	}
	if (b->map->source.last_changes)
	{
		/* mode cdc stages each key's last change, deletes left out */
		StringInfoData buf;

		initStringInfo(&buf);
		appendStringInfo(&buf,
						 "SELECT pg_catalog.row_number() OVER (ORDER BY "
						 "etl_s.%s), etl_s.* FROM ",
						 quote_identifier(b->p->watermark_column));
		etl_append_cdc_last_changes(&buf, b);
		appendStringInfo(&buf, " AS etl_s WHERE %s",
						 etl_deparse_cdc_op_test(b, "etl_s", false));
		return buf.data;
	}
	return psprintf(
		"SELECT pg_catalog.row_number() OVER (ORDER BY %s%s%s),"
		" etl_s.* FROM %s AS etl_s%s",
		b->p->watermark_column
			? psprintf("etl_s.%s", quote_identifier(b->p->watermark_column))
			: "",
		b->p->watermark_column ? ", " : "", tiebreak, b->source_sql,
		etl_deparse_range_where(b));
}

/*
 * etl_deparse_dup_count returns the query that counts, with etl_dup_count,
 * the batch rows (of staged rows rn_lo .. rn_hi) whose key an earlier row
 * had: never too few, NULL when it cannot tell.
 */
char *
etl_deparse_dup_count(const EtlBatchSql *b)
{
	StringInfoData buf;

	initStringInfo(&buf);
	etl_deparse_delta_cte(&buf, b);
	appendStringInfoString(&buf, "SELECT etl_internal.etl_dup_count(");
	etl_append_key_row(&buf, b, "etl_t");
	appendStringInfoString(&buf, ") FROM ");
	etl_append_transform(&buf, b);
	etl_append_keys_present(&buf, b);
	return buf.data;
}

/*
 * etl_deparse_dup_keys returns a query that finds whether two batch rows
 * (of staged rows rn_lo .. rn_hi) share a key, as the target compares keys
 * (NULL keys count as equal here).  One row: they do; none: they do not.
 */
char *
etl_deparse_dup_keys(const EtlBatchSql *b)
{
	StringInfoData buf;
	ListCell *lc;
	bool first = true;

	initStringInfo(&buf);
	etl_deparse_delta_cte(&buf, b);
	appendStringInfoString(&buf, "SELECT 1 FROM ");
	etl_append_transform(&buf, b);
	etl_append_keys_present(&buf, b);
	appendStringInfoString(&buf, "\nGROUP BY ");
	foreach (lc, b->map->columns)
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
etl_deparse_dup_per_row(const EtlBatchSql *b)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "SELECT 1 FROM (\n%s\n) AS etl_t",
					 etl_deparse_rn_batch(b));
	etl_append_keys_present(&buf, b);
	appendStringInfoString(&buf, "\nGROUP BY etl_t.etl_rn, ");
	etl_append_key_exprs(&buf, b, "etl_t");
	appendStringInfoString(
		&buf, " HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 1 LIMIT 1");
	return buf.data;
}

/*
 * etl_deparse_repeated_versions returns the query of the staged rows
 * (rn_lo .. rn_hi) that a dedupe load leaves out: those whose key (NULL
 * parts excepted) another staged row has that the load keeps -- a later one
 * for merge and delete_insert, an earlier one for append (etl_append_batch()).
 * Columns: the row number and the key as a row's text, in row order.
 */
char *
etl_deparse_repeated_versions(const EtlBatchSql *b)
{
	StringInfoData buf;
	ListCell *lc;

	initStringInfo(&buf);
	appendStringInfoString(
		&buf, "SELECT etl_w.etl_rn, etl_w.etl_key FROM (SELECT etl_k.etl_rn,"
			  " ROW(");
	etl_append_key_exprs(&buf, b, "etl_k");
	appendStringInfoString(
		&buf, ")::pg_catalog.text AS etl_key, pg_catalog.row_number() OVER"
			  " (PARTITION BY ");
	etl_append_key_exprs(&buf, b, "etl_k");
	appendStringInfo(&buf,
					 " ORDER BY etl_k.etl_rn %s) AS etl_pos FROM (\n%s\n) AS"
					 " etl_k WHERE true",
					 b->map->source.keep_first ? "ASC" : "DESC",
					 etl_deparse_rn_batch(b));
	foreach (lc, b->map->columns)
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
etl_deparse_transform_probe(const EtlBatchSql *b)
{
	StringInfoData buf;

	initStringInfo(&buf);
	etl_deparse_delta_cte(&buf, b);
	/* count the whole rows: every output column is computed */
	appendStringInfoString(&buf, "SELECT pg_catalog.count(etl_t.*) FROM ");
	etl_append_transform(&buf, b);
	return buf.data;
}

/*
 * etl_deparse_stage_record returns the query of staged row rn_lo as JSON
 * text (the record of a dead letter): the whole row etl_d.*, whatever the
 * source's columns are named.
 */
char *
etl_deparse_stage_record(const EtlBatchSql *b)
{
	return psprintf("SELECT pg_catalog.to_jsonb(etl_d.*)::pg_catalog.text FROM"
					" (SELECT %s FROM pg_temp.%s WHERE etl_rn = $%d) AS etl_d",
					b->stage_columns, b->stage_table, ETL_PARAM_RN_LO);
}

/*
 * append_key_match appends to buf the condition that source row etl_s has
 * the key of record etl_r: each of keys (source columns) equal by their
 * type's equality (etl_append_equality), or, for a column whose type has
 * none (etl_has_equality), with as_jsonb, equal as jsonb.  Returns false
 * when a key column is not in the source, or its type has no equality
 * operator and not as_jsonb.
 */
static bool
append_key_match(StringInfo buf, const EtlBatchSql *b, List *keys,
				 bool as_jsonb)
{
	ListCell *lc;

	foreach (lc, keys)
	{
		const char *k = quote_identifier(lfirst(lc));
		AttrNumber attnum = get_attnum(b->source_relid, lfirst(lc));
		Oid type;

		if (attnum == InvalidAttrNumber)
			return false;
		if (foreach_current_index(lc) > 0)
			appendStringInfoString(buf, " AND ");
		type = get_atttype(b->source_relid, attnum);
		if (etl_has_equality(type, type))
			etl_append_equality(buf, type, psprintf("etl_s.%s", k),
								psprintf("etl_r.%s", k));
		else if (as_jsonb)
			appendStringInfo(buf,
							 "pg_catalog.to_jsonb(etl_s.%s)"
							 " OPERATOR(pg_catalog.=)"
							 " pg_catalog.to_jsonb(etl_r.%s)",
							 k, k);
		else
			return false;
	}
	return true;
}

/*
 * etl_deparse_superseded returns the query that finds which of the dead
 * letters $1 (int8[]) of pipeline $2 are superseded, with their ids in order
 * and whether the source row is gone (boolean).  The source row of a
 * record is found by the values of the columns keys.  With a watermark
 * column it supersedes a record when the source holds its row with a
 * watermark value past the record's (never as gone).  Without one, when the
 * batch is the whole source (modes snapshot and full), it supersedes a
 * record whose key has no NULL part when no source row of its key is the
 * record as a replay would stage it (the record read into the source's row
 * type, so columns added to the source since count as NULL and columns
 * dropped are ignored; both sides compared as jsonb in the same statement,
 * so the settings the dead letter was written under do not matter), gone
 * when the source has no row of its key; key columns whose type has no
 * equality operator are compared as jsonb.  NULL when neither applies, or
 * with a watermark column when a key column has no equality operator under
 * the pinned search_path.
 */
char *
etl_deparse_superseded(const EtlBatchSql *b, List *keys)
{
	StringInfoData match;
	StringInfoData buf;
	ListCell *lc;

	if (b->p->watermark_column == NULL && !b->map->source.whole_source)
		return NULL;
	initStringInfo(&match);
	if (!append_key_match(&match, b, keys, b->p->watermark_column == NULL))
		return NULL;
	initStringInfo(&buf);
	if (b->p->watermark_column != NULL)
	{
		const char *wm = quote_identifier(b->p->watermark_column);

		appendStringInfo(
			&buf,
			"SELECT etl_d.id, false FROM etl.dead_letters AS etl_d,"
			" LATERAL pg_catalog.jsonb_populate_record(NULL::%s,"
			" etl_d.record) AS etl_r"
			" WHERE etl_d.id OPERATOR(pg_catalog.=) ANY ($1)"
			" AND etl_d.pipeline_id OPERATOR(pg_catalog.=) $2"
			" AND EXISTS (SELECT FROM %s AS etl_s WHERE %s"
			" AND etl_s.%s > etl_r.%s) ORDER BY etl_d.id",
			b->source_sql, b->source_sql, match.data, wm, wm);
		return buf.data;
	}

	/*
	 * one outer join of the dead letters with the source rows of their
	 * keys, which the planner may hash: gone when no row joined (a key
	 * column of a joined row is not NULL), superseded when none is the
	 * record
	 */
	appendStringInfo(
		&buf,
		"SELECT etl_d.id, pg_catalog.count(etl_s.%s) OPERATOR(pg_catalog.=) 0"
		" FROM etl.dead_letters AS etl_d"
		" CROSS JOIN LATERAL pg_catalog.jsonb_populate_record(NULL::%s,"
		" etl_d.record) AS etl_r"
		" LEFT JOIN %s AS etl_s ON %s"
		" WHERE etl_d.id OPERATOR(pg_catalog.=) ANY ($1)"
		" AND etl_d.pipeline_id OPERATOR(pg_catalog.=) $2",
		quote_identifier(linitial(keys)), b->source_sql, b->source_sql,
		match.data);
	foreach (lc, keys)
		appendStringInfo(&buf, " AND etl_r.%s IS NOT NULL",
						 quote_identifier(lfirst(lc)));
	appendStringInfoString(
		&buf, " GROUP BY etl_d.id HAVING pg_catalog.bool_or("
			  "pg_catalog.to_jsonb(etl_s.*) OPERATOR(pg_catalog.=)"
			  " pg_catalog.to_jsonb(etl_r.*)) IS NOT TRUE ORDER BY etl_d.id");
	return buf.data;
}
