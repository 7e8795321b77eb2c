/*-------------------------------------------------------------------------
 *
 * check_eval.c
 *	  Quality checks evaluated on every batch before it loads.
 *
 *	  One pass: all checks of a pipeline compile into a single aggregate
 *	  query over the batch (the transform over etl_delta) -- count(*) FILTER
 *	  (WHERE <the row fails>) per row-level check, with foreign keys as
 *	  hashed IN (SELECT ...) probes, etl_dup_count for uniqueness within
 *	  the batch, etl_zstats (count, mean, stddev, min and max in one
 *	  aggregate, the value converted once) for z-scores -- which may run in
 *	  parallel.  Only a unique check against the target adds one join per
 *	  check, freshness one look at the source's newest value, and only a
 *	  failing check pays for its sample keys (and a z-score for its count).
 *
 *	  Quarantine: the batch is staged (isolate.c) and the transform run once
 *	  per staged row, carrying its row number (etl_deparse_rn_batch()); the
 *	  rows whose output fails a quarantine check are set aside by that
 *	  number -- dead letters holding the source row, deleted from the stage
 *	  the load then reads -- never by a key matched again (a transform may
 *	  change keys, keys may be NULL or absent).  This needs a row-local
 *	  transform, which is checked when the check is added.  Replayed dead
 *	  letters go through the same (etl_checks_replay()).
 *
 *	  The evaluation only reads (etl_run_checks(), in a subtransaction of
 *	  the run, so that a data error of the transform can be isolated);
 *	  etl_checks_judge() then fails the run or quarantines.
 *
 * IDENTIFICATION
 *	  src/checks/check_eval.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/table.h"
#include "catalog/pg_collation.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "base/spi_util.h"
#include "checks/check.h"
#include "checks/quality.h"
#include "sql/columns.h"
#include "sql/deparse_batch.h"
#include "sql/run_state.h"
#include "transform/stage.h"

/*
 * A foreign key whose referenced table has at most this many rows probes
 * its values in memory: etl_not_in's set of int8, or "= ANY" over a
 * constant array, costs less per batch row than a hashed IN (SELECT ...)
 * subplan.  Larger tables keep the subplan (each process would hold their
 * values; an array travels in the plan to every parallel worker).
 */
#define FK_ARRAY_MAX_ROWS 250000

/*
 * etl_check_fk_probe chooses how foreign key check c probes the referenced
 * values (EtlFkProbe): by a set or an array when the referenced table is small
 * and its column has the batch column's type, with a hashable equality.
 */
EtlFkProbe
etl_check_fk_probe(EtlCheck *c)
{
	TypeCacheEntry *tc;
	Relation rel;
	double reltuples;

	if (c->ref_type != c->coltype)
		return FK_SUBPLAN;
	/* a collation of its own on the referenced column: compare as before */
	if (type_is_collatable(c->coltype))
	{
		Oid type;
		int32 typmod;
		Oid collation;

		get_atttypetypmodcoll(c->ref_relid, c->ref_attnum, &type, &typmod,
							  &collation);
		if (collation != DEFAULT_COLLATION_OID)
			return FK_SUBPLAN;
	}
	tc = lookup_type_cache(c->coltype, TYPECACHE_EQ_OPR | TYPECACHE_HASH_PROC);
	if (!OidIsValid(tc->eq_opr) || !OidIsValid(tc->hash_proc) ||
		!op_hashjoinable(tc->eq_opr, c->coltype) ||
		!OidIsValid(get_array_type(c->coltype)))
		return FK_SUBPLAN;
	/*
	 * a table never analyzed (reltuples -1) is judged by its pages, as if
	 * they were full of the narrowest rows; resolve_fk_probe() counts
	 */
	rel = table_open(c->ref_relid, AccessShareLock);
	reltuples = rel->rd_rel->reltuples;
	if (reltuples < 0)
		reltuples =
			(double) RelationGetNumberOfBlocks(rel) * (BLCKSZ / (double) 32);
	table_close(rel, AccessShareLock);
	if (reltuples > FK_ARRAY_MAX_ROWS)
		return FK_SUBPLAN;
	if (c->coltype == INT2OID || c->coltype == INT4OID ||
		c->coltype == INT8OID)
		return FK_INT_SET;
	return FK_ARRAY;
}

