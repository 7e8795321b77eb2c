/*-------------------------------------------------------------------------
 *
 * steps.c
 *	  What the procedures etl_catch_up and etl_backfill (etl_ext--1.0.sql)
 *	  ask before and between their steps: the checks before their first
 *	  COMMIT, the ranges of a backfill, the rows still pending.  Each step
 *	  is a run (etl_run_step) recorded in the batch log
 *	  (catalog/batches.c).
 *
 * IDENTIFICATION
 *	  src/run/steps.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "base/entry.h"
#include "base/security.h"
#include "base/spi_util.h"
#include "base/standby.h"
#include "catalog/pipelines.h"
#include "modes/mode.h"
#include "modes/watermark.h"
#include "sql/deparse_source.h"
#include "sql/run_state.h"

PG_FUNCTION_INFO_V1(etl_steps_check);
PG_FUNCTION_INFO_V1(etl_backfill_steps);
PG_FUNCTION_INFO_V1(etl_pending_rows);

/*
 * etl_steps_check(procedure text, pipeline text, force boolean)
 *	 RETURNS void
 *
 * What etl_catch_up and etl_backfill (procedure) check before their first
 * COMMIT: that they run outside a transaction block (25001, as VACUUM: they
 * commit after each step, which a block forbids), that the pipeline exists
 * and the caller may run it, and for a backfill, that the pipeline has a
 * watermark column to take ranges of and, unless force, that it does not
 * append without a key (etl_check_keyless_reload).  Its errors carry no
 * context: the procedures' SQL would tell the caller nothing.
 */
Datum
etl_steps_check(PG_FUNCTION_ARGS)
{
	ErrorContextCallback *saved = error_context_stack;
	const char *procedure;
	bool backfill;
	bool force = !PG_ARGISNULL(2) && PG_GETARG_BOOL(2);
	EtlPipeline *p;
	EtlEntry e;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("procedure must not be NULL")));
	procedure = text_to_cstring(PG_GETARG_TEXT_PP(0));
	backfill = strcmp(procedure, "etl_backfill") == 0;
	if (!backfill && strcmp(procedure, "etl_catch_up") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid procedure \"%s\"", procedure),
				 errhint("Valid values are: etl_catch_up, etl_backfill.")));

	error_context_stack = NULL;
	etl_entry_begin_write(
		&e, ETL_ENTRY_PINNED, procedure,
		etl_pipeline_object(
			PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1))));
	if (IsTransactionBlock() || IsSubTransaction())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("%s cannot run inside a transaction block", procedure),
				 errdetail("It commits after each step, so that a step "
						   "once done stays done whatever happens to the "
						   "next; a transaction block cannot be committed "
						   "from inside."),
				 errhint("Run CALL %s(...) on its own: not between BEGIN and "
						 "COMMIT, nor in a string of several statements, "
						 "nor in an exception block.",
						 procedure)));
	p = etl_catalog_load_runnable(fcinfo, 1);
	if (backfill)
	{
		etl_check_backfill_mode(p);
		etl_check_keyless_reload(p, "backfill", force,
								 "etl_backfill(..., force => true)");
	}
	etl_entry_end(&e);
	error_context_stack = saved;
	PG_RETURN_VOID();
}

/*
 * watermark_type returns the type of a pipeline's watermark column as SQL
 * (a backfill range is of that type), or raises 0A000 for the modes that
 * have none and 42804 for a type the mode refuses (a domain, whose CHECK
 * constraints would run when the bounds are read).
 */
static char *
watermark_type(EtlPipeline *p, Oid *type)
{
	Oid source = etl_resolve_relation(p->source, "source", false);
	AttrNumber attnum;

	etl_check_backfill_mode(p);
	attnum = get_attnum(source, p->watermark_column);
	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("watermark column \"%s\" of pipeline \"%s\" no longer "
						"exists in %s",
						p->watermark_column, p->name, p->source)));
	*type = get_atttype(source, attnum);
	etl_check_watermark_type(p, *type);
	return format_type_be_qualified(*type);
}

