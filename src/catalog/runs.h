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
 * The statements that write dead letters given as a JSON array (the
 * expression src, e.g. $1; letters of one run), shared by the run and the
 * autonomous writer, run in this order.  A row version (pipeline, stage and
 * record, equal as jsonb) is pending as one dead letter at most:
 *
 * ETL_DEAD_LETTERS_CLOSE closes the pending letters of the versions the
 * array records again, written by earlier runs or by earlier statements of
 * its run ('resolved', "superseded: recorded again by run N").  It locks
 * them SKIP LOCKED, so that the autonomous writer never waits for the
 * failing backend (which may hold them, after a replay in its
 * transaction): a letter another transaction holds stays as it is.
 *
 * ETL_DEAD_LETTERS_INSERT then inserts the letters in the array's order,
 * pending, but closed ("superseded: ...") when a later letter of the array
 * has the same version, or a letter of the version is pending still: one
 * of a later run (a failure record written late, after the run that
 * followed it) or one that ETL_DEAD_LETTERS_CLOSE found locked.
 *
 * Each letter costs a probe of dead_letters_pending_record_idx in each.
 */
#define ETL_DEAD_LETTERS_CLOSE(src)                                           \
	"UPDATE etl.dead_letters d SET status = 'resolved',"                      \
	" resolved_at = pg_catalog.now(),"                                        \
	" resolution = 'superseded: recorded again by run '"                      \
	" OPERATOR(pg_catalog.||) o.by_run"                                       \
	" FROM (SELECT p.id, n.run_id AS by_run"                                  \
	" FROM pg_catalog.jsonb_populate_recordset(NULL::etl.dead_letters, " src  \
	") n JOIN etl.dead_letters p"                                             \
	" ON p.pipeline_id OPERATOR(pg_catalog.=) n.pipeline_id"                  \
	" AND p.status OPERATOR(pg_catalog.=) 'pending'"                          \
	" AND pg_catalog.jsonb_hash(p.record) OPERATOR(pg_catalog.=)"             \
	" pg_catalog.jsonb_hash(n.record)"                                        \
	" AND p.record OPERATOR(pg_catalog.=) n.record"                           \
	" AND p.stage OPERATOR(pg_catalog.=) n.stage"                             \
	" AND (p.run_id OPERATOR(pg_catalog.<=) n.run_id OR p.run_id IS NULL)"    \
	" FOR UPDATE OF p SKIP LOCKED) o"                                         \
	" WHERE d.id OPERATOR(pg_catalog.=) o.id"                                 \
	" AND d.status OPERATOR(pg_catalog.=) 'pending'"

#define ETL_DEAD_LETTERS_INSERT(src)                                          \
	"INSERT INTO etl.dead_letters (pipeline_id, pipeline, run_id, stage,"     \
	" record, error_class, sqlstate, error_message, status, retry_count,"     \
	" occurred_at, resolved_at, resolution)"                                  \
	" SELECT n.pipeline_id, n.pipeline, n.run_id, n.stage, n.record,"         \
	" n.error_class, n.sqlstate, n.error_message,"                            \
	" CASE WHEN r.resolution IS NULL THEN 'pending' ELSE 'resolved' END, 0,"  \
	" n.occurred_at,"                                                         \
	" CASE WHEN r.resolution IS NOT NULL THEN pg_catalog.now() END,"          \
	" r.resolution"                                                           \
	" FROM (SELECT l.*, pg_catalog.row_number() OVER (PARTITION BY l.stage,"  \
	" l.record, CASE WHEN l.record IS NULL THEN l.ordinality END"             \
	" ORDER BY l.ordinality DESC) AS last"                                    \
	" FROM pg_catalog.jsonb_populate_recordset(NULL::etl.dead_letters, " src  \
	") WITH ORDINALITY AS l) n"                                               \
	" LEFT JOIN LATERAL (SELECT k.id, k.run_id FROM etl.dead_letters k"       \
	" WHERE n.last OPERATOR(pg_catalog.=) 1"                                  \
	" AND k.pipeline_id OPERATOR(pg_catalog.=) n.pipeline_id"                 \
	" AND k.status OPERATOR(pg_catalog.=) 'pending'"                          \
	" AND pg_catalog.jsonb_hash(k.record) OPERATOR(pg_catalog.=)"             \
	" pg_catalog.jsonb_hash(n.record)"                                        \
	" AND k.record OPERATOR(pg_catalog.=) n.record"                           \
	" AND k.stage OPERATOR(pg_catalog.=) n.stage"                             \
	" ORDER BY k.run_id DESC NULLS LAST, k.id DESC LIMIT 1) k ON true"        \
	" CROSS JOIN LATERAL (SELECT CASE"                                        \
	" WHEN n.last OPERATOR(pg_catalog.>) 1"                                   \
	" THEN 'superseded: recorded again by run ' OPERATOR(pg_catalog.||)"      \
	" n.run_id"                                                               \
	" WHEN k.run_id OPERATOR(pg_catalog.>) n.run_id"                          \
	" THEN 'superseded: recorded again by run ' OPERATOR(pg_catalog.||)"      \
	" k.run_id"                                                               \
	" WHEN k.id IS NOT NULL"                                                  \
	" THEN 'superseded: pending already as dead letter '"                     \
	" OPERATOR(pg_catalog.||) k.id END AS resolution) r"                      \
	" ORDER BY n.ordinality"

extern int64 etl_catalog_next_run_id(void);
extern void etl_catalog_record_run(EtlRunRecord *r);
extern void etl_run_record_json(StringInfo buf, EtlRunRecord *r);
extern bool etl_started_by_pg_cron(void);

#endif /* ETL_RUNS_H */
