/*-------------------------------------------------------------------------
 *
 * swap_build.h
 *	  Load partition_swap, phase B: the staging tables and the swap.
 *
 * IDENTIFICATION
 *	  src/loads/swap_build.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_SWAP_BUILD_H
#define ETL_SWAP_BUILD_H

#include "postgres.h"

#include "sql/run_state.h"

extern void etl_swap_finish(EtlRun *run);

#endif /* ETL_SWAP_BUILD_H */