/* the most steps one backfill takes: each is a transaction and a batch row */
#define ETL_BACKFILL_MAX_STEPS 100000

/*
 * read_backfill_arg reads argument param (from_value, to_value or step) of a
 * backfill of p as a value of type, in the session's settings, and refuses
 * what cannot be read with an error naming the argument (the reason as its
 * detail, hint as its hint).
 */
static Datum
read_backfill_arg(EtlPipeline *p, const char *param, const char *value,
				  Oid type, const char *hint)
{
	MemoryContext cxt = CurrentMemoryContext;
	Oid typinput;
	Oid typioparam;
	Datum result = (Datum) 0;

	getTypeInputInfo(type, &typinput, &typioparam);
	PG_TRY();
	{
		result =
			OidInputFunctionCall(typinput, (char *) value, typioparam, -1);
	}
	PG_CATCH();
	{
		ErrorData *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		ereport(ERROR,
				(errcode(edata->sqlerrcode),
				 errmsg("invalid %s \"%s\" for a backfill of pipeline \"%s\"",
						param, value, p->name),
				 errdetail("%s", edata->message), errhint("%s", hint)));
	}
	PG_END_TRY();
	return result;
}

/*
 * step_is_positive tells whether a backfill step of type (interval, or the
 * watermark column's numeric type) is finite and above zero.
 */
static bool
step_is_positive(Oid type, Datum step)
{
	switch (type)
	{
		case INTERVALOID:
		{
			Interval *zero = palloc0(sizeof(Interval));

			return DatumGetBool(DirectFunctionCall2(interval_gt, step,
													IntervalPGetDatum(zero)));
		}
		case INT2OID:
			return DatumGetInt16(step) > 0;
		case INT4OID:
			return DatumGetInt32(step) > 0;
		case INT8OID:
			return DatumGetInt64(step) > 0;
		case NUMERICOID:
			return etl_watermark_is_finite(NUMERICOID, step) &&
				   DatumGetBool(DirectFunctionCall2(
					   numeric_gt, step,
					   NumericGetDatum(int64_to_numeric(0))));
		default:
			return true;
	}
}

/*
 * check_backfill_args refuses, naming the argument, a from_value or
 * to_value that is not a finite value of the watermark column's type
 * (type), and a step that is not a positive value of step_type; it returns
 * the three values read in d[0] (from), d[1] (to) and d[2] (step).
 */
static void
check_backfill_args(EtlPipeline *p, Oid type, Oid step_type, const char *from,
					const char *to, const char *step, Datum *d)
{
	const char *bounds_hint = psprintf(
		"from_value and to_value are values of watermark column \"%s\" (%s); "
		"to_value is left out of the range.",
		p->watermark_column, format_type_be(type));
	const char *step_hint =
		step_type == INTERVALOID
			? "step is an interval for a timestamp watermark column, e.g. "
			  "'1 day'."
		: type == PG_LSNOID
			? psprintf("step is a positive whole number of bytes for "
					   "watermark column \"%s\" (pg_lsn), e.g. 16777216.",
					   p->watermark_column)
			: psprintf("step is a positive number for watermark column "
					   "\"%s\" (%s), e.g. 10000.",
					   p->watermark_column, format_type_be(type));
	const char *names[2] = { "from_value", "to_value" };
	const char *values[2] = { from, to };

	for (int i = 0; i < 2; i++)
	{
		d[i] = read_backfill_arg(p, names[i], values[i], type, bounds_hint);

		if (!etl_watermark_is_finite(type, d[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s \"%s\" of a backfill of pipeline \"%s\" is "
							"not finite",
							names[i], values[i], p->name),
					 errdetail("A backfill reprocesses a bounded range in "
							   "steps."),
					 errhint("%s", bounds_hint)));
	}
	d[2] = read_backfill_arg(p, "step", step, step_type, step_hint);
	if (!step_is_positive(step_type, d[2]))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("step \"%s\" of a backfill of pipeline \"%s\" is not "
						"positive",
						step, p->name),
				 errdetail("Steps go from from_value up to to_value."),
				 errhint("%s", step_hint)));
}

