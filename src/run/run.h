/*-------------------------------------------------------------------------
 *
 * run.h
 *	  The orchestration of a run, and what the run layer shares.
 *
 * IDENTIFICATION
 *	  src/run/run.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_RUN_H
#define ETL_RUN_H

#include "postgres.h"

#include "sql/run_state.h"

extern void etl_require_read_committed(const char *what);
extern void etl_not_row_local_error(EtlRun *run, ErrorData *edata);

#endif /* ETL_RUN_H */
