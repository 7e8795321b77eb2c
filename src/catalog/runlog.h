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

#include "run/run.h"

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

extern void etl_stage_begin(EtlRun *run, const char *stage, instr_time *start);
extern double etl_stage_end(EtlRun *run, instr_time start, int64 rows);
extern void etl_log_run_end(EtlRun *run);
extern void etl_log_error(EtlRun *run, ErrorData *edata, bool retrying);
extern void etl_log_skipped(EtlRun *run);

extern void etl_run_failed_event(StringInfo buf, EtlRun *run);
extern void etl_notify_failed_checks(EtlRun *run);

#endif /* ETL_RUNLOG_H */
