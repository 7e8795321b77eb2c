/*-------------------------------------------------------------------------
 *
 * swap.h
 *	  Load partition_swap: rebuilding the partitions a batch touches and
 *	  swapping them into a partitioned target.
 *
 * IDENTIFICATION
 *	  src/loads/swap.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_SWAP_H
#define ETL_SWAP_H

#include "postgres.h"

#include "utils/rel.h"

#include "loads/counts.h"
#include "sql/run_state.h"

extern void etl_swap_load(EtlRun *run, EtlLoadCounts *c);

#endif /* ETL_SWAP_H */
