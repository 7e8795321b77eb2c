/*-------------------------------------------------------------------------
 *
 * schedule.h
 *	  Scheduling pipelines with pg_cron.
 *
 * IDENTIFICATION
 *	  src/api/schedule.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_SCHEDULE_H
#define ETL_SCHEDULE_H

#include "postgres.h"

#include "catalog/pipelines.h"

extern void etl_cron_drop_job(EtlPipeline *p);

#endif /* ETL_SCHEDULE_H */