/*
 * resolve_fk_probe sets c->fk for a run, under the run's snapshot, as the
 * pipeline owner: the referenced values (NULLs left out: a NULL referenced
 * value matches nothing) are counted, and more than FK_ARRAY_MAX_ROWS of
 * them (statistics out of date) fall back to the subplan; for FK_ARRAY
 * they are read into c->ref_values, for FK_INT_SET each process reads them
 * itself (etl_not_in), under the same snapshot.
 */
static void
resolve_fk_probe(EtlRun *run, EtlCheck *c)
{
	bool isnull;
	Datum d;

	c->fk = etl_check_fk_probe(c);
	if (c->fk == FK_SUBPLAN)
		return;
	etl_spi_exec(
		psprintf("SELECT %s, "
				 "pg_catalog.count(*) FROM (SELECT %s AS v FROM %s "
				 "WHERE %s IS NOT NULL LIMIT %d) AS etl_r",
				 c->fk == FK_ARRAY ? "pg_catalog.array_agg(etl_r.v)" : "NULL",
				 quote_identifier(c->ref_column), c->ref_table,
				 quote_identifier(c->ref_column), FK_ARRAY_MAX_ROWS + 1),
		NULL, SPI_OK_SELECT, run->snapshot);
	if (etl_spi_int64(0, 1, 0) > FK_ARRAY_MAX_ROWS)
	{
		c->fk = FK_SUBPLAN;
		return;
	}
	if (c->fk == FK_INT_SET)
		return;
	d = etl_spi_datum(0, 0, &isnull);
	c->ref_values = isnull ? PointerGetDatum(construct_empty_array(c->coltype))
						   : datumCopy(d, false, -1);
}

/* the values a z-score leaves out: they have no distance from a mean */
#define Z_NONFINITE "'{NaN,Infinity,-Infinity}'::pg_catalog.float8[]"

/*
 * append_fail_predicate writes the condition under which a batch row (alias
 * etl_b) fails a row-level check (not unique, which is judged by sets).
 */
static void
append_fail_predicate(StringInfo buf, EtlCheck *c, double mean, double stddev)
{
	const char *col = c->column ? quote_identifier(c->column) : NULL;
	char *type = c->column ? format_type_extended(c->coltype, -1,
												  FORMAT_TYPE_FORCE_QUALIFY)
						   : NULL;

	switch (c->kind)
	{
		case CK_NOT_NULL:
			appendStringInfo(buf, "etl_b.%s IS NULL", col);
			break;
		case CK_ACCEPTED_VALUES:
			appendStringInfo(buf, "etl_b.%s <> ALL (CAST($%d AS %s[]))", col,
							 c->param_no, type);
			break;
		case CK_POSITIVE:
			appendStringInfo(buf, "etl_b.%s <= 0", col);
			break;
		case CK_RANGE:
			appendStringInfoChar(buf, '(');
			if (c->min)
				appendStringInfo(buf, "etl_b.%s < CAST($%d AS %s)", col,
								 c->param_no, type);
			if (c->min && c->max)
				appendStringInfoString(buf, " OR ");
			if (c->max)
				appendStringInfo(buf, "etl_b.%s > CAST($%d AS %s)", col,
								 c->param_no + 1, type);
			appendStringInfoChar(buf, ')');
			break;
		case CK_FOREIGN_KEY:
			if (c->fk == FK_INT_SET)
			{
				appendStringInfo(
					buf,
					"etl_b.%s IS NOT NULL AND etl_internal.etl_not_in("
					"etl_b.%s::pg_catalog.int8, "
					"%s::pg_catalog.regclass, %s)",
					col, col, quote_literal_cstr(c->ref_table),
					quote_literal_cstr(c->ref_column));
				break;
			}
			if (c->fk == FK_ARRAY)
			{
				appendStringInfo(
					buf,
					"etl_b.%s IS NOT NULL AND NOT (etl_b.%s = ANY "
					"($%d::%s))",
					col, col, c->param_no,
					format_type_extended(get_array_type(c->coltype), -1,
										 FORMAT_TYPE_FORCE_QUALIFY));
				break;
			}
			appendStringInfo(
				buf,
				"etl_b.%s IS NOT NULL AND NOT (etl_b.%s IN "
				"(SELECT etl_r.%s FROM %s AS etl_r WHERE etl_r.%s "
				"IS NOT NULL))",
				col, col, quote_identifier(c->ref_column), c->ref_table,
				quote_identifier(c->ref_column));
			break;
		case CK_Z_SCORE:
			/* non-finite values (NaN, +-Infinity) neither count nor fail */
			Assert(isfinite(mean) && isfinite(stddev) && stddev > 0);
			appendStringInfo(
				buf,
				"etl_b.%s::pg_catalog.float8 <> ALL (" Z_NONFINITE
				") AND pg_catalog.abs(etl_b.%s::pg_catalog.float8 - "
				"%.17g) / %.17g > %.17g",
				col, col, mean, stddev, c->threshold);
			break;
		case CK_EXPRESSION:
			appendStringInfo(buf, "(\n%s\n) IS NOT TRUE", c->expr);
			break;
		default:
			appendStringInfoString(buf, "false");
			break;
	}
}

