/*-------------------------------------------------------------------------
 *
 * check_results.c
 *	  What the quality checks of a run found, as JSON: the rows of
 *	  etl.check_results (stored by a succeeding run, or by the autonomous
 *	  writer for a failed one) and the failed checks an event lists.
 *
 * IDENTIFICATION
 *	  src/checks/check_results.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/json.h"

#include "base/security.h"
#include "base/spi_util.h"
#include "catalog/runs.h"
#include "checks/check.h"
#include "checks/quality.h"
#include "sql/run_state.h"

/*
 * append_check_json appends a check's name, kind, column (or null) and
 * severity as JSON object members, under the given keys for the name and
 * the column.
 */
static void
append_check_json(StringInfo buf, EtlCheck *c, const char *name_key,
				  const char *column_key)
{
	appendStringInfo(buf, "\"%s\": ", name_key);
	escape_json(buf, c->name);
	appendStringInfoString(buf, ", \"kind\": ");
	escape_json(buf, c->kind->name);
	appendStringInfo(buf, ", \"%s\": ", column_key);
	if (c->column)
		escape_json(buf, c->column);
	else
		appendStringInfoString(buf, "null");
	appendStringInfoString(buf, ", \"severity\": ");
	escape_json(buf, etl_check_severity_names[c->severity]);
}

/*
 * etl_checks_failed_json appends the run's failed checks as a JSON array
 * of {check, kind, column, severity, failing_rows} (at most max of them)
 * and returns how many failed.
 */
int
etl_checks_failed_json(StringInfo buf, EtlRun *run, int max)
{
	ListCell *lc;
	int failed = 0;

	appendStringInfoChar(buf, '[');
	foreach (lc, run->check_results)
	{
		EtlCheckResult *r = lfirst(lc);

		if (r->passed)
			continue;
		if (failed++ >= max)
			continue;
		if (failed > 1)
			appendStringInfoString(buf, ", ");
		appendStringInfoChar(buf, '{');
		append_check_json(buf, r->check, "check", "column");
		appendStringInfo(buf, ", \"failing_rows\": " INT64_FORMAT "}",
						 r->failing);
	}
	appendStringInfoChar(buf, ']');
	return failed;
}

/*
 * etl_check_results_json appends the run's check results as a JSON array
 * of etl.check_results rows.
 */
void
etl_check_results_json(StringInfo buf, EtlRun *run)
{
	ListCell *lc;

	appendStringInfoChar(buf, '[');
	foreach (lc, run->check_results)
	{
		EtlCheckResult *r = lfirst(lc);

		if (foreach_current_index(lc) > 0)
			appendStringInfoChar(buf, ',');
		appendStringInfo(buf,
						 "{\"run_id\": " INT64_FORMAT
						 ", \"pipeline_id\": " INT64_FORMAT ", \"pipeline\": ",
						 run->rec.run_id, run->p->id);
		escape_json(buf, run->p->name);
		appendStringInfoString(buf, ", ");
		append_check_json(buf, r->check, "check_name", "column_name");
		appendStringInfo(buf,
						 ", \"passed\": %s, \"failing_rows\": " INT64_FORMAT
						 ", \"observed\": %s}",
						 r->passed ? "true" : "false", r->failing,
						 r->observed->data);
	}
	appendStringInfoChar(buf, ']');
}

/*
 * etl_check_results_store inserts the run's check results in the current
 * transaction (a succeeding run).
 */
void
etl_check_results_store(EtlRun *run)
{
	StringInfoData json;
	EtlArgs args;
	EtlUserSwitch sw;

	if (run->check_results == NIL)
		return;
	initStringInfo(&json);
	etl_check_results_json(&json, run);
	etl_args_init(&args);
	etl_args_add(&args, JSONBOID,
				 DirectFunctionCall1(jsonb_in, CStringGetDatum(json.data)),
				 false);
	etl_become_extension_owner(&sw);
	etl_spi_exec(ETL_CHECK_RESULTS_INSERT("$1"), &args, SPI_OK_INSERT,
				 InvalidSnapshot);
	etl_restore_user(&sw);
}
