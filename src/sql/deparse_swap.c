/*-------------------------------------------------------------------------
 *
 * deparse_swap.c
 *	  Load partition_swap (loads/swap.c): the batch table, routing, the
 *	  staging tables and the swap.
 *
 *	  DDL takes no parameters: partition bounds and constraints, index and
 *	  constraint definitions are spliced as PostgreSQL itself deparses them
 *	  from the catalogs (pg_get_expr, pg_get_partition_constraintdef,
 *	  pg_get_indexdef, pg_get_constraintdef), names through
 *	  quote_identifier.  The batch's values stay parameters, as everywhere
 *	  else.
 *
 * IDENTIFICATION
 *	  src/sql/deparse_swap.c
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
#include "sql/deparse_swap.h"
#include "sql/names.h"

/*
 * column_is_loaded tells whether the pipeline writes a target column: a
 * column of the batch, or an audit column it fills.
 */
static bool
column_is_loaded(const EtlBatchSql *b, const char *name)
{
	ListCell *lc;

	foreach (lc, b->map->columns)
		if (strcmp(((EtlColumn *) lfirst(lc))->name, name) == 0)
			return true;
	if (strcmp(name, ETL_COL_ROW_HASH) == 0)
		return b->map->has_row_hash;
	if (strcmp(name, ETL_COL_RUN_ID) == 0)
		return b->map->has_run_id;
	if (strcmp(name, ETL_COL_LOADED_AT) == 0)
		return b->map->has_loaded_at;
	return false;
}

/*
 * target_columns lists the names of the target's columns: with loaded
 * false, only those the pipeline does not write; with insertable, without
 * generated columns.
 */
static List *
target_columns(const EtlBatchSql *b, bool loaded, bool insertable)
{
	Relation rel = table_open(b->target_relid, AccessShareLock);
	TupleDesc desc = RelationGetDescr(rel);
	List *result = NIL;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (a->attisdropped || (insertable && a->attgenerated))
			continue;
		if (!loaded && column_is_loaded(b, NameStr(a->attname)))
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
identity_columns(const EtlBatchSql *b, List **seqs)
{
	Relation rel = table_open(b->target_relid, AccessShareLock);
	TupleDesc desc = RelationGetDescr(rel);
	List *result = NIL;

	*seqs = NIL;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (a->attisdropped || !a->attidentity ||
			column_is_loaded(b, NameStr(a->attname)))
			continue;
		result = lappend(result, pstrdup(NameStr(a->attname)));
		*seqs = lappend_oid(
			*seqs, getIdentitySequence(b->target_relid, a->attnum, false));
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
append_batch_columns(StringInfo buf, const EtlBatchSql *b, const char *alias)
{
	const char *a = alias ? alias : "";
	const char *dot = alias ? "." : "";
	ListCell *lc;

	foreach (lc, b->map->columns)
		appendStringInfo(buf, "%s%s%s%s",
						 foreach_current_index(lc) ? ", " : "", a, dot,
						 quote_identifier(((EtlColumn *) lfirst(lc))->name));
	if (b->map->has_row_hash)
		appendStringInfo(buf, ", %s%s" ETL_COL_ROW_HASH, a, dot);
	if (b->map->has_run_id)
		appendStringInfo(buf, ", %s%s" ETL_COL_RUN_ID, a, dot);
	if (b->map->has_loaded_at)
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
etl_deparse_swap_batch_create(const EtlBatchSql *b, const char *batch)
{
	char *parent = "";

	if (get_rel_relispartition(b->target_relid))
		parent = psprintf(", CONSTRAINT " ETL_SWAP_PARENT " CHECK (%s)",
						  TextDatumGetCString(DirectFunctionCall1(
							  pg_get_partition_constraintdef,
							  ObjectIdGetDatum(b->target_relid))));
	return psprintf("CREATE TEMP TABLE %s (LIKE %s INCLUDING CONSTRAINTS%s)"
					" ON COMMIT DROP",
					quote_identifier(batch), b->target_sql, parent);
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
etl_deparse_swap_batch_shape(const EtlBatchSql *b, const char *batch)
{
	StringInfoData buf;
	ListCell *lc;

	initStringInfo(&buf);
	appendStringInfo(&buf, "ALTER TABLE pg_temp.%s", quote_identifier(batch));
	foreach (lc, target_columns(b, false, false))
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
etl_deparse_swap_batch_key(const EtlBatchSql *b, const char *batch)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "CREATE UNIQUE INDEX ON pg_temp.%s (",
					 quote_identifier(batch));
	append_names(&buf, b->p->key, NULL, true);
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
etl_deparse_swap_fill(const EtlBatchSql *b, const char *batch, EtlSwapKey *k,
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
	etl_deparse_delta_cte(&buf, b);
	appendStringInfo(&buf, ", etl_ins AS (INSERT INTO pg_temp.%s (",
					 quote_identifier(batch));
	append_batch_columns(&buf, b, NULL);
	appendStringInfoString(&buf, ", " ETL_SWAP_CUR ", " ETL_SWAP_DEST
								 ", " ETL_SWAP_GAP ", " ETL_SWAP_PERIOD
								 ")\nSELECT ");
	foreach (lc, b->map->columns)
	{
		EtlColumn *col = lfirst(lc);

		appendStringInfo(&buf, "%setl_t.%s",
						 foreach_current_index(lc) ? ", " : "",
						 quote_identifier(col->name));
		if (col->is_key && firstkey == NULL)
			firstkey = quote_identifier(col->name);
	}
	etl_append_audit_values(&buf, b, "etl_t");
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
	/* as the other loads read it: one row per key under b->dedupe */
	etl_append_batch(&buf, b);
	if (join_target)
	{
		appendStringInfo(&buf, "\nLEFT JOIN %s AS etl_target ON ",
						 b->target_sql);
		etl_append_key_match(&buf, b, "etl_target", "etl_t");
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
		etl_append_changed(&buf, b, "etl_t");
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
etl_deparse_swap_keep(const EtlBatchSql *b, const char *staging,
					  const char *old, const char *batch)
{
	StringInfoData buf;
	List *cols = target_columns(b, true, true);

	initStringInfo(&buf);
	appendStringInfo(&buf, "INSERT INTO %s (", staging);
	append_names(&buf, cols, NULL, true);
	appendStringInfoString(&buf, ") SELECT ");
	append_names(&buf, cols, "etl_o", true);
	appendStringInfo(&buf,
					 " FROM %s AS etl_o WHERE NOT EXISTS (SELECT FROM "
					 "pg_temp.%s AS etl_b WHERE ",
					 old, quote_identifier(batch));
	etl_append_key_match(&buf, b, "etl_b", "etl_o");
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
etl_deparse_swap_add(const EtlBatchSql *b, const char *staging,
					 const char *batch, const char *filter, int which)
{
	StringInfoData buf;
	List *others = which == 2 ? target_columns(b, false, true) : NIL;
	List *seqs = NIL;
	List *identities = which == 1 ? identity_columns(b, &seqs) : NIL;
	ListCell *lc;

	if (which == 2 && others == NIL)
		return NULL;
	initStringInfo(&buf);
	appendStringInfo(&buf, "INSERT INTO %s (", staging);
	append_batch_columns(&buf, b, NULL);
	append_names(&buf, others, NULL, false);
	append_names(&buf, identities, NULL, false);
	appendStringInfoString(&buf, ") SELECT ");
	append_batch_columns(&buf, b, "etl_b");
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
		appendStringInfo(&buf, " JOIN %s AS etl_o ON ", b->target_sql);
		etl_append_key_match(&buf, b, "etl_o", "etl_b");
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
