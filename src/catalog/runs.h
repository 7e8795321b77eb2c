/*-------------------------------------------------------------------------
 *
 * runs.h
 *	  The record of a run (a row of etl.runs), and the statements that insert
 *	  what a run records with it: its check results and its dead letters.
 *
 * IDENTIFICATION
 *	  src/catalog/runs.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_RUNS_H
#define ETL_RUNS_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

/* pg_cron's extension and library, its job workers' bgw_type and appname */
#define ETL_PG_CRON_NAME "pg_cron"

/* what a run reports and records (etl.run_result plus etl.runs extras) */
typedef struct EtlRunRecord
{
	int64 run_id;
	int64 pipeline_id;
	const char *pipeline;
	const char *status; /* succeeded | failed | skipped */
	int64 rows_extracted;
	int64 rows_inserted;
	int64 rows_updated;
	int64 rows_deleted;
	int64 rows_unchanged;
	int64 rows_rejected;
	int64 rows_new; /* rows past watermark_from (the batch's range): fewer
					 * than rows_extracted when an overlap re-read some;
					 * -1 until known */
	char *watermark_from;
	char *watermark_to;
	int32 attempts;
	TimestampTz started_at;
	TimestampTz finished_at;
	const char *error;
	const char *sqlstate;
	const char *error_class;
	Oid run_by;
	const char *triggered_by;
	const char *attempt_errors; /* JSON array of failed attempts, or NULL */
	double extract_ms;			/* negative: not measured separately */
	double transform_ms;
	double check_ms;
	double load_ms;
} EtlRunRecord;

/*
 * The INSERT of check results given as a JSON array (the expression src),
 * shared by the run and the autonomous writer.
 */
#define ETL_CHECK_RESULTS_INSERT(src)                                         \
	"INSERT INTO etl.check_results (run_id, pipeline_id, pipeline, "          \
	"check_name, kind,"                                                       \
	" column_name, severity, passed, failing_rows, observed)"                 \
	" SELECT run_id, pipeline_id, pipeline, check_name, kind, column_name, "  \
	"severity,"                                                               \
	" passed, failing_rows, observed"                                         \
	" FROM pg_catalog.jsonb_populate_recordset(NULL::etl.check_results, " src \
	")"

/*
 * The INSERT of dead letters given as a JSON array (the expression src,
 * e.g. $1), shared by the run and the autonomous writer.
 */
#define ETL_DEAD_LETTERS_INSERT(src)                                          \
	"INSERT INTO etl.dead_letters (pipeline_id, pipeline, run_id, stage, "    \
	"record,"                                                                 \
	" error_class, sqlstate, error_message, status, retry_count, "            \
	"occurred_at)"                                                            \
	" SELECT pipeline_id, pipeline, run_id, stage, record, error_class,"      \
	" sqlstate, error_message, 'pending', 0, occurred_at"                     \
	" FROM pg_catalog.jsonb_populate_recordset(NULL::etl.dead_letters, " src  \
	")"

extern int64 etl_catalog_next_run_id(void);
extern void etl_catalog_record_run(EtlRunRecord *r);
extern void etl_run_record_json(StringInfo buf, EtlRunRecord *r);
extern bool etl_started_by_pg_cron(void);

#endif /* ETL_RUNS_H */
