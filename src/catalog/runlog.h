/*-------------------------------------------------------------------------
 *
 * runlog.h
 *	  Structured log lines of a run's stages, and the events a run
 *	  announces on the etl_events channel.
 *
 * IDENTIFICATION
 *	  src/catalog/runlog.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_RUNLOG_H
#define ETL_RUNLOG_H

#include "postgres.h"

#include "portability/instr_time.h"
#include "utils/guc.h"

#include "catalog/pipelines.h"
#include "catalog/runs.h"

typedef enum EtlLogFormat
{
	ETL_LOG_TEXT,
	ETL_LOG_JSON
} EtlLogFormat;

/* etl.log_format and etl.log_min_messages */
extern int etl_log_format;
extern int etl_log_min_messages;
extern const struct config_enum_entry etl_log_format_options[];
extern const struct config_enum_entry etl_log_level_options[];

/* the channel of pg_notify() events */
#define ETL_EVENTS_CHANNEL "etl_events"

/* most failed checks an event lists */
#define ETL_EVENT_CHECKS_MAX 20

extern void etl_log_stage_begin(EtlRunRecord *r, const char *stage,
								instr_time *start);
extern double etl_log_stage_end(EtlRunRecord *r, const char *stage,
								instr_time start, int64 rows);
extern void etl_log_run_end(EtlRunRecord *r);
extern void etl_log_error(EtlRunRecord *r, const char *stage, ErrorData *edata,
						  bool retrying);
extern void etl_log_skipped(EtlRunRecord *r);

extern void etl_run_failed_event(StringInfo buf, EtlPipeline *p,
								 EtlRunRecord *r, const char *failed_checks);
extern void etl_notify_failed_checks(EtlPipeline *p, EtlRunRecord *r,
									 const char *failed_checks);

#endif /* ETL_RUNLOG_H */
