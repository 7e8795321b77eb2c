/*-------------------------------------------------------------------------
 *
 * deparse_snapshot.c
 *	  Mode snapshot: the transformed source against the stored signatures
 *	  (etl.snapshot_signatures), the deletes and revivals of the keys that left
 *	  or came back, and the signatures to store.
 *
 * IDENTIFICATION
 *	  src/sql/deparse_snapshot.c
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
#include "sql/deparse_snapshot.h"

/*
 * append_key_hash writes the hash of the key columns of alias.
 */
static void
append_key_hash(StringInfo buf, const EtlBatchSql *b, const char *alias)
{
	ListCell *lc;
	bool first = true;

	appendStringInfoString(buf, "pg_catalog.etl_row_hash(");
	foreach (lc, b->map->columns)
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
 * append_signed writes the transformed source with its key and row hashes
 * (etl_kh, etl_rh, columns), aliased alias.  It reads the source through
 * the CTE etl_delta of the statement (append_source_cte()); with staged, it
 * reads all rows of the run's stage instead (b->stage_table: the source
 * rows that no stage of the run rejected, which leave it), through an
 * etl_delta of its own.
 */
static void
append_signed(StringInfo buf, const EtlBatchSql *b, bool staged,
			  const char *alias)
{
	appendStringInfoString(buf, "(SELECT ");
	append_key_hash(buf, b, "etl_t");
	appendStringInfoString(buf, " AS etl_kh, ");
	etl_append_row_hash(buf, b, "etl_t");
	if (staged)
		appendStringInfo(buf,
						 " AS etl_rh, etl_t.* FROM (WITH etl_delta AS (SELECT"
						 " %s FROM pg_temp.%s) SELECT * FROM (\n%s\n) AS "
						 "etl_x) AS etl_t) AS %s",
						 b->stage_columns, b->stage_table,
						 b->map->transform_sql, alias);
	else
		appendStringInfo(buf,
						 " AS etl_rh, etl_t.* FROM (\n%s\n) AS etl_t) AS %s",
						 b->map->transform_sql, alias);
}

/*
 * append_signed_source writes the transformed source with its key and row
 * hashes, aliased etl_c (etl_kh, etl_rh, columns).
 */
static void
append_signed_source(StringInfo buf, const EtlBatchSql *b)
{
	append_signed(buf, b, false, "etl_c");
}

/*
 * append_source_cte writes the CTE etl_delta over the whole source.
 */
static void
append_source_cte(StringInfo buf, const EtlBatchSql *b)
{
	appendStringInfo(buf, "WITH etl_delta AS (SELECT * FROM %s)\n",
					 b->source_sql);
}

/*
 * append_vanished writes the subquery of the stored keys that are no
 * longer in the source, as rows of the target's type (etl_v).
 */
static void
append_vanished(StringInfo buf, const EtlBatchSql *b)
{
	appendStringInfo(buf,
					 "(SELECT (pg_catalog.jsonb_populate_record(NULL::%s, "
					 "etl_s.key)).* FROM etl.snapshot_signatures AS etl_s "
					 "WHERE etl_s.pipeline_id OPERATOR(pg_catalog.=) $%d AND "
					 "NOT EXISTS (SELECT FROM ",
					 b->target_sql, ETL_PARAM_PIPELINE_ID);
	append_signed_source(buf, b);
	appendStringInfoString(buf, " WHERE etl_c.etl_kh OPERATOR(pg_catalog.=) "
								"etl_s.key_hash)) AS etl_v");
}

/*
 * etl_deparse_snapshot_classify returns the one read of mode snapshot: the
 * transformed source fully joined with the stored signatures, counting
 * source rows, new keys, changed rows and vanished keys.
 */
