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
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "base/entry.h"
#include "base/security.h"
#include "base/spi_util.h"
#include "base/standby.h"
#include "catalog/pipelines.h"
#include "modes/watermark.h"
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
 * (type), and a step that is not a positive value of step_type.
 */
static void
check_backfill_args(EtlPipeline *p, Oid type, Oid step_type, const char *from,
					const char *to, const char *step)
{
	const char *bounds_hint = psprintf(
		"from_value and to_value are values of watermark column \"%s\" (%s); "
		"to_value is left out of the range.",
		p->watermark_column, format_type_be(type));
	const char *step_hint =
		step_type == INTERVALOID
			? "step is an interval for a timestamp watermark column, e.g. "
			  "'1 day'."
			: psprintf("step is a positive number for watermark column "
					   "\"%s\" (%s), e.g. 10000.",
					   p->watermark_column, format_type_be(type));
	const char *names[2] = { "from_value", "to_value" };
	const char *values[2] = { from, to };

	for (int i = 0; i < 2; i++)
	{
		Datum d = read_backfill_arg(p, names[i], values[i], type, bounds_hint);

		if (!etl_watermark_is_finite(type, d))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s \"%s\" of a backfill of pipeline \"%s\" is "
							"not finite",
							names[i], values[i], p->name),
					 errdetail("A backfill reprocesses a bounded range in "
							   "steps."),
					 errhint("%s", bounds_hint)));
	}
	if (!step_is_positive(step_type, read_backfill_arg(p, "step", step,
													   step_type, step_hint)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("step \"%s\" of a backfill of pipeline \"%s\" is not "
						"positive",
						step, p->name),
				 errdetail("Steps go from from_value up to to_value."),
				 errhint("%s", step_hint)));
}

/*
 * etl_backfill_steps(pipeline text, from_value text, to_value text,
 *					  step text) RETURNS TABLE (step_no integer,
 *					  range_from text, range_to text)
 *
 * The ranges [from, from + step), ..., up to to_value (exclusive), in the
 * watermark column's type: step is an interval for timestamps, a number
 * otherwise.  The values are read as the pipeline owner in a
 * security-restricted operation.  More than ETL_BACKFILL_MAX_STEPS steps
 * are refused.
 */
Datum
etl_backfill_steps(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ErrorContextCallback *saved = error_context_stack;
	EtlPipeline *p;
	EtlArgs args;
	EtlUserSwitch sw = { 0 };
	Oid type;
	Oid step_oid;
	char *typ;
	const char *step_type;
	char *from;
	char *to;
	uint64 n;
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
	typ = watermark_type(p, &type);
	step_oid = type == TIMESTAMPTZOID || type == TIMESTAMPOID ? INTERVALOID
			   : type == PG_LSNOID							  ? NUMERICOID
															  : type;
	step_type = step_oid == INTERVALOID	 ? "pg_catalog.interval"
				: step_oid == NUMERICOID ? "pg_catalog.numeric"
										 : typ;
	from = text_to_cstring(PG_GETARG_TEXT_PP(1));
	to = text_to_cstring(PG_GETARG_TEXT_PP(2));
	etl_become_owner(&sw, p->owner);
	check_backfill_args(p, type, step_oid, from, to,
						text_to_cstring(PG_GETARG_TEXT_PP(3)));
	if (type == TIMESTAMPTZOID)
	{
		/*
		 * The bounds are read in the session's TimeZone; the ranges are
		 * written in UTC, so that a backfill resumed from a session in
		 * another time zone finds the steps it completed.
		 */
		etl_args_init(&args);
		etl_args_add_text(&args, from);
		etl_args_add_text(&args, to);
		etl_spi_exec("SELECT $1::pg_catalog.timestamptz::pg_catalog.text,"
					 " $2::pg_catalog.timestamptz::pg_catalog.text",
					 &args, SPI_OK_SELECT, InvalidSnapshot);
		from = etl_spi_text(0, 0);
		to = etl_spi_text(0, 1);
		(void) set_config_option("TimeZone", "UTC", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	}
	etl_args_init(&args);
	etl_args_add_text(&args, from);
	etl_args_add_text(&args, to);
	etl_args_add_text(&args, text_to_cstring(PG_GETARG_TEXT_PP(3)));
	/*
	 * generate_series in the target list streams its values (in FROM it
	 * would compute them all first): the LIMIT bounds the work however
	 * small the step
	 */
	n = etl_spi_exec(
		psprintf(
			"SELECT s.n::pg_catalog.int4, s.lo::pg_catalog.text,"
			" LEAST(s.lo OPERATOR(pg_catalog.+) $3::%s, $2::%s)::"
			"pg_catalog.text"
			" FROM (SELECT lo, pg_catalog.row_number() OVER (ORDER BY lo)"
			" AS n FROM (SELECT lo FROM (SELECT pg_catalog.generate_series("
			"$1::%s, $2::%s, $3::%s) AS lo) AS g"
			" WHERE lo OPERATOR(pg_catalog.<) $2::%s LIMIT %d) AS g) AS s"
			" ORDER BY s.n",
			step_type, typ, typ, typ, step_type, typ,
			ETL_BACKFILL_MAX_STEPS + 1),
		&args, SPI_OK_SELECT, InvalidSnapshot);
	etl_restore_user(&sw);
	if (n > ETL_BACKFILL_MAX_STEPS)
		ereport(
			ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("backfill of pipeline \"%s\" would take more than %d "
					"steps",
					p->name, ETL_BACKFILL_MAX_STEPS),
			 errdetail("From \"%s\" to \"%s\" by \"%s\".", from, to,
					   text_to_cstring(PG_GETARG_TEXT_PP(3))),
			 errhint("Use a larger step, or backfill the range in parts.")));
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("backfill range of pipeline \"%s\" is empty", p->name),
				 errhint("from_value must be below to_value, and step "
						 "positive.")));
	for (uint64 i = 0; i < n; i++)
	{
		Datum values[3];
		bool nulls[3] = { false, false, false };
		MemoryContext old = etl_entry_to_caller(&e);

		values[0] = Int32GetDatum((int32) etl_spi_int64(i, 0, 0));
		values[1] = CStringGetTextDatum(etl_spi_text(i, 1));
		values[2] = CStringGetTextDatum(etl_spi_text(i, 2));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
							 nulls);
		MemoryContextSwitchTo(old);
	}
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
	EtlEntry e;
	int64 n;

	etl_entry_begin(&e, ETL_ENTRY_PINNED);
	run.p = etl_catalog_load_runnable(fcinfo, 0);
	run.req = &req;
	if (run.p->mode != ETL_MODE_TIMESTAMP && run.p->mode != ETL_MODE_SERIAL &&
		run.p->mode != ETL_MODE_CDC)
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
	etl_spi_exec(psprintf("SELECT pg_catalog.count(*) FROM %s%s%s",
						  run.source_sql, run.has_lo ? " WHERE " : "",
						  run.has_lo ? psprintf("%s OPERATOR(pg_catalog.>) $1",
												quote_identifier(
													run.p->watermark_column))
									 : ""),
				 &args, SPI_OK_SELECT, InvalidSnapshot);
	n = etl_spi_int64(0, 0, 0);
	etl_restore_user(&sw);
	etl_entry_end(&e);
	PG_RETURN_INT64(n);
}
