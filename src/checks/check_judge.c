/*-------------------------------------------------------------------------
 *
 * check_judge.c
 *	  What each check kind does when a batch is evaluated, which the kind
 *	  table (check_kinds.c) points to: the positional arguments of its
 *	  params, the preparation of a foreign key's probe, the reading of its
 *	  columns of the one pass, what needs a query of its own (a unique
 *	  check's exact recount and clashes with the target, a freshness
 *	  check's newest value), and the samples of a failed check.  The SQL
 *	  comes from sql/deparse_checks.c; this file executes it, under the
 *	  run's snapshot, as the pipeline owner (check_eval.c calls).
 *
 * IDENTIFICATION
 *	  src/checks/check_judge.c
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
#include "checks/check_judge.h"
#include "sql/deparse_checks.h"
#include "sql/run_state.h"

/*
 * A foreign key whose referenced table has at most this many rows probes
 * its values in memory: etl_not_in's set of int8, or "= ANY" over a
 * constant array, costs less per batch row than a hashed IN (SELECT ...)
 * subplan.  Larger tables keep the subplan (each process would hold their
 * values; an array travels in the plan to every parallel worker).
 */
#define FK_ARRAY_MAX_ROWS 250000

/*
 * etl_check_sql_fill fills d, the descriptor the SQL builders take, from
 * check c over batch b; r (NULL before the pass) gives a z-score's mean
 * and standard deviation.
 */
void
etl_check_sql_fill(EtlCheckSql *d, EtlCheck *c, const EtlCheckResult *r,
				   const EtlCheckBatch *b)
{
	memset(d, 0, sizeof(EtlCheckSql));
	d->batch = b;
	d->col = c->col;
	d->coltype = c->coltype;
	d->param_no = c->param_no;
	d->has_min = c->min != NULL;
	d->has_max = c->max != NULL;
	d->fk = c->fk;
	d->ref_table = c->ref_table;
	d->ref_column = c->ref_column;
	d->mean = r ? r->mean : 0;
	d->stddev = r ? r->stddev : 0;
	d->threshold = c->threshold;
	d->expr = c->expr;
}

/*
 * etl_check_result_new starts the result of a check: passed, nothing
 * failing, an open JSON object of what it observed.
 */
EtlCheckResult *
etl_check_result_new(EtlCheck *c)
{
	EtlCheckResult *r = palloc0(sizeof(EtlCheckResult));

	r->check = c;
	r->passed = true;
	r->observed = makeStringInfo();
	appendStringInfoChar(r->observed, '{');
	return r;
}

/*
 * etl_check_args_accepted_values appends the accepted values, text[].
 */
void
etl_check_args_accepted_values(EtlArgs *args, EtlCheck *c)
{
	etl_args_add(args, TEXTARRAYOID, c->values, false);
}

/*
 * etl_check_args_range appends min and max, as text (NULL when absent).
 */
void
etl_check_args_range(EtlArgs *args, EtlCheck *c)
{
	etl_args_add_text(args, c->min);
	etl_args_add_text(args, c->max);
}

/*
 * etl_check_args_foreign_key appends the array of the referenced values
 * when the check probes them so (FK_ARRAY), nothing otherwise.
 */
void
etl_check_args_foreign_key(EtlArgs *args, EtlCheck *c)
{
	if (c->fk == FK_ARRAY)
		etl_args_add(args, get_array_type(c->coltype), c->ref_values,
					 c->ref_values == (Datum) 0);
}

/*
 * fk_probe chooses how foreign key check c probes the referenced values
 * (EtlFkProbe): by a set or an array when the referenced table is small
 * and its column has the batch column's type, with a hashable equality.
 */
