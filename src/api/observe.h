/*-------------------------------------------------------------------------
 *
 * observe.h
 *	  The lag of a pipeline, read fenced: in a subtransaction of its own,
 *	  under etl.lag_timeout, as the pipeline owner.
 *
 * IDENTIFICATION
 *	  src/api/observe.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_OBSERVE_H
#define ETL_OBSERVE_H

#include "postgres.h"

#include "catalog/pipelines.h"

/* what the lags of one query (etl.status, a metrics scrape) share */
typedef struct EtlLagCache EtlLagCache;

/* a lag: an interval, a bigint or a numeric (its type) */
typedef struct EtlLag
{
	Oid type;
	Datum value;
} EtlLag;

extern EtlLagCache *etl_lag_cache_create(MemoryContext cxt);
extern bool etl_pipeline_lag(EtlLagCache *cache, EtlPipeline *p, EtlLag *lag);
extern char *etl_lag_text(EtlLag *lag);
extern double etl_lag_seconds(EtlLag *lag);

#endif /* ETL_OBSERVE_H */
