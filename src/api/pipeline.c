/*-------------------------------------------------------------------------
 *
 * pipeline.c
 *	  etl_create_pipeline, etl_alter_pipeline, etl_drop_pipeline and
 *	  etl_reset_watermark: defining pipelines, with full validation.  A drop
 *	  also removes the pipeline's pg_cron job (schedule.c).
 *
 *	  Everything given is validated before anything is stored
 *	  (pipeline_validate.c).
 *
 *	  alter, drop and reset take the pipeline's run lock and so wait for a
 *	  run in progress; a run never sees a definition change under it.  They
 *	  check ownership before they queue for the lock, and again once they
 *	  hold it.
 *
 * IDENTIFICATION
 *	  src/api/pipeline.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "api/pipeline_validate.h"
#include "api/schedule.h"
#include "base/entry.h"
#include "base/security.h"
#include "base/spi_util.h"
#include "base/standby.h"
#include "catalog/pipelines.h"
#include "catalog/run_lock.h"
#include "catalog/unrecorded.h"
#include "checks/quality.h"
#include "modes/fdw.h"
#include "modes/mode.h"
#include "modes/watermark.h"
#include "sql/columns.h"
#include "sql/names.h"

PG_FUNCTION_INFO_V1(etl_create_pipeline);
PG_FUNCTION_INFO_V1(etl_alter_pipeline);
PG_FUNCTION_INFO_V1(etl_alter_pipeline_force);
PG_FUNCTION_INFO_V1(etl_drop_pipeline);
PG_FUNCTION_INFO_V1(etl_reset_watermark);

/* argument positions shared by etl_create_pipeline and etl_alter_pipeline */
enum
{
	ARG_NAME,
	ARG_SOURCE,
	ARG_TARGET,
	ARG_KEY,
	ARG_MODE,
	ARG_WATERMARK_COLUMN,
	ARG_OVERLAP,
	ARG_TRANSFORM,
	ARG_LOAD,
	ARG_BATCH_SIZE,
	ARG_ERROR_THRESHOLD,
	ARG_MAX_ATTEMPTS,
	ARG_RETRY_POLICY,
	ARG_RETRY_BASE_DELAY,
	ARG_RETRY_MAX_DELAY,
	ARG_ON_SCHEMA_CHANGE,
	ARG_OPTIONS,
	ARG_ALERT_AFTER_FAILURES,
	NUM_DEFINITION_ARGS
};

/*
 * arg_cstring returns a text argument as a C string, NULL for SQL NULL.
 */
static char *
arg_cstring(FunctionCallInfo fcinfo, int i)
{
	if (PG_ARGISNULL(i))
		return NULL;
	return text_to_cstring(PG_GETARG_TEXT_PP(i));
}

/*
 * apply_args copies the non-NULL definition arguments into p.
 */