/*
 * add_check_args appends the positional arguments of a check's params and
 * remembers where they start.
 */
static void
add_check_args(EtlArgs *args, EtlCheck *c)
{
	c->param_no = args->n + 1;
	if (c->kind == CK_ACCEPTED_VALUES)
		etl_args_add(args, TEXTARRAYOID, c->values, false);
	else if (c->kind == CK_RANGE)
	{
		etl_args_add_text(args, c->min);
		etl_args_add_text(args, c->max);
	}
	else if (c->kind == CK_FOREIGN_KEY && c->fk == FK_ARRAY)
		etl_args_add(args, get_array_type(c->coltype), c->ref_values,
					 c->ref_values == (Datum) 0);
}

/*
 * batch_query returns the query "SELECT select_list FROM <transform> AS
 * etl_b tail", with the delta CTE first.
 */
static char *
batch_query(EtlRun *run, const char *select_list, const char *tail)
{
	StringInfoData buf;

	initStringInfo(&buf);
	etl_deparse_delta_cte(&buf, run);
	appendStringInfo(&buf, "SELECT %s FROM (\n%s\n) AS etl_b%s", select_list,
					 run->map->transform_sql, tail ? tail : "");
	return buf.data;
}

/*
 * key_object returns jsonb_build_object('k1', etl_b.k1, ...) of the key.
 */
static char *
key_object(EtlRun *run)
{
	StringInfoData buf;
	ListCell *lc;
	bool first = true;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "pg_catalog.jsonb_build_object(");
	foreach (lc, run->map->columns)
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
 * sample_keys returns a JSON array of up to 10 keys of rows failing pred.
 */
static char *
sample_keys(EtlRun *run, EtlArgs *args, const char *pred)
{
	char *sql;

	sql = batch_query(run, psprintf("%s AS k", key_object(run)),
					  psprintf(" WHERE %s LIMIT 10", pred));
	sql = psprintf("SELECT COALESCE(pg_catalog.jsonb_agg(s.k), "
				   "'[]')::pg_catalog.text FROM (%s) s",
				   sql);
	etl_spi_exec(sql, args, SPI_OK_SELECT, run->snapshot);
	return etl_spi_text(0, 0);
}

/*
 * new_result starts the result of a check.
 */
static EtlCheckResult *
new_result(EtlCheck *c)
{
	EtlCheckResult *r = palloc0(sizeof(EtlCheckResult));

	r->check = c;
	r->passed = true;
	r->observed = makeStringInfo();
	appendStringInfoChar(r->observed, '{');
	return r;
}

/* a staged row that failed a check */
typedef struct FailedRow
{
	int64 rn;
	ErrorData *edata;
	char *record;
} FailedRow;