char *
etl_deparse_snapshot_classify(const EtlBatchSql *b)
{
	StringInfoData buf;

	initStringInfo(&buf);
	append_source_cte(&buf, b);
	appendStringInfoString(
		&buf,
		"SELECT pg_catalog.count(etl_c.etl_kh),"
		" pg_catalog.count(*) FILTER (WHERE etl_s.key_hash IS NULL),"
		" pg_catalog.count(*) FILTER (WHERE etl_c.etl_kh IS NOT NULL AND"
		" etl_s.key_hash IS NOT NULL AND"
		" etl_s.row_hash OPERATOR(pg_catalog.<>) etl_c.etl_rh),"
		" pg_catalog.count(*) FILTER (WHERE etl_c.etl_kh IS NULL)\nFROM ");
	append_signed_source(&buf, b);
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
 * that stamps soft_column with the run's start.  A target row that a row
 * of the transformed source still matches, as the target compares keys,
 * stays: a vanished key hash may be another spelling of a key that is
 * still there (numeric 1.0 and 1.00, text under a case-insensitive
 * collation of the target's key).
 */
char *
etl_deparse_snapshot_delete(const EtlBatchSql *b, const char *soft_column)
{
	StringInfoData buf;

	initStringInfo(&buf);
	append_source_cte(&buf, b);
	if (soft_column)
		appendStringInfo(&buf, "UPDATE %s AS etl_target SET %s = $%d FROM ",
						 b->target_sql, quote_identifier(soft_column),
						 ETL_PARAM_LOADED_AT);
	else
		appendStringInfo(&buf, "DELETE FROM %s AS etl_target USING ",
						 b->target_sql);
	append_vanished(&buf, b);
	appendStringInfoString(&buf, " WHERE ");
	etl_append_key_match(&buf, b, "etl_target", "etl_v");
	appendStringInfo(&buf,
					 " AND NOT EXISTS (SELECT FROM (\n%s\n) AS etl_k WHERE ",
					 b->map->transform_sql);
	etl_append_key_match(&buf, b, "etl_target", "etl_k");
	appendStringInfoChar(&buf, ')');
	if (soft_column)
		appendStringInfo(&buf, " AND etl_target.%s IS NULL",
						 quote_identifier(soft_column));
	return buf.data;
}

/*
 * etl_deparse_snapshot_revive returns the UPDATE that clears soft_column
 * of the target rows whose key is back in the source; with staged, only of
 * those whose row is in the run's stage (not rejected: a key back with a
 * row that did not load stays stamped).
 */
char *
etl_deparse_snapshot_revive(const EtlBatchSql *b, const char *soft_column,
							bool staged)
{
	StringInfoData buf;
	const char *q = quote_identifier(soft_column);

	initStringInfo(&buf);
	append_source_cte(&buf, b);
	appendStringInfo(&buf, "UPDATE %s AS etl_target SET %s = NULL FROM ",
					 b->target_sql, q);
	append_signed(&buf, b, staged, "etl_c");
	appendStringInfo(
		&buf,
		" WHERE etl_target.%s IS NOT NULL AND NOT EXISTS (SELECT "
		"FROM etl.snapshot_signatures AS etl_s WHERE "
		"etl_s.pipeline_id OPERATOR(pg_catalog.=) $%d AND "
		"etl_s.key_hash OPERATOR(pg_catalog.=) etl_c.etl_kh) AND ",
		q, ETL_PARAM_PIPELINE_ID);
	etl_append_key_match(&buf, b, "etl_target", "etl_c");
	return buf.data;
}

/*
 * etl_deparse_snapshot_vanished_keys returns the query of the key hashes of
 * the stored signatures whose key is no longer in the source (run as the
 * pipeline owner; etl_catalog_forget_signatures() deletes them).
 */
char *
etl_deparse_snapshot_vanished_keys(const EtlBatchSql *b)
{
	StringInfoData buf;

	initStringInfo(&buf);
	append_source_cte(&buf, b);
	appendStringInfo(&buf,
					 "SELECT etl_s.key_hash FROM etl.snapshot_signatures AS "
					 "etl_s WHERE etl_s.pipeline_id OPERATOR(pg_catalog.=) "
					 "$%d AND NOT EXISTS (SELECT FROM ",
					 ETL_PARAM_PIPELINE_ID);
	append_signed_source(&buf, b);
	appendStringInfoString(&buf, " WHERE etl_c.etl_kh OPERATOR(pg_catalog.=) "
								 "etl_s.key_hash)");
	return buf.data;
}

/*
 * etl_deparse_snapshot_signatures returns the query of the signatures to
 * store, as key hash, row hash and key (jsonb): those of the new and
 * changed keys; with none_yet (the pipeline has no signature), all of them.
 * With staged, of the rows of the run's stage only (the rows of the run
 * that were not rejected: a rejected key keeps the signature it had, or
 * none).  With repeats, keys that more than one source row has get none
 * (one signature per key).  It runs as the pipeline owner;
 * etl_catalog_remember_signatures() writes what it returns.
 */
char *
etl_deparse_snapshot_signatures(const EtlBatchSql *b, bool none_yet,
								bool repeats, bool staged)
{
	StringInfoData buf;
	ListCell *lc;
	bool first = true;

	initStringInfo(&buf);
	append_source_cte(&buf, b);
	appendStringInfoString(&buf, "SELECT etl_c.etl_kh, etl_c.etl_rh,"
								 " pg_catalog.jsonb_build_object(");
	foreach (lc, b->map->columns)
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
	if (repeats && !staged)
	{
		appendStringInfoString(
			&buf, "(SELECT etl_u.* FROM (SELECT etl_c.*, pg_catalog.count(*)"
				  " OVER (PARTITION BY etl_c.etl_kh) AS etl_n FROM ");
		append_signed_source(&buf, b);
		appendStringInfoString(
			&buf, ") AS etl_u WHERE etl_u.etl_n OPERATOR(pg_catalog.=) 1)"
				  " AS etl_c");
	}
	else
		append_signed(&buf, b, staged, "etl_c");
	if (repeats && staged)
	{
		/* the keys of one row in the source, whose rows the stage has */
		appendStringInfoString(&buf, " WHERE etl_c.etl_kh IN (SELECT "
									 "etl_u.etl_kh FROM ");
		append_signed(&buf, b, false, "etl_u");
		appendStringInfoString(&buf, " GROUP BY etl_u.etl_kh HAVING "
									 "pg_catalog.count(*) "
									 "OPERATOR(pg_catalog.=) 1)");
	}
	if (none_yet)
		return buf.data; /* a first run: every signature is new */
	appendStringInfo(&buf,
					 " %s NOT EXISTS (SELECT FROM etl.snapshot_signatures"
					 " AS etl_o WHERE etl_o.pipeline_id OPERATOR(pg_catalog.=)"
					 " $%d AND etl_o.key_hash OPERATOR(pg_catalog.=)"
					 " etl_c.etl_kh AND etl_o.row_hash OPERATOR(pg_catalog.=)"
					 " etl_c.etl_rh)",
					 repeats && staged ? "AND" : "WHERE",
					 ETL_PARAM_PIPELINE_ID);
	return buf.data;
}
