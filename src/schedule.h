/*-------------------------------------------------------------------------
 *
 * schedule.h
 *	  Scheduling pipelines with pg_cron.
 *
 * IDENTIFICATION
 *	  src/schedule.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_SCHEDULE_H
#define ETL_SCHEDULE_H

#include "postgres.h"

extern bool etl_started_by_pg_cron(void);

#endif /* ETL_SCHEDULE_H */
