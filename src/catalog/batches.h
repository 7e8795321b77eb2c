/*-------------------------------------------------------------------------
 *
 * batches.h
 *	  The batch log (etl.batches): a row per batch a run took, and the rows of
 *	  the steps of etl_catch_up and etl_backfill.
 *
 * IDENTIFICATION
 *	  src/catalog/batches.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_BATCHES_H
#define ETL_BATCHES_H

#include "postgres.h"

#include "catalog/pipelines.h"
#include "catalog/runs.h"

extern void etl_catalog_finish_batch(int64 batch_id, EtlRunRecord *r,
									 const char *status, const char *error);
extern void etl_catalog_complete_batch(int64 batch_id, EtlRunRecord *r);
extern void etl_catalog_record_batch(EtlRunRecord *r, const char *kind,
									 const char *status);
extern int64 etl_batch_recover_pipeline(EtlPipeline *p, int64 except_batch);
extern bool etl_catch_up_tail(EtlPipeline *p, int64 batch_id,
							  const char *triggered_by);

#endif /* ETL_BATCHES_H */
