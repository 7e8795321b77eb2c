/*-------------------------------------------------------------------------
 *
 * checks.c
 *	  The SQL-callable functions of quality checks: etl_add_check,
 *	  etl_drop_check and etl_check_sql (checks/ validates and evaluates).
 *
 * IDENTIFICATION
 *	  src/api/checks.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"

#include "base/entry.h"
#include "base/security.h"
#include "base/spi_util.h"
#include "base/standby.h"
#include "catalog/pipelines.h"
#include "checks/check.h"
#include "checks/check_kinds.h"
#include "checks/quality.h"
#include "modes/mode.h"
#include "sql/columns.h"
#include "sql/run_state.h"

PG_FUNCTION_INFO_V1(etl_add_check);
PG_FUNCTION_INFO_V1(etl_drop_check);
PG_FUNCTION_INFO_V1(etl_check_sql);

/*
 * etl_add_check(pipeline, kind, column_name, params, severity, name)
 *	 RETURNS text
 *
 * Adds a check to a pipeline after validating it; returns its name (by
 * default <pipeline>_<column>_<kind>, or <pipeline>_<kind>).
 */
Datum
etl_add_check(PG_FUNCTION_ARGS)
{
	EtlEntry e;
	EtlCheck *c = palloc0(sizeof(EtlCheck));
	EtlPipeline *p;
	EtlColumnMap *map;
	Oid source_relid;
	Oid target_relid;
	EtlArgs args;
	EtlUserSwitch sw;
	text *result;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("pipeline and kind of a check must not be NULL")));
	etl_entry_begin_write(
		&e, ETL_ENTRY_PINNED, "etl_add_check",
		etl_pipeline_object(text_to_cstring(PG_GETARG_TEXT_PP(0))));
	c->kind = etl_check_kind_lookup(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	c->column = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	c->params = PG_ARGISNULL(3) ? DatumGetJsonbP(DirectFunctionCall1(
									  jsonb_in, CStringGetDatum("{}")))
								: PG_GETARG_JSONB_P(3);
	c->severity = PG_ARGISNULL(4)
					  ? SEV_CRITICAL
					  : etl_name_lookup(etl_check_severity_names, SEV_COUNT,
										text_to_cstring(PG_GETARG_TEXT_PP(4)),
										"severity");

	p = etl_catalog_load(text_to_cstring(PG_GETARG_TEXT_PP(0)), false,
						 InvalidSnapshot);
	etl_check_pipeline_owner(p->name, p->owner, "add checks to");

	if (!PG_ARGISNULL(5))
		c->name = text_to_cstring(PG_GETARG_TEXT_PP(5));
	else if (c->column)
		c->name = psprintf("%s_%s_%s", p->name, c->column, c->kind->name);
	else
		c->name = psprintf("%s_%s", p->name, c->kind->name);
	if (c->name[0] == '\0' || strlen(c->name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("check name \"%s\" is empty or longer than %d bytes",
						c->name, NAMEDATALEN - 1),
				 errhint("Give the check a shorter name => '...'.")));

	source_relid = etl_resolve_relation(p->source, "source", false);
	target_relid = etl_resolve_relation(p->target, "target", false);
	map = etl_resolve_columns(p, source_relid, target_relid);
	etl_check_resolve(c, p, map, source_relid);

	etl_args_init(&args);
	etl_args_add_int8(&args, p->id);
	etl_args_add_text(&args, c->name);
	if (etl_spi_exec("SELECT 1 FROM etl.checks WHERE pipeline_id "
					 "OPERATOR(pg_catalog.=) $1"
					 " AND name OPERATOR(pg_catalog.=) $2",
					 &args, SPI_OK_SELECT, InvalidSnapshot) > 0)
		ereport(ERROR, (errcode(ERRCODE_DUPLICATE_OBJECT),
						errmsg("pipeline \"%s\" already has a check \"%s\"",
							   p->name, c->name),
						errhint("Give the check another name => '...', or "
								"drop the other with etl_drop_check().")));
	etl_args_add_text(&args, c->kind->name);
	etl_args_add_text(&args, c->column);
	etl_args_add(&args, JSONBOID, JsonbPGetDatum(c->params), false);
	etl_args_add_text(&args, etl_check_severity_names[c->severity]);
	etl_become_extension_owner(&sw);
	etl_spi_exec("INSERT INTO etl.checks (pipeline_id, name, kind, "
				 "column_name, params, severity)"
				 " VALUES ($1, $2, $3, $4, $5, $6)",
				 &args, SPI_OK_INSERT, InvalidSnapshot);
	etl_restore_user(&sw);

	result = etl_entry_text(&e, c->name);
	etl_entry_end(&e);
	PG_RETURN_TEXT_P(result);
}

