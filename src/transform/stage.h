/*-------------------------------------------------------------------------
 *
 * stage.h
 *	  The stage of a run: its source rows in a temporary table, numbered, which
 *	  bad-row isolation, quarantine checks and dead-letter replay read in
 *	  parts; and the subtransactions they run in.
 *
 * IDENTIFICATION
 *	  src/transform/stage.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_STAGE_H
#define ETL_STAGE_H

#include "postgres.h"

#include "sql/run_state.h"

typedef void (*EtlSubxactFn)(EtlRun *run, void *arg);

/*
 * What the caller of etl_load_isolated() wants to hear of.  Rows are named
 * by their number in the stage, which belongs to the pipeline owner: a hook
 * that writes as another role maps numbers to what it read itself and never
 * reads the stage.
 */
typedef struct EtlIsolateHooks
{
	/* rows lo .. hi were loaded; called inside their subtransaction */
	void (*loaded)(EtlRun *run, int64 lo, int64 hi, void *arg);
	/* staged row rn was rejected at stage with edata; record: its JSON */
	void (*rejected)(EtlRun *run, int64 rn, const char *stage,
					 ErrorData *edata, char *record, void *arg);
	void *arg;
} EtlIsolateHooks;

extern ErrorData *etl_in_subxact(EtlSubxactFn fn, EtlRun *run, void *arg,
								 bool recoverable_only);
extern void etl_stage_create(EtlRun *run);
extern int64 etl_stage_fill(EtlRun *run, const char *select_sql,
							EtlArgs *args);
extern void etl_stage_drop(EtlRun *run);
extern void etl_stage_forget(EtlRun *run, const int64 *rns, int64 count);
extern void etl_stage_batch(EtlRun *run);
extern bool etl_batch_has_duplicate_keys(EtlRun *run, int64 lo, int64 hi);

#endif /* ETL_STAGE_H */