/*
 * append_clash_predicate writes the condition under which batch row etl_b
 * has the value of unique check c that a target row of another key holds
 * (false without a key): the batch values converted as the load stores
 * them.
 */
static void
append_clash_predicate(StringInfo buf, EtlRun *run, EtlCheck *c)
{
	StringInfoData bkeys;
	StringInfoData xkeys;
	ListCell *lc;

	initStringInfo(&bkeys);
	initStringInfo(&xkeys);
	foreach (lc, run->map->columns)
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
					 run->target_sql, quote_identifier(c->column));
	etl_deparse_as_target(buf, c->col, "etl_b");
	appendStringInfo(buf, " AND ROW(%s) IS DISTINCT FROM ROW(%s))", xkeys.data,
					 bkeys.data);
}

/*
 * unique_against_target counts batch rows whose value of the checked column
 * another target row (another key) already has.
 */
static int64
unique_against_target(EtlRun *run, EtlCheck *c, EtlArgs *args)
{
	StringInfoData tail;

	initStringInfo(&tail);
	appendStringInfoString(&tail, " WHERE ");
	append_clash_predicate(&tail, run, c);
	etl_spi_query_parallel(batch_query(run, "pg_catalog.count(*)", tail.data),
						   args, run->snapshot);
	return etl_spi_int64(0, 0, 0);
}

/*
 * reject_failing_rows takes the staged rows whose batch rows fail one of
 * the given checks (EtlCheckResult *, their params in args) out of the
 * batch: each goes to hooks->rejected, stage "check", with the first check
 * it fails, and leaves the stage.  Rows are known by their row number in
 * the stage, which the transform carries (etl_deparse_rn_batch()), never
 * by a key matched again: a transform may change keys, keys may be NULL or
 * absent.  A unique check fails the rows whose value repeats in the batch
 * or belongs to a target row of another key.  Returns how many were taken.
 */
static int64
reject_failing_rows(EtlRun *run, List *failed, EtlArgs *args,
					EtlIsolateHooks *hooks)
{
	StringInfoData sql;
	ListCell *lc;
	uint64 n;
	FailedRow *rows;

	etl_stage_batch(run);
	initStringInfo(&sql);
	etl_deparse_delta_cte(&sql, run);
	appendStringInfoString(
		&sql,
		"SELECT etl_q.etl_rn, etl_q.etl_check,"
		" pg_catalog.to_jsonb(etl_d)::pg_catalog.text FROM"
		" (SELECT DISTINCT ON (etl_f.etl_rn) etl_f.etl_rn, etl_f.etl_check"
		" FROM (SELECT etl_b.etl_rn, CASE");
	foreach (lc, failed)
	{
		EtlCheckResult *r = lfirst(lc);
		EtlCheck *c = r->check;

		if (c->kind == CK_UNIQUE)
		{
			const char *col = quote_identifier(c->column);

			appendStringInfo(
				&sql,
				" WHEN etl_b.%s IN (SELECT etl_d.%s FROM (\n%s\n) AS etl_d"
				" GROUP BY 1 HAVING pg_catalog.count(*) > 1) OR ",
				col, col, run->map->transform_sql);
			append_clash_predicate(&sql, run, c);
		}
		else
		{
			appendStringInfoString(&sql, " WHEN ");
			append_fail_predicate(&sql, c, r->mean, r->stddev);
		}
		appendStringInfo(&sql, " THEN %d", foreach_current_index(lc));
	}
	appendStringInfo(&sql,
					 " END AS etl_check FROM (\n%s\n) AS etl_b) AS etl_f"
					 " WHERE etl_f.etl_check IS NOT NULL"
					 " ORDER BY etl_f.etl_rn, etl_f.etl_check) AS etl_q"
					 " CROSS JOIN LATERAL (SELECT %s FROM pg_temp.%s AS etl_s"
					 " WHERE etl_s.etl_rn = etl_q.etl_rn) AS etl_d"
					 " ORDER BY etl_q.etl_rn",
					 etl_deparse_rn_batch(run), run->stage_columns_s,
					 run->stage_table);
	n = etl_spi_exec(sql.data, args, SPI_OK_SELECT, run->snapshot);

	/* the result set goes with the next statement: copy it out first */
	rows = palloc0(sizeof(FailedRow) * Max(n, 1));
	for (uint64 j = 0; j < n; j++)
	{
		EtlCheckResult *r = list_nth(failed, (int) etl_spi_int64(j, 1, 0));

		rows[j].rn = etl_spi_int64(j, 0, 0);
		rows[j].record = etl_spi_text(j, 2);
		rows[j].edata = palloc0(sizeof(ErrorData));
		rows[j].edata->sqlerrcode = ERRCODE_CHECK_VIOLATION;
		rows[j].edata->message = psprintf(r->check->severity == SEV_QUARANTINE
											  ? "quarantined by check \"%s\""
											  : "failed check \"%s\"",
										  r->check->name);
	}
	for (uint64 j = 0; j < n; j++)
	{
		hooks->rejected(run, rows[j].rn, "check", rows[j].edata,
						rows[j].record, hooks->arg);
		etl_stage_forget(run, rows[j].rn);
	}
	return (int64) n;
}