/*
 * etl_drop_check(pipeline, name) RETURNS boolean
 *
 * Drops a check of a pipeline (42704 when it has none of that name).
 */
Datum
etl_drop_check(PG_FUNCTION_ARGS)
{
	EtlPipeline *p;
	EtlArgs args;
	EtlUserSwitch sw;
	EtlEntry e;
	uint64 n;
	char *name;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("pipeline and check name must not be NULL")));
	etl_entry_begin_write(
		&e, ETL_ENTRY_PINNED, "etl_drop_check",
		etl_pipeline_object(text_to_cstring(PG_GETARG_TEXT_PP(0))));
	name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	p = etl_catalog_load(text_to_cstring(PG_GETARG_TEXT_PP(0)), false,
						 InvalidSnapshot);
	etl_check_pipeline_owner(p->name, p->owner, "drop checks of");
	etl_args_init(&args);
	etl_args_add_int8(&args, p->id);
	etl_args_add_text(&args, name);
	etl_become_extension_owner(&sw);
	n = etl_spi_exec(
		"DELETE FROM etl.checks WHERE pipeline_id OPERATOR(pg_catalog.=) $1"
		" AND name OPERATOR(pg_catalog.=) $2",
		&args, SPI_OK_DELETE, InvalidSnapshot);
	etl_restore_user(&sw);
	if (n == 0)
		ereport(
			ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("pipeline \"%s\" has no check \"%s\"", p->name, name),
			 errhint(
				 "SELECT name FROM etl.checks JOIN etl.pipelines p USING (pipeline_id) WHERE p.name = %s lists them.",
				 quote_literal_cstr(p->name))));
	etl_entry_end(&e);
	PG_RETURN_BOOL(true);
}

/*
 * etl_check_sql(pipeline text) RETURNS text
 *
 * The one aggregate query that evaluates a pipeline's checks over a batch
 * ($n are the run's range and the checks' params): what etl_run executes
 * before each load.  Only the pipeline's owner (or a member, or a
 * superuser) may see it.
 */
Datum
etl_check_sql(PG_FUNCTION_ARGS)
{
	EtlEntry e;
	EtlRun run = { 0 };
	EtlArgs args;
	List *checks;
	ListCell *lc;
	char *sql = NULL;
	text *result = NULL;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	etl_entry_begin(&e, ETL_ENTRY_PINNED);
	run.p = etl_catalog_load(text_to_cstring(PG_GETARG_TEXT_PP(0)), false,
							 InvalidSnapshot);
	etl_check_pipeline_owner(run.p->name, run.p->owner,
							 "show the check query of");
	etl_run_resolve_relations(&run);
	run.map = etl_resolve_columns(run.p, run.source_relid, run.target_relid);
	checks = etl_checks_load(run.p->id);
	if (checks != NIL)
	{
		int *first_col = palloc0(sizeof(int) * list_length(checks));

		foreach (lc, checks)
		{
			EtlCheck *c = lfirst(lc);

			etl_check_resolve(c, run.p, run.map, run.source_relid);
			/* the query's shape only: a run fetches the values */
			if (c->kind->prepare != NULL)
				c->kind->prepare(c, NULL);
		}
		etl_args_init(&args);
		args.n = ETL_NPARAMS;
		sql = etl_checks_pass_sql(&run, checks, &args, first_col);
		result = etl_entry_text(&e, sql);
	}
	etl_entry_end(&e);
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(result);
}