static void
apply_args(FunctionCallInfo fcinfo, EtlPipeline *p)
{
	char *s;

	if ((s = arg_cstring(fcinfo, ARG_SOURCE)) != NULL)
		p->source = s;
	if ((s = arg_cstring(fcinfo, ARG_TARGET)) != NULL)
		p->target = s;
	if (!PG_ARGISNULL(ARG_KEY))
	{
		ArrayType *arr = PG_GETARG_ARRAYTYPE_P(ARG_KEY);
		Datum *elems;
		bool *nulls;
		int n;

		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems,
						  &nulls, &n);
		if (n == 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("key must name at least one column"),
							errhint("Pass key => ARRAY['column'], or leave it "
									"out to use the target's primary key.")));
		p->key = NIL;
		for (int i = 0; i < n; i++)
		{
			if (nulls[i] || VARSIZE_ANY_EXHDR(DatumGetPointer(elems[i])) == 0)
				ereport(
					ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg(
						 "key must not contain NULL or empty column names")));
			p->key = lappend(p->key, TextDatumGetCString(elems[i]));
		}
	}
	if ((s = arg_cstring(fcinfo, ARG_MODE)) != NULL)
		p->mode = etl_mode_lookup(s);
	if ((s = arg_cstring(fcinfo, ARG_WATERMARK_COLUMN)) != NULL)
		p->watermark_column = s;
	if (!PG_ARGISNULL(ARG_OVERLAP))
		p->overlap = PG_GETARG_INTERVAL_P(ARG_OVERLAP);
	if ((s = arg_cstring(fcinfo, ARG_TRANSFORM)) != NULL)
		p->transform = (s[strspn(s, " \t\r\n\f\v")] == '\0') ? NULL : s;
	if ((s = arg_cstring(fcinfo, ARG_LOAD)) != NULL)
		p->load = etl_load_lookup(s);
	if (!PG_ARGISNULL(ARG_BATCH_SIZE))
	{
		p->batch_size = PG_GETARG_INT64(ARG_BATCH_SIZE);
		if (p->batch_size <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("batch_size must be positive"),
					 errdetail("It is " INT64_FORMAT ".", p->batch_size),
					 errhint("Give the most source rows one run may take, or "
							 "NULL for no limit.")));
	}
	if (!PG_ARGISNULL(ARG_ERROR_THRESHOLD))
		p->error_threshold = PG_GETARG_NUMERIC(ARG_ERROR_THRESHOLD);
	if (!PG_ARGISNULL(ARG_MAX_ATTEMPTS))
		p->max_attempts = PG_GETARG_INT32(ARG_MAX_ATTEMPTS);
	if ((s = arg_cstring(fcinfo, ARG_RETRY_POLICY)) != NULL)
		p->retry_policy = etl_name_lookup(etl_retry_policy_names,
										  ETL_RETRY_COUNT, s, "retry_policy");
	if (!PG_ARGISNULL(ARG_RETRY_BASE_DELAY))
		p->retry_base_delay = PG_GETARG_INTERVAL_P(ARG_RETRY_BASE_DELAY);
	if (!PG_ARGISNULL(ARG_RETRY_MAX_DELAY))
		p->retry_max_delay = PG_GETARG_INTERVAL_P(ARG_RETRY_MAX_DELAY);
	if ((s = arg_cstring(fcinfo, ARG_ON_SCHEMA_CHANGE)) != NULL)
		p->on_schema_change = etl_name_lookup(
			etl_schema_policy_names, ETL_SCHEMA_COUNT, s, "on_schema_change");
	if (!PG_ARGISNULL(ARG_OPTIONS))
		p->options = PG_GETARG_JSONB_P(ARG_OPTIONS);
	if (!PG_ARGISNULL(ARG_ALERT_AFTER_FAILURES))
		p->alert_after_failures = PG_GETARG_INT32(ARG_ALERT_AFTER_FAILURES);
}

/*
 * default_pipeline returns a definition with the defaults of
 * etl_create_pipeline, used where a caller passes an explicit NULL.
 */
static EtlPipeline *
default_pipeline(void)
{
	EtlPipeline *p = palloc0(sizeof(EtlPipeline));

	p->mode = etl_mode_lookup("timestamp");
	p->overlap = palloc0(sizeof(Interval));
	p->load = etl_load_lookup("merge");
	p->error_threshold = int64_to_numeric(10);
	p->max_attempts = 3;
	p->alert_after_failures = 1;
	p->retry_policy = ETL_RETRY_EXPONENTIAL_JITTER;
	p->retry_base_delay = palloc0(sizeof(Interval));
	p->retry_base_delay->time = USECS_PER_SEC;
	p->retry_max_delay = palloc0(sizeof(Interval));
	p->retry_max_delay->time = 5 * USECS_PER_MINUTE;
	p->on_schema_change = ETL_SCHEMA_FAIL;
	p->options =
		DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	p->owner = GetUserId();
	return p;
}

