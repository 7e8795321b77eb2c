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
extern bool etl_target_is_empty(EtlRun *run);
extern bool etl_has_duplicate_keys(EtlRun *run);
extern void etl_start_dedupe(EtlRun *run);

#endif /* ETL_LOAD_H */
