/*-------------------------------------------------------------------------
 *
 * isolate.h
 *	  Bad-row isolation: loading a batch in subtransactions and bisecting
 *	  the parts that fail with a data error down to single rows.
 *
 * IDENTIFICATION
 *	  src/transform/isolate.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_ISOLATE_H
#define ETL_ISOLATE_H

#include "postgres.h"

#include "run/run.h"

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
extern void etl_load_isolated(EtlRun *run, int64 nrows, EtlIsolateHooks *hooks,
							  EtlLoadCounts *total);
extern void etl_isolate_transform(EtlRun *run, int64 nrows,
								  EtlIsolateHooks *hooks);
extern void etl_stage_forget(EtlRun *run, int64 rn);
extern bool etl_batch_has_duplicate_keys(EtlRun *run, int64 lo, int64 hi);
extern char *etl_stage_filter(EtlRun *run, const char *alias);
extern void etl_stage_batch(EtlRun *run);

#endif /* ETL_ISOLATE_H */
