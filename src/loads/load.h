/*-------------------------------------------------------------------------
 *
 * load.h
 *	  Loading a run's batch into its target.
 *
 * IDENTIFICATION
 *	  src/loads/load.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_LOAD_H
#define ETL_LOAD_H

#include "postgres.h"

#include "loads/counts.h"
#include "sql/run_state.h"
#include "transform/stage.h"

extern uint64 etl_load_exec(EtlRun *run, const char *sql, int expected);
extern void etl_load(EtlRun *run, EtlLoadCounts *counts);
extern bool etl_target_is_empty(EtlRun *run);
extern bool etl_in_catch_up(EtlRun *run);
extern void etl_analyze_target(EtlRun *run);
extern bool etl_has_duplicate_keys(EtlRun *run);
extern void etl_start_dedupe(EtlRun *run);
extern void etl_load_finish(EtlRun *run);

#endif /* ETL_LOAD_H */
