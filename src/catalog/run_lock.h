/*-------------------------------------------------------------------------
 *
 * run_lock.h
 *	  The run lock of a pipeline, and the lock on its catalog row that keeps a
 *	  drop away.
 *
 * IDENTIFICATION
 *	  src/catalog/run_lock.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_RUN_LOCK_H
#define ETL_RUN_LOCK_H

#include "postgres.h"

extern bool etl_lock_pipeline(int64 pipeline_id, bool wait);
extern bool etl_catalog_lock_key(int64 pipeline_id);
extern bool etl_catalog_try_lock_key(int64 pipeline_id);
extern int etl_pipeline_lock_holder(int64 pipeline_id);

#endif /* ETL_RUN_LOCK_H */