/*
 * store_relation_names replaces the given relation names by their
 * schema-qualified, quoted form.
 */
static void
store_relation_names(EtlPipeline *p, EtlPipelineRelations *rels)
{
	p->source = etl_relation_sql(rels->source);
	p->target = etl_relation_sql(rels->target);
}

/*
 * etl_create_pipeline(name, source, target, key, mode, ...) RETURNS bigint
 *
 * Validates a new pipeline and stores it; returns its id.  Refusals store
 * nothing.
 */
Datum
etl_create_pipeline(PG_FUNCTION_ARGS)
{
	EtlPipeline *p = default_pipeline();
	EtlPipelineRelations rels;
	EtlEntry e;
	int64 id;

	p->name = arg_cstring(fcinfo, ARG_NAME);
	etl_pipeline_check_name(p->name);
	etl_entry_begin_write(&e, ETL_ENTRY_CALLER_PATH, "etl_create_pipeline",
						  etl_pipeline_object(p->name));
	apply_args(fcinfo, p);

	/* names given by the caller resolve with the caller's search_path */
	rels.source = etl_pipeline_resolve_relation(p->source, "source");
	rels.target = etl_pipeline_resolve_relation(p->target, "target");
	store_relation_names(p, &rels);
	etl_entry_pin(&e);

	if (etl_catalog_load(p->name, true, InvalidSnapshot) != NULL)
		ereport(ERROR, (errcode(ERRCODE_DUPLICATE_OBJECT),
						errmsg("pipeline \"%s\" already exists", p->name),
						errhint("Choose another name, or change it with "
								"etl_alter_pipeline().")));

	etl_pipeline_validate(p, &rels);
	id = etl_catalog_insert(p);
	etl_fdw_defaults(p, rels.source);
	etl_pipeline_notice_unsafe_serial(p, rels.source);

	etl_entry_end(&e);
	PG_RETURN_INT64(id);
}

/*
 * alter_pipeline is etl_alter_pipeline: fcinfo holds the definition
 * arguments (ARG_*); force lets a change of mode or watermark column reset
 * the watermark of a pipeline that appends without a key (see
 * etl_check_keyless_reload).
 */
static Datum
alter_pipeline(FunctionCallInfo fcinfo, bool force)
{
	char *name = arg_cstring(fcinfo, ARG_NAME);
	EtlPipeline *p;
	const EtlModeOps *old_mode;
	char *old_wm_col;
	char *old_target;
	EtlPipelineRelations rels;
	EtlEntry e;
	bool reset;
	bool had_watermark;
	bool source_given = !PG_ARGISNULL(ARG_SOURCE);
	bool target_given = !PG_ARGISNULL(ARG_TARGET);

	etl_pipeline_check_name(name);
	etl_entry_begin_write(&e, ETL_ENTRY_CALLER_PATH, "etl_alter_pipeline",
						  etl_pipeline_object(name));

	/* new relation names resolve with the caller's search_path */
	rels.source = source_given ? etl_pipeline_resolve_relation(
									 arg_cstring(fcinfo, ARG_SOURCE), "source")
							   : InvalidOid;
	rels.target = target_given ? etl_pipeline_resolve_relation(
									 arg_cstring(fcinfo, ARG_TARGET), "target")
							   : InvalidOid;

	etl_entry_pin(&e);
	p = etl_pipeline_open_locked(name, "alter",
								 ETL_OPEN_WAIT | ETL_OPEN_OWNER_EXISTS, NULL);
	old_mode = etl_mode_ops(p->mode);
	old_wm_col = p->watermark_column;
	old_target = p->target;
	apply_args(fcinfo, p);
	if (etl_mode_ops(p->mode) != old_mode &&
		PG_ARGISNULL(ARG_WATERMARK_COLUMN))
		p->watermark_column = NULL; /* the new mode's default, or none */
	if (!source_given)
		rels.source = etl_resolve_relation(p->source, "source", false);
	if (!target_given)
		rels.target = etl_resolve_relation(p->target, "target", false);
	else if (PG_ARGISNULL(ARG_KEY))
		p->key = NIL; /* a new target without a new key: its primary key */
	store_relation_names(p, &rels);

	reset = etl_mode_ops(p->mode) != old_mode ||
			(old_wm_col == NULL) != (p->watermark_column == NULL) ||
			(old_wm_col && strcmp(old_wm_col, p->watermark_column) != 0);
	had_watermark = p->watermark != NULL;
	if (reset)
		p->watermark = NULL;

	etl_pipeline_validate(p, &rels);

	/*
	 * A reset makes the next run read the source from the beginning: an
	 * append without a key would load the rows it loaded into this target
	 * again (mode full replaces them instead).
	 */
	if (reset && had_watermark && !etl_mode_ops(p->mode)->replaces_target &&
		strcmp(old_target, p->target) == 0)
		etl_check_keyless_reload(
			p, "change the mode or watermark column of", force,
			psprintf("etl_alter_pipeline(%s, ..., force => true)",
					 quote_literal_cstr(p->name)));
	etl_checks_validate_all(p, rels.source, rels.target);
	etl_catalog_update(p);
	if (source_given || reset)
		etl_pipeline_notice_unsafe_serial(p, rels.source);
	etl_fdw_defaults(p, rels.source);
	if (reset && had_watermark)
		ereport(NOTICE, (errmsg("watermark of pipeline \"%s\" reset", p->name),
						 errdetail("Mode or watermark column changed; the "
								   "next run starts from the beginning.")));

	etl_entry_end(&e);
	PG_RETURN_INT64(p->id);
}