/*
 * etl_checks_pass_sql returns the one aggregate query that evaluates the
 * checks over the batch: count(*) first, then per check its column(s);
 * first_col gets each check's first column.  Appends the checks' params to
 * args.
 */
char *
etl_checks_pass_sql(EtlRun *run, List *checks, EtlArgs *args, int *first_col)
{
	StringInfoData sel;
	ListCell *lc;
	int ncol = 1;
	int i = 0;

	initStringInfo(&sel);
	appendStringInfoString(&sel, "pg_catalog.count(*)");
	foreach (lc, checks)
	{
		EtlCheck *c = lfirst(lc);
		const char *col = c->column ? quote_identifier(c->column) : NULL;

		add_check_args(args, c);
		first_col[i++] = ncol;
		switch (c->kind)
		{
			case CK_UNIQUE:
				appendStringInfo(
					&sel, ",\n  etl_internal.etl_dup_count(etl_b.%s)", col);
				ncol++;
				break;
			case CK_Z_SCORE:
			{
				/*
				 * one aggregate over the finite values: the planner computes
				 * it once for the four columns, converting the value once
				 */
				char *z = psprintf(
					"(etl_internal.etl_zstats(etl_b.%s::pg_catalog.float8))",
					col);

				appendStringInfo(&sel,
								 ",\n  %s[2],\n  %s[3],\n  %s[4],\n  %s[5]", z,
								 z, z, z);
				ncol += 4;
				break;
			}
			case CK_ROW_COUNT:
			case CK_FRESHNESS:
				break;
			default:
				appendStringInfoString(
					&sel, ",\n  pg_catalog.count(*) FILTER (WHERE ");
				append_fail_predicate(&sel, c, 0, 0);
				appendStringInfoChar(&sel, ')');
				ncol++;
				break;
		}
	}
	return batch_query(run, sel.data, NULL);
}

/*
 * pass_result reads what the one aggregate pass found for check c, whose
 * columns start at col of the pass's result row (nrows: the batch's rows),
 * into a new result.  Freshness and unique checks are judged further by
 * judge_freshness() and judge_unique().
 */
