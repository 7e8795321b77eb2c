/*-------------------------------------------------------------------------
 *
 * run_lock.h
 *	  The run lock of a pipeline, the lock on its catalog row that keeps a
 *	  drop away, and the opening of a pipeline under its run lock.
 *
 * IDENTIFICATION
 *	  src/catalog/run_lock.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_RUN_LOCK_H
#define ETL_RUN_LOCK_H

#include "postgres.h"

#include "catalog/pipelines.h"

/* how etl_pipeline_open_locked() opens a pipeline */
#define ETL_OPEN_WAIT 0x01 /* wait for the run lock (else: NULL when held) */
#define ETL_OPEN_OWNER_EXISTS 0x02 /* refuse a pipeline whose owner is gone */

extern EtlPipeline *etl_pipeline_open_locked(const char *name,
											 const char *action, int flags,
											 int64 *pipeline_id);
extern bool etl_lock_pipeline(int64 pipeline_id, bool wait);
extern bool etl_catalog_lock_key(int64 pipeline_id);
extern bool etl_catalog_try_lock_key(int64 pipeline_id);
extern int etl_pipeline_lock_holder(int64 pipeline_id);
extern int etl_pipeline_enter_run(int64 pipeline_id);
extern void etl_pipeline_leave_run(int depth);

#endif /* ETL_RUN_LOCK_H */
