/*-------------------------------------------------------------------------
 *
 * runs.c
 *	  The records of runs: drawing a run id, inserting a run's row of etl.runs
 *	  (as the extension owner), the same row as JSON for the autonomous writer,
 *	  and whether pg_cron started the run.
 *
 * IDENTIFICATION
 *	  src/catalog/runs.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "base/security.h"
#include "base/spi_util.h"
#include "catalog/runs.h"

/*
 * etl_catalog_next_run_id draws a run id.
 */
int64
etl_catalog_next_run_id(void)
{
	EtlUserSwitch sw;

	etl_become_extension_owner(&sw);
	etl_spi_exec(
		"SELECT "
		"pg_catalog.nextval('etl.runs_run_id_seq'::pg_catalog.regclass)",
		NULL, SPI_OK_SELECT, InvalidSnapshot);
	etl_restore_user(&sw);
	return etl_spi_int64(0, 0, 0);
}

/*
 * add_ms appends a stage duration; negative means not measured (NULL).
 */
static void
add_ms(EtlArgs *args, double ms)
{
	etl_args_add(args, FLOAT8OID, Float8GetDatum(ms), ms < 0);
}

/*
 * etl_catalog_record_run inserts the row of etl.runs of a finished run.
 */
void
etl_catalog_record_run(EtlRunRecord *r)
{
	EtlArgs args;
	EtlUserSwitch sw;

	etl_args_init(&args);
	etl_args_add_int8(&args, r->run_id);
	etl_args_add_int8(&args, r->pipeline_id);
	etl_args_add_text(&args, r->pipeline);
	etl_args_add_text(&args, r->status);
	etl_args_add_int8(&args, r->rows_extracted);
	etl_args_add_int8(&args, r->rows_inserted);
	etl_args_add_int8(&args, r->rows_updated);
	etl_args_add_int8(&args, r->rows_deleted);
	etl_args_add_int8(&args, r->rows_unchanged);
	etl_args_add_int8(&args, r->rows_rejected);
	etl_args_add_text(&args, r->watermark_from);
	etl_args_add_text(&args, r->watermark_to);
	etl_args_add(&args, INT4OID, Int32GetDatum(r->attempts), false);
	etl_args_add(&args, TIMESTAMPTZOID, TimestampTzGetDatum(r->started_at),
				 false);
	etl_args_add(&args, TIMESTAMPTZOID, TimestampTzGetDatum(r->finished_at),
				 false);
	etl_args_add_text(&args, r->error);
	etl_args_add_text(&args, r->sqlstate);
	etl_args_add_text(&args, r->error_class);
	etl_args_add(&args, REGROLEOID, ObjectIdGetDatum(r->run_by), false);
	etl_args_add_text(&args, r->triggered_by);
	add_ms(&args, r->extract_ms);
	add_ms(&args, r->transform_ms);
	add_ms(&args, r->check_ms);
	add_ms(&args, r->load_ms);
	etl_args_add(
		&args, JSONBOID,
		r->attempt_errors
			? DirectFunctionCall1(jsonb_in, CStringGetDatum(r->attempt_errors))
			: (Datum) 0,
		r->attempt_errors == NULL);

	etl_become_extension_owner(&sw);
	etl_spi_exec(
		"INSERT INTO etl.runs (run_id, pipeline_id, pipeline, status,"
		" rows_extracted, rows_inserted, rows_updated, rows_deleted,"
		" rows_unchanged, rows_rejected, watermark_from, watermark_to,"
		" attempts, started_at, finished_at, duration, error, sqlstate,"
		" error_class, run_by, triggered_by, extract_ms, transform_ms,"
		" check_ms, load_ms, attempt_errors)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
		" $13, $14, $15, $15 OPERATOR(pg_catalog.-) $14, $16, $17, $18,"
		" $19, $20, $21, $22, $23, $24, $25)",
		&args, SPI_OK_INSERT, InvalidSnapshot);
	etl_restore_user(&sw);
}

/*
 * json_text appends a JSON string, or null.
 */
static void
json_text(StringInfo buf, const char *key, const char *value)
{
	appendStringInfo(buf, ", \"%s\": ", key);
	if (value)
		escape_json(buf, value);
	else
		appendStringInfoString(buf, "null");
}

/*
 * json_ms appends a stage duration, or null when not measured.
 */
static void
json_ms(StringInfo buf, const char *key, double ms)
{
	if (ms < 0)
		appendStringInfo(buf, ", \"%s\": null", key);
	else
		appendStringInfo(buf, ", \"%s\": %.3f", key, ms);
}

/*
 * etl_run_record_json appends a run as a JSON object with the columns of
 * etl.runs (what the autonomous writer inserts for a failed run).
 */
void
etl_run_record_json(StringInfo buf, EtlRunRecord *r)
{
	appendStringInfo(
		buf, "{\"run_id\": " INT64_FORMAT ", \"pipeline_id\": " INT64_FORMAT,
		r->run_id, r->pipeline_id);
	json_text(buf, "pipeline", r->pipeline);
	json_text(buf, "status", r->status);
	appendStringInfo(
		buf,
		", \"rows_extracted\": " INT64_FORMAT
		", \"rows_inserted\": " INT64_FORMAT
		", \"rows_updated\": " INT64_FORMAT ", \"rows_deleted\": " INT64_FORMAT
		", \"rows_unchanged\": " INT64_FORMAT
		", \"rows_rejected\": " INT64_FORMAT ", \"attempts\": %d",
		Max(r->rows_extracted, 0), r->rows_inserted, r->rows_updated,
		r->rows_deleted, r->rows_unchanged, r->rows_rejected, r->attempts);
	json_text(buf, "watermark_from", r->watermark_from);
	json_text(buf, "watermark_to", r->watermark_to);
	json_text(buf, "started_at", timestamptz_to_str(r->started_at));
	json_text(buf, "finished_at", timestamptz_to_str(r->finished_at));
	json_text(buf, "duration",
			  psprintf(INT64_FORMAT " microseconds",
					   r->finished_at - r->started_at));
	json_text(buf, "error", r->error);
	json_text(buf, "sqlstate", r->sqlstate);
	json_text(buf, "error_class", r->error_class);
	json_text(buf, "run_by",
			  quote_identifier(GetUserNameFromId(r->run_by, false)));
	json_text(buf, "triggered_by", r->triggered_by);
	json_ms(buf, "extract_ms", r->extract_ms);
	json_ms(buf, "transform_ms", r->transform_ms);
	json_ms(buf, "check_ms", r->check_ms);
	json_ms(buf, "load_ms", r->load_ms);
	appendStringInfo(buf, ", \"attempt_errors\": %s}",
					 r->attempt_errors ? r->attempt_errors : "null");
}

/*
 * etl_started_by_pg_cron tells whether this backend runs a pg_cron job: a
 * pg_cron background worker, or a session that pg_cron's launcher opened
 * (application_name 'pg_cron' from its start).
 */
bool
etl_started_by_pg_cron(void)
{
	const char *appname;

	if (MyBgworkerEntry != NULL)
		return strcmp(MyBgworkerEntry->bgw_library_name, ETL_PG_CRON_NAME) ==
				   0 ||
			   strcmp(MyBgworkerEntry->bgw_type, ETL_PG_CRON_NAME) == 0;
	appname = GetConfigOptionResetString("application_name");
	return appname != NULL && strcmp(appname, ETL_PG_CRON_NAME) == 0;
}