/*
 * backfill_step_type returns the type of a backfill step for a watermark
 * column of type: an interval for timestamps, a number of bytes (bigint)
 * for pg_lsn, the column's own type for integers and numeric.  A type it
 * cannot step through is refused with 0A000 before any step.
 */
static Oid
backfill_step_type(EtlPipeline *p, Oid type)
{
	switch (type)
	{
		case TIMESTAMPTZOID:
		case TIMESTAMPOID:
			return INTERVALOID;
		case PG_LSNOID:
			return INT8OID;
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case NUMERICOID:
			return type;
		default:
			ereport(
				ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("pipeline \"%s\" cannot be backfilled by ranges "
						"of watermark column \"%s\" of type %s",
						p->name, p->watermark_column, format_type_be(type)),
				 errhint("A backfill steps through timestamp, "
						 "timestamptz, smallint, integer, bigint, "
						 "numeric and pg_lsn columns; reload the "
						 "pipeline with etl_reset_watermark instead.")));
	}
	return InvalidOid; /* keep compiler quiet */
}

/*
 * timestamp_step returns lo + step (fn: timestamp_pl_interval or
 * timestamptz_pl_interval), or to when the sum lies past the last
 * timestamp (22008): the step then ends at the range's end.
 */
static Datum
timestamp_step(PGFunction fn, Datum lo, Datum step, Datum to)
{
	MemoryContext cxt = CurrentMemoryContext;
	Datum hi = to;

	PG_TRY();
	{
		hi = DirectFunctionCall2(fn, lo, step);
	}
	PG_CATCH();
	{
		ErrorData *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_DATETIME_VALUE_OUT_OF_RANGE)
			PG_RE_THROW();
		FlushErrorState();
		FreeErrorData(edata);
	}
	PG_END_TRY();
	return hi;
}

/*
 * backfill_step_end returns the end of the backfill step that starts at lo
 * (below to): lo + step, or to when that lies past to or past the largest
 * value of the type (the step would overflow it).  A value of the column's
 * type, never out of its range.
 */
static Datum
backfill_step_end(Oid type, Datum lo, Datum step, Datum to)
{
	int64 sum;
	uint64 lsn;
	bool overflow = false;
	Datum hi;

	switch (type)
	{
		case INT2OID:
			sum = (int64) DatumGetInt16(lo) + DatumGetInt16(step);
			return sum < DatumGetInt16(to) ? Int16GetDatum((int16) sum) : to;
		case INT4OID:
			sum = (int64) DatumGetInt32(lo) + DatumGetInt32(step);
			return sum < DatumGetInt32(to) ? Int32GetDatum((int32) sum) : to;
		case INT8OID:
			if (pg_add_s64_overflow(DatumGetInt64(lo), DatumGetInt64(step),
									&sum))
				return to;
			return sum < DatumGetInt64(to) ? Int64GetDatum(sum) : to;
		case PG_LSNOID:
			/* step is a positive bigint: a sum below lo wrapped around */
			lsn = DatumGetLSN(lo) + (uint64) DatumGetInt64(step);
			return lsn > DatumGetLSN(lo) && lsn < DatumGetLSN(to)
					   ? LSNGetDatum(lsn)
					   : to;
		case NUMERICOID:
			hi = NumericGetDatum(numeric_add_opt_error(
				DatumGetNumeric(lo), DatumGetNumeric(step), &overflow));
			if (overflow ||
				DatumGetBool(DirectFunctionCall2(numeric_ge, hi, to)))
				return to;
			return hi;
		case TIMESTAMPOID:
			hi = timestamp_step(timestamp_pl_interval, lo, step, to);
			return timestamp_cmp_internal(DatumGetTimestamp(hi),
										  DatumGetTimestamp(to)) < 0
					   ? hi
					   : to;
		case TIMESTAMPTZOID:
			hi = timestamp_step(timestamptz_pl_interval, lo, step, to);
			return timestamp_cmp_internal(DatumGetTimestamp(hi),
										  DatumGetTimestamp(to)) < 0
					   ? hi
					   : to;
		default:
			elog(ERROR, "unexpected watermark type %u", type);
	}
	return to; /* keep compiler quiet */
}