static EtlFkProbe
fk_probe(EtlCheck *c)
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
	 * they were full of the narrowest rows; a run counts
	 * (etl_check_prepare_foreign_key())
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
 * etl_check_prepare_foreign_key sets c->fk.  Without a run (etl_check_sql:
 * the query's shape only) from the statistics; for a run, under its
 * snapshot, as the pipeline owner: the referenced values (NULLs left out:
 * a NULL referenced value matches nothing) are counted, and more than
 * FK_ARRAY_MAX_ROWS of them (statistics out of date) fall back to the
 * subplan; for FK_ARRAY they are read into c->ref_values, for FK_INT_SET
 * each process reads them itself (etl_not_in), under the same snapshot.
 */
void
etl_check_prepare_foreign_key(EtlCheck *c, EtlRun *run)
{
	StringInfoData sql;
	bool isnull;
	Datum d;

	c->fk = fk_probe(c);
	if (run == NULL || c->fk == FK_SUBPLAN)
		return;
	initStringInfo(&sql);
	etl_deparse_fk_values(&sql, c->ref_table, c->ref_column, c->fk == FK_ARRAY,
						  FK_ARRAY_MAX_ROWS + 1);
	etl_spi_exec(sql.data, NULL, SPI_OK_SELECT, run->snapshot);
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

/*
 * etl_check_read_count reads the count of failing rows at col of the
 * pass's result row: the check passes when there is none.
 */
void
etl_check_read_count(EtlCheckResult *r, int col, int64 nrows)
{
	r->failing = etl_spi_int64(0, col, 0);
	r->passed = r->failing == 0;
}

/*
 * etl_check_read_unique reads etl_dup_count's upper bound of the batch's
 * duplicates at col (NULL: unknown, -1 here); etl_check_judge_unique()
 * judges further.
 */
void
etl_check_read_unique(EtlCheckResult *r, int col, int64 nrows)
{
	r->failing = etl_spi_int64(0, col, -1); /* NULL: unknown */
	r->passed = r->failing == 0;
}

/*
 * etl_check_read_z_score reads mean, stddev, min and max of the batch's
 * finite values (columns col .. col + 3): the check fails when the largest
 * distance from the mean exceeds threshold standard deviations; a batch
 * without spread, or whose spread overflows double precision, passes and
 * says so.
 */
void
etl_check_read_z_score(EtlCheckResult *r, int col, int64 nrows)
{
	EtlCheck *c = r->check;
	bool isnull;
	double mean;
	double sd;
	double lo;
	double hi;
	double maxz;

	if (etl_spi_isnull(0, col + 1) ||
		DatumGetFloat8(etl_spi_datum(0, col + 1, &isnull)) == 0)
	{
		appendStringInfo(r->observed,
						 "\"threshold\": %g, \"note\": \"no spread: every "
						 "finite value is the same, or fewer than two\"",
						 c->threshold);
		return;
	}
	mean = etl_spi_float8(0, col, 0);
	sd = etl_spi_float8(0, col + 1, 0);
	lo = etl_spi_float8(0, col + 2, 0);
	hi = etl_spi_float8(0, col + 3, 0);
	maxz = Max(hi - mean, mean - lo) / sd;
	if (!isfinite(mean) || !isfinite(sd) || !isfinite(maxz))
	{
		/* finite values whose spread overflows double precision */
		appendStringInfo(r->observed,
						 "\"threshold\": %g, \"note\": \"no finite spread: "
						 "the values are too large for double precision\"",
						 c->threshold);
		return;
	}
	r->mean = mean;
	r->stddev = sd;
	r->passed = maxz <= c->threshold;
	appendStringInfo(r->observed,
					 "\"mean\": %.17g, \"stddev\": %.17g, "
					 "\"max_z\": %.17g, \"threshold\": %g",
					 mean, sd, maxz, c->threshold);
}

/*
 * etl_check_read_row_count judges the batch's number of rows, nrows,
 * against min and max.
 */
void
etl_check_read_row_count(EtlCheckResult *r, int col, int64 nrows)
{
	EtlCheck *c = r->check;

	r->failing = 0;
	r->passed = !(c->rc_min >= 0 && nrows < c->rc_min) &&
				!(c->rc_max >= 0 && nrows > c->rc_max);
	appendStringInfo(r->observed, "\"rows\": " INT64_FORMAT, nrows);
	if (c->rc_min >= 0)
		appendStringInfo(r->observed, ", \"min\": " INT64_FORMAT, c->rc_min);
	if (c->rc_max >= 0)
		appendStringInfo(r->observed, ", \"max\": " INT64_FORMAT, c->rc_max);
}

/*
 * etl_check_judge_freshness judges freshness check result r: the newest
 * watermark value of the source, under the run's snapshot, is at most
 * max_age old.
 */
void
etl_check_judge_freshness(EtlRun *run, EtlCheckResult *r, EtlArgs *args,
						  const EtlCheckBatch *b)
{
	EtlCheck *c = r->check;
	StringInfoData sql;
	TimestampTz newest;
	TimestampTz limit;

	initStringInfo(&sql);
	etl_deparse_freshness_newest(&sql, run->p->watermark_column,
								 run->source_sql);
	etl_spi_exec(sql.data, NULL, SPI_OK_SELECT, run->snapshot);
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
 * etl_check_judge_unique judges unique check result r: its exact count of
 * duplicates in the batch when the pass found any (or could not tell), and
 * its clashes with target rows of other keys (args: the pass's arguments).
 */
void
etl_check_judge_unique(EtlRun *run, EtlCheckResult *r, EtlArgs *args,
					   const EtlCheckBatch *b)
{
	EtlCheckSql d;
	StringInfoData sql;
	int64 clash = 0;

	etl_check_sql_fill(&d, r->check, r, b);

	/*
	 * etl_dup_count never counts too few: recount when it found any, or when
	 * it could not tell (NULL, -1 here: the batch had more distinct values
	 * than work_mem holds)
	 */
	if (r->failing != 0)
	{
		initStringInfo(&sql);
		etl_deparse_unique_recount(&sql, &d);
		etl_spi_exec(sql.data, args, SPI_OK_SELECT, run->snapshot);
		r->failing = etl_spi_int64(0, 0, 0);
	}
	appendStringInfo(r->observed, "\"duplicates_in_batch\": " INT64_FORMAT,
					 r->failing);
	if (run->target_empty != 1)
	{
		initStringInfo(&sql);
		etl_deparse_unique_clashes(&sql, &d);
		etl_spi_query_parallel(sql.data, args, run->snapshot);
		clash = etl_spi_int64(0, 0, 0);
		appendStringInfo(r->observed,
						 ", \"clashing_with_target\": " INT64_FORMAT, clash);
	}
	r->failing += clash;
	r->passed = r->failing == 0;
}

/*
 * failing_predicate returns the condition under which a batch row fails
 * the check of result r.
 */
static char *
failing_predicate(EtlCheckResult *r, const EtlCheckBatch *b)
{
	EtlCheckSql d;
	StringInfoData pred;

	etl_check_sql_fill(&d, r->check, r, b);
	initStringInfo(&pred);
	r->check->kind->predicate(&pred, &d);
	return pred.data;
}

/*
 * append_sample_keys adds to r's observations up to 10 keys of the batch
 * rows meeting pred.
 */
static void
append_sample_keys(EtlRun *run, EtlCheckResult *r, EtlArgs *args,
				   const EtlCheckBatch *b, const char *pred)
{
	StringInfoData sql;

	initStringInfo(&sql);
	etl_deparse_check_sample_keys(&sql, b, pred);
	etl_spi_exec(sql.data, args, SPI_OK_SELECT, run->snapshot);
	appendStringInfo(r->observed, "%s\"sample_keys\": %s",
					 r->observed->len > 1 ? ", " : "", etl_spi_text(0, 0));
}

/*
 * etl_check_sample_keys adds to failed check result r the keys of up to 10
 * rows that fail it.
 */
void
etl_check_sample_keys(EtlRun *run, EtlCheckResult *r, EtlArgs *args,
					  const EtlCheckBatch *b)
{
	append_sample_keys(run, r, args, b, failing_predicate(r, b));
}

/*
 * etl_check_sample_z_score counts the failing rows of failed z-score
 * check result r (the pass knew no mean) and adds the keys of up to 10.
 */
void
etl_check_sample_z_score(EtlRun *run, EtlCheckResult *r, EtlArgs *args,
						 const EtlCheckBatch *b)
{
	char *pred = failing_predicate(r, b);
	StringInfoData sql;

	initStringInfo(&sql);
	etl_deparse_check_count(&sql, b, pred);
	etl_spi_query_parallel(sql.data, args, run->snapshot);
	r->failing = etl_spi_int64(0, 0, 0);
	append_sample_keys(run, r, args, b, pred);
}

/*
 * etl_check_sample_unique adds to failed unique check result r up to 10
 * values that repeat in the batch.
 */
void
etl_check_sample_unique(EtlRun *run, EtlCheckResult *r, EtlArgs *args,
						const EtlCheckBatch *b)
{
	EtlCheckSql d;
	StringInfoData sql;

	etl_check_sql_fill(&d, r->check, r, b);
	initStringInfo(&sql);
	etl_deparse_unique_samples(&sql, &d);
	etl_spi_exec(sql.data, args, SPI_OK_SELECT, run->snapshot);
	appendStringInfo(r->observed, ", \"sample_values\": %s",
					 etl_spi_text(0, 0));
}
