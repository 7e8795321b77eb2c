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

/* a step of a run that the orchestrator calls (arg: the kind's own state) */
typedef void (*EtlRunHook)(EtlRun *run, void *arg);

/*
 * What differs between the kinds of run that etl_run_orchestrated() drives:
 * an increment or a step (etl_run_pipeline) and the replay of dead letters
 * (replay.c), whose batch is the pending dead letters.
 */
typedef struct EtlRunKind
{
	const char *action; /* what the ownership check names: "run", ... */
	bool wait;			/* wait for the run lock; else skipped when held */
	bool retried;		/* transient errors retried, a failure recorded on
						 * its own and raised as the run's; else an attempt's
						 * error is raised as it came */
	EtlRunHook begin;	/* after the lock, before the first attempt; or NULL */
	EtlRunHook attempt; /* one attempt, in a subtransaction: the batch, its
						 * stages, the watermark and the records */
	EtlRunHook end;		/* after the attempt that succeeded; or NULL */
} EtlRunKind;

extern void etl_run_orchestrated(const char *name, EtlRunRequest *req,
								 const EtlRunKind *kind, void *arg,
								 EtlRunRecord *result);
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