/*
 * backfill_before tells whether a comes before b, two values of a
 * watermark column's type (the type's default btree order).
 */
static bool
backfill_before(Oid type, Datum a, Datum b)
{
	TypeCacheEntry *tc = lookup_type_cache(type, TYPECACHE_CMP_PROC_FINFO);

	return DatumGetInt32(
			   FunctionCall2Coll(&tc->cmp_proc_finfo, InvalidOid, a, b)) < 0;
}

/*
 * put_backfill_steps writes the steps [from, from + step), ... up to to
 * (exclusive) into the tuplestore of rsinfo as (step_no, range_from,
 * range_to), the bounds as text of type, in the caller's memory of entry e;
 * d holds from, to and step.  Each
 * step ends at to at the latest, so no bound leaves the type's range.  It
 * refuses an empty range, more than ETL_BACKFILL_MAX_STEPS steps, and a
 * step that does not move a value forward (an interval such as '1 month
 * -29 days', positive as a whole, from a 31st).
 */
static void
put_backfill_steps(ReturnSetInfo *rsinfo, EtlEntry *e, EtlPipeline *p,
				   Oid type, Datum *d, const char *step)
{
	Oid typoutput;
	bool isvarlena;
	Datum lo = d[0];
	int32 n = 0;
	char *from_text;
	char *to_text;

	getTypeOutputInfo(type, &typoutput, &isvarlena);
	from_text = OidOutputFunctionCall(typoutput, d[0]);
	to_text = OidOutputFunctionCall(typoutput, d[1]);

	/*
	 * The bounds were read (and are shown in errors) in the session's
	 * TimeZone; the ranges are stepped and written in UTC, so that a
	 * backfill resumed from a session in another time zone finds the steps
	 * it completed.  The end of the entry (its pinned settings) restores
	 * it.
	 */
	if (type == TIMESTAMPTZOID)
		(void) set_config_option("TimeZone", "UTC", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	while (backfill_before(type, lo, d[1]))
	{
		Datum hi = backfill_step_end(type, lo, d[2], d[1]);
		Datum values[3];
		bool nulls[3] = { false, false, false };
		MemoryContext old;

		if (!backfill_before(type, lo, hi))
			ereport(
				ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("step \"%s\" of a backfill of pipeline \"%s\" "
						"does not move \"%s\" forward",
						step, p->name, OidOutputFunctionCall(typoutput, lo)),
				 errdetail("Added to \"%s\" it gives \"%s\".",
						   OidOutputFunctionCall(typoutput, lo),
						   OidOutputFunctionCall(typoutput, hi)),
				 errhint("Use a step that moves every value forward, "
						 "e.g. '1 day' or '1 month'.")));
		if (++n > ETL_BACKFILL_MAX_STEPS)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("backfill of pipeline \"%s\" would take more "
							"than %d steps",
							p->name, ETL_BACKFILL_MAX_STEPS),
					 errdetail("From \"%s\" to \"%s\" by \"%s\".", from_text,
							   to_text, step),
					 errhint("Use a larger step, or backfill the range in "
							 "parts.")));
		old = etl_entry_to_caller(e);
		values[0] = Int32GetDatum(n);
		values[1] = CStringGetTextDatum(OidOutputFunctionCall(typoutput, lo));
		values[2] = CStringGetTextDatum(OidOutputFunctionCall(typoutput, hi));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
							 nulls);
		MemoryContextSwitchTo(old);
		lo = hi;
	}
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("backfill range of pipeline \"%s\" is empty", p->name),
				 errhint("from_value must be below to_value, and step "
						 "positive.")));
}