/*
 * etl_alter_pipeline(name, source, ...) RETURNS bigint
 *
 * Changes the given settings (NULL = unchanged; transform => '' restores
 * the default transform), validates the whole definition again and stores
 * it.  Changing mode or watermark_column resets the watermark; for a
 * pipeline that appends without a key and has loaded rows that is refused
 * (etl_alter_pipeline_force allows it).
 */
Datum
etl_alter_pipeline(PG_FUNCTION_ARGS)
{
	return alter_pipeline(fcinfo, false);
}

/*
 * etl_alter_pipeline_force(name, force, source, ...) RETURNS bigint
 *
 * etl_alter_pipeline with force as its second argument (a function of its
 * own, so that calls without force keep resolving to the other): with
 * force true, a change of mode or watermark column also resets the
 * watermark of a pipeline that appends without a key.
 */
Datum
etl_alter_pipeline_force(PG_FUNCTION_ARGS)
{
	LOCAL_FCINFO(inner, NUM_DEFINITION_ARGS);
	bool force = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);

	InitFunctionCallInfoData(*inner, fcinfo->flinfo, NUM_DEFINITION_ARGS,
							 fcinfo->fncollation, NULL, NULL);
	inner->args[ARG_NAME] = fcinfo->args[0];
	for (int i = ARG_NAME + 1; i < NUM_DEFINITION_ARGS; i++)
		inner->args[i] = fcinfo->args[i + 1];
	return alter_pipeline(inner, force);
}

/*
 * etl_drop_pipeline(name) RETURNS boolean
 *
 * Drops a pipeline with its runs, batches and dead letters, after any run
 * in progress has finished, and removes its pg_cron job (schedule.c).
 */
Datum
etl_drop_pipeline(PG_FUNCTION_ARGS)
{
	char *name = arg_cstring(fcinfo, 0);
	EtlPipeline *p;
	EtlEntry e;

	etl_pipeline_check_name(name);
	etl_entry_begin_write(&e, ETL_ENTRY_PINNED, "etl_drop_pipeline",
						  etl_pipeline_object(name));
	p = etl_pipeline_open_locked(name, "drop", ETL_OPEN_WAIT, NULL);
	etl_catalog_delete(p);
	etl_cron_drop_job(p);
	/* failure records waiting in files go with the pipeline */
	etl_unrecorded_remove_at_commit(etl_unrecorded_list(p->id));
	etl_entry_end(&e);
	PG_RETURN_BOOL(true);
}