static EtlCheckResult *
pass_result(EtlCheck *c, int col, int64 nrows)
{
	EtlCheckResult *r = new_result(c);

	switch (c->kind)
	{
		case CK_ROW_COUNT:
			r->failing = 0;
			r->passed = !(c->rc_min >= 0 && nrows < c->rc_min) &&
						!(c->rc_max >= 0 && nrows > c->rc_max);
			appendStringInfo(r->observed, "\"rows\": " INT64_FORMAT, nrows);
			if (c->rc_min >= 0)
				appendStringInfo(r->observed, ", \"min\": " INT64_FORMAT,
								 c->rc_min);
			if (c->rc_max >= 0)
				appendStringInfo(r->observed, ", \"max\": " INT64_FORMAT,
								 c->rc_max);
			break;
		case CK_Z_SCORE:
		{
			bool isnull;
			double mean;
			double sd;
			double lo;
			double hi;
			double maxz;

			if (etl_spi_isnull(0, col + 1) ||
				DatumGetFloat8(etl_spi_datum(0, col + 1, &isnull)) == 0)
			{
				appendStringInfo(
					r->observed,
					"\"threshold\": %g, \"note\": \"no spread: every "
					"finite value is the same, or fewer than two\"",
					c->threshold);
				break;
			}
			mean = etl_spi_float8(0, col, 0);
			sd = etl_spi_float8(0, col + 1, 0);
			lo = etl_spi_float8(0, col + 2, 0);
			hi = etl_spi_float8(0, col + 3, 0);
			maxz = Max(hi - mean, mean - lo) / sd;
			if (!isfinite(mean) || !isfinite(sd) || !isfinite(maxz))
			{
				/* finite values whose spread overflows double precision */
				appendStringInfo(
					r->observed,
					"\"threshold\": %g, \"note\": \"no finite spread: the "
					"values are too large for double precision\"",
					c->threshold);
				break;
			}
			r->mean = mean;
			r->stddev = sd;
			r->passed = maxz <= c->threshold;
			appendStringInfo(r->observed,
							 "\"mean\": %.17g, \"stddev\": %.17g, "
							 "\"max_z\": %.17g, \"threshold\": %g",
							 mean, sd, maxz, c->threshold);
			break;
		}
		case CK_FRESHNESS:
			break;
		case CK_UNIQUE:
			r->failing = etl_spi_int64(0, col, -1); /* NULL: unknown */
			r->passed = r->failing == 0;
			break;
		default:
			r->failing = etl_spi_int64(0, col, 0);
			r->passed = r->failing == 0;
			break;
	}
	return r;
}

/*
 * judge_freshness judges freshness check result r: the newest watermark
 * value of the source, under the run's snapshot, is at most max_age old.
 */
static void
judge_freshness(EtlRun *run, EtlCheckResult *r)
{
	EtlCheck *c = r->check;
	TimestampTz newest;
	TimestampTz limit;

	etl_spi_exec(psprintf("SELECT pg_catalog.max(%s)::pg_catalog.timestamptz "
						  "FROM %s",
						  quote_identifier(run->p->watermark_column),
						  run->source_sql),
				 NULL, SPI_OK_SELECT, run->snapshot);
	limit = DatumGetTimestampTz(DirectFunctionCall2(
		timestamptz_mi_interval, TimestampTzGetDatum(GetCurrentTimestamp()),
		IntervalPGetDatum(c->max_age)));
	if (etl_spi_isnull(0, 0))
	{
		r->passed = false;
		appendStringInfoString(r->observed, "\"newest\": null");
	}
	else
	{
		bool isnull;

		newest = DatumGetTimestampTz(etl_spi_datum(0, 0, &isnull));
		r->passed = newest >= limit;
		appendStringInfoString(r->observed, "\"newest\": ");
		escape_json(r->observed, timestamptz_to_str(newest));
	}
	appendStringInfoString(r->observed, ", \"max_age\": ");
	escape_json(r->observed,
				DatumGetCString(DirectFunctionCall1(
					interval_out, IntervalPGetDatum(c->max_age))));
}

/*
 * judge_unique judges unique check result r: its exact count of duplicates
 * in the batch when the pass found any (or could not tell), and its clashes
 * with target rows of other keys (args: the pass's arguments).
 */
static void
judge_unique(EtlRun *run, EtlCheckResult *r, EtlArgs *args)
{
	EtlCheck *c = r->check;
	const char *col = quote_identifier(c->column);
	int64 clash = 0;

	/*
	 * etl_dup_count never counts too few: recount when it found any, or when
	 * it could not tell (NULL, -1 here: the batch had more distinct values
	 * than work_mem holds)
	 */
	if (r->failing != 0)
	{
		etl_spi_exec(
			batch_query(run,
						psprintf("pg_catalog.count(etl_b.%s) - "
								 "pg_catalog.count(DISTINCT etl_b.%s)",
								 col, col),
						NULL),
			args, SPI_OK_SELECT, run->snapshot);
		r->failing = etl_spi_int64(0, 0, 0);
	}
	appendStringInfo(r->observed, "\"duplicates_in_batch\": " INT64_FORMAT,
					 r->failing);
	if (run->target_empty != 1)
	{
		clash = unique_against_target(run, c, args);
		appendStringInfo(r->observed,
						 ", \"clashing_with_target\": " INT64_FORMAT, clash);
	}
	r->failing += clash;
	r->passed = r->failing == 0;
}

