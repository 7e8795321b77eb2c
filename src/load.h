/*-------------------------------------------------------------------------
 *
 * load.h
 *	  Loading a run's batch into its target.
 *
 * IDENTIFICATION
 *	  src/load.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_LOAD_H
#define ETL_LOAD_H

#include "postgres.h"

#include "run.h"

extern void etl_load(EtlRun *run, EtlLoadCounts *counts);
extern int64 etl_load_full_before(EtlRun *run);
extern int64 etl_load_full_after(EtlRun *run);
extern int64 etl_load_cdc_deletes(EtlRun *run);

#endif /* ETL_LOAD_H */