/*
 * etl_reset_watermark(name, value [, force]) RETURNS text
 *
 * Sets the watermark of a pipeline: value must be a finite value of the
 * watermark column's type (and, in mode timestamp, not in the future); NULL
 * makes the next run start from the beginning.  A pipeline that appends
 * without a key and has loaded rows is refused unless force (the rows past
 * the new watermark would be loaded twice).  Returns the stored watermark.
 */
Datum
etl_reset_watermark(PG_FUNCTION_ARGS)
{
	char *name = arg_cstring(fcinfo, 0);
	char *value = arg_cstring(fcinfo, 1);
	bool force = PG_NARGS() > 2 && !PG_ARGISNULL(2) && PG_GETARG_BOOL(2);
	EtlEntry e;
	EtlPipeline *p;
	char *stored = NULL;
	text *result;

	etl_pipeline_check_name(name);
	etl_entry_begin_write(&e, ETL_ENTRY_PINNED, "etl_reset_watermark",
						  etl_pipeline_object(name));
	p = etl_pipeline_open_locked(name, "reset the watermark of", ETL_OPEN_WAIT,
								 NULL);
	if (p->watermark != NULL)
		etl_check_keyless_reload(
			p, "reset the watermark of", force,
			psprintf("etl_reset_watermark(%s, %s, force => true)",
					 quote_literal_cstr(p->name),
					 value ? quote_literal_cstr(value) : "NULL"));

	if (value != NULL && p->watermark_column == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pipeline \"%s\" of mode %s has no watermark to set",
						p->name, etl_mode_names[p->mode]),
				 errdetail("Modes snapshot and full read the whole source at "
						   "each run."),
				 errhint("Reset it with NULL, or give it a watermark column "
						 "with etl_alter_pipeline().")));
	if (value != NULL && etl_mode_ops(p->mode)->watermark_is_snapshot)
		stored = psprintf(UINT64_FORMAT "/%s", GetSystemIdentifier(),
						  etl_xid_watermark_parse(p, value));
	else if (value != NULL)
	{
		Oid source = etl_resolve_relation(p->source, "source", false);
		AttrNumber attnum = get_attnum(source, p->watermark_column);
		Oid type;
		int32 typmod;
		Oid collid;
		Oid typoutput;
		bool varlena;
		Datum d;

		if (attnum == InvalidAttrNumber)
			ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
							errmsg("watermark column \"%s\" of pipeline "
								   "\"%s\" no longer exists in %s",
								   p->watermark_column, p->name, p->source)));
		get_atttypetypmodcoll(source, attnum, &type, &typmod, &collid);
		/* exactly a built-in type: a domain's checks would run here */
		etl_check_watermark_type(p, type);
		d = etl_watermark_datum(p, value, type, typmod);
		etl_check_watermark_finite(p, value, type, d, false);
		if (etl_mode_ops(p->mode)->watermark_is_clock)
		{
			TimestampTz ts = type == TIMESTAMPTZOID
								 ? DatumGetTimestampTz(d)
								 : DatumGetTimestampTz(DirectFunctionCall1(
									   timestamp_timestamptz, d));

			if (ts > GetCurrentTimestamp())
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("watermark \"%s\" of pipeline \"%s\" is in "
								"the future",
								value, p->name),
						 errhint("Rows past the watermark are loaded by the "
								 "next run: give the last value loaded, or "
								 "NULL to reload everything.")));
		}
		getTypeOutputInfo(type, &typoutput, &varlena);
		stored = OidOutputFunctionCall(typoutput, d);
	}
	etl_catalog_set_watermark(p, stored);
	result = etl_entry_text(&e, stored);

	etl_entry_end(&e);
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(result);
}