/*
 * add_samples adds to failed row-level check result r its samples: the
 * values a unique check found twice, or the keys of rows failing another
 * kind (whose failing rows a z-score counts here: the pass knew no mean).
 */
static void
add_samples(EtlRun *run, EtlCheckResult *r, EtlArgs *args)
{
	EtlCheck *c = r->check;
	StringInfoData pred;

	initStringInfo(&pred);
	if (c->kind == CK_UNIQUE)
	{
		const char *col = quote_identifier(c->column);

		etl_spi_exec(
			psprintf(
				"SELECT COALESCE(pg_catalog.jsonb_agg(v), "
				"'[]')::pg_catalog.text FROM"
				" (%s) s(v)",
				batch_query(run, psprintf("etl_b.%s", col),
							psprintf(" GROUP BY 1 HAVING pg_catalog.count(*) "
									 "> 1 LIMIT 10"))),
			args, SPI_OK_SELECT, run->snapshot);
		appendStringInfo(r->observed, ", \"sample_values\": %s",
						 etl_spi_text(0, 0));
	}
	else
	{
		append_fail_predicate(&pred, c, r->mean, r->stddev);
		if (c->kind == CK_Z_SCORE)
		{
			etl_spi_query_parallel(
				batch_query(run, "pg_catalog.count(*)",
							psprintf(" WHERE %s", pred.data)),
				args, run->snapshot);
			r->failing = etl_spi_int64(0, 0, 0);
		}
		appendStringInfo(r->observed, "%s\"sample_keys\": %s",
						 r->observed->len > 1 ? ", " : "",
						 sample_keys(run, args, pred.data));
	}
}

/*
 * etl_run_checks evaluates the pipeline's checks (from etl_checks_load) on
 * the run's batch, before it loads, and keeps their results in
 * run->check_results (and the rows it counted in run->check_rows); it only
 * reads, so that a data error of the transform can be caught around it.
 * etl_checks_judge() acts on the results.  Runs as the pipeline owner.
 */
void
etl_run_checks(EtlRun *run, List *checks)
{
	EtlArgs args;
	ListCell *lc;
	char *pass_sql;
	int nchecks;
	int *first_col;
	int64 nrows;
	List *results = NIL;
	int i;

	run->check_results = NIL;
	if (checks == NIL)
		return;
	nchecks = list_length(checks);
	first_col = palloc0(sizeof(int) * nchecks);

	foreach (lc, checks)
	{
		EtlCheck *c = lfirst(lc);

		etl_check_resolve(c, run->p, run->map, run->source_relid);
		if (c->kind == CK_FOREIGN_KEY)
			resolve_fk_probe(run, c);
	}

	/* the one aggregate pass */
	etl_run_args(run, &args);
	pass_sql = etl_checks_pass_sql(run, checks, &args, first_col);
	etl_spi_query_parallel(pass_sql, &args, run->snapshot);
	nrows = etl_spi_int64(0, 0, 0);
	if (run->rec.rows_extracted < 0 && run->map->one_to_one)
		run->rec.rows_extracted = nrows;

	/* judge each check; the result set of the pass is read first */
	i = 0;
	foreach (lc, checks)
		results =
			lappend(results, pass_result(lfirst(lc), first_col[i++], nrows));

	/* what needs its own query: freshness, uniqueness against the target,
	 * counts and samples of what failed */
	foreach (lc, results)
	{
		EtlCheckResult *r = lfirst(lc);
		EtlCheck *c = r->check;

		if (c->kind == CK_FRESHNESS)
			judge_freshness(run, r);
		else if (c->kind == CK_UNIQUE)
			judge_unique(run, r, &args);
		if (!r->passed && etl_check_kind_row_level[c->kind])
			add_samples(run, r, &args);
		appendStringInfoChar(r->observed, '}');
	}
	run->check_results = results;
	run->check_rows = nrows;
}