/*
 * etl_backfill_steps(pipeline text, from_value text, to_value text,
 *					  step text) RETURNS TABLE (step_no integer,
 *					  range_from text, range_to text)
 *
 * The ranges [from, from + step), ..., up to to_value (exclusive), in the
 * watermark column's type: step is an interval for timestamps, a number of
 * bytes for pg_lsn, a number otherwise.  The last range ends at to_value,
 * also where from + step would pass the type's largest value.  The values
 * are read as the pipeline owner in a security-restricted operation; a
 * timestamptz range is written in UTC, whatever the session's TimeZone.
 * More than ETL_BACKFILL_MAX_STEPS steps are refused.
 */
Datum
etl_backfill_steps(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ErrorContextCallback *saved = error_context_stack;
	EtlPipeline *p;
	EtlUserSwitch sw = { 0 };
	Oid type;
	Oid step_oid;
	Datum d[3];
	char *step;
	EtlEntry e;

	InitMaterializedSRF(fcinfo, 0);
	/* the errors of the arguments are the caller's: no internal SQL */
	error_context_stack = NULL;
	etl_entry_begin(&e, ETL_ENTRY_PINNED);
	p = etl_catalog_load_runnable(fcinfo, 0);
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("from_value, to_value and step must not be "
							   "NULL")));
	(void) watermark_type(p, &type);
	step_oid = backfill_step_type(p, type);
	step = text_to_cstring(PG_GETARG_TEXT_PP(3));
	etl_become_owner(&sw, p->owner);
	check_backfill_args(p, type, step_oid,
						text_to_cstring(PG_GETARG_TEXT_PP(1)),
						text_to_cstring(PG_GETARG_TEXT_PP(2)), step, d);

	put_backfill_steps(rsinfo, &e, p, type, d, step);
	etl_restore_user(&sw);
	etl_entry_end(&e);
	error_context_stack = saved;
	return (Datum) 0;
}

/*
 * etl_pending_rows(pipeline text) RETURNS bigint
 *
 * The source rows past the watermark (what a catch-up has to do), read as
 * the pipeline owner; NULL for the modes without a watermark column.
 */
Datum
etl_pending_rows(PG_FUNCTION_ARGS)
{
	EtlRun run = { 0 };
	EtlRunRequest req = { 0 };
	EtlUserSwitch sw = { 0 };
	EtlArgs args;
	StringInfoData sql;
	EtlEntry e;
	int64 n;

	etl_entry_begin(&e, ETL_ENTRY_PINNED);
	run.p = etl_catalog_load_runnable(fcinfo, 0);
	run.req = &req;
	if (!etl_mode_ops(run.p->mode)->backfills)
	{
		etl_entry_end(&e);
		PG_RETURN_NULL();
	}
	etl_run_resolve_relations(&run);
	etl_become_owner(&sw, run.p->owner);
	run.map = etl_resolve_columns(run.p, run.source_relid, run.target_relid);
	run.has_lo = run.p->watermark != NULL;
	etl_args_init(&args);
	if (run.has_lo)
	{
		Oid type =
			get_atttype(run.source_relid,
						get_attnum(run.source_relid, run.p->watermark_column));

		etl_args_add(&args, type,
					 etl_watermark_datum(run.p, run.p->watermark, type, -1),
					 false);
	}
	initStringInfo(&sql);
	etl_deparse_source_count(
		&sql, run.source_sql,
		run.has_lo ? quote_identifier(run.p->watermark_column) : NULL);
	etl_spi_exec(sql.data, &args, SPI_OK_SELECT, InvalidSnapshot);
	n = etl_spi_int64(0, 0, 0);
	etl_restore_user(&sw);
	etl_entry_end(&e);
	PG_RETURN_INT64(n);
}
