/*-------------------------------------------------------------------------
 *
 * run.h
 *	  The orchestration of a run, and what the run layer shares.
 *
 * IDENTIFICATION
 *	  src/run/run.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_RUN_H
#define ETL_RUN_H

#include "postgres.h"

#include "portability/instr_time.h"

#include "sql/run_state.h"

extern void etl_run_pipeline(const char *name, EtlRunRequest *req,
							 EtlRunRecord *result);
extern double etl_retry_delay_ms(EtlPipeline *p, int failed);
extern void etl_require_read_committed(const char *what);

/* the stages of an attempt (stages.c) */
extern void etl_run_stages(EtlRun *run);
extern void etl_run_stage_begin(EtlRun *run, const char *stage,
								instr_time *start);
extern double etl_run_stage_end(EtlRun *run, instr_time start, int64 rows);
extern void etl_not_row_local_error(EtlRun *run, ErrorData *edata);

#endif /* ETL_RUN_H */