/*
 * etl_checks_judge acts on the results of etl_run_checks(): a failing
 * critical check fails the attempt (23514, the batch does not load); rows
 * failing quarantine checks become dead letters and leave the batch.  Runs
 * as the pipeline owner.
 */
void
etl_checks_judge(EtlRun *run, List *checks, EtlIsolateHooks *hooks)
{
	EtlCheckResult *critical = NULL;
	List *quarantining = NIL;
	EtlArgs args;
	ListCell *lc;

	foreach (lc, run->check_results)
	{
		EtlCheckResult *r = lfirst(lc);

		if (!r->passed && r->check->severity == SEV_CRITICAL &&
			critical == NULL)
			critical = r;
		if (!r->passed && r->check->severity == SEV_QUARANTINE)
			quarantining = lappend(quarantining, r);
	}

	if (critical != NULL)
	{
		EtlCheck *c = critical->check;

		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("check \"%s\" failed", c->name),
				 errdetail("%s check%s%s%s failed%s; observed %s",
						   etl_check_kind_names[c->kind],
						   c->column ? " on column \"" : "",
						   c->column ? c->column : "", c->column ? "\"" : "",
						   etl_check_kind_row_level[c->kind]
							   ? psprintf(" for " INT64_FORMAT
										  " of " INT64_FORMAT " rows",
										  critical->failing, run->check_rows)
							   : "",
						   critical->observed->data),
				 errhint("The batch was not loaded; SELECT * FROM "
						 "etl.check_results WHERE run_id = " INT64_FORMAT
						 " shows every check.",
						 run->rec.run_id)));
	}

	if (quarantining != NIL)
	{
		etl_stage_batch(run); /* the rows are known by their row numbers */
		etl_run_args(run, &args);
		foreach (lc, checks)
			add_check_args(&args, lfirst(lc));
		(void) reject_failing_rows(run, quarantining, &args, hooks);
	}
}

/*
 * etl_checks_replay applies a pipeline's checks to dead letters being
 * replayed (staged rows 1 .. nrows, etl_retry_dead_letters): a row that
 * fails a row-level check of severity critical or quarantine goes to
 * hooks->rejected (stage "check") and stays out of the load, as it would
 * have in a run.  Warnings do not keep a row out; z_score, row_count and
 * freshness judge a whole batch, which a replay is not, and are left out.
 * Returns how many rows were held back.  Runs as the pipeline owner.
 */
int64
etl_checks_replay(EtlRun *run, int64 nrows, EtlIsolateHooks *hooks)
{
	List *checks = etl_checks_load(run->p->id);
	List *applied = NIL;
	EtlArgs args;
	ListCell *lc;

	foreach (lc, checks)
	{
		EtlCheck *c = lfirst(lc);

		if (!etl_check_kind_row_level[c->kind] || c->kind == CK_Z_SCORE ||
			c->severity == SEV_WARNING)
			continue;
		etl_check_resolve(c, run->p, run->map, run->source_relid);
		applied = lappend(applied, new_result(c));
	}
	if (applied == NIL || nrows == 0)
		return 0;
	run->rn_lo = 1;
	run->rn_hi = nrows;
	etl_run_args(run, &args);
	foreach (lc, applied)
		add_check_args(&args, ((EtlCheckResult *) lfirst(lc))->check);
	return reject_failing_rows(run, applied, &args, hooks);
}

/*
 * etl_checks_failed_critical tells whether the run's checks failed one
 * critical check.
 */
bool
etl_checks_failed_critical(EtlRun *run)
{
	ListCell *lc;

	foreach (lc, run->check_results)
	{
		EtlCheckResult *r = lfirst(lc);

		if (!r->passed && r->check->severity == SEV_CRITICAL)
			return true;
	}
	return false;
}
